"""Vector functions: softmax and log-sum-exp of a column vector."""

from __future__ import annotations

from typing import Any

from .record import CodeEmitter, Function, as_scalar, same_shape, scalar_matrix, to_scalar


def _softmax_numpy(np: Any, x: Any) -> Any:
    w = np.exp(x - x.max())  # shifted by the maximum: no overflow
    return w / w.sum()


def _logsumexp_numpy(np: Any, x: Any) -> Any:
    top = x.max()
    return np.full((1, 1), top + np.log(np.exp(x - top).sum()))


def _softmax_code(g: CodeEmitter, x: str) -> str:
    w = g.emit(g.call("exp", f"{x} - {g.op('max', x)}"))
    return g.emit(f"{w} / {g.call('sum', w)}")


def _logsumexp_code(g: CodeEmitter, x: str) -> str:
    top = g.emit(g.op("max", x))
    return g.emit(f"{top} + {g.call('log', g.call('sum', g.call('exp', f'{x} - {top}')))}")


def _softmax_sympy(sp: Any, m: Any) -> Any:
    e = m.applyfunc(sp.exp)
    return e / sum(e)


def _exp_total(sp: Any, a: Any) -> tuple[Any, Any]:
    """exp(a) and 1^T exp(a) as matrix expressions."""
    exps = sp.matrices.expressions.applyfunc.ElementwiseApplyFunction(sp.exp, a)
    return exps, as_scalar(sp, sp.OneMatrix(1, a.shape[0]) * exps)


def _numbers(m: Any) -> list[Any]:
    """The entries of ``m``, which must be numbers without a tie for the largest or the
    smallest: at a tie max is not differentiable (SymPy's derivative is 1/2 per entry, central
    differences average the sides), so symbolic or tied entries are refused and the checker
    uses finite differences at random (tie-free) points."""
    from ..errors import UnsupportedError

    entries = list(m)
    if not all(getattr(v, "is_number", True) for v in entries):
        raise UnsupportedError("max, min and ||x||_inf are checked numerically")
    if len(entries) > 1 and any(entries.count(v) > 1 for v in (max(entries), min(entries))):
        raise UnsupportedError("max and min are not differentiable at a tie")
    return entries


def _first_extreme(m: Any, largest: bool) -> int:
    """Index of the first largest (smallest) entry of explicit numbers without a tie."""
    return first_extreme(_numbers(m), largest)


def first_extreme(entries: list[Any], largest: bool) -> int:
    """Index of the first largest (smallest) of ``entries``, as NumPy's argmax (argmin)."""
    best = 0
    for i, v in enumerate(entries):
        if (v > entries[best]) if largest else (v < entries[best]):
            best = i
    return best


def _indicator_sympy(largest: bool):
    def run(sp: Any, m: Any) -> Any:
        k = _first_extreme(m, largest)
        return sp.Matrix(m.rows, 1, lambda i, j: 1 if i == k else 0)

    return run


def _indicator_numpy(largest: bool):
    def run(np: Any, x: Any) -> Any:
        out = np.zeros_like(x, dtype=float)
        out[int(np.argmax(x) if largest else np.argmin(x)), 0] = 1.0
        return out

    return run


def _indicator_code(largest: bool) -> str:
    arg = "argmax" if largest else "argmin"
    return "(({xp}.arange({0}.shape[0]) == {xp}." + arg + "({0})) * 1.0)"  # 1-D vectors


def _softmax_expr(sp: Any, a: Any) -> Any:
    exps, total = _exp_total(sp, a)
    return exps / total


def _extreme(largest: bool) -> Function:
    """The record of ``max`` (largest) or ``min`` of a vector: one entry, a subgradient."""
    name, word = ("max", "largest") if largest else ("min", "smallest")
    return Function(
        name=name, description=f"{word} entry of a vector", family="vector",
        accepts="vector", shape=to_scalar, latex=rf"\{name}",
        numpy=lambda np, x: np.full((1, 1), getattr(x, name)()),
        sympy=lambda sp, m: scalar_matrix(sp, (sp.Max if largest else sp.Min)(*_numbers(m))),
        code=f"{{xp}}.{name}({{0}})", differential=f"d_{name}",
        nonsmooth=f"{name}(x) has a kink where the {word} entry is repeated",
    )


RECORDS = (
    Function(
        name="softmax", description="exp(x) / (1^T exp(x))", family="vector", accepts="vector",
        shape=same_shape, latex=r"\operatorname{softmax}",
        numpy=_softmax_numpy, sympy=_softmax_sympy, sympy_expr=_softmax_expr,
        code=_softmax_code, differential="d_softmax", letter="s",
    ),
    Function(
        name="logsumexp", description="log(1^T exp(x))", family="vector", accepts="vector",
        shape=to_scalar, latex=r"\operatorname{logsumexp}", spellings=("lse",),
        numpy=_logsumexp_numpy,
        sympy=lambda sp, m: scalar_matrix(sp, sp.log(sum(m.applyfunc(sp.exp)))),
        sympy_expr=lambda sp, a: sp.log(_exp_total(sp, a)[1]),
        code=_logsumexp_code, differential="d_logsumexp",
    ),
    *(_extreme(largest) for largest in (True, False)),
    Function(
        name="ismax", description="1 at the first largest entry of a vector, 0 elsewhere "
        "(the gradient of max)", family="vector", accepts="vector", shape=same_shape,
        latex=r"\operatorname{ismax}", numpy=_indicator_numpy(True),
        sympy=_indicator_sympy(True), code=_indicator_code(True), differential="d_ismax",
        nonsmooth="ismax(x) jumps where the largest entry is repeated",
    ),
    Function(
        name="ismin", description="1 at the first smallest entry of a vector, 0 elsewhere "
        "(the gradient of min)", family="vector", accepts="vector", shape=same_shape,
        latex=r"\operatorname{ismin}", numpy=_indicator_numpy(False),
        sympy=_indicator_sympy(False), code=_indicator_code(False), differential="d_ismin",
        nonsmooth="ismin(x) jumps where the smallest entry is repeated",
    ),
)
