"""SymPy interop: matcalc expressions as SymPy matrix expressions built on ``MatrixSymbol``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy
from sympy.matrices.expressions import (
    HadamardPower,
    HadamardProduct,
    Identity,
    Inverse,
    KroneckerProduct,
    MatPow,
    MatrixExpr,
    MatrixSymbol,
    OneMatrix,
    Trace,
    ZeroMatrix,
)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from . import expr as mc
from .dims import dim_factors
from .errors import UnsupportedError
from .expr import SCALAR, Dim, Expr
from .functions import FUNCTIONS, RECORDS

_z = sympy.Dummy("z", real=True)


class _Converter:
    """One conversion: shares dimension symbols and matrix symbols between sub-expressions."""

    def __init__(self, sizes: Mapping[str, int] | None = None) -> None:
        self.dims: dict[str, Any] = {k: sympy.Integer(v) for k, v in (sizes or {}).items()}

    # -- helpers -----------------------------------------------------------------
    def dim(self, d: Dim) -> Any:
        if isinstance(d, int):
            return sympy.Integer(d)
        out: Any = sympy.Integer(1)
        for part in dim_factors(d):
            if isinstance(part, int):
                out *= part
            else:
                out *= self.dims.setdefault(part, sympy.Symbol(part, integer=True, positive=True))
        return out

    def shape(self, e: Expr) -> tuple[Any, Any]:
        return self.dim(e.shape[0]), self.dim(e.shape[1])

    @staticmethod
    def scalar(value: Any) -> Any:
        """A 1×1 matrix expression as the scalar it stands for (its trace, which stays readable)."""
        return Trace(value) if isinstance(value, MatrixExpr) else value

    def ones(self, rows: Any, cols: Any) -> Any:
        return OneMatrix(rows, cols)

    def broadcast(self, value: Any, e: Expr, like: Expr) -> Any:
        """A scalar added to (or multiplied entrywise with) an array becomes that array's shape."""
        if e.shape == SCALAR and like.shape != SCALAR:
            return self.scalar(value) * self.ones(*self.shape(like))
        return value

    # -- nodes -------------------------------------------------------------------
    def convert(self, e: Expr) -> Any:
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            raise UnsupportedError(f"no SymPy form for {type(e).__name__} nodes (`{e}`)")
        return method(e)

    def _Symbol(self, e: mc.Symbol) -> Any:
        if e.shape == SCALAR:
            return sympy.Symbol(e.name, real=True)
        return MatrixSymbol(e.name, *self.shape(e))

    def _Number(self, e: mc.Number) -> Any:
        return sympy.Rational(e.value.numerator, e.value.denominator)

    def _Identity(self, e: mc.Identity) -> Any:
        return Identity(self.dim(e.n))

    def _Commutation(self, e: mc.Commutation) -> Any:
        from .commutation import permutation

        m, n = self.dim(e.m), self.dim(e.n)
        if not (m.is_Integer and n.is_Integer):
            raise UnsupportedError("SymPy has no symbolic commutation matrix; give sizes")
        m, n = int(m), int(n)
        rows = permutation(m, n)
        return sympy.ImmutableMatrix(m * n, m * n, lambda i, j: 1 if j == rows[i] else 0)

    def _Ones(self, e: mc.Ones) -> Any:
        return OneMatrix(self.dim(e.n), 1)

    def _Zero(self, e: mc.Zero) -> Any:
        return sympy.Integer(0) if e.shape == SCALAR else ZeroMatrix(*self.shape(e))

    def _Differential(self, e: mc.Differential) -> Any:
        name = "d" + e.var.name
        if e.shape == SCALAR:
            return sympy.Symbol(name, real=True)
        return MatrixSymbol(name, *self.shape(e))

    def _Add(self, e: mc.Add) -> Any:
        terms = [self.convert(t) for t in e.terms]
        if e.shape == SCALAR:
            return sympy.Add(*(self.scalar(t) for t in terms))
        return sympy.MatAdd(*(self.broadcast(v, t, e) for v, t in zip(terms, e.terms, strict=True)))

    def _Neg(self, e: mc.Neg) -> Any:
        return -self.convert(e.arg)

    def _Mul(self, e: mc.Mul) -> Any:
        coefficient: Any = sympy.Integer(1)
        chain: list[Any] = []
        for factor in e.factors:
            value = self.convert(factor)
            if factor.shape == SCALAR:
                coefficient *= self.scalar(value)
            else:
                chain.append(value)
        if not chain:
            return coefficient
        product = chain[0] if len(chain) == 1 else sympy.MatMul(*chain)
        if e.shape == SCALAR:
            return coefficient * self.scalar(product)
        return product if coefficient == 1 else coefficient * product

    def _Div(self, e: mc.Div) -> Any:
        return self.convert(e.num) / self.scalar(self.convert(e.den))

    def _Hadamard(self, e: mc.Hadamard) -> Any:
        values = [self.broadcast(self.convert(f), f, e) for f in e.factors]
        if e.shape == SCALAR:
            return sympy.Mul(*(self.scalar(v) for v in values))
        return HadamardProduct(*values)

    def _ElemDiv(self, e: mc.ElemDiv) -> Any:
        num = self.broadcast(self.convert(e.num), e.num, e)
        den = self.broadcast(self.convert(e.den), e.den, e)
        if e.shape == SCALAR:
            return self.scalar(num) / self.scalar(den)
        return HadamardProduct(num, HadamardPower(den, -1))

    def _Kron(self, e: mc.Kron) -> Any:
        return KroneckerProduct(self.convert(e.left), self.convert(e.right))

    def _Transpose(self, e: mc.Transpose) -> Any:
        value = self.convert(e.arg)
        return value.T if isinstance(value, MatrixExpr) else value

    def _Pow(self, e: mc.Pow) -> Any:
        base = self.convert(e.base)
        exponent = self.scalar(self.convert(e.exponent))
        if e.base.shape == SCALAR:
            return self.scalar(base) ** exponent
        if exponent == -1:
            return Inverse(base)
        return MatPow(base, exponent)

    def _ElemPow(self, e: mc.ElemPow) -> Any:
        base = self.convert(e.base)
        exponent = self.scalar(self.convert(e.exponent))
        if e.base.shape == SCALAR:
            return self.scalar(base) ** exponent
        return HadamardPower(base, exponent)

    def _Norm(self, e: mc.Norm) -> Any:
        arg = self.convert(e.arg)
        if e.arg.shape == SCALAR:
            return sympy.Abs(self.scalar(arg))
        if e.p == "F" or (e.p in (None, "2") and e.arg.shape[1] == 1):
            return sympy.sqrt(Trace(arg.T * arg))
        if e.p == "1" and e.arg.shape[1] == 1:
            return self.scalar(OneMatrix(1, arg.shape[0]) * arg.applyfunc(sympy.Abs))
        raise UnsupportedError(f"no SymPy matrix-expression form for `{e}`",
                               hint="spectral norms have no MatrixSymbol closed form")

    def _Call(self, e: mc.Call) -> Any:
        fn = FUNCTIONS[e.name]
        arg = self.convert(e.args[0])
        if fn.elementwise:
            body = fn.sympy(sympy, _z)
            scalar = body.func if body.args == (_z,) else sympy.Lambda(_z, body)
            if e.args[0].shape == SCALAR:
                return scalar(self.scalar(arg))
            return ElementwiseApplyFunction(scalar, arg)
        if fn.sympy_expr is None:
            supported = ", ".join(f.name for f in RECORDS if f.sympy_expr is not None)
            raise UnsupportedError(f"no SymPy matrix-expression form for `{e.name}`",
                                   hint=f"supported: elementwise functions, {supported}")
        return fn.sympy_expr(sympy, arg)


def to_sympy_matrix_expr(
    expr: Expr | str, sizes: Mapping[str, int] | None = None, **decls: str
) -> Any:
    """A SymPy expression for ``expr``: ``MatrixSymbol`` for arrays, ``Symbol`` for scalars.

    Dimensions become positive integer symbols (``n``, ``m``); a scalar-valued matrix product
    such as ``x^T A x`` becomes the trace of the 1×1 product, ``Trace(x.T*A*x)``. ``sizes``
    (``{"n": 3}``) fixes dimensions to numbers, so values can be substituted and ``.doit()``.
    """
    if isinstance(expr, str):
        from .parse import parse

        expr = parse(expr, **decls)
    return _Converter(sizes).convert(expr)


__all__ = ["to_sympy_matrix_expr"]
