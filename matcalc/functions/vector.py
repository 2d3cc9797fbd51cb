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


def _softmax_expr(sp: Any, a: Any) -> Any:
    exps, total = _exp_total(sp, a)
    return exps / total


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
)
