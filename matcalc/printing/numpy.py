"""NumPy code generation: straight-line functions with shared sub-expressions and cheap products.

``to_numpy_source(expr, params)`` writes ``def f(*, A, x): ...`` where

- every distinct sub-expression is computed once (equal sub-trees share one temporary);
- matrix chains are ordered by estimated cost (dimensions given as numbers are used,
  symbolic dimensions are assumed large, vectors are 1 wide), so ``A^T A x`` is computed
  as ``A.T @ (A @ x)``;
- ``diag(v) M`` is row scaling ``v * M`` and ``M diag(v)`` column scaling, ``A^-1 B`` is
  ``np.linalg.solve(A, B)``, and Kronecker products in products are applied through
  reshapes and ``np.einsum`` (never ``np.kron``);
- vectors are accepted as 1-D arrays (or columns) and returned 1-D, scalars as floats;
  internally vectors are 2-D columns.

Parameter names that are Python keywords get a trailing underscore (``lambda`` becomes
``lambda_``).
"""

from __future__ import annotations

import itertools
import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DeclarationError, UnsupportedError
from ..expr import (
    SCALAR,
    Add,
    Call,
    Dim,
    Div,
    ElemDiv,
    ElemPow,
    Expr,
    Hadamard,
    Identity,
    Kron,
    Mul,
    Neg,
    Norm,
    Number,
    Ones,
    Pow,
    Symbol,
    Transpose,
    Zero,
)

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_LARGE = 100  # assumed size of a symbolic dimension when ordering products

_ELEMENTWISE = {
    "exp": "np.exp({})",
    "log": "np.log({})",
    "sqrt": "np.sqrt({})",
    "sin": "np.sin({})",
    "cos": "np.cos({})",
    "tanh": "np.tanh({})",
    "sigma": "0.5 * (1.0 + np.tanh(0.5 * {}))",
    "relu": "np.maximum({}, 0.0)",
    "softplus": "np.logaddexp(0.0, {})",
    "abs": "np.abs({})",
    "sign": "np.sign({})",
    "tr": "np.trace({})",
    "det": "np.linalg.det({})",
    "sum": "np.sum({})",
    "vec": '{}.reshape(-1, 1, order="F")',
}


@dataclass(frozen=True)
class _Val:
    """A computed value: ``dense`` (an array or float named by ``code``), or a lazy form:
    ``diag`` (code: the diagonal as a column), ``inv`` (code: the matrix to invert),
    ``kron`` (code, other: the two factors), ``identity`` (code: its size)."""

    kind: str
    code: str
    other: str = ""


def python_name(name: str) -> str:
    """The Python identifier used for a variable name (keywords get a trailing ``_``)."""
    if not _IDENT.match(name):
        raise DeclarationError(f"{name!r} cannot be a parameter name of generated NumPy code")
    if name == "np":
        return "np_"
    return name + "_" if keyword.iskeyword(name) else name


def _number(value: Any) -> str:
    text = repr(float(value))
    return f"({text})" if text.startswith("-") else text


class _Generator:
    """Emits one assignment per distinct sub-expression."""

    def __init__(self, params: Sequence[Symbol]) -> None:
        self.params = {p.name: p for p in params}
        self.pyname = {p.name: python_name(p.name) for p in params}
        taken = set(self.pyname.values())
        self.prefix = next(p for p in ("t", "tmp", "t_") if not any(
            re.fullmatch(re.escape(p) + r"\d+", n) for n in taken))
        self.counter = itertools.count()
        self.lines: list[str] = []
        self.memo: dict[Expr, _Val] = {}
        self.uses: dict[Expr, int] = {}
        self.dims: dict[Dim, str] = {}
        for p in params:
            for axis, d in enumerate(p.dims):
                if isinstance(d, str) and d not in self.dims and p.dims != SCALAR:
                    self.dims[d] = f"{self.pyname[p.name]}.shape[{axis}]"

    # -- plumbing ----------------------------------------------------------------
    def fresh(self) -> str:
        return f"{self.prefix}{next(self.counter)}"

    def emit(self, code: str) -> str:
        name = self.fresh()
        self.lines.append(f"{name} = {code}")
        return name

    def dim(self, d: Dim) -> str:
        if isinstance(d, int):
            return str(d)
        if d in self.dims:
            return self.dims[d]
        if "*" in d:
            return " * ".join(self.dim(int(p) if p.isdigit() else p) for p in d.split("*"))
        raise UnsupportedError(f"the size {d} cannot be read off any parameter")

    def count_uses(self, root: Expr) -> None:
        seen: set[Expr] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            for child in set(node.children):
                self.uses[child] = self.uses.get(child, 0) + 1
                stack.append(child)

    # -- values ------------------------------------------------------------------
    def value(self, e: Expr) -> _Val:
        if e not in self.memo:
            method = getattr(self, "_" + type(e).__name__, None)
            if method is None:
                raise UnsupportedError(f"cannot generate NumPy code for {type(e).__name__}")
            self.memo[e] = method(e)
        return self.memo[e]

    def code(self, e: Expr) -> str:
        """A dense (or scalar) atom for ``e``."""
        return self.dense(self.value(e))

    def dense(self, v: _Val) -> str:
        if v.kind == "dense":
            return v.code
        if v.kind == "diag":
            return self.emit(f"{v.code} * np.eye({v.code}.shape[0])")
        if v.kind == "inv":
            return self.emit(f"np.linalg.inv({v.code})")
        if v.kind == "identity":
            return self.emit(f"np.eye({v.code})")
        left, right = v.code, v.other
        return self.emit(
            f'np.einsum("ia,jb->ijab", {left}, {right}).reshape('
            f"{left}.shape[0] * {right}.shape[0], {left}.shape[1] * {right}.shape[1])"
        )

    # -- leaves ------------------------------------------------------------------
    def _Symbol(self, e: Symbol) -> _Val:
        if e.name not in self.pyname:
            raise DeclarationError(f"{e.name} occurs in the expression but is not a parameter")
        return _Val("dense", self.pyname[e.name])

    def _Number(self, e: Number) -> _Val:
        return _Val("dense", _number(e.value))

    def _Identity(self, e: Identity) -> _Val:
        return _Val("identity", self.dim(e.n))

    def _Ones(self, e: Ones) -> _Val:
        return _Val("dense", self.emit(f"np.ones(({self.dim(e.n)}, 1))"))

    def _Zero(self, e: Zero) -> _Val:
        if e.dims == SCALAR:
            return _Val("dense", "0.0")
        rows, cols = (self.dim(d) for d in e.dims)
        return _Val("dense", self.emit(f"np.zeros(({rows}, {cols}))"))

    # -- operators ---------------------------------------------------------------
    def _Add(self, e: Add) -> _Val:
        parts = []
        for i, t in enumerate(e.terms):
            if isinstance(t, Neg):
                parts.append(f"- {self.code(t.arg)}")
            else:
                parts.append(("+ " if i else "") + self.code(t))
        return _Val("dense", self.emit(" ".join(parts)))

    def _Neg(self, e: Neg) -> _Val:
        return _Val("dense", self.emit(f"-{self.code(e.arg)}"))

    def _Div(self, e: Div) -> _Val:
        return _Val("dense", self.emit(f"{self.code(e.num)} / {self.code(e.den)}"))

    def _Hadamard(self, e: Hadamard) -> _Val:
        return _Val("dense", self.emit(" * ".join(self.code(f) for f in e.factors)))

    def _ElemDiv(self, e: ElemDiv) -> _Val:
        return _Val("dense", self.emit(f"{self.code(e.num)} / {self.code(e.den)}"))

    def _ElemPow(self, e: ElemPow) -> _Val:
        return _Val("dense", self.emit(f"{self.code(e.base)} ** {self.code(e.exponent)}"))

    def _Kron(self, e: Kron) -> _Val:
        return _Val("kron", self.code(e.left), self.code(e.right))

    def _Transpose(self, e: Transpose) -> _Val:
        v = self.value(e.arg)
        if e.arg.shape == SCALAR or v.kind in ("diag", "identity"):
            return v
        if v.kind == "kron":
            return _Val("kron", _transposed(v.code), _transposed(v.other))
        return _Val(v.kind, _transposed(v.code))

    def _Pow(self, e: Pow) -> _Val:
        if e.base.shape == SCALAR:
            return _Val("dense", self.emit(f"{self.code(e.base)} ** {self.code(e.exponent)}"))
        if not isinstance(e.exponent, Number) or e.exponent.value.denominator != 1:
            raise UnsupportedError("a matrix power needs an integer exponent")
        k = int(e.exponent.value)
        if k == -1:
            return _Val("inv", self.code(e.base))
        return _Val("dense", self.emit(f"np.linalg.matrix_power({self.code(e.base)}, {k})"))

    def _Norm(self, e: Norm) -> _Val:
        x = self.code(e.arg)
        if e.arg.shape == SCALAR:
            return _Val("dense", self.emit(f"np.abs({x})"))
        if e.arg.kind == "matrix" and e.p == "2":
            return _Val("dense", self.emit(f"np.linalg.norm({x}, 2)"))
        if e.arg.kind == "matrix" and e.p != "F":
            raise UnsupportedError(f"the matrix norm ||.||_{e.p} has no NumPy translation")
        if e.p == "1":
            return _Val("dense", self.emit(f"np.sum(np.abs({x}))"))
        return _Val("dense", self.emit(f"np.linalg.norm({x})"))

    def _Call(self, e: Call) -> _Val:
        arg = e.args[0]
        if e.name == "diag":
            if arg.kind == "vector":
                return _Val("diag", self.code(arg))
            return _Val("dense", self.emit(f"np.diagonal({self.code(arg)}).reshape(-1, 1)"))
        special = _SPECIAL.get(e.name)
        if special is not None:
            return _Val("dense", special(self, self.code(arg)))
        template = _ELEMENTWISE.get(e.name)
        if template is None:
            raise UnsupportedError(f"{e.name} has no NumPy translation")
        return _Val("dense", self.emit(template.format(self.code(arg))))

    # -- products ----------------------------------------------------------------
    def _flatten(self, e: Mul) -> list[Expr]:
        out: list[Expr] = []
        for f in e.factors:
            inline = f.shape != SCALAR and self.uses.get(f, 0) <= 1 and f not in self.memo
            if isinstance(f, Mul) and inline:
                out.extend(self._flatten(f))
            else:
                out.append(f)
        return out

    def _Mul(self, e: Mul) -> _Val:
        factors = self._flatten(e)
        scalars = [self.code(f) for f in factors if f.shape == SCALAR]
        mats = [f for f in factors if f.shape != SCALAR]
        vals = [(f, self.value(f)) for f in mats]
        kept = [(f, v) for f, v in vals if v.kind != "identity"] or vals[:1]
        scale = " * ".join(scalars)
        if not kept:
            return _Val("dense", self.emit(scale or "1.0"))
        if len(kept) == 1:
            return self._scaled(kept[0][1], scale, e)
        order = _chain_order([f for f, _ in kept])
        result = self._apply(order, [v for _, v in kept])
        return self._scaled(result, scale, e)

    def _scaled(self, v: _Val, scale: str, e: Expr) -> _Val:
        if e.shape == SCALAR:
            entry = self._first_entry(v.code)
            return _Val("dense", self.emit(f"{scale} * {entry}") if scale else entry)
        if not scale:
            return v
        if v.kind == "diag":
            return _Val("diag", self.emit(f"{scale} * {v.code}"))
        return _Val("dense", self.emit(f"{scale} * {self.dense(v)}"))

    def _first_entry(self, name: str) -> str:
        """``name[0, 0]``, folded into the line that just computed ``name`` when possible."""
        last = self.lines[-1] if self.lines else ""
        shared = any(v.code == name for v in self.memo.values())
        if last.startswith(f"{name} = ") and not shared:
            self.lines[-1] = f"{name} = ({last[len(name) + 3:]})[0, 0]"
            return name
        return self.emit(f"{name}[0, 0]")

    def _apply(self, order: Any, vals: list[_Val]) -> _Val:
        if isinstance(order, int):
            return vals[order]
        left = self._apply(order[0], vals)
        right = self._apply(order[1], vals)
        return self._product(left, right)

    def _product(self, a: _Val, b: _Val) -> _Val:
        if a.kind == "identity":
            return b
        if b.kind == "identity":
            return a
        if a.kind == "diag" and b.kind == "diag":
            return _Val("diag", self.emit(f"{a.code} * {b.code}"))
        if a.kind == "diag" and b.kind == "dense":
            return _Val("dense", self.emit(f"{a.code} * {b.code}"))
        if a.kind == "dense" and b.kind == "diag":
            return _Val("dense", self.emit(f"{a.code} * {b.code}.T"))
        if a.kind == "inv" and b.kind == "dense":
            return _Val("dense", self.emit(f"np.linalg.solve({a.code}, {b.code})"))
        if a.kind == "dense" and b.kind == "inv":
            return _Val("dense", self.emit(
                f"np.linalg.solve({_transposed(b.code)}, {_transposed(a.code)}).T"))
        if a.kind == "kron" and b.kind == "dense":
            return _Val("dense", self.emit(_kron_times(a.code, a.other, b.code)))
        if a.kind == "dense" and b.kind == "kron":
            return _Val("dense", self.emit(_times_kron(a.code, b.code, b.other)))
        if a.kind == "dense" and b.kind == "dense":
            return _Val("dense", self.emit(f"{a.code} @ {b.code}"))
        # Two lazy forms of different kinds: make one of them an array.
        if b.kind in ("diag", "inv", "kron") and a.kind not in ("diag",):
            return self._product(a, _Val("dense", self.dense(b)))
        return self._product(_Val("dense", self.dense(a)), b)


def _transposed(code: str) -> str:
    return code[:-2] if code.endswith(".T") else f"{code}.T"


def _kron_times(left: str, right: str, m: str) -> str:
    """(left ⊗ right) @ m through a reshape of m (never forms the Kronecker product)."""
    return (
        f'np.einsum("ia,jb,abk->ijk", {left}, {right}, '
        f"{m}.reshape({left}.shape[1], {right}.shape[1], -1), optimize=True)"
        f".reshape({left}.shape[0] * {right}.shape[0], -1)"
    )


def _times_kron(m: str, left: str, right: str) -> str:
    """m @ (left ⊗ right) through a reshape of m."""
    return (
        f'np.einsum("kij,ia,jb->kab", {m}.reshape(-1, {left}.shape[0], {right}.shape[0]), '
        f"{left}, {right}, optimize=True).reshape(-1, {left}.shape[1] * {right}.shape[1])"
    )


def _estimate(d: Dim) -> int:
    if isinstance(d, int):
        return d
    out = 1
    for part in d.split("*"):
        out *= int(part) if part.isdigit() else _LARGE
    return out


def _factor_cost_kind(f: Expr) -> str:
    if isinstance(f, Call) and f.name == "diag" and f.args[0].kind == "vector":
        return "diag"
    return "dense"


def _chain_order(factors: list[Expr]) -> Any:
    """Cheapest parenthesisation (nested pairs of indices) by the classic dynamic program."""
    n = len(factors)
    dims = [_estimate(factors[0].shape[0])] + [_estimate(f.shape[1]) for f in factors]
    diag = [_factor_cost_kind(f) == "diag" for f in factors]
    best: dict[tuple[int, int], tuple[float, Any]] = {(i, i): (0.0, i) for i in range(n)}
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            options = []
            for k in range(i, j):
                left_diag = all(diag[i:k + 1])
                right_diag = all(diag[k + 1:j + 1])
                step = (dims[i] * dims[j + 1] if left_diag or right_diag
                        else dims[i] * dims[k + 1] * dims[j + 1])
                cost = best[(i, k)][0] + best[(k + 1, j)][0] + step
                options.append((cost, (best[(i, k)][1], best[(k + 1, j)][1])))
            best[(i, j)] = min(options, key=lambda o: o[0])
    return best[(0, n - 1)][1]


# ---------------------------------------------------------------------------- multi-line calls


def _logdet(g: _Generator, x: str) -> str:
    sign, logabs = g.fresh(), g.fresh()
    g.lines.append(f"{sign}, {logabs} = np.linalg.slogdet({x})")
    return g.emit(f"{logabs} if {sign} > 0 else np.nan")


def _softmax(g: _Generator, x: str) -> str:
    w = g.emit(f"np.exp({x} - np.max({x}))")
    return g.emit(f"{w} / np.sum({w})")


def _logsumexp(g: _Generator, x: str) -> str:
    top = g.emit(f"np.max({x})")
    return g.emit(f"{top} + np.log(np.sum(np.exp({x} - {top})))")


def _eig(which: int, vector: bool) -> Callable[[_Generator, str], str]:
    def gen(g: _Generator, x: str) -> str:
        values, vectors = g.fresh(), g.fresh()
        g.lines.append(f"{values}, {vectors} = np.linalg.eigh(0.5 * ({x} + {x}.T))")
        if not vector:
            return g.emit(f"{values}[{which}]")
        v = g.emit(f"{vectors}[:, [{which}]]")
        return g.emit(f"{v} * np.sign({v}[np.argmax(np.abs({v})), 0])")

    return gen


def _svec(left: bool) -> Callable[[_Generator, str], str]:
    def gen(g: _Generator, x: str) -> str:
        u, s, vt = g.fresh(), g.fresh(), g.fresh()
        g.lines.append(f"{u}, {s}, {vt} = np.linalg.svd({x})")
        sign = g.emit(f"np.sign({u}[np.argmax(np.abs({u}[:, 0])), 0])")
        return g.emit(f"{sign} * {u}[:, :1]" if left else f"{sign} * {vt}[:1].T")

    return gen


_SPECIAL: dict[str, Callable[[_Generator, str], str]] = {
    "logdet": _logdet,
    "softmax": _softmax,
    "logsumexp": _logsumexp,
    "lambda_max": _eig(-1, False),
    "lambda_min": _eig(0, False),
    "eigvec_max": _eig(-1, True),
    "eigvec_min": _eig(0, True),
    "svec_left": _svec(True),
    "svec_right": _svec(False),
}

# ---------------------------------------------------------------------------- public API


def _default_params(expr: Expr) -> list[Symbol]:
    seen: dict[str, Symbol] = {}
    for node in expr.walk():
        if isinstance(node, Symbol):
            seen.setdefault(node.name, node)
    return list(seen.values())


def _convert_input(p: Symbol, name: str) -> str:
    if p.dims == SCALAR:
        return f"{name} = float({name})"
    if p.dims[1] == 1:
        return f"{name} = np.asarray({name}, dtype=float).reshape(-1, 1)"
    if p.dims[0] == 1:
        return f"{name} = np.asarray({name}, dtype=float).reshape(1, -1)"
    return f"{name} = np.asarray({name}, dtype=float)"


def _return(expr: Expr, code: str) -> str:
    if expr.shape == SCALAR:
        return f"return float({code})"
    if expr.shape[1] == 1:
        return f"return {code}.reshape(-1)"
    return f"return {code}"


def to_numpy_source(expr: Expr, params: Sequence[Symbol] | None = None, name: str = "f") -> str:
    """Python source of ``def name(*, <params>)`` computing ``expr`` with NumPy."""
    if not _IDENT.match(name) or keyword.iskeyword(name):
        raise DeclarationError(f"{name!r} is not a valid function name")
    params = list(params) if params is not None else _default_params(expr)
    gen = _Generator(params)
    gen.count_uses(expr)
    result = gen.dense(gen.value(expr))
    args = ", ".join(gen.pyname[p.name] for p in params)
    header = f"def {name}(*, {args}):" if args else f"def {name}():"
    body = [_convert_input(p, gen.pyname[p.name]) for p in params]
    body += [*gen.lines, _return(expr, result)]
    doc = f'    """Generated by matcalc from: {_doc_text(expr)}"""'
    return "\n".join([header, doc, *("    " + line for line in body)]) + "\n"


def _doc_text(expr: Expr) -> str:
    try:
        text = str(expr)
    except Exception:  # printing is another module's business; never fail generation on it
        text = type(expr).__name__
    text = text.replace("\\", "\\\\").replace('"""', "'''")
    return text if len(text) <= 200 else text[:200] + " ..."


def compile_numpy(expr: Expr, params: Sequence[Symbol] | None = None, name: str = "f"
                  ) -> Callable[..., Any]:
    """A Python function computing ``expr``, built by exec'ing only the generated source."""
    source = to_numpy_source(expr, params, name)
    namespace: dict[str, Any] = {"np": np}
    exec(compile(source, f"<matcalc {name}>", "exec"), namespace)  # noqa: S102
    fn = namespace[name]
    fn.__matcalc_source__ = source
    return fn
