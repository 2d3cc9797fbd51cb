"""SymPy translation: variables as explicit SymPy matrices, expressions evaluated on them.

The shared evaluator (``matcalc/evaluator.py``) runs on the SymPy algebra below; the
entries are symbols (``A[0,1]``) for a proof, or numbers for a sample point.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import sympy

from ..dims import Dim
from ..errors import UnsupportedError
from ..evaluator import Evaluator
from ..expr import SCALAR, Expr, Symbol
from ..functions import Function
from ..functions.matrix import sympy_det, vec_entries
from ..numeric import shape_value


def _inverse(m: sympy.Matrix) -> sympy.Matrix:
    """Inverse by adjugate and Berkowitz determinants (fast on small symbolic matrices)."""
    if not m.free_symbols:
        return m.inv()
    n = m.rows
    adj = sympy.Matrix(n, n, lambda i, j: (-1) ** (i + j)
                       * sympy_det(sympy, m.minor_submatrix(j, i)))
    return adj / sympy_det(sympy, m)


class SympyAlgebra:
    """The SymPy side of the shared evaluator (``evaluator.Algebra``): ``sympy.Matrix``."""

    how = "with SymPy"

    def constant(self, value: Fraction) -> sympy.Matrix:
        return sympy.Matrix([[sympy.Rational(value.numerator, value.denominator)]])

    def eye(self, n: int) -> sympy.Matrix:
        return sympy.eye(n)

    def ones(self, rows: int, cols: int) -> sympy.Matrix:
        return sympy.ones(rows, cols)

    def zeros(self, rows: int, cols: int) -> sympy.Matrix:
        return sympy.zeros(rows, cols)

    def permutation(self, rows: list[int]) -> sympy.Matrix:
        return sympy.Matrix(len(rows), len(rows), lambda i, j: 1 if j == rows[i] else 0)

    def hadamard(self, a: sympy.Matrix, b: sympy.Matrix) -> sympy.Matrix:
        return a.multiply_elementwise(b)

    def elem_div(self, a: sympy.Matrix, b: sympy.Matrix) -> sympy.Matrix:
        return sympy.Matrix(a.rows, a.cols, lambda i, j: a[i, j] / b[i, j])

    def elem_pow(self, a: sympy.Matrix, exponent: Any) -> sympy.Matrix:
        return a.applyfunc(lambda v: v**exponent)

    def kron(self, a: sympy.Matrix, b: sympy.Matrix) -> sympy.Matrix:
        return sympy.Matrix(a.rows * b.rows, a.cols * b.cols,
                            lambda i, j: a[i // b.rows, j // b.cols] * b[i % b.rows, j % b.cols])

    def matrix_power(self, a: sympy.Matrix, k: int) -> sympy.Matrix:
        if k < 0:
            a, k = _inverse(a), -k
        out = sympy.eye(a.rows)
        for _ in range(k):
            out = out * a
        return out

    def spectral_norm(self, a: sympy.Matrix) -> sympy.Matrix:
        raise UnsupportedError("the spectral norm has no SymPy form here")

    def nuclear_norm(self, a: sympy.Matrix) -> sympy.Matrix:
        raise UnsupportedError("the nuclear norm has no SymPy form here")

    def sylvester(self, a: sympy.Matrix, b: sympy.Matrix, c: sympy.Matrix) -> sympy.Matrix:
        """The W with ``a W + W b = c`` from the Kronecker-sum system
        ``(I ⊗ a + b^T ⊗ I) vec(W) = vec(c)``, on numbers only (a symbolic solve grows too
        fast: a proof falls back to the checked points)."""
        if a.free_symbols or b.free_symbols or c.free_symbols:
            raise UnsupportedError("sylvester(A, B, C) of symbolic entries is checked at points")
        m, n = c.shape
        system = self.kron(sympy.eye(n), a) + self.kron(b.T, sympy.eye(m))
        flat = system.LUsolve(sympy.Matrix(vec_entries(c)))
        return sympy.Matrix(m, n, lambda i, j: flat[i + j * m])

    def call(self, fn: Function, a: sympy.Matrix) -> sympy.Matrix:
        if fn.sympy is None:
            raise UnsupportedError(f"{fn.name} has no SymPy form; it is checked numerically")
        return fn.sympy_matrix(sympy, a)

    def finish(self, value: Any) -> sympy.Matrix:
        return value


SYMPY = SympyAlgebra()


def to_sympy(expr: Expr, env: Mapping[str, sympy.Matrix], sizes: Mapping[Dim, int]
             ) -> sympy.Matrix:
    """Evaluate an expression on explicit SymPy matrices (scalars are 1x1 matrices)."""
    return Evaluator(SYMPY, env, sizes).run(expr)


# ---------------------------------------------------------------------------- variables


def _entry_name(sym: Symbol, i: int, j: int) -> str:
    rows, cols = sym.dims
    if cols == 1:
        return f"{sym.name}[{i}]"
    if rows == 1:
        return f"{sym.name}[{j}]"
    return f"{sym.name}[{i},{j}]"


def symbolic_matrix(sym: Symbol, sizes: Mapping[Dim, int], independent: bool = False
                    ) -> sympy.Matrix:
    """One variable as a matrix of fresh real symbols (shared across the diagonal when
    symmetric, zero off the diagonal when diagonal, unless ``independent``)."""
    if sym.dims == SCALAR:
        return sympy.Matrix([[sympy.Symbol(sym.name, real=True)]])
    rows, cols = shape_value(sym.dims, sizes)
    shared = "symmetric" in sym.props and not independent
    diagonal = "diagonal" in sym.props and not independent

    def entry(i: int, j: int) -> sympy.Expr:
        if diagonal and i != j:
            return sympy.Integer(0)
        if shared and i > j:
            i, j = j, i
        return sympy.Symbol(_entry_name(sym, i, j), real=True)

    return sympy.Matrix(rows, cols, entry)


def instantiate(symbols: Iterable[Symbol], sizes: Mapping[Dim, int]) -> dict[str, sympy.Matrix]:
    """Each variable as an explicit SymPy matrix of fresh symbols (``A[0,1]``, ``x[2]``).

    Symmetric matrices share their symbols across the diagonal; scalars are 1x1. A
    probability vector gets plain symbols: ``constraints`` gives the substitution of its
    last entry by one minus the sum of the others, to apply after differentiating.
    """
    return {s.name: symbolic_matrix(s, sizes) for s in symbols}


def constraints(symbols: Iterable[Symbol], sizes: Mapping[Dim, int]) -> dict[Any, Any]:
    """Substitutions imposing declared structure on independent entries: ``A[1,0] -> A[0,1]``
    for symmetric matrices, ``D[1,0] -> 0`` for diagonal ones, ``y[n-1] -> 1 - y[0] - ...
    - y[n-2]`` for probability vectors."""
    out: dict[Any, Any] = {}
    for sym in symbols:
        free = symbolic_matrix(sym, sizes, independent=True)
        if "symmetric" in sym.props:
            for i in range(free.rows):
                for j in range(i):
                    out[free[i, j]] = free[j, i]
        if "diagonal" in sym.props:
            for i in range(free.rows):
                for j in range(free.cols):
                    if i != j:
                        out[free[i, j]] = 0
        if "probability" in sym.props:
            entries = list(free)
            out[entries[-1]] = 1 - sum(entries[:-1])
    return out


def rational_point(symbols: Iterable[Symbol], sizes: Mapping[Dim, int], rng: random.Random,
                   positive: bool = False) -> dict[str, sympy.Matrix]:
    """Random exact values respecting the declarations (``numeric.structured_value``):
    entries k/8 with k in 2..10, of both signs unless ``positive``."""
    from ..numeric import structured_value

    out = {}
    for sym in symbols:
        rows, cols = shape_value(sym.dims, sizes)
        magnitude = sympy.Matrix(rows, cols, lambda i, j: sympy.Rational(rng.randint(2, 10), 8))
        signs = sympy.Matrix(rows, cols, lambda i, j: 1 if positive or rng.random() < 0.5
                             else -1)
        out[sym.name] = structured_value(sym, magnitude, signs, SYMPY)
    return out


def derivative_matrix(value: sympy.Matrix, wrt: sympy.Matrix, mode: str) -> sympy.Matrix:
    """Entrywise sympy.diff of ``value`` by the entries of ``wrt``, laid out per ``mode``."""
    xs = vec_entries(wrt)
    if mode == "hessian":
        grad = [sympy.diff(value[0, 0], x) for x in xs]
        return sympy.Matrix(len(xs), len(xs), lambda i, j: sympy.diff(grad[i], xs[j]))
    ys = vec_entries(value)
    return layout(sympy.Matrix(len(ys), len(xs), lambda i, j: sympy.diff(ys[i], xs[j])),
                  wrt.shape, mode)


def layout(d: sympy.Matrix, wrt_shape: tuple[int, int], mode: str) -> sympy.Matrix:
    """A derivative d vec(f) / d vec(wrt)^T in the layout of ``mode`` (a gradient has the
    shape of ``wrt``; the other layouts are that matrix itself)."""
    if mode == "grad":
        rows, cols = wrt_shape
        return sympy.Matrix(rows, cols, lambda i, j: d[0, i + j * rows])
    return d
