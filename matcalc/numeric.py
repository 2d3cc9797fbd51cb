"""NumPy evaluation of expressions, random well-conditioned points and finite differences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from .dims import dim_value
from .errors import DeclarationError, ShapeError, UnsupportedError
from .evaluator import Algebra, Evaluator
from .expr import (
    SCALAR,
    Dim,
    Expr,
    Shape,
    Symbol,
)
from .functions import Function

Value = np.ndarray | float
Sizes = dict[Dim, int]

MODES = ("grad", "jacobian", "hessian", "derivative")
"""Derivative layouts understood by ``finite_difference`` (and ``verify.check_derivative``)."""

# ---------------------------------------------------------------------------- dimensions


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
    return natural(run(expr, env, sizes), expr.shape)


def solve_sylvester(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The W with ``a W + W b = c``, NumPy only: for symmetric ``a`` and ``b`` by their
    eigendecompositions, ``W = U ((U^T c V) ./ (alpha_i + beta_j)) V^T``; otherwise from
    the Kronecker-sum system ``(I ⊗ a + b^T ⊗ I) vec(W) = vec(c)`` (small sizes)."""
    if np.allclose(a, a.T) and np.allclose(b, b.T):
        alpha, u = np.linalg.eigh((a + a.T) / 2)
        beta, v = np.linalg.eigh((b + b.T) / 2)
        return u @ ((u.T @ c @ v) / (alpha[:, None] + beta[None, :])) @ v.T
    m, n = c.shape
    system = np.kron(np.eye(n), a) + np.kron(b.T, np.eye(m))
    return np.linalg.solve(system, c.reshape(-1, order="F")).reshape((m, n), order="F")


class NumpyAlgebra:
    """The NumPy side of the shared evaluator (``evaluator.Algebra``): float 2-D arrays."""

    how = "numerically"

    def constant(self, value: Fraction) -> np.ndarray:
        return np.full((1, 1), float(value))

    def eye(self, n: int) -> np.ndarray:
        return np.eye(n)

    def ones(self, rows: int, cols: int) -> np.ndarray:
        return np.ones((rows, cols))

    def zeros(self, rows: int, cols: int) -> np.ndarray:
        return np.zeros((rows, cols))

    def permutation(self, rows: list[int]) -> np.ndarray:
        return np.eye(len(rows))[rows]

    def hadamard(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b

    def elem_div(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a / b

    def elem_pow(self, a: np.ndarray, exponent: float) -> np.ndarray:
        return np.power(a, exponent)

    def kron(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.kron(a, b)

    def matrix_power(self, a: np.ndarray, k: int) -> np.ndarray:
        return np.linalg.matrix_power(a, k)

    def spectral_norm(self, a: np.ndarray) -> np.ndarray:
        return np.full((1, 1), np.linalg.norm(a, 2))

    def nuclear_norm(self, a: np.ndarray) -> np.ndarray:
        return np.full((1, 1), np.linalg.svd(a, compute_uv=False).sum())

    def sylvester(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        return solve_sylvester(a, b, c)

    def call(self, fn: Function, a: np.ndarray) -> np.ndarray:
        return fn.numpy(np, a)

    def finish(self, value: Any) -> np.ndarray:
        return np.asarray(value, dtype=float)


NUMPY = NumpyAlgebra()


def run(expr: Expr, env: Mapping[str, np.ndarray], sizes: Mapping[Dim, int]) -> np.ndarray:
    """The value of ``expr`` as a 2-D array, variables given as 2-D arrays (``as_column``)."""
    with np.errstate(all="ignore"):
        return Evaluator(NUMPY, env, sizes).run(expr)


# ---------------------------------------------------------------------------- random points


def structured_value(sym: Symbol, magnitude: Any, signs: Any, algebra: Algebra) -> Any:
    """A variable's value with its declared structure, from entry magnitudes in [0.25, 1.25]
    and signs (2-D arrays of ``algebra``: NumPy here, SymPy for the checker's exact points).

    Probability vectors are the magnitudes normalised to sum to one; symmetric matrices are
    symmetrised, diagonal ones keep their diagonal; square matrices get ``1.5 n I`` added,
    which makes them diagonally dominant (invertible, positive determinant; positive
    definite when symmetric).
    """
    rows, cols = magnitude.shape
    value = algebra.hadamard(magnitude, signs)
    if "probability" in sym.props:
        value = magnitude / (algebra.ones(1, rows) @ magnitude @ algebra.ones(cols, 1))[0, 0]
    if "symmetric" in sym.props:
        value = (value + value.T) / 2
    if "diagonal" in sym.props:
        value = algebra.hadamard(value, algebra.eye(rows))
    if rows == cols and rows > 1:
        value = value + algebra.eye(rows) * algebra.constant(Fraction(3 * rows, 2))[0, 0]
    return value


def random_value(sym: Symbol, sizes: Mapping[Dim, int], rng: np.random.Generator,
                 positive: bool = False) -> Value:
    """One well-conditioned random value for a variable, in the user's format: entries of
    magnitude in [0.25, 1.25] (positive with ``positive=True``, so that log and sqrt of
    entries are defined), with the declared structure (``structured_value``)."""
    rows, cols = shape_value(sym.dims, sizes)
    magnitude = rng.uniform(0.25, 1.25, size=(rows, cols))
    signs = np.ones((rows, cols)) if positive else rng.choice([-1.0, 1.0], size=(rows, cols))
    return natural(structured_value(sym, magnitude, signs, NUMPY), sym.dims)


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
        plus = run(f, {**env, sym.name: base + step}, sizes)
        minus = run(f, {**env, sym.name: base - step}, sizes)
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
        return float(run(f, {**env, sym.name: point}, sizes)[0, 0])

    unit = np.eye(n)[:, :, None] * eps
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = unit[i], unit[j]
            value = (at(ei + ej) - at(ei - ej) - at(ej - ei) + at(-ei - ej)) / (4 * eps * eps)
            hess[i, j] = hess[j, i] = value
    return hess
