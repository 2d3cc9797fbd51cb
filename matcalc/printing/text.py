"""Text printer: the matcalc notation, which parses back to the same expression."""

from __future__ import annotations

import copy
import re
from fractions import Fraction

from ..expr import (
    Add,
    Call,
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
    Symbol,
    Transpose,
    Zero,
    postorder_by,
)
from ..functions import canonical_function

SUM, NEG, PROD, POSTFIX, ATOM = 10, 15, 20, 30, 100

_TRAILING_NAME = re.compile(r"(?<![A-Za-z0-9_\\])([A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?)$")


def precedence(e: Expr) -> int:
    """Binding strength of the printed form (numbers: negative ones bind like a sign)."""
    if isinstance(e, Number):
        if e.value < 0:
            return NEG
        return ATOM if e.value.denominator == 1 else PROD
    if isinstance(e, (Add,)):
        return SUM
    if isinstance(e, Neg):
        return NEG
    if isinstance(e, Mul) and e.factors and _negative_coefficient(e):
        return NEG
    if isinstance(e, (Mul, Div, Hadamard, ElemDiv, Kron)):
        return PROD
    if isinstance(e, (Transpose, Pow, ElemPow)):
        return POSTFIX
    return ATOM


def _negative_coefficient(e: Mul) -> bool:
    first = e.factors[0]
    return isinstance(first, Number) and first.value < 0


_OPERATOR_PRODUCTS = (Hadamard, ElemDiv, Kron, Div)
"""Products written with an operator symbol (parenthesised when they lead a product)."""


def inverse_transposed(e: Expr) -> Expr | None:
    """The matrix ``X`` when ``e`` is ``(X^-1)^T``, printed ``X^-T``; None otherwise."""
    if isinstance(e, Transpose) and isinstance(e.arg, Pow) and isinstance(
            e.arg.exponent, Number) and e.arg.exponent.value == -1 and not e.is_scalar:
        return e.arg.base
    return None


def split_sign(e: Expr) -> tuple[bool, Expr]:
    """(is negative, the positive part): ``Neg(a)`` and ``-2 a`` print as ``- ...`` in sums."""
    if isinstance(e, Neg):
        return True, e.arg
    if isinstance(e, Number) and e.value < 0:
        return True, Number(-e.value)
    if isinstance(e, Mul) and _negative_coefficient(e):
        coeff = -e.factors[0].value  # type: ignore[attr-defined]
        rest = e.factors[1:]
        if coeff != 1:
            rest = (Number(coeff), *rest)
        return True, rest[0] if len(rest) == 1 else Mul(tuple(rest))
    return False, e


def split_fraction(factors: tuple[Expr, ...]) -> tuple[tuple[Expr, ...], tuple[Expr, ...]]:
    """Factors above and below the fraction bar (scalar factors with negative exponents)."""
    top: list[Expr] = []
    bottom: list[Expr] = []
    for f in factors:
        if (
            isinstance(f, Pow)
            and f.is_scalar
            and isinstance(f.exponent, Number)
            and f.exponent.value < 0
        ):
            k = -f.exponent.value
            bottom.append(f.base if k == 1 else Pow(f.base, Number(k)))
        else:
            top.append(f)
    return tuple(top), tuple(bottom)


class TextPrinter:
    """Prints expressions in the matcalc text notation."""

    hadamard = " ⊙ "
    elemdiv = " ./ "
    kron = " ⊗ "
    minus = " - "
    plus = " + "
    inverse_transpose = "^-T"

    def __init__(self, ascii: bool = False) -> None:
        if ascii:
            self.hadamard, self.kron = " .* ", " ⊗ "
        self.memo: dict[Expr, str] | None = None  # the text of each node, for deep ones

    def print(self, e: Expr) -> str:
        if self.memo is not None:
            hit = self.memo.get(e)
            if hit is None:
                hit = self.memo[e] = getattr(self, "_" + type(e).__name__)(e)
            return hit
        method = getattr(self, "_" + type(e).__name__)
        return method(e)

    def print_deep(self, e: Expr) -> str:
        """``print(e)`` for an expression of any depth: when the recursion would be too deep,
        the nodes are printed children first with each text memoised, so that no call goes
        deeper than one level (the recursion limit is never raised)."""
        try:
            return self.print(e)
        except RecursionError:
            pass
        deep = copy.copy(self)
        deep.memo = {}
        for node in _printing_order(e):
            deep.print(node)
        return deep.memo[e]

    def precedence(self, e: Expr) -> int:
        """Binding strength of ``e`` in this printer's notation."""
        return precedence(e)

    def wrap(self, e: Expr, ok: bool) -> str:
        text = self.print(e)
        return text if ok else self.paren(text)

    def paren(self, text: str) -> str:
        return f"({text})"

    # -- leaves ----------------------------------------------------------------
    def _Symbol(self, e: Symbol) -> str:
        return e.name

    def _Number(self, e: Number) -> str:
        v: Fraction = e.value
        if v.denominator == 1:
            return str(v.numerator)
        return f"{v.numerator}/{v.denominator}"

    def _Identity(self, e: Identity) -> str:
        return "I"

    def _Ones(self, e: Ones) -> str:
        return "1"

    def _Commutation(self, e) -> str:
        return f"commutation({e.m}, {e.n})"

    def _Zero(self, e: Zero) -> str:
        return "0"

    def _Differential(self, e: Differential) -> str:
        if isinstance(e.var, Symbol):
            return "d" + self.print(e.var)
        return "d" + self.paren(self.print(e.var))

    # -- operators -------------------------------------------------------------
    def _Add(self, e: Add) -> str:
        parts: list[str] = []
        for i, term in enumerate(e.terms):
            negative, positive = split_sign(term)
            if i == 0:
                parts.append(self.wrap(term, precedence(term) > SUM))
            else:
                parts.append(self.minus if negative else self.plus)
                shown = positive if negative else term
                parts.append(self.wrap(shown, precedence(shown) >= PROD))
        return "".join(parts)

    def _Neg(self, e: Neg) -> str:
        return "-" + self.wrap(e.arg, precedence(e.arg) >= PROD)

    def _Mul(self, e: Mul) -> str:
        negative, positive = split_sign(e)
        if negative:
            if isinstance(positive, Mul):
                return "-" + self._fraction(positive.factors)
            return "-" + self.wrap(positive, precedence(positive) >= PROD)
        return self._fraction(e.factors)

    def _fraction(self, factors: tuple[Expr, ...]) -> str:
        """``x ||x||_2^-1`` prints as ``x / ||x||_2`` (negative powers of scalars below)."""
        numerator, denominator = split_fraction(factors)
        if not denominator:
            return self._factors(factors)
        scalars = tuple(f for f in factors if f.is_scalar)
        arrays = tuple(f for f in factors if not f.is_scalar)
        if arrays and len(scalars) < len(factors) and (
                any(not isinstance(f, Number) for f in numerator if f.is_scalar)
                or (len(arrays) == 1 and isinstance(arrays[0], Ones))):
            # the scalar fraction in front of the arrays: `(x^T x / (x^T A x)^2) (A + A^T) x`,
            # and `(1 / (1^T 1)) 1`, where `1 / (1^T 1)` would read as a number (but
            # `1 1^T / (1^T 1 1^T 1)` cannot)
            return self._factors((Mul(scalars), *arrays))
        first = numerator[0] if numerator else None
        if isinstance(first, Number) and first.value.denominator != 1:
            # `(A + A^T) x / (2 sqrt(x^T A x))`, never a fraction over a fraction
            p, q = first.value.numerator, first.value.denominator
            numerator = ((Number(p),) if p != 1 else ()) + numerator[1:]
            denominator = (Number(q), *denominator)
        return self.divide(self.numerator(numerator), numerator, denominator)

    def numerator(self, factors: tuple[Expr, ...]) -> str:
        """The factors above a fraction bar (a lone scalar chain bare: ``x^T x / ...``)."""
        if not factors:
            return "1"
        if len(factors) == 1:
            return self.wrap(factors[0], precedence(factors[0]) >= PROD)
        return self._factors(factors)

    def divide(self, top: str, numerator: tuple[Expr, ...], denominator: tuple[Expr, ...]) -> str:
        """Numerator over denominator, in this printer's notation."""
        if len(denominator) == 1:
            d = denominator[0]
            bottom = self.wrap(d, precedence(d) > PROD)
        else:
            bottom = self.paren(self._factors(denominator))
        return f"{top} / {bottom}"

    def _factors(self, factors: tuple[Expr, ...]) -> str:
        out: list[str] = []
        for i, f in enumerate(factors):
            p = self.precedence(f)
            if i == 0:
                # `(a ⊙ b) c^T`, `(x ⊗ I) H`: the grammar reads `a ⊙ b c^T` the same way,
                # but a reader may not, so an operator product leading a product is wrapped
                ok = p >= PROD and not (isinstance(f, Mul) and p < ATOM) and not (
                    len(factors) > 1 and isinstance(f, _OPERATOR_PRODUCTS) and p < ATOM)
            else:
                ok = p > PROD
            text = self.factor(f, ok, last=i == len(factors) - 1)
            if i > 0:
                out.append(self.juxtapose(out[-1], text))
            out.append(text)
        return "".join(out)

    def factor(self, f: Expr, ok: bool, last: bool) -> str:
        """One factor of a product (parenthesised unless ``ok``)."""
        return self.wrap(f, ok)

    def juxtapose(self, left_text: str, right_text: str) -> str:
        """The separator between two factors (``*`` where a space would read as a call).

        ``sigma (x + y)`` and ``alpha^sigma (x + y)`` would read as calls of ``sigma``.
        """
        if right_text.startswith("("):
            m = _TRAILING_NAME.search(left_text)
            if m and canonical_function(m.group(1)):
                return " * "
        return " "

    def _Div(self, e: Div) -> str:
        num = self.wrap(e.num, precedence(e.num) >= PROD
                        and not (isinstance(e.num, Number) and e.num.value < 0))
        return f"{num} / {self.wrap(e.den, precedence(e.den) > PROD)}"

    def _binary_chain(self, items: tuple[Expr, ...], sep: str, same: type) -> str:
        out = []
        for i, f in enumerate(items):
            p = precedence(f)
            ok = (p >= PROD and not isinstance(f, same)) if i == 0 else p > PROD
            out.append(self.wrap(f, ok))
        return sep.join(out)

    def _Hadamard(self, e: Hadamard) -> str:
        return self._binary_chain(e.factors, self.hadamard, Hadamard)

    def _ElemDiv(self, e: ElemDiv) -> str:
        return self._binary_chain((e.num, e.den), self.elemdiv, type(None))

    def _Kron(self, e: Kron) -> str:
        # `(A B) ⊗ C`: a matrix product inside a Kronecker product is parenthesised; ⊗ is
        # associative and groups left to right, so `I ⊗ K ⊗ I` needs none on the left
        left = self.wrap(e.left, precedence(e.left) > PROD or isinstance(e.left, Kron))
        return left + self.kron + self.wrap(e.right, precedence(e.right) > PROD)

    def _Transpose(self, e: Transpose) -> str:
        if isinstance(e.arg, Number) and e.arg.value == 1:
            return self.print(e.arg)  # the scalar 1 (as a cotangent); `1^T` is the ones row
        base = inverse_transposed(e)
        if base is not None:
            return self.wrap(base, precedence(base) == ATOM) + self.inverse_transpose
        return self.wrap(e.arg, precedence(e.arg) == ATOM) + "^T"

    def _exponent(self, x: Expr) -> str:
        if isinstance(x, Number) and x.value.denominator == 1:
            return str(x.value.numerator)
        if isinstance(x, Symbol):
            return x.name
        return self.paren(self.print(x))

    def _Pow(self, e: Pow) -> str:
        if e.is_scalar and isinstance(e.exponent, Number) and e.exponent.value < 0:
            return self._fraction((e,))
        return self.wrap(e.base, precedence(e.base) == ATOM) + "^" + self._exponent(e.exponent)

    def _ElemPow(self, e: ElemPow) -> str:
        return self.wrap(e.base, precedence(e.base) == ATOM) + ".^" + self._exponent(e.exponent)

    def _Norm(self, e: Norm) -> str:
        sub = f"_{e.p}" if e.p else ""
        return f"||{self.print(e.arg)}||{sub}"

    def _Call(self, e: Call) -> str:
        return f"{e.name}(" + ", ".join(self.print(a) for a in e.args) + ")"

    def _Sylvester(self, e) -> str:
        return "sylvester(" + ", ".join(self.print(a) for a in e.children) + ")"


_DEFAULT = TextPrinter()


def _printing_order(e: Expr) -> list[Expr]:
    """Each node ``e`` prints, children first, the variable of a differential included
    (``d(tanh(W h))`` of a deep network: ``postorder`` does not enter it), iteratively."""
    return postorder_by(e, _printed_parts)[0]


def _printed_parts(node: Expr) -> tuple[Expr, ...]:
    return (node.var,) if isinstance(node, Differential) else node.children


def to_text(e: Expr, ascii: bool = False) -> str:
    """The expression in matcalc text notation."""
    if _lone_ones(e):  # `1` or `-1` alone would read as the number: the bold one is the vector
        return ("-" if isinstance(e, Mul) else "") + BOLD_ONE
    return (TextPrinter(ascii=True) if ascii else _DEFAULT).print_deep(e)


BOLD_ONE = "𝟏"
"""The ones vector where a plain `1` would read as the number (the grammar's ONES token)."""


def _lone_ones(e: Expr) -> bool:
    return isinstance(e, Ones) or (
        isinstance(e, Mul) and len(e.factors) == 2 and e.factors[0] == Number(-1)
        and isinstance(e.factors[1], Ones))
