"""LaTeX printer: amsmath-compatible, renders in KaTeX, and parses back with matcalc."""

from __future__ import annotations

import re

from ..dims import Dim, dim_factors
from ..expr import Call, Div, ElemPow, Expr, Mul, Norm, Number, Pow, Symbol, Transpose
from ..functions import FUNCTIONS, RECORDS, canonical_function
from ..names import ACCENTS, is_greek, normalize, split_subscript
from .text import (
    ATOM,
    NEG,
    PROD,
    TextPrinter,
    inverse_transposed,
    precedence,
    split_fraction,
)

_TALL = re.compile(r"\\(frac|left|sqrt|sum)")
_BARE_TAIL = re.compile(
    "(" + "|".join(re.escape(f.latex) for f in RECORDS if f.latex_bare) + r") [^ ]+$")
_TRAILING_COMMAND = re.compile(r"(\\[A-Za-z]+|\\(operatorname|mathrm|text)\{[A-Za-z_]+\})$")


class LatexPrinter(TextPrinter):
    """Prints expressions as LaTeX math (without the surrounding ``$``)."""

    hadamard = r" \odot "
    elemdiv = r" \oslash "
    kron = r" \otimes "
    inverse_transpose = r"^{-\top}"

    def paren(self, text: str) -> str:
        return rf"\left({text}\right)"

    def precedence(self, e: Expr) -> int:
        """A scalar fraction is typeset as ``\\frac``, which needs no parentheses."""
        if e.is_scalar and (isinstance(e, Div) or (
                isinstance(e, Mul) and split_fraction(e.factors)[1]
                and precedence(e) != NEG)):
            return ATOM
        return precedence(e)

    def juxtapose(self, left_text: str, right_text: str) -> str:
        """``\\cdot`` where a space would read as a call (``\\sigma \\cdot \\left(x\\right)``)."""
        if right_text.startswith(("(", r"\left(")):
            if _BARE_TAIL.search(left_text):  # `\det X \cdot (A + B)`: X( would be a call
                return r" \cdot "
            m = _TRAILING_COMMAND.search(left_text)
            if m and canonical_function(normalize(m.group(1))):
                return r" \cdot "
        return " "

    def factor(self, f: Expr, ok: bool, last: bool) -> str:
        """``\\det(X) X^{-\\top}``: a bare ``\\det X`` before another factor would read as
        ``\\det(X X^{-\\top})``, so only the last factor of a product may be bare."""
        if isinstance(f, Call) and not last:
            return self._call(f, bare=False)
        return super().factor(f, ok, last)

    def _Symbol(self, e: Symbol) -> str:
        base, sub = split_subscript(e.name)
        if sub in ACCENTS and len(base) == 1:
            return rf"\{sub}{{{base}}}"
        if is_greek(base):
            base = "\\" + base
        elif len(base) > 1 and base[1:].isdigit() and not sub:
            return rf"{base[0]}_{{{base[1:]}}}"  # W2 is typeset W_2 (and parses back as W2)
        elif len(base) > 1 and not base[1:].isdigit():
            base = rf"\mathrm{{{base}}}"
        return f"{base}_{{{sub}}}" if sub else base

    def _Number(self, e: Number) -> str:
        v = e.value
        if v.denominator == 1:
            return str(v.numerator)
        sign = "-" if v < 0 else ""
        return rf"{sign}\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"

    def _Ones(self, e) -> str:
        return r"\mathbf{1}"

    def _Commutation(self, e) -> str:
        return f"K_{{{_dim_latex(e.m)},{_dim_latex(e.n)}}}"

    def numerator(self, factors: tuple[Expr, ...]) -> str:
        """The factors above ``\\frac``'s bar, which need no parentheses of their own."""
        return self.print(factors[0]) if len(factors) == 1 else super().numerator(factors)

    def divide(self, top: str, numerator, denominator) -> str:
        if len(denominator) == 1:
            return rf"\frac{{{top}}}{{{self.print(denominator[0])}}}"
        return rf"\frac{{{top}}}{{{self._factors(denominator)}}}"

    def _Div(self, e) -> str:
        return rf"\frac{{{self.print(e.num)}}}{{{self.print(e.den)}}}"

    def _Transpose(self, e: Transpose) -> str:
        if isinstance(e.arg, Number) and e.arg.value == 1:
            return self.print(e.arg)  # the scalar 1 (as a cotangent); `1^T` is the ones row
        base = inverse_transposed(e)
        if base is not None:
            return self._sup(base) + self.inverse_transpose
        return self._sup(e.arg) + r"^{\top}"

    def _sup(self, base: Expr) -> str:
        if isinstance(base, Call):
            return self._call(base, bare=False)  # `\det(X)^{2}`, never `\det X^{2}`
        return self.wrap(base, precedence(base) == ATOM and not isinstance(base, Number))

    def _exponent(self, x: Expr) -> str:
        return self.print(x)

    def _Pow(self, e: Pow) -> str:
        if e.is_scalar and isinstance(e.exponent, Number) and e.exponent.value < 0:
            return self._fraction((e,))
        return self._sup(e.base) + "^{" + self._exponent(e.exponent) + "}"

    def _ElemPow(self, e: ElemPow) -> str:
        return self._sup(e.base) + r"^{\circ " + self._exponent(e.exponent) + "}"

    def _Norm(self, e: Norm) -> str:
        p = {"inf": r"\infty"}.get(e.p or "", e.p)
        sub = f"_{{{p}}}" if p else ""
        return rf"\left\|{self.print(e.arg)}\right\|{sub}"

    def _Call(self, e: Call) -> str:
        return self._call(e, bare=True)

    def _call(self, e: Call, bare: bool) -> str:
        """``\\det X`` for a name (when ``bare``), ``\\operatorname{tr}(A X)``, and
        ``\\left( \\right)`` only around tall arguments."""
        fn = FUNCTIONS[e.name]
        args = ", ".join(self.print(a) for a in e.args)
        if fn.latex_around is not None:
            return fn.latex_around[0] + args + fn.latex_around[1]
        name = fn.latex
        if bare and fn.latex_bare and isinstance(e.args[0], Symbol):
            return f"{name} {args}"
        if _TALL.search(args):
            return rf"{name}\left({args}\right)"
        return f"{name}({args})"

    def _Sylvester(self, e) -> str:
        args = ", ".join(self.print(a) for a in e.children)
        if _TALL.search(args):
            return rf"\operatorname{{sylvester}}\left({args}\right)"
        return rf"\operatorname{{sylvester}}({args})"

    def _Differential(self, e) -> str:
        return r"\mathrm{d}" + self.wrap(e.var, isinstance(e.var, Symbol))


_DEFAULT = LatexPrinter()


def to_latex(e: Expr) -> str:
    """The expression as LaTeX math."""
    return _DEFAULT.print_deep(e)


__all__ = ["to_latex", "LatexPrinter", "PROD"]


def _dim_latex(d: Dim) -> str:
    return " ".join(str(f) for f in dim_factors(d))
