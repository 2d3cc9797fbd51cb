"""NumPy evaluation of expressions, random well-conditioned points and finite differences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .errors import DeclarationError, ShapeError, UnsupportedError
from .expr import (
    SCALAR,
    Add,
    Call,
    Differential,
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
    Shape,
    Symbol,
    Transpose,
    Zero,
)
from .functions import FUNCTIONS

Value = np.ndarray | float
Sizes = dict[Dim, int]

MODES = ("grad", "jacobian", "hessian", "derivative")
"""Derivative layouts understood by ``finite_difference`` (and ``verify.check_derivative``)."""

# ---------------------------------------------------------------------------- dimensions


def dim_value(d: Dim, sizes: Mapping[Dim, int]) -> int:
    """The concrete size of a dimension; products such as ``"n*m"`` multiply their parts."""
    if isinstance(d, int):
        return d
    if d in sizes:
        return sizes[d]
    if "*" in d:
        out = 1
        for part in d.split("*"):
            out *= dim_value(int(part) if part.isdigit() else part, sizes)
        return out
    raise UnsupportedError(f"the size of dimension {d} is not known")


def shape_value(shape: Shape, sizes: Mapping[Dim, int]) -> tuple[int, int]:
    """A shape with every dimension made concrete."""
    return dim_value(shape[0], sizes), dim_value(shape[1], sizes)


def symbols_of(exprs: Iterable[Expr]) -> list[Symbol]:
    """The distinct variables of some expressions, in order of first appearance (by name)."""
    seen: dict[str, Symbol] = {}
    for e in exprs:
        for node in e.walk():
            if isinstance(node, Symbol) and node.name not in seen:
                seen[node.name] = node
    return list(seen.values())


def sizes_from_values(expr: Expr, values: Mapping[str, Any],
                      extra: Iterable[Symbol] = ()) -> Sizes:
    """Read the size of every symbolic dimension off the arrays given for the variables."""
    sizes: Sizes = {}
    for sym in [*symbols_of([expr]), *extra]:
        if sym.name not in values:
            raise DeclarationError(f"no value given for {sym.name}")
        actual = as_column(values[sym.name], sym).shape
        for d, n in zip(sym.dims, actual, strict=True):
            known = sizes.get(d, d if isinstance(d, int) else None)
            if known is not None and known != n:
                raise ShapeError(
                    f"{sym.name} has shape {np.shape(values[sym.name])}, which does not fit "
                    f"dimension {d} = {known}"
                )
            if isinstance(d, str):
                sizes[d] = n
    return sizes


def as_column(value: Any, sym: Symbol) -> np.ndarray:
    """A user's value as a 2-D float array: vectors as columns, scalars as 1x1."""
    arr = np.asarray(value, dtype=float)
    rows, cols = sym.dims
    if sym.dims == SCALAR:
        if arr.size != 1:
            raise ShapeError(f"{sym.name} is a scalar, got an array of shape {arr.shape}")
        return arr.reshape(1, 1)
    if cols == 1 and arr.ndim == 1:
        return arr.reshape(-1, 1)
    if rows == 1 and arr.ndim == 1:
        return arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ShapeError(f"{sym.name} needs a 2-D array, got shape {arr.shape}")
    return arr


def natural(arr: np.ndarray, shape: Shape) -> Value:
    """Convert an internal 2-D result back: float for scalars, 1-D for column vectors."""
    if shape == SCALAR:
        return float(np.asarray(arr).reshape(-1)[0])
    if shape[1] == 1:
        return np.asarray(arr).reshape(-1)
    return np.asarray(arr)


# ---------------------------------------------------------------------------- interpreter


def evaluate(expr: Expr, values: Mapping[str, Any], sizes: Mapping[Dim, int] | None = None
             ) -> Value:
    """Evaluate an expression with NumPy; vectors in and out are 1-D arrays, scalars floats."""
    if sizes is None:
        sizes = sizes_from_values(expr, values)
    env = {s.name: as_column(values[s.name], s) for s in symbols_of([expr])}
    return natural(_Evaluator(env, sizes).run(expr), expr.shape)


class _Evaluator:
    """Post-order interpreter over 2-D arrays; equal sub-trees are evaluated once."""

    def __init__(self, env: Mapping[str, np.ndarray], sizes: Mapping[Dim, int]) -> None:
        self.env = env
        self.sizes = sizes
        self.memo: dict[Expr, np.ndarray] = {}

    def run(self, e: Expr) -> np.ndarray:
        if e not in self.memo:
            method = getattr(self, "_" + type(e).__name__, None)
            if method is None:
                raise UnsupportedError(f"cannot evaluate {type(e).__name__} numerically")
            with np.errstate(all="ignore"):
                self.memo[e] = np.asarray(method(e), dtype=float)
        return self.memo[e]

    def _dim(self, d: Dim) -> int:
        return dim_value(d, self.sizes)

    def _Symbol(self, e: Symbol) -> np.ndarray:
        return self.env[e.name]

    def _Number(self, e: Number) -> np.ndarray:
        return np.full((1, 1), float(e.value))

    def _Identity(self, e: Identity) -> np.ndarray:
        return np.eye(self._dim(e.n))

    def _Commutation(self, e) -> np.ndarray:
        from .commutation import permutation

        m, n = self._dim(e.m), self._dim(e.n)
        return np.eye(m * n)[permutation(m, n)]

    def _Ones(self, e: Ones) -> np.ndarray:
        return np.ones((self._dim(e.n), 1))

    def _Zero(self, e: Zero) -> np.ndarray:
        return np.zeros(shape_value(e.dims, self.sizes))

    def _Differential(self, e: Differential) -> np.ndarray:
        raise UnsupportedError(f"cannot evaluate the differential d{e.var.name} numerically")

    def _Add(self, e: Add) -> np.ndarray:
        out = self.run(e.terms[0])
        for t in e.terms[1:]:
            out = out + self.run(t)
        return out

    def _Neg(self, e: Neg) -> np.ndarray:
        return -self.run(e.arg)

    def _Mul(self, e: Mul) -> np.ndarray:
        scale, product = 1.0, None
        for f in e.factors:
            value = self.run(f)
            if f.shape == SCALAR:
                scale = scale * value[0, 0]
            else:
                product = value if product is None else product @ value
        return np.full((1, 1), scale) if product is None else scale * product

    def _Div(self, e: Div) -> np.ndarray:
        return self.run(e.num) / self.run(e.den)[0, 0]

    def _Hadamard(self, e: Hadamard) -> np.ndarray:
        out = self.run(e.factors[0])
        for f in e.factors[1:]:
            out = out * self.run(f)
        return out

    def _ElemDiv(self, e: ElemDiv) -> np.ndarray:
        return self.run(e.num) / self.run(e.den)

    def _Kron(self, e: Kron) -> np.ndarray:
        return np.kron(self.run(e.left), self.run(e.right))

    def _Transpose(self, e: Transpose) -> np.ndarray:
        return self.run(e.arg).T

    def _Pow(self, e: Pow) -> np.ndarray:
        base, exponent = self.run(e.base), self.run(e.exponent)[0, 0]
        if e.base.shape == SCALAR:
            return np.power(base, exponent)
        if float(exponent) != int(exponent):
            raise UnsupportedError("a matrix power needs an integer exponent")
        return np.linalg.matrix_power(base, int(exponent))

    def _ElemPow(self, e: ElemPow) -> np.ndarray:
        return np.power(self.run(e.base), self.run(e.exponent)[0, 0])

    def _Norm(self, e: Norm) -> np.ndarray:
        x = self.run(e.arg)
        kind = e.arg.kind
        if kind == "matrix" and e.p == "2":
            return np.full((1, 1), np.linalg.norm(x, 2))
        if kind == "matrix" and e.p not in ("F",):
            raise UnsupportedError(f"the matrix norm ||.||_{e.p} cannot be evaluated")
        if e.p == "1":
            return np.full((1, 1), np.abs(x).sum())
        return np.full((1, 1), np.sqrt((x * x).sum()))

    def _Call(self, e: Call) -> np.ndarray:
        return FUNCTIONS[e.name].numpy(np, *(self.run(a) for a in e.args))


# ---------------------------------------------------------------------------- random points


def random_value(sym: Symbol, sizes: Mapping[Dim, int], rng: np.random.Generator,
                 positive: bool = False) -> Value:
    """One well-conditioned random value for a variable, in the user's format.

    Entries have magnitude in [0.25, 1.25] (positive with ``positive=True``, so that
    log and sqrt of entries are defined); square matrices get ``1.5 n I`` added, which makes
    them diagonally dominant (invertible, positive determinant; positive definite when
    symmetric); symmetric matrices are symmetric; probability vectors are positive and
    sum to one.
    """
    rows, cols = shape_value(sym.dims, sizes)
    magnitude = rng.uniform(0.25, 1.25, size=(rows, cols))
    signs = 1.0 if positive else rng.choice([-1.0, 1.0], size=(rows, cols))
    value = magnitude * signs
    if "probability" in sym.props:
        value = magnitude / magnitude.sum()
    if "symmetric" in sym.props:
        value = 0.5 * (value + value.T)
    if "diagonal" in sym.props:
        value = np.diag(np.diag(value))
    if rows == cols and rows > 1:
        value = value + 1.5 * rows * np.eye(rows)
    return natural(value, sym.dims)


def random_point(symbols: Iterable[Symbol], sizes: Mapping[Dim, int],
                 rng: np.random.Generator | None = None, positive: bool = False
                 ) -> dict[str, Value]:
    """Well-conditioned random values for the variables (see ``random_value``)."""
    rng = rng if rng is not None else np.random.default_rng()
    return {s.name: random_value(s, sizes, rng, positive) for s in symbols}


# ---------------------------------------------------------------------------- finite differences


def _find_symbol(expr: Expr, wrt: Symbol | str, values: Mapping[str, Any]) -> Symbol:
    name = wrt.name if isinstance(wrt, Symbol) else wrt
    for sym in symbols_of([expr]):
        if sym.name == name:
            return sym
    if isinstance(wrt, Symbol):
        return wrt
    if name in values:
        arr = np.asarray(values[name], dtype=float)
        dims = (1, 1) if arr.size == 1 else (arr.shape[0], arr.shape[1] if arr.ndim == 2 else 1)
        return Symbol(name, dims)
    raise DeclarationError(f"{name} does not occur in the expression and has no value")


def _vec_jacobian(f: Expr, sym: Symbol, values: Mapping[str, Any], sizes: Mapping[Dim, int],
                  eps: float) -> np.ndarray:
    """d vec(f) / d vec(wrt)^T by central differences, entries of wrt perturbed one at a time."""
    env = {s.name: as_column(values[s.name], s) for s in symbols_of([f])}
    base = as_column(values[sym.name], sym)
    rows, cols = base.shape
    columns = []
    for k in range(rows * cols):
        i, j = k % rows, k // rows
        step = np.zeros_like(base)
        step[i, j] = eps
        plus = _Evaluator({**env, sym.name: base + step}, sizes).run(f)
        minus = _Evaluator({**env, sym.name: base - step}, sizes).run(f)
        columns.append(((plus - minus) / (2 * eps)).reshape(-1, order="F"))
    return np.stack(columns, axis=1)


def finite_difference(f: Expr, wrt: Symbol | str, values: Mapping[str, Any],
                      mode: str = "grad", eps: float | None = None) -> Value:
    """Central finite differences of ``f`` with respect to ``wrt`` at ``values``.

    Layouts follow LANGUAGE.md section 6: ``grad`` has the shape of ``wrt``; ``jacobian``
    is m x n with J_ij = dy_i/dx_j; ``hessian`` is n x n; ``derivative`` is
    d vec(f) / d vec(wrt)^T (column-major). A symmetric ``wrt`` has its entries
    perturbed independently. A ``wrt`` absent from ``f`` needs a value to fix its shape.
    """
    if mode not in MODES:
        raise UnsupportedError(f"unknown derivative mode {mode!r}; use one of {MODES}")
    sym = _find_symbol(f, wrt, values)
    sizes = sizes_from_values(f, values, extra=(sym,))
    if mode == "hessian":
        return _hessian(f, sym, values, sizes, eps if eps is not None else 1e-4)
    step = eps if eps is not None else 1e-6
    if mode in ("grad",) and f.shape != SCALAR:
        raise ShapeError("grad needs a scalar-valued function; use jacobian or derivative")
    d = _vec_jacobian(f, sym, values, sizes, step)
    if mode == "grad":
        return natural(d.reshape(sym_shape(sym, sizes), order="F"), sym.dims)
    return d


def sym_shape(sym: Symbol, sizes: Mapping[Dim, int]) -> tuple[int, int]:
    """The concrete shape of a variable."""
    return shape_value(sym.dims, sizes)


def _hessian(f: Expr, sym: Symbol, values: Mapping[str, Any], sizes: Mapping[Dim, int],
             eps: float) -> np.ndarray:
    if f.shape != SCALAR:
        raise ShapeError("hessian needs a scalar-valued function")
    env = {s.name: as_column(values[s.name], s) for s in symbols_of([f])}
    base = as_column(values[sym.name], sym).reshape(-1, 1, order="F")
    n = base.shape[0]
    shape = sym_shape(sym, sizes)

    def at(delta: np.ndarray) -> float:
        point = (base + delta).reshape(shape, order="F")
        return float(_Evaluator({**env, sym.name: point}, sizes).run(f)[0, 0])

    unit = np.eye(n)[:, :, None] * eps
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = unit[i], unit[j]
            value = (at(ei + ej) - at(ei - ej) - at(ej - ei) + at(-ei - ej)) / (4 * eps * eps)
            hess[i, j] = hess[j, i] = value
    return hess
