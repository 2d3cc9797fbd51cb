"""One interpreter of expressions over an array algebra: NumPy arrays or SymPy matrices.

The evaluator owns the meaning of every node (scalar factors scale, matrix factors
multiply in order, scalars broadcast in sums and entrywise operations, norms are sums of
entries, functions are their records' implementations); an ``Algebra`` supplies the few
operations that NumPy and SymPy spell differently. ``numeric.py`` evaluates with the
NumPy algebra, the checker (``verify/translate.py``) with the SymPy one.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Protocol

from .dims import Dim, dim_value
from .errors import DeclarationError, ShapeError, UnsupportedError
from .expr import (
    SCALAR,
    Add,
    Call,
    Commutation,
    Differential,
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
    Sylvester,
    Symbol,
    Transpose,
    Zero,
)
from .functions import FUNCTIONS, Function


class Algebra(Protocol):
    """The operations on 2-D arrays that differ between NumPy and SymPy (scalars are 1x1;
    both support ``+``, unary ``-``, ``@``, scalar ``*`` and ``/``, ``.T``, ``[i, j]``)."""

    how: str  # for messages: "numerically", "with SymPy"

    def constant(self, value: Fraction) -> Any: ...
    def eye(self, n: int) -> Any: ...
    def ones(self, rows: int, cols: int) -> Any: ...
    def zeros(self, rows: int, cols: int) -> Any: ...
    def permutation(self, rows: list[int]) -> Any: ...  # row i is unit row rows[i]
    def hadamard(self, a: Any, b: Any) -> Any: ...
    def elem_div(self, a: Any, b: Any) -> Any: ...
    def elem_pow(self, a: Any, exponent: Any) -> Any: ...
    def kron(self, a: Any, b: Any) -> Any: ...
    def matrix_power(self, a: Any, k: int) -> Any: ...
    def spectral_norm(self, a: Any) -> Any: ...
    def nuclear_norm(self, a: Any) -> Any: ...
    def sylvester(self, a: Any, b: Any, c: Any) -> Any: ...  # W with a W + W b = c
    def call(self, fn: Function, a: Any) -> Any: ...
    def finish(self, value: Any) -> Any: ...  # normalise a node's value (dtype)


class Evaluator:
    """Post-order interpreter; equal sub-trees are evaluated once."""

    def __init__(self, algebra: Algebra, env: Mapping[str, Any], sizes: Mapping[Dim, int]
                 ) -> None:
        self.algebra = algebra
        self.env = env
        self.sizes = sizes
        self.memo: dict[Expr, Any] = {}

    def run(self, e: Expr) -> Any:
        if e not in self.memo:
            method = getattr(self, "_" + type(e).__name__, None)
            if method is None:
                raise UnsupportedError(f"cannot evaluate {type(e).__name__} {self.algebra.how}")
            self.memo[e] = self.algebra.finish(method(e))
        return self.memo[e]

    # -- helpers ---------------------------------------------------------------
    def dim(self, d: Dim) -> int:
        return dim_value(d, self.sizes)

    def scalar(self, value: Any) -> Any:
        return self.algebra.ones(1, 1) * value

    def entrywise(self, items: tuple[Expr, ...]) -> list[Any]:
        """The values of the operands of a sum or entrywise operation, scalars broadcast."""
        values = [self.run(t) for t in items]
        like = next((v.shape for v in values if v.shape != (1, 1)), (1, 1))
        out = [self.algebra.ones(*like) * v[0, 0] if v.shape != like and v.shape == (1, 1)
               else v for v in values]
        if any(v.shape != like for v in out):
            raise ShapeError(f"entrywise operation on shapes {[v.shape for v in out]}")
        return out

    def function(self, name: str, value: Any) -> Any:
        return self.algebra.call(FUNCTIONS[name], value)

    # -- leaves ----------------------------------------------------------------
    def _Symbol(self, e: Symbol) -> Any:
        if e.name not in self.env:
            raise DeclarationError(f"no value for the variable {e.name}")
        return self.env[e.name]

    def _Number(self, e: Number) -> Any:
        return self.algebra.constant(e.value)

    def _Identity(self, e: Identity) -> Any:
        return self.algebra.eye(self.dim(e.n))

    def _Ones(self, e: Ones) -> Any:
        return self.algebra.ones(self.dim(e.n), 1)

    def _Zero(self, e: Zero) -> Any:
        return self.algebra.zeros(self.dim(e.dims[0]), self.dim(e.dims[1]))

    def _Commutation(self, e: Commutation) -> Any:
        from .commutation import permutation

        return self.algebra.permutation(list(permutation(self.dim(e.m), self.dim(e.n))))

    def _Differential(self, e: Differential) -> Any:
        raise UnsupportedError(f"cannot evaluate the differential d{e.var.name} {self.algebra.how}")

    # -- operators -------------------------------------------------------------
    def _Add(self, e: Add) -> Any:
        values = self.entrywise(e.terms)
        out = values[0]
        for v in values[1:]:
            out = out + v
        return out

    def _Neg(self, e: Neg) -> Any:
        return -self.run(e.arg)

    def _Mul(self, e: Mul) -> Any:
        scale: Any = 1
        product = None
        for f in e.factors:
            value = self.run(f)
            if f.shape == SCALAR:
                scale = scale * value[0, 0]
            elif product is None:
                product = value
            elif product.shape == (1, 1) and value.shape[0] != 1:  # x^T x a: (x^T x) a
                scale, product = scale * product[0, 0], value
            elif product.shape[1] != value.shape[0]:
                raise ShapeError(f"cannot multiply {product.shape} by {value.shape}")
            else:
                product = product @ value
        return self.scalar(scale) if product is None else product * scale

    def _Div(self, e: Div) -> Any:
        return self.run(e.num) / self.run(e.den)[0, 0]

    def _Hadamard(self, e: Hadamard) -> Any:
        values = self.entrywise(e.factors)
        out = values[0]
        for v in values[1:]:
            out = self.algebra.hadamard(out, v)
        return out

    def _ElemDiv(self, e: ElemDiv) -> Any:
        return self.algebra.elem_div(*self.entrywise((e.num, e.den)))

    def _Kron(self, e: Kron) -> Any:
        return self.algebra.kron(self.run(e.left), self.run(e.right))

    def _Transpose(self, e: Transpose) -> Any:
        return self.run(e.arg).T

    def _Pow(self, e: Pow) -> Any:
        base, exponent = self.run(e.base), self.run(e.exponent)[0, 0]
        if e.base.shape == SCALAR:
            return self.algebra.elem_pow(base, exponent)
        if exponent != int(exponent):
            raise UnsupportedError("a matrix power needs an integer exponent")
        return self.algebra.matrix_power(base, int(exponent))

    def _ElemPow(self, e: ElemPow) -> Any:
        return self.algebra.elem_pow(self.run(e.base), self.run(e.exponent)[0, 0])

    def _Norm(self, e: Norm) -> Any:
        x = self.run(e.arg)
        if e.arg.kind == "matrix" and e.p == "2":
            return self.algebra.spectral_norm(x)
        if e.arg.kind == "matrix" and e.p == "*":
            return self.algebra.nuclear_norm(x)
        if e.p == "inf":  # the largest absolute entry
            return self.function("max", self.function("abs", x))
        if e.arg.kind == "matrix" and e.p != "F":
            raise UnsupportedError(f"the matrix norm ||.||_{e.p} cannot be evaluated")
        if e.p == "1":
            return self.function("sum", self.function("abs", x))
        return self.function("sqrt", self.function("sum", self.algebra.hadamard(x, x)))

    def _Sylvester(self, e: Sylvester) -> Any:
        return self.algebra.sylvester(self.run(e.a), self.run(e.b), self.run(e.c))

    def _Call(self, e: Call) -> Any:
        return self.function(e.name, self.run(e.args[0]))
