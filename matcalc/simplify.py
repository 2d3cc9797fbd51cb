"""Canonical form and textbook presentation: flatten, collect, order, factor, never expand."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar
from fractions import Fraction
from functools import lru_cache

from .budget import charge, running_budget, spent
from .errors import UnsupportedError
from .expr import (
    SCALAR,
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
    Sylvester,
    Symbol,
    Transpose,
    Zero,
    fold_dag,
    map_bottom_up,
    memo_table,
    product_shape,
)
from .functions import FUNCTIONS
from .rewrite import applies_to

ONE = Number(Fraction(1))


MAX_ROTATED = 8
"""Longest product inside a trace whose rotations are compared."""

MAX_BITS = 4000
"""Largest exact constant, in bits of numerator or denominator (about 1200 decimal digits)."""


def num(value: Fraction | int) -> Number:
    """A Number node (UnsupportedError when the constant is larger than MAX_BITS)."""
    if type(value) is not Fraction:  # (Fraction(f) of a Fraction is a Python-level copy)
        value = Fraction(value)
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise UnsupportedError(f"a constant of the computation exceeds {MAX_BITS} bits",
                               hint="matcalc computes with exact numbers of bounded size")
    return Number(value)


def is_zero(e: Expr) -> bool:
    """``e`` is a zero (scalar 0 or a zero array)."""
    return isinstance(e, Zero) or (isinstance(e, Number) and e.value == 0)


def broadcast(s: Expr, shape) -> Expr:
    """The scalar ``s`` in every entry of an array of ``shape``: ``s 1``, ``s 1 1^T``."""
    rows, cols = shape
    factors: list[Expr] = [s]
    if rows != 1:
        factors.append(Ones(rows))
    if cols != 1:
        factors.append(Transpose(Ones(cols)))
    return Mul(tuple(factors))


def ones_of(shape) -> Expr:
    """The all-ones array of ``shape``: ``1``, ``1^T`` or ``1 1^T`` (the neutral element
    of the Hadamard product)."""
    rows, cols = shape
    if rows == 1 and cols != 1:
        return Transpose(Ones(cols))
    return Ones(rows) if cols == 1 else Mul((Ones(rows), Transpose(Ones(cols))))


def zero_like(e: Expr) -> Expr:
    """The zero of ``e``'s shape."""
    return num(0) if e.is_scalar else Zero(e.shape)


def is_one(e: Expr) -> bool:
    return isinstance(e, Number) and e.value == 1


# ---------------------------------------------------------------------------- symmetry


_SYMMETRIC: dict[Expr, bool] = memo_table()


def known_symmetric(e: Expr) -> bool:
    """Whether ``e`` is symmetric by declaration or by construction (children first, memoised
    over the DAG: nested sub-expressions are asked again and again, and deep where-bindings
    need no deep recursion)."""
    return fold_dag(e, _symmetric_given_children, _SYMMETRIC)


def _symmetric_given_children(e: Expr, children: list[bool]) -> bool:
    """``known_symmetric(e)`` from ``known_symmetric`` of each of its children."""
    if e.is_scalar:
        return True
    if e.shape[0] != e.shape[1]:
        return False
    if isinstance(e, Symbol):
        return "symmetric" in e.props or "diagonal" in e.props
    if isinstance(e, (Identity, Zero)):
        return True
    if isinstance(e, Call) and e.name == "diag":
        return True
    if isinstance(e, Call) and FUNCTIONS[e.name].family == "elementwise":
        return children[0]  # the argument
    if isinstance(e, (Add, Hadamard)):
        if all(children):
            return True
        if isinstance(e, Add):
            return _transposes_pair(e.terms)
        return False
    if isinstance(e, (Pow, ElemPow, Transpose)):
        return children[0]  # the base, the argument
    if isinstance(e, Mul):
        chain = [f for f in e.factors if not f.is_scalar]
        return _palindrome(chain) or _polar_square_root(chain)
    if isinstance(e, Kron):
        return children[0] and children[1]
    return False


def _polar_square_root(chain: list[Expr]) -> bool:
    """``X polar(X)^T = (X X^T)^(1/2)`` and ``polar(X)^T X = (X^T X)^(1/2)``: the symmetric
    factors of the polar decomposition (Higham (2008), Functions of Matrices, Theorem 8.1)."""
    if len(chain) < 2:
        return False

    def polar_of(f: Expr, rest: list[Expr]) -> bool:
        if not (isinstance(f, Transpose) and isinstance(f.arg, Call) and f.arg.name == "polar"):
            return False
        return f.arg.args[0] == (rest[0] if len(rest) == 1 else Mul(tuple(rest)))

    return polar_of(chain[-1], chain[:-1]) or polar_of(chain[0], chain[1:])


def _palindrome(chain: list[Expr]) -> bool:
    """``B^T S B``, ``x x^T``, ``A^T A``: a chain equal to its own transpose."""
    i, j = 0, len(chain) - 1
    while i < j:
        if transposed(chain[i]) != chain[j]:
            return False
        i, j = i + 1, j - 1
    return i > j or known_symmetric(chain[i])


def _transposes_pair(terms: tuple[Expr, ...]) -> bool:
    """``A + A^T`` (each term's transpose is also a term)."""
    texts = {t for t in terms}
    return all(transposed(t) in texts for t in terms)


def transposed(e: Expr) -> Expr:
    """The canonical form of ``e^T`` (by the simplifier at work in this context, if any, so
    that the symmetry tests of nested terms reuse its memo instead of starting afresh)."""
    return simplify(Transpose(e), _ACTIVE.get())


# ---------------------------------------------------------------------------- ordering


def sort_key(e: Expr) -> tuple:
    """Canonical order of the terms of a sum: positive first, numbers first, then structure
    (memoised: the terms of long sums are sorted again and again as the sums grow)."""
    hit = _SORT_KEYS.get(e)
    if hit is not None:
        return hit
    negative, positive = split_coefficient(e)
    key = (negative < 0, not isinstance(positive, Number), order_key(positive))
    if len(_SORT_KEYS) > 200_000:
        _SORT_KEYS.clear()
    _SORT_KEYS[e] = key
    return key


def scalar_key(e: Expr) -> tuple:
    """Order of scalar factors: names and their powers (``y^2``), then other scalars,
    sums, and last the scalar chains (``y^2 s (1 - s) (v^T x) x``), then by structure."""
    named = isinstance(e, Symbol) or (isinstance(e, Pow) and isinstance(e.base, Symbol))
    base = e.base if isinstance(e, Pow) else e
    chain = isinstance(base, Mul) and _is_chain(base)
    return (not named, chain, isinstance(e, Add), order_key(e))


def hadamard_key(e: Expr) -> tuple:
    """Order of elementwise factors: names (and differentials, ``X dw ⊙ s``), then
    products and calls, sums last (``y ⊙ sigma(z)``, ``s ⊙ (1 - s)``), then by structure."""
    leading = isinstance(e, Symbol) or _has_differential(e)
    return (isinstance(e, Add), not leading, order_key(e))


_SORT_KEYS: dict[Expr, tuple] = memo_table()
_PREFIX = 24
"""Tokens of the reading-order part of the order key (the structure breaks the ties)."""
_KEYS: dict[Expr, tuple] = memo_table()
_OPEN, _NUMBER, _CONSTANT, _NAME, _INFIX, _POSTFIX, _CLOSE = range(7)
_INFIX_TOKENS = {Add: "+", Hadamard: "⊙", ElemDiv: "./", Kron: "⊗", Div: "/"}


def order_key(e: Expr) -> tuple:
    """A deterministic structural order key, independent of any printer.

    It compares the leaves and operators in reading order (names: uppercase before
    lowercase, then postfix operators, so ``A x`` < ``A^T x`` < ``b``), then the size,
    then the whole structure; computed children first, iteratively (deep trees are safe).
    """
    hit = _KEYS.get(e)
    if hit is not None:
        return hit
    if len(_KEYS) > 200_000:
        _KEYS.clear()
    found: dict[Expr, tuple] = {}  # this call's keys: another thread may empty _KEYS
    stack = [e]
    while stack:
        node = stack[-1]
        # a differential's variable may be a deep expression: a part of the key, not repr'd
        parts = (node.var,) if isinstance(node, Differential) else node.children
        missing = []
        for c in parts:
            if c not in found:
                known = _KEYS.get(c)
                if known is None:
                    missing.append(c)
                else:
                    found[c] = known
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        if node in found:
            continue
        kids = [found[c] for c in parts]
        size = 1 + sum(k[1] for k in kids)
        leaf = "" if parts else repr(node)
        structure = (type(node).__name__, leaf, tuple(k[2] for k in kids))
        found[node] = (_tokens(node, [k[0] for k in kids])[:_PREFIX], size, structure)
    _KEYS.update(found)
    return found[e]


def _tokens(node: Expr, kids: list[tuple]) -> tuple:
    """The reading-order tokens of ``node`` from those of its children."""
    if isinstance(node, Symbol):
        return ((_NAME, node.name),)
    if isinstance(node, Number):
        return ((_NUMBER, node.value),)
    if isinstance(node, Identity):
        return ((_NAME, "I"),)
    if isinstance(node, (Ones, Zero)):
        return ((_CONSTANT, "1" if isinstance(node, Ones) else "0"),)
    if isinstance(node, Differential):
        return ((_NAME, "d"), *order_key(node.var)[0])
    if isinstance(node, Transpose):
        return (*kids[0], (_POSTFIX, "T"))
    if isinstance(node, (Pow, ElemPow)):
        return (*kids[0], (_POSTFIX, "^" if isinstance(node, Pow) else ".^"), *kids[1])
    if isinstance(node, Neg):
        return ((_INFIX, "-"), *kids[0])
    if isinstance(node, Call):
        inner: tuple = ()
        for k in kids:
            inner += k
        return ((_NAME, node.name), (_OPEN, "("), *inner, (_CLOSE, ")"))
    if isinstance(node, Norm):
        return ((_NAME, "||"), *kids[0], (_POSTFIX, node.p or ""))
    out: tuple = ()
    sep = _INFIX_TOKENS.get(type(node))
    for i, k in enumerate(kids):
        if i and sep:
            out += ((_INFIX, sep),)
        out += k[:_PREFIX]
        if len(out) >= _PREFIX:
            break
    return ((_OPEN, "("), *out, (_CLOSE, ")")) if isinstance(node, Add) else out


def split_coefficient(e: Expr) -> tuple[Fraction, Expr]:
    """``-2 A x`` -> (-2, ``A x``); a lone number is its own coefficient times 1."""
    if isinstance(e, Number):
        return e.value, ONE
    if isinstance(e, Mul) and isinstance(e.factors[0], Number):
        rest = e.factors[1:]
        if not rest:
            return e.factors[0].value, ONE
        return e.factors[0].value, rest[0] if len(rest) == 1 else Mul(rest)
    return _FRACTION_ONE, e


# shared: a Fraction is immutable, and building one per term was a tenth of the time of
# simplifying long sums
_FRACTION_ONE, _FRACTION_ZERO = Fraction(1), Fraction(0)


def with_coefficient(c: Fraction, e: Expr) -> Expr:
    """``c e`` in canonical form."""
    if c is _FRACTION_ONE:  # (most terms: no comparison of fractions, in Python)
        return num(c) if is_one(e) else e
    if c == 0:
        return zero_like(e)
    if is_one(e):
        return num(c)
    if c == 1:
        return e
    if isinstance(e, Mul):
        return Mul((num(c), *e.factors))
    return Mul((num(c), e))


_NOUNS = {
    "Add": "a sum",
    "Mul": "a product",
    "Hadamard": "an elementwise product",
    "Kron": "a Kronecker product",
    "Call": "a function value",
    "Transpose": "a transpose",
    "Differential": "a differential",
}
"""How a message names a large expression by its operator."""


def excerpt(e: Expr, limit: int = 80) -> str:
    """The start of ``e``'s text, for messages about large expressions (never the whole
    text of a large tree: shared sub-expressions would be printed once per occurrence)."""
    if isinstance(e, Differential) and _printed_size(e) > 2000:
        return f"d({excerpt(e.var, limit)})"
    distinct = _distinct_nodes(e)
    if distinct > 200 or _printed_size(e) > 2000:
        noun = _NOUNS.get(type(e).__name__, "an expression")
        return f"{noun} with {distinct:,} distinct sub-expressions"
    from .printing.text import to_text

    text = to_text(e)
    return text if len(text) <= limit else text[:limit] + "..."


def _distinct_nodes(e: Expr) -> int:
    """How many distinct nodes ``e`` has (``len(postorder(e))``, without ordering them or
    stacking a child seen already: a runaway's sum of thousands of terms is counted for its
    message, and its links outnumber its nodes)."""
    seen = {id(e)}
    stack = [e]
    while stack:
        for child in stack.pop().children:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


def _printed_size(e: Expr, cap: int = 10**6) -> int:
    """Nodes the text of ``e`` spells out (a shared node once per occurrence, the variable of
    a differential included), at most ``cap``: iterative and memoised over the DAG."""
    sizes: dict[Expr, int] = {}
    stack = [e]
    while stack:
        node = stack[-1]
        parts = node.children if not isinstance(node, Differential) else (node.var,)
        missing = [c for c in parts if c not in sizes]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        sizes[node] = min(cap, 1 + sum(sizes[c] for c in parts))
    return sizes[e]


# ---------------------------------------------------------------------------- the simplifier

_ACTIVE: ContextVar[Simplifier | None] = ContextVar("matcalc_simplifier", default=None)
"""The simplifier running in this context (thread or task), for helpers called from it."""


class Simplifier:
    """Bottom-up canonicalisation with a memo table (shared sub-expressions cost once)."""

    def __init__(self) -> None:
        self.memo: dict[Expr, Expr] = {}
        self.expansions: dict[Expr, Expr] = {}  # _expanded, memoised over every call
        self._expanding = False

    def __call__(self, e: Expr) -> Expr:
        memo = self.memo
        hit = memo.get(e)
        if hit is not None:
            return hit
        if _ACTIVE.get() is not self:
            token = _ACTIVE.set(self)
            try:
                return self(e)
            finally:
                _ACTIVE.reset(token)
        # Children first with an explicit stack, so deep expressions need no deep
        # recursion; a node whose rule rewrote it waits for the rewritten form.
        rewritten: dict[Expr, Expr] = {}
        rules_for = simplify_index()
        budget = running_budget()  # (counted inline: this loop runs for every node)
        stack = [e]
        while stack:
            node = stack[-1]
            if node in memo:
                stack.pop()
                continue
            # a long product costs more, a sum more again (its terms are collected, ordered
            # and factored one by one)
            if budget is not None:
                budget.used += 1 + len(node.children) // (1 if type(node) is Add else 2)
                if budget.used > budget.limit:
                    raise spent(budget, node)
            waiting = rewritten.get(node)
            if waiting is not None:
                result = memo.get(waiting)
                if result is None:
                    raise UnsupportedError(
                        f"simplifying `{excerpt(node)}` does not terminate",
                        hint="a canonical-form rule rewrites the expression into itself")
            else:
                children = node.children
                missing = [c for c in children if c not in memo]
                if missing:
                    stack.extend(missing)
                    continue
                new_children = tuple([memo[c] for c in children])
                rebuilt = node.rebuild(new_children) if new_children != children else node
                method = _method_for(type(rebuilt))
                result = method(self, rebuilt) if method else rebuilt
                # (`is` first: nodes are hash-consed, so equal ones are usually the same)
                if result is rebuilt or result == rebuilt:  # canonical shape: the
                    for rule in rules_for(rebuilt):  # identities of rules/simplify.rules
                        out = rule.apply(rebuilt)
                        if out is not None and out is not rebuilt and out != rebuilt:
                            result = out
                            break
                if result is not rebuilt and result != rebuilt:
                    hit = memo.get(result)
                    if hit is None:
                        rewritten[node] = result
                        stack.append(result)
                        continue
                    result = hit
            stack.pop()
            memo[node] = result
            memo[result] = result
        return memo[e]

    # -- leaves ----------------------------------------------------------------
    def _Zero(self, e: Zero) -> Expr:
        return num(0) if e.dims == SCALAR else e

    # -- sums --------------------------------------------------------------------
    def _Neg(self, e: Neg) -> Expr:
        return self._scale(Fraction(-1), e.arg)

    def _scale(self, c: Fraction, e: Expr) -> Expr:
        coeff, rest = split_coefficient(e)
        return with_coefficient(coeff if c is _FRACTION_ONE else c * coeff, rest)

    def _Add(self, e: Add) -> Expr:
        shape = e.shape
        # A collected linear combination: nested sums are flattened, numeric coefficients
        # distributed over them (2 (a - b) + 2 b is 2 a), like terms summed exactly.
        terms: list[Expr] = []
        for t in e.terms:
            c, rest = split_coefficient(t)
            if isinstance(rest, Add):
                terms.extend(self._scale(c, u) for u in rest.terms)
            else:
                terms.append(t)
        items = [with_coefficient(c, rest) for rest, c in _collect(tuple(terms)).items()]
        if not items:
            return num(0) if shape == SCALAR else Zero(shape)
        items.sort(key=sort_key)
        if shape != SCALAR and all(t.is_scalar for t in items):  # M + alpha - M
            return broadcast(items[0] if len(items) == 1 else Add(tuple(items)), shape)
        if len(items) == 1:
            return items[0]
        if shape[0] == 1 and not e.is_scalar:  # a row s^T - y^T is (s - y)^T (see _Transpose)
            pulled = [self(Transpose(t)) for t in items]
            if not any(isinstance(t, Add) for t in pulled) and 1 + sum(
                    _count_transposes(t) for t in pulled) <= sum(
                    _count_transposes(t) for t in items):
                return Transpose(Add(tuple(sorted(pulled, key=sort_key))))
        shorter = self._expanded_if_shorter(items)
        if shorter is not None:
            return shorter
        common = _common_coefficient(items)
        if common != 1 and (common.denominator == 1 or all(
                abs(split_coefficient(t)[0]) == abs(common) for t in items)):
            # 3 A + 3 A^T = 3 (A + A^T), -a - b = -(a + b), 1/2 A + 1/2 A^T = 1/2 (A + A^T)
            return Mul((num(common), self(Add(tuple(self._scale(1 / common, t) for t in items)))))
        if common != 1:
            fraction = _fraction_to_group([split_coefficient(t)[0] for t in items])
            if fraction is None:  # 1/2 a + 3/2 b is 1/2 (a + 3 b): no two terms to group
                return Mul((num(common),
                            self(Add(tuple(self._scale(1 / common, t) for t in items)))))
            # 1/2 A + 1/2 A^T - S^-1 is 1/2 (A + A^T) - S^-1, not 1/2 (A + A^T - 2 S^-1)
            items = self._fraction_grouped(items, fraction)
        factored = factor_sum(items, self)
        if factored is not None:
            return factored
        return Add(tuple(items))

    def _fraction_grouped(self, items: list[Expr], fraction: Fraction) -> list[Expr]:
        """The terms whose coefficient is +-``fraction`` as one term ``fraction (...)``
        beside the others (see ``_fraction_to_group``)."""
        group = [t for t in items if abs(split_coefficient(t)[0]) == fraction]
        rest = [t for t in items if abs(split_coefficient(t)[0]) != fraction]
        sign = -1 if all(split_coefficient(t)[0] < 0 for t in group) else 1
        grouped = Mul((num(sign * fraction),
                       self(Add(tuple(self._scale(sign / fraction, t) for t in group)))))
        return sorted([grouped, *rest], key=sort_key)

    def _expanded_if_shorter(self, items: list[Expr]) -> Expr | None:
        """Distribute elementwise products over sums (with sigma(-z) = 1 - sigma(z)) and
        keep the result only when it is smaller: (1 - y) ⊙ s - y ⊙ (1 - s) is s - y."""
        if self._expanding or not any(_has_distributable(t) for t in items):
            return None
        self._expanding = True
        try:
            terms: list[Expr] = []
            for t in items:  # one flat sum, so no part is factored back before it cancels
                d = _distribute(_expanded(t, self.expansions))
                terms.extend(d.terms if isinstance(d, Add) else (d,))
            expanded = self(Add(tuple(terms)))
        finally:
            self._expanding = False
        before = sum(_node_count(t) for t in items) + 1
        return expanded if _node_count(expanded) < before else None

    # -- products ----------------------------------------------------------------
    def _Mul(self, e: Mul) -> Expr:
        coeff = _FRACTION_ONE  # (immutable: shared, not built per product)
        scalars: list[Expr] = []
        chain: list[Expr] = []
        shape = e.shape
        stack = list(reversed(e.factors))
        while stack:
            f = stack.pop()
            if isinstance(f, Mul) and not (f.is_scalar and _is_chain(f) and (
                    shape != SCALAR or any(not g.is_scalar for g in e.factors))):
                # a scalar chain such as a^T x stays whole next to array factors:
                # 1^T (a^T x) 1 is not the chain 1^T a^T x 1
                stack.extend(reversed(f.factors))
                continue
            if isinstance(f, Mul):  # a scalar chain such as a^T x, kept whole
                c, f = split_coefficient(f)
                coeff *= c
                if isinstance(f, Mul) and any(g.is_scalar for g in f.factors):
                    # its scalar factors join the others: y (y s v^T x) x is y^2 s (v^T x) x
                    scalars.extend(g for g in f.factors if g.is_scalar)
                    rest = tuple(g for g in f.factors if not g.is_scalar)
                    f = rest[0] if len(rest) == 1 else Mul(rest)
            if isinstance(f, Number):
                coeff *= f.value
            elif is_zero(f):
                return zero_like(e)
            elif f.is_scalar:
                scalars.append(f)
            else:
                chain.append(f)
        if coeff == 0:
            return zero_like(e)
        if len(chain) > 1:
            chain = [f for f in chain if not isinstance(f, Identity)]
        if len(chain) > 2 and shape != SCALAR and chain[0].shape[0] == 1:
            # x^T x a: the leading inner product scales the rest, (x^T x) a (no split of
            # the chain may pair x with a)
            i = _scalar_prefix(chain)
            if i:
                scalars.append(self(Mul(tuple(chain[:i]))))
                chain = chain[i:]
        if len(chain) > 1 and product_shape([f.shape for f in chain]) == SCALAR:
            segments = _scalar_segments(chain)
            if len(segments) > 1 and not any(_has_differential(f) for f in chain):
                coeff, chain = self._scalar_subchains(coeff, segments, scalars)
            else:
                chain = self._oriented(chain)
        if not chain and shape != SCALAR:
            # everything cancelled to the identity
            chain = [Identity(shape[0])]
        if coeff.denominator != 1 and not scalars and len(chain) == 1 and isinstance(
                chain[0], Add) and all((coeff * split_coefficient(t)[0]).denominator == 1
                                       for t in chain[0].terms):
            # a fraction that clears every coefficient of a sum goes in:
            # 1/2 (2 S^-1 - 2 S^-1 r r^T S^-1) is S^-1 - S^-1 r r^T S^-1
            return self(Add(tuple(self._scale(coeff, t) for t in chain[0].terms)))
        if coeff.denominator != 1 and not scalars:
            # the sum decides whether the fraction groups some of its terms (see _Add):
            # 1/2 (A + A^T + 2 I) is 1/2 (A + A^T) + I, 1/2 (A + A^T - 2 S) x is
            # (1/2 (A + A^T) - S) x
            sum_at = [i for i, f in enumerate(chain) if isinstance(f, Add)]
            if len(sum_at) == 1 and _fraction_to_group(
                    [coeff * c for c in _flat_coefficients(chain[sum_at[0]].terms)]) is not None:
                inner = self(Add(tuple(self._scale(coeff, t) for t in chain[sum_at[0]].terms)))
                if len(chain) == 1:
                    return inner
                chain[sum_at[0]] = inner
                coeff = _FRACTION_ONE
        if len(chain) + len(scalars) > 1:
            coeff *= self._numbers_out_of_sums(chain, scalars)
        # sums of one product agree in sign (not in a scalar chain, whose orientation is
        # chosen above)
        sums = [i for i, f in enumerate(chain)
                if isinstance(f.arg if isinstance(f, Transpose) else f, Add)
                ] if shape != SCALAR else []
        if len(sums) > 1:
            coeff *= _agreeing_sums(chain)
        scalars = _merge_powers(scalars, self)
        scalars.sort(key=scalar_key)
        factors = ([num(coeff)] if coeff != 1 else []) + scalars + chain
        if not factors:
            return num(1)
        if len(factors) == 1:
            return factors[0]
        return Mul(tuple(factors))

    def _numbers_out_of_sums(self, chain: list[Expr], scalars: list[Expr]) -> Fraction:
        """A number common to the terms of a sum factor joins the product's coefficient:
        ``K^T (2 a - 2 (s^T a) s)`` is ``2 K^T (a - (s^T a) s)``. Rewrites the lists in
        place and returns the number taken out."""
        taken = _FRACTION_ONE
        for factors in (chain, scalars):
            for i, f in enumerate(factors):
                if not isinstance(f, Add):
                    continue
                common = _common_divisor([split_coefficient(t)[0] for t in f.terms])
                # but (1/2 (A + A^T) - S) x keeps its 1/2 inside (_fraction_to_group)
                if common != 1 and _fraction_to_group(_flat_coefficients(f.terms)) is None:
                    factors[i] = self(Add(tuple(self._scale(1 / common, t) for t in f.terms)))
                    taken *= common
        return taken

    def _Div(self, e: Div) -> Expr:
        return Mul((e.num, Pow(e.den, num(-1))))

    def _Hadamard(self, e: Hadamard) -> Expr:
        monomial = self._monomial(e)
        if monomial is not None:
            return monomial
        factors: list[Expr] = []
        scalars: list[Expr] = []
        for f in e.factors:
            for g in f.factors if isinstance(f, Hadamard) else (f,):
                if is_zero(g):
                    return zero_like(e)
                c, g = split_coefficient(g)
                if c != 1:
                    scalars.append(num(c))
                if g.is_scalar:
                    scalars.append(g)
                elif not _is_all_ones(g):
                    factors.append(g)
        if e.is_scalar:
            base: Expr = ONE
        elif not factors:
            base = Ones(e.shape[0]) if e.shape[1] == 1 else Mul(
                (Ones(e.shape[0]), Transpose(Ones(e.shape[1]))))
        elif len(factors) == 1:
            base = factors[0]
        else:
            factors.sort(key=hadamard_key)
            base = Hadamard(tuple(factors))
        return Mul((*scalars, base)) if scalars else base

    def _ElemDiv(self, e: ElemDiv) -> Expr:
        if e.den.is_scalar:
            return Mul((e.num, Pow(e.den, num(-1))))
        if is_zero(e.num):
            return zero_like(e)
        c, rest = split_coefficient(e.num)
        if c != 1:
            return with_coefficient(c, ElemDiv(rest, e.den))
        monomial = self._monomial(e)
        return e if monomial is None else monomial

    def _monomial(self, e: Expr) -> Expr | None:
        """An elementwise product and quotient as one monomial: equal bases add their
        exponents (``x ⊙ x = x.^2``, ``p ./ (p ./ q) = q``, ``q ./ q.^2 = 1 ./ q``;
        entries are assumed nonzero where they are divided by, docs/LANGUAGE.md).
        None when the node is that monomial already."""
        if e.is_scalar:
            return None
        powers: dict[Expr, Fraction] = {}
        seen: dict[Expr, list[Expr]] = {}  # the factors read as powers of each base
        symbolic: dict[Expr, list[Expr]] = {}  # exponents that are not numbers, per base
        scalars: list[Expr] = []
        coefficient = [Fraction(1)]

        def visit(f: Expr, sign: int) -> None:
            charge(e, 2)  # a factor read (the flattened product can dwarf e's children)
            c, f = split_coefficient(f)
            if c is not _FRACTION_ONE:  # (no coefficient: nothing to multiply)
                if c == 0:
                    raise _ZeroFactor
                coefficient[0] *= c if sign > 0 else 1 / c
            if is_zero(f):
                raise _ZeroFactor
            if is_one(f) or _is_all_ones(f):
                return
            if isinstance(f, Mul) and not f.is_scalar and any(g.is_scalar for g in f.factors):
                # (c A) ⊙ y is c (A ⊙ y), so c 1 ⊙ y and M ⊙ (c 1 1^T) are c y and c M: the
                # scalar factors of an operand join the monomial's
                rest = [g for g in f.factors if not g.is_scalar]
                for g in f.factors:
                    if g.is_scalar:
                        scalars.append(g if sign > 0 else Pow(g, num(-1)))
                visit(rest[0] if len(rest) == 1 else Mul(tuple(rest)), sign)
                return
            if isinstance(f, Hadamard):
                for g in f.factors:
                    visit(g, sign)
            elif isinstance(f, ElemDiv) and not f.den.is_scalar:
                visit(f.num, sign)
                visit(f.den, -sign)
            elif f.is_scalar:
                scalars.append(f if sign > 0 else Pow(f, num(-1)))
            elif isinstance(f, ElemPow) and not isinstance(f.exponent, Number):
                # x ⊙ x.^(b - 1) is x.^b: a symbolic exponent adds like a number (the
                # product of the two can be inf * 0 where the power itself is finite)
                powers.setdefault(f.base, Fraction(0))
                symbolic.setdefault(f.base, []).append(
                    f.exponent if sign > 0 else Neg(f.exponent))
                seen[f.base] = [*seen.get(f.base, []), f]
            else:
                base, k = _base_and_exponent(f, ElemPow)
                powers[base] = powers.get(base, _FRACTION_ZERO) + (k if sign > 0 else -k)
                seen[base] = [*seen.get(base, []), f]

        try:
            visit(e, 1)
        except _ZeroFactor:
            return zero_like(e)
        def factor(b: Expr, k: Fraction) -> Expr:  # a lone factor keeps its written form
            if len(seen[b]) == 1 and _base_and_exponent(seen[b][0], ElemPow)[1] == k:
                return seen[b][0]
            return _power_of(b, k, ElemPow)

        for b, exponents in list(symbolic.items()):  # entries that add to a number leave
            if len(seen[b]) == 1:
                continue  # x.^b alone: nothing to add
            total = self(Add((num(powers[b]), *exponents)))
            if isinstance(total, Number):
                powers[b] = total.value
                del symbolic[b]
            else:
                symbolic[b] = [total]
        symbolic_factors = [seen[b][0] if len(seen[b]) == 1 else ElemPow(b, exps[0])
                            for b, exps in symbolic.items()]
        top = sorted([*(factor(b, k) for b, k in powers.items() if k > 0 and b not in symbolic),
                      *symbolic_factors], key=hadamard_key)
        bottom = sorted((factor(b, -k) for b, k in powers.items() if k < 0 and b not in symbolic),
                        key=hadamard_key)
        result: Expr = (Hadamard(tuple(top)) if len(top) > 1 else top[0]) if top else (
            ones_of(e.shape))
        if bottom:
            result = ElemDiv(result if top else num(1),
                             Hadamard(tuple(bottom)) if len(bottom) > 1 else bottom[0])
        if coefficient[0] != 1:
            scalars.insert(0, num(coefficient[0]))
        if scalars:
            result = Mul((*scalars, result))
        return None if result == e else result

    def _Kron(self, e: Kron) -> Expr:
        if is_zero(e.left) or is_zero(e.right):
            return Zero(e.shape)
        if e.left.is_scalar or e.right.is_scalar:  # s ⊗ A = s A (Matrix Cookbook eq. 508)
            return Mul((e.left, e.right))
        return e

    def _Sylvester(self, e: Sylvester) -> Expr:
        # the solution is linear in the right side: sylvester(A, B, 0) = 0
        return Zero(e.shape) if is_zero(e.c) else e

    # -- transposes -------------------------------------------------------------
    def _Transpose(self, e: Transpose) -> Expr:
        a = e.arg
        if a.is_scalar or known_symmetric(a):
            return a
        if isinstance(a, Transpose):
            return a.arg
        if isinstance(a, Zero):
            return Zero(e.shape)
        if isinstance(a, Mul):
            return Mul(tuple(Transpose(f) if not f.is_scalar else f for f in reversed(a.factors)))
        if isinstance(a, Add):
            # one form for a sum and its transposed terms (see _Add): a row vector is the
            # transpose of a column, (A x - b)^T, (1 - y)^T, unless that has more
            # transposes than x^T A^T - b^T; a matrix sum takes the transposes into its terms
            pushed = [self(Transpose(t)) for t in a.terms]
            if e.shape[0] == 1 and 1 + _count_transposes(a) <= sum(
                    _count_transposes(t) for t in pushed):
                return e
            return Add(tuple(pushed))
        if isinstance(a, Kron):
            return Kron(Transpose(a.left), Transpose(a.right))
        k = _integer_exponent(a)
        if k is not None and k > 1:  # (X^k)^T = (X^T)^k
            return Pow(Transpose(a.base), a.exponent)
        if k is not None and k < -1:  # (X^-k)^T = (X^-T)^k
            return Pow(Transpose(Pow(a.base, num(-1))), num(-k))
        return e

    # -- powers ------------------------------------------------------------------
    def _Pow(self, e: Pow) -> Expr:
        b, x = e.base, e.exponent
        if isinstance(x, Number):
            if x.value == 1:
                return b
            if x.value == 0:
                return num(1) if b.is_scalar else Identity(b.shape[0])
            if isinstance(b, Number) and x.value.denominator == 1 and (b.value != 0 or x.value > 0):
                size = max(b.value.numerator.bit_length(), b.value.denominator.bit_length())
                if abs(int(x.value)) * (size - 1) > MAX_BITS:  # refuse before b^x is slow
                    return num(Fraction(2) ** (MAX_BITS + 1))
                return num(b.value ** int(x.value))
            if isinstance(b, Identity):
                return b
            k = x.value
            if k < 0 and k.denominator == 1 and isinstance(b, Transpose):
                inner = b.arg
                if isinstance(inner, Pow) and inner.exponent == num(-1):  # (X^-T)^-k = (X^T)^k
                    return Pow(Transpose(inner.base), num(-k))
                # (X^T)^-k = (X^-T)^k: the transposed inverse is the leaf X^-T
                inverse = Transpose(Pow(inner, num(-1)))
                return inverse if k == -1 else Pow(inverse, num(-k))
            if isinstance(b, Pow) and isinstance(b.exponent, Number) and (
                x.value.denominator == 1 and b.exponent.value.denominator == 1
            ):
                return Pow(b.base, num(b.exponent.value * x.value))
            if isinstance(b, Mul) and b.is_scalar and x.value.denominator == 1:
                # (a b)^k = a^k b^k for scalars keeps fractions readable; the array
                # factors of a scalar product are one scalar chain ((s x^T x)^-1 is
                # s^-1 (x^T x)^-1)
                scalars = [f for f in b.factors if f.is_scalar]
                arrays = [f for f in b.factors if not f.is_scalar]
                if scalars:
                    parts = scalars + ([Mul(tuple(arrays))] if arrays else [])
                    return Mul(tuple(Pow(f, x) for f in parts))
        return e

    def _ElemPow(self, e: ElemPow) -> Expr:
        if isinstance(e.exponent, Number) and e.exponent.value == 1:
            return e.base
        if e.base.is_scalar:
            return Pow(e.base, e.exponent)
        return e

    # -- functions and norms -----------------------------------------------------
    def _Call(self, e: Call) -> Expr:
        arg = e.args[0]
        if e.name == "tr" and arg.is_scalar:
            return arg
        if e.name == "tr" and isinstance(arg, Zero):
            return num(0)
        if e.name == "diag" and isinstance(arg, Transpose) and e.shape[1] == 1:
            return Call("diag", (arg.arg,))
        if e.name == "diag" and isinstance(arg, Zero):
            return Zero(e.shape)
        if FUNCTIONS[e.name].family == "elementwise" and e.is_scalar and isinstance(arg, Number):
            return e
        if isinstance(arg, Zero) and (e.name == "sum" or FUNCTIONS[e.name].adjoint):
            return zero_like(e)  # a linear function (one with an adjoint rule) of zero
        if e.name == "vec" and arg.shape[1] == 1:
            return arg  # vec(v) = v for a column vector (and a scalar)
        return e

    def _trace(self, arg: Expr) -> Expr | None:
        """``tr`` of a product in its cheapest equal form: scalar factors in front, and
        the cyclic rotation of the chain or of its transpose (tr(M) = tr(M^T), Matrix
        Cookbook eqs. 16 and 17) that is a scalar (``tr(u v^T) = v^T u``), or else the
        smallest, with the fewest transposes."""
        factors = arg.factors if isinstance(arg, Mul) else (arg,)
        scalars = [f for f in factors if f.is_scalar]
        chain = [f for f in factors if not f.is_scalar]
        if not chain or len(chain) > MAX_ROTATED:
            return None
        if any(_has_differential(f) for f in chain):
            # the identification rules read tr(G^T L) as the derivation wrote it; only
            # tr(u v^T ...) = v^T ... u (Matrix Cookbook eq. 16) and the scalars in front
            if chain[0].shape[1] == 1 and len(chain) > 1:
                return Mul((*scalars, *chain[1:], chain[0]))
            if scalars:
                return Mul((*scalars, Call("tr", (chain[0] if len(chain) == 1
                                                  else Mul(tuple(chain)),))))
            return None
        flipped = [self(Transpose(f)) for f in reversed(chain)]
        candidates = []
        for c in (chain, flipped):
            for i in range(len(c)):
                rotated = c[i:] + c[:i]
                product = self(Mul(tuple(rotated))) if len(rotated) > 1 else rotated[0]
                candidates.append(product)
        best = min(candidates, key=lambda p: (not p.is_scalar, _node_count(p),
                                              _count_transposes(p), order_key(p)))
        inner = best if best.is_scalar else Call("tr", (best,))
        if inner == Call("tr", (arg,)) and not scalars:
            return None
        return Mul((*scalars, inner)) if scalars else inner

    def _oriented(self, chain: list[Expr]) -> list[Expr]:
        """A scalar chain equals its transpose: ``b^T M^T M^T b`` is ``b^T M^2 b``. The
        transposed chain is taken only when it has fewer transposes, so ``a^T x`` and
        ``y^T (dz - s^T dz)`` stay as written (the derivation reads differentials off
        them); a chain with a differential or a sum is never turned (a sum would take the
        transpose into its terms: ``y^T (W^T x - lse)`` is not ``(x^T W - lse) y``)."""
        if any(isinstance(f, Add) or _has_differential(f) for f in chain):
            return chain
        flipped = [self(Transpose(f)) for f in reversed(chain)]
        if flipped == chain:
            return chain
        # fewer transposes first, then fewer transposed function values (y^T log(p), not
        # log(p)^T y); a remaining tie (a^T x, x^T a) is broken by the structural order
        cost = [(sum(_count_transposes(f) for f in c),
                 sum(isinstance(f, Transpose) and isinstance(f.arg, Call) for f in c),
                 order_key(Mul(tuple(c)))) for c in (chain, flipped)]
        return flipped if cost[1] < cost[0] else chain

    def _scalar_subchains(self, coeff: Fraction, segments: list[list[Expr]],
                          scalars: list[Expr]) -> tuple[Fraction, list[Expr]]:
        """A scalar chain made of scalar sub-chains (``x^T y y^T x``): each sub-chain in
        its canonical orientation, in the order of scalar factors; equal ones merge into a
        power (``(x^T y)^2``), and then every sub-chain is a scalar factor (appended to
        ``scalars``). Returns the new coefficient and the remaining (flat) chain."""
        parts: list[Expr] = []
        for segment in segments:
            c, rest = split_coefficient(self(Mul(tuple(segment))))
            coeff *= c
            if not is_one(rest):
                parts.append(rest)
        if len(set(parts)) < len(parts) or any(not _is_flat_chain(p) for p in parts):
            scalars.extend(parts)
            return coeff, []
        chain: list[Expr] = []
        for p in sorted(parts, key=scalar_key):
            chain.extend(p.factors)  # type: ignore[attr-defined]
        return coeff, chain

    def _Norm(self, e: Norm) -> Expr:
        if e.p is None:
            return Norm(e.arg, "2")
        return e


_TRANSPOSES: dict[Expr, int] = memo_table()
_NODES: dict[Expr, int] = memo_table()
_SUMS: dict[Expr, bool] = memo_table()


def _tree_count(e: Expr, counts: Callable[[Expr], bool], cache: dict[Expr, int]) -> int:
    """How many nodes of the tree of ``e`` satisfy ``counts``: shared sub-expressions count
    once per occurrence but are visited once (memoised, iteratively: linear in the DAG)."""
    return fold_dag(e, lambda node, inner: int(counts(node)) + sum(inner), cache)


def _count_transposes(e: Expr) -> int:
    return _tree_count(e, lambda n: isinstance(n, Transpose), _TRANSPOSES)


def _node_count(e: Expr) -> int:
    return _tree_count(e, lambda n: True, _NODES)


def _has_distributable(e: Expr) -> bool:
    _, rest = split_coefficient(e)
    return _is_elementwise_product(rest) and any(isinstance(f, Add) for f in rest.factors)


def _is_elementwise_product(e: Expr) -> bool:
    """A Hadamard product, or a product of scalars (elementwise too: ``s (y - 1)``)."""
    return isinstance(e, Hadamard) or (
        isinstance(e, Mul) and e.is_scalar and all(f.is_scalar for f in e.factors))


def _expanded(e: Expr, cache: dict[Expr, Expr]) -> Expr:
    """Every node rewritten by the first identity of rules/expansions.rules that applies
    (memoised in ``cache``: the terms of nested sums share most of their nodes)."""

    def rewrite(node: Expr, children: list[Expr]) -> Expr:
        new = tuple(children)
        rebuilt = node if new == node.children else node.rebuild(new)
        for rule in expansion_rules():
            out = rule.apply(rebuilt)
            if out is not None:
                return out
        return rebuilt

    return fold_dag(e, rewrite, cache)


def _distribute(e: Expr) -> Expr:
    """c (a + b) ⊙ d = c a ⊙ d + c b ⊙ d, one level (for scalars c (a + b) d likewise)."""
    c, rest = split_coefficient(e)
    if not _is_elementwise_product(rest):
        return e
    product = type(rest)
    for i, f in enumerate(rest.factors):  # type: ignore[attr-defined]
        if isinstance(f, Add):
            others = rest.factors[:i] + rest.factors[i + 1:]  # type: ignore[attr-defined]
            terms = tuple(with_coefficient(c, product((*others, t)) if others else t)
                          for t in f.terms)
            return Add(terms)
    return e


def _has_differential(e: Expr) -> bool:
    from .rewrite import has_differential

    return has_differential(e)


def _flat_coefficients(terms: tuple[Expr, ...]) -> list[Fraction]:
    """The coefficients of a sum's terms, those of a grouped term ``1/2 (A + A^T)`` taken
    one by one (1/2, 1/2)."""
    flat = []
    for t in terms:
        c, rest = split_coefficient(t)
        if isinstance(rest, Add):
            flat.extend(c * split_coefficient(u)[0] for u in rest.terms)
        else:
            flat.append(c)
    return flat


def _fraction_to_group(coefficients: list[Fraction]) -> Fraction | None:
    """The fraction that comes out of only some terms of a sum: the common divisor of the
    coefficients when it is not a whole number, it divides two or more of them into +-1 and
    not all (``1/2 A + 1/2 A^T - S^-1`` is ``1/2 (A + A^T) - S^-1``: no term is scaled up to
    join the others). None when the divisor comes out of the whole sum or not at all."""
    fraction = abs(_common_divisor(coefficients))
    if fraction.denominator == 1:
        return None
    matching = sum(abs(c) == fraction for c in coefficients)
    return fraction if 2 <= matching < len(coefficients) else None


def _common_coefficient(items: list[Expr]) -> Fraction:
    """The number to factor out of a sum: the greatest common divisor of the coefficients
    (negative when all are), when no term contains parentheses of its own (``4 (X - X^T)``,
    but ``2 X^T (X w - y) + 2 lambda w`` stays as the textbook writes it)."""
    coefficients = [split_coefficient(t)[0] for t in items]
    if all(c is _FRACTION_ONE for c in coefficients):  # (most sums: nothing to factor out)
        return _FRACTION_ONE
    if any(_has_sum(split_coefficient(t)[1]) for t in items):
        return _FRACTION_ONE
    return _common_divisor(coefficients)


def _common_divisor(coefficients: list[Fraction]) -> Fraction:
    """The largest fraction that divides every coefficient into a whole number (gcd of the
    numerators over lcm of the denominators), negative when all coefficients are."""
    g = Fraction(math.gcd(*(c.numerator for c in coefficients)),
                 math.lcm(*(c.denominator for c in coefficients)))
    return -g if all(c < 0 for c in coefficients) else g


def _has_sum(e: Expr) -> bool:
    """A sum printed in parentheses of its own (not one inside a function's argument);
    iterative and memoised, so deep where-bindings need no deep recursion."""
    return fold_dag(e, lambda node, inner: not isinstance(node, (Call, Norm)) and (
        isinstance(node, Add) or any(inner)), _SUMS)


def _collect(terms: tuple[Expr, ...]) -> dict[Expr, Fraction]:
    """Like terms summed: {term without coefficient: coefficient}, zeros dropped. Terms
    equal up to the sign of a sum factor are alike (``S^-1 (x - m) + S^-1 (m - x)`` is 0):
    the first one seen is kept as written."""
    collected: dict[Expr, Fraction] = {}
    shown: dict[Expr, tuple[Expr, int]] = {}
    for t in terms:
        if is_zero(t):
            continue
        c, rest = split_coefficient(t)
        key, sign = sign_free(rest)
        seen = shown.get(key)
        if seen is None:  # the first of its kind (most are): no sum of fractions to form
            shown[key] = (rest, sign)
            collected[key] = c
            continue
        collected[key] += c if sign == seen[1] else -c
    return {shown[key][0]: c for key, c in collected.items() if c is _FRACTION_ONE or c != 0}


def _agreeing_sums(chain: list[Expr]) -> int:
    """Sum factors of one product that are negations of each other take the orientation of
    the first (``(m - x) (x - m)^T`` is ``-(m - x) (m - x)^T``); returns the sign, and
    rewrites ``chain`` in place."""
    sign = 1
    first: dict[Expr, int] = {}  # oriented form -> the sign of its first occurrence
    for i, f in enumerate(chain):
        g, s = oriented_sum(f)
        if g is f and s == 1 and not isinstance(f.arg if isinstance(f, Transpose) else f, Add):
            continue
        base = g.arg if isinstance(g, Transpose) else g
        seen = first.setdefault(base, s)
        if seen != s:  # opposite to the first: write it like the first one
            negated = _negated_sum(base) if seen == -1 else base
            chain[i] = Transpose(negated) if isinstance(g, Transpose) else negated
            sign = -sign
    return sign


def as_the_formula_writes(e: Expr, formula: Expr) -> Expr:
    """Sums read as the formula writes them: a sum factor whose negation is a sum of the
    formula is turned, the sign going to the coefficient (``-S^-1 (m - x)`` is
    ``S^-1 (x - m)`` for a formula in ``x - m``; ``-2 W (x - s)`` stays, as in the Matrix
    Cookbook). Equal to ``e``; a presentation step after the normal form."""
    sums = [n for n in formula.walk() if isinstance(n, Add)]
    # one memo for all (the sums of nested where-bindings contain one another)
    canonical = Simplifier()
    written = dict.fromkeys(canonical(n) for n in sums)  # in the formula's order
    if not written:
        return e
    # a matrix sum of the formula that the result needs transposed is written as the
    # formula writes it, transposed: -2 (X - U V^T)^T U, not -2 (X^T - V U^T) U;
    # {the transposed sum, or its negation: (the written sum, the sign between them)}
    transposed: dict[Expr, tuple[Expr, int]] = {}
    for n in written:
        t = canonical(Transpose(n))
        if 1 not in n.shape and isinstance(t, Add):
            transposed.setdefault(t, (n, 1))
            transposed.setdefault(_negated_sum(t), (n, -1))

    def turn(node: Expr, rebuilt: Expr) -> Expr:
        if not isinstance(rebuilt, Mul):
            return rebuilt
        sign, factors = 1, list(rebuilt.factors)
        for i, f in enumerate(factors):
            if isinstance(f, Add) and f not in written and f in transposed:
                n, s = transposed[f]
                factors[i], sign = Transpose(n), sign * s
                continue
            inner = f.arg if isinstance(f, Transpose) else f
            if isinstance(inner, Add) and inner not in written:
                negated = _negated_sum(inner)
                if negated in written:
                    factors[i] = Transpose(negated) if isinstance(f, Transpose) else negated
                    sign = -sign
        if factors == list(rebuilt.factors):
            return rebuilt
        c, rest = split_coefficient(Mul(tuple(factors)))
        return with_coefficient(sign * c, rest)

    return map_bottom_up(e, turn)


def _negated_sum(u: Add) -> Add:
    """``-u`` as a sorted sum (``x - m`` gives ``m - x``)."""
    return Add(tuple(sorted((with_coefficient(-c, r) for c, r in map(split_coefficient, u.terms)),
                            key=sort_key)))


def oriented_sum(f: Expr) -> tuple[Expr, int]:
    """A sum factor (or its transpose) in the orientation of the smaller order key, and
    the sign that takes ``f`` there (``(x - m)^T`` is ``-(m - x)^T``); others as they are."""
    inner = f.arg if isinstance(f, Transpose) else f
    if not isinstance(inner, Add):
        return f, 1
    negated = _negated_sum(inner)
    if order_key(negated) >= order_key(inner):
        return f, 1
    return (Transpose(negated) if isinstance(f, Transpose) else negated), -1


def sign_free(e: Expr) -> tuple[Expr, int]:
    """``e`` with every sum factor in its oriented form, and the sign that relates them."""
    if not (isinstance(e, Mul) and any(
            isinstance(f.arg if isinstance(f, Transpose) else f, Add) for f in e.factors)):
        return e, 1
    sign, factors = 1, []
    for f in e.factors:
        g, s = oriented_sum(f)
        sign *= s
        factors.append(g)
    return Mul(tuple(factors)), sign


class _ZeroFactor(Exception):
    """A zero factor in an elementwise product (internal to ``_monomial``)."""




def _is_all_ones(e: Expr) -> bool:
    """``1``, ``1^T`` or ``1 1^T``: the neutral element of the Hadamard product."""
    if isinstance(e, Ones) or (isinstance(e, Transpose) and isinstance(e.arg, Ones)):
        return True
    return (
        isinstance(e, Mul)
        and len(e.factors) == 2
        and isinstance(e.factors[0], Ones)
        and isinstance(e.factors[1], Transpose)
        and isinstance(e.factors[1].arg, Ones)
    )


def _integer_exponent(e: Expr) -> int | None:
    """``k`` when ``e`` is ``X^k`` for an integer ``k`` (None otherwise)."""
    if isinstance(e, Pow) and isinstance(e.exponent, Number) and e.exponent.value.denominator == 1:
        return int(e.exponent.value)
    return None


def as_power(f: Expr) -> tuple[Expr, int]:
    """``f`` as base and signed integer exponent: ``X^-T`` is (``X^T``, -1), ``X^3`` (X, 3)."""
    k = _integer_exponent(f)
    if k is not None:
        base = f.base  # type: ignore[attr-defined]
        inner = _integer_exponent(base.arg) if isinstance(base, Transpose) else None
        if inner == -1:  # (X^-T)^k
            return Transpose(base.arg.base), -k  # type: ignore[attr-defined]
        return base, k
    if isinstance(f, Transpose) and _integer_exponent(f.arg) == -1:
        return Transpose(f.arg.base), -1  # type: ignore[attr-defined]
    return f, 1


def make_power(base: Expr, k: int) -> Expr:
    """The canonical ``base^k`` (k != 0): transposed inverses as the leaf ``X^-T``."""
    if k == 1:
        return base
    if k < 0 and isinstance(base, Transpose):
        inverse = Transpose(Pow(base.arg, num(-1)))
        return inverse if k == -1 else Pow(inverse, num(-k))
    return Pow(base, num(k))


def _merge_chain_powers(chain: list[Expr]) -> list[Expr]:
    """Adjacent powers of one square matrix add their exponents: ``X X X`` is ``X^3``,
    ``A^-1 A`` and ``X^T X^-T`` cancel, ``X^2 X^-1`` is ``X`` (an inverse in the chain
    means the matrix is invertible)."""
    out: list[tuple[Expr, int]] = []
    for f in chain:
        if f.shape[0] != f.shape[1] or isinstance(f, Identity):
            out.append((f, 0))  # 0: not a power to merge
            continue
        base, k = as_power(f)
        if out and out[-1][1] != 0 and out[-1][0] == base:
            total = out[-1][1] + k
            if total == 0:
                out.pop()
            else:
                out[-1] = (base, total)
        else:
            out.append((base, k))
    return [b if k == 0 else make_power(b, k) for b, k in out]


def _mixed_products(chain: list[Expr]) -> list[Expr]:
    """(A ⊗ B)(C ⊗ D) = (A C) ⊗ (B D) when the products exist (Matrix Cookbook eq. 511)."""
    out: list[Expr] = []
    for f in chain:
        prev = out[-1] if out else None
        if (
            isinstance(prev, Kron)
            and isinstance(f, Kron)
            and prev.left.shape[1] == f.left.shape[0]
            and prev.right.shape[1] == f.right.shape[0]
        ):
            out[-1] = simplify(
                Kron(Mul((prev.left, f.left)), Mul((prev.right, f.right)))
            )
            continue
        out.append(f)
    return out


def _scalar_prefix(chain: list[Expr]) -> int:
    """The length of the longest leading part of ``chain`` that is a scalar followed by a
    factor that is not a row (``x^T x`` in ``x^T x a``); 0 if there is none."""
    best = 0
    for i in range(2, len(chain)):
        if chain[0].shape[0] == 1 and chain[i - 1].shape[1] == 1 and chain[i].shape[0] != 1:
            best = i
    return best


def _scalar_segments(chain: list[Expr]) -> list[list[Expr]]:
    """The chain cut wherever the product so far is a scalar: ``x^T y y^T x`` is
    ``[x^T, y], [y^T, x]``."""
    segments: list[list[Expr]] = []
    current: list[Expr] = []
    for f in chain:
        current.append(f)
        if current[0].shape[0] == 1 and f.shape[1] == 1:
            segments.append(current)
            current = []
    if current:
        segments.append(current)
    return segments


def _is_flat_chain(e: Expr) -> bool:
    """A product of array factors only (no scalar factor or coefficient)."""
    return isinstance(e, Mul) and all(not f.is_scalar for f in e.factors)


def _is_chain(e: Mul) -> bool:
    return any(not f.is_scalar for f in e.factors)


def _probability_sums(chain: list[Expr]) -> list[Expr]:
    """``1^T y = y^T 1 = 1`` for a declared probability vector ``y``."""
    out: list[Expr] = []
    for f in chain:
        if out and (
            (_is_ones_row(out[-1]) and _is_probability(f))
            or (_is_probability_row(out[-1]) and isinstance(f, Ones))
        ):
            out.pop()
            continue
        out.append(f)
    return out


def _is_ones_row(e: Expr) -> bool:
    return isinstance(e, Transpose) and isinstance(e.arg, Ones)


def _is_probability(e: Expr) -> bool:
    """A declared probability vector, or a softmax (its entries sum to one)."""
    return (isinstance(e, Symbol) and "probability" in e.props) or (
        isinstance(e, Call) and e.name == "softmax")


def _is_probability_row(e: Expr) -> bool:
    return isinstance(e, Transpose) and _is_probability(e.arg)


def _merge_powers(scalars: list[Expr], simplifier: Simplifier) -> list[Expr]:
    """``s s^-1`` cancels and ``s s`` is ``s^2`` among scalar factors; a symbolic exponent
    adds like a number (``e e^(mu - 1)`` is ``e^mu``: the product of the two is inf * 0
    where ``e`` overflows and the power itself is finite)."""
    powers: dict[Expr, Fraction] = {}
    seen: dict[Expr, list[Expr]] = {}
    symbolic: dict[Expr, list[Expr]] = {}  # exponents that are not numbers, per base
    for s in scalars:
        if isinstance(s, Pow) and not isinstance(s.exponent, Number):
            base = s.base
            powers.setdefault(base, _FRACTION_ZERO)
            symbolic.setdefault(base, []).append(s.exponent)
        else:
            base, k = _base_and_exponent(s, Pow)
            powers[base] = powers.get(base, _FRACTION_ZERO) + k
        seen[base] = [*seen.get(base, []), s]
    others: list[Expr] = []
    for base, k in powers.items():
        if len(seen[base]) == 1:
            others.append(seen[base][0])
        elif base in symbolic:
            total = simplifier(Add((num(k), *symbolic[base])))
            if not isinstance(total, Number):
                others.append(Pow(base, total))
            elif total.value != 0:
                others.append(_power_of(base, total.value, Pow))
        elif k != 0:
            others.append(_power_of(base, k, Pow))
    return others


def _base_and_exponent(f: Expr, power: type) -> tuple[Expr, Fraction]:
    """``f`` as ``base`` to a numeric exponent, ``sqrt(u)`` as ``u`` to 1/2 (``power`` is
    Pow for scalars, ElemPow for arrays): so ``e / sqrt(e)`` is ``sqrt(e)``, which stays
    finite where ``e`` underflows to 0 (the derivative of ``sqrt(exp(s))``)."""
    base, k = f, _FRACTION_ONE
    if isinstance(f, power) and isinstance(f.exponent, Number):
        base, k = f.base, f.exponent.value
    if isinstance(base, Call) and base.name == "sqrt":
        base, k = base.args[0], k / 2
    return base, k


def _power_of(base: Expr, k: Fraction, power: type) -> Expr:
    """``base`` to the exponent ``k`` (k != 0), with ``sqrt`` for the halves."""
    if k == 1:
        return base
    if abs(k) == Fraction(1, 2):
        root = Call("sqrt", (base,))
        return root if k > 0 else power(root, num(-1))
    return power(base, num(k))


# ---------------------------------------------------------------------------- factoring


_CHAIN_PARTS: dict[Expr, tuple[Fraction, list[Expr], list[Expr]]] = memo_table()


def _chain_parts(term: Expr) -> tuple[Fraction, list[Expr], list[Expr]]:
    """(coefficient, scalar factors, matrix chain) of a term (memoised: the terms of long
    sums are factored again and again as the sums grow; the lists are never changed)."""
    hit = _CHAIN_PARTS.get(term)
    if hit is None:
        if len(_CHAIN_PARTS) > 200_000:
            _CHAIN_PARTS.clear()
        hit = _CHAIN_PARTS[term] = _split_chain(term)
    return hit


def _split_chain(term: Expr) -> tuple[Fraction, list[Expr], list[Expr]]:
    c, rest = split_coefficient(term)
    factors = rest.factors if isinstance(rest, Mul) else (() if is_one(rest) else (rest,))
    scalars: list[Expr] = []
    chain: list[Expr] = []
    for f in factors:  # one pass: each factor's shape is asked once
        (scalars if f.is_scalar else chain).append(f)
    return c, scalars, chain


def _build(c: Fraction, scalars: list[Expr], chain: list[Expr]) -> Expr:
    factors = ([num(c)] if c != 1 else []) + scalars + chain
    if not factors:
        return num(1)
    return factors[0] if len(factors) == 1 else Mul(tuple(factors))


def factor_sum(terms: list[Expr], simplifier: Simplifier | None = None) -> Expr | None:
    """Pull a common left or right matrix factor out of every term: ``A x + B x = (A + B) x``
    (the sums inside simplified by ``simplifier``, so that its memo serves them)."""
    simplifier = simplifier or Simplifier()
    parts = [_chain_parts(t) for t in terms]
    if all(c < 0 for c, _, _ in parts):  # -A - B = -(A + B)
        return Mul((num(-1), simplifier(Add(tuple(with_coefficient(-c, _build(1, s, chain))
                                                   for c, s, chain in parts)))))
    shared = _shared_scalar_powers([s for _, s, _ in parts])
    if shared:  # a common scalar factor: z A + z B = z (A + B), s^2 a - s b = s (s a - b)
        inner = [_build(c, _divided(s, shared), chain) for c, s, chain in parts]
        return Mul((*(make_power(b, k) for b, k in shared.items()),
                    simplifier(Add(tuple(inner)))))
    if any(not chain for _, _, chain in parts):
        return _factor_groups(terms, parts, simplifier) if len(terms) > 2 else None
    krons = [chain[0] for _, s, chain in parts if not s and len(chain) == 1
             and isinstance(chain[0], Kron)]
    if len(krons) == len(parts) > 1:
        # (A + B) ⊗ C = A ⊗ C + B ⊗ C (Matrix Cookbook (2012) sec. 10.2.2), read backwards
        for same, other in (("right", "left"), ("left", "right")):
            if all(getattr(k, same) == getattr(krons[0], same) for k in krons):
                summed = simplifier(Add(tuple(with_coefficient(c, getattr(k, other))
                                              for (c, _, _), k in zip(parts, krons,
                                                                      strict=True))))
                pair = (summed, krons[0].right) if same == "right" else (
                    krons[0].left, summed)
                return Kron(*pair)
    if len(parts) > 1 and all(chain == parts[0][2] and len(chain) == 1 for _, _, chain in parts):
        # one array times different scalars: a x - b x = (a - b) x
        coefficients = simplifier(Add(tuple(_build(c, s, []) for c, s, _ in parts)))
        return Mul((coefficients, parts[0][2][0]))
    for side in (-1, 0):
        common = parts[0][2][side]
        # a common factor up to the sign of a sum: S^-1 (x - m) - S^-T (m - x) is
        # (S^-1 + S^-T) (x - m)
        oriented, first_sign = oriented_sum(common)
        signs = []
        for _, _, chain in parts:
            g, sign = oriented_sum(chain[side])
            if g is not oriented and g != oriented:
                break  # not common to every term (the others need not be compared)
            signs.append(sign * first_sign)
        if len(signs) == len(parts) and all(
            len(chain) > 1 for _, _, chain in parts
        ):
            rests = [chain[:-1] if side == -1 else chain[1:] for _, _, chain in parts]
            inner = [_build(c * sign, s, rest) for (c, s, _), rest, sign
                     in zip(parts, rests, signs, strict=True)]
            shapes = {product_shape([f.shape for f in rest]) for rest in rests}
            if len(shapes) != 1:
                continue
            summed = simplifier(Add(tuple(inner)))
            c, rest = split_coefficient(summed)
            if c < 0 and any(sign != 1 for sign in signs):
                # the minus into the common sum where the terms disagreed on its sign:
                # -1/2 (S^-1 + S^-T) (m - x) is 1/2 (S^-1 + S^-T) (x - m)
                f, inner_sum = common, common.arg if isinstance(common, Transpose) else common
                negated = _negated_sum(inner_sum)  # type: ignore[arg-type]
                common = Transpose(negated) if isinstance(f, Transpose) else negated
                summed = with_coefficient(-c, rest)
            return Mul((summed, common)) if side == -1 else Mul((common, summed))
    return _factor_groups(terms, parts, simplifier)


def _scalar_powers(scalars: list[Expr]) -> dict[Expr, int]:
    powers: dict[Expr, int] = {}
    for f in scalars:
        base, k = as_power(f) if _integer_exponent(f) is not None else (f, 1)
        powers[base] = powers.get(base, 0) + k
    return powers


def _shared_scalar_powers(scalar_lists: list[list[Expr]]) -> dict[Expr, int]:
    """The scalar factors common to every term: a positive power to the least one
    (``s^2 a - s b`` shares ``s``), a denominator only where it is the same in every term
    (``a / r^2 + b / r^2``; ``a / r - b / r^2`` stays the quotient rule's two terms)."""
    powers = [_scalar_powers(s) for s in scalar_lists]
    shared: dict[Expr, int] = {}
    for base in powers[0]:
        ks = [p.get(base, 0) for p in powers]
        if all(k > 0 for k in ks):
            shared[base] = min(ks)
        elif all(k == ks[0] < 0 for k in ks):
            shared[base] = ks[0]
    return shared


def _divided(scalars: list[Expr], shared: dict[Expr, int]) -> list[Expr]:
    """The scalar factors left when the shared powers are taken out."""
    return [make_power(b, k - shared.get(b, 0)) for b, k in _scalar_powers(scalars).items()
            if k != shared.get(b, 0)]


def _factor_groups(terms: list[Expr], parts: list, simplifier: Simplifier) -> Expr | None:
    """Factor the terms that share a right factor when not all do:
    ``b + A x + A^T x = b + (A + A^T) x`` (only groups of two or more, one pass)."""
    groups: dict[Expr, list[int]] = {}
    for i, (_, _, chain) in enumerate(parts):
        if len(chain) > 1:
            groups.setdefault(chain[-1], []).append(i)
    for members in groups.values():
        if 1 < len(members) < len(terms):
            factored = factor_sum([terms[i] for i in members], simplifier)
            if factored is None:
                continue
            rest = [t for i, t in enumerate(terms) if i not in members]
            return Add((*rest, factored))
    return None


# ---------------------------------------------------------------------------- rules


@lru_cache(maxsize=1)
def expansion_rules():
    """The identities of rules/expansions.rules, tried by the cost-based expansion search."""
    from .rewrite import load_rules

    return load_rules("expansions")


@lru_cache(maxsize=1)
def simplify_index():
    """The identities of rules/simplify.rules by the head of the expression they rewrite
    (their patterns are written in canonical form)."""
    from .rewrite import index_rules, load_rules

    return index_rules(load_rules("simplify"), lambda e: e)


@applies_to(Call)
def determinant_of_power(e: Expr) -> Expr | None:
    """det(U^k) = det(U)^k for an integer k (rules/simplify.rules: simplify_det_power)."""
    if isinstance(e, Call) and e.name == "det":
        k = _integer_exponent(e.args[0])
        if k is not None:
            return Pow(Call("det", (e.args[0].base,)), num(k))  # type: ignore[attr-defined]
    return None


@applies_to(Call)
def determinant_of_rank_deficient(e: Expr) -> Expr | None:
    """det(u v^T) = 0 for a declared size above 1: a product through a vector has rank at
    most one (rules/simplify.rules: simplify_det_rank_deficient). A symbolic size stays,
    since for n = 1 the determinant is the product itself."""
    from .rewrite import is_rank_deficient

    if isinstance(e, Call) and e.name == "det" and is_rank_deficient(e.args[0]):
        n = e.args[0].shape[0]
        if isinstance(n, int) and n > 1:
            return num(0)
    return None


@applies_to(Call)
def log_determinant_of_power(e: Expr) -> Expr | None:
    """logdet(U^k) = k logdet(U) for an integer k (rules/simplify.rules)."""
    if isinstance(e, Call) and e.name == "logdet":
        k = _integer_exponent(e.args[0])
        if k is not None:
            return Mul((num(k), Call("logdet", (e.args[0].base,))))  # type: ignore[attr-defined]
    return None


def _on_chain(e: Expr, rewrite: Callable[[list[Expr]], list[Expr]]) -> Expr | None:
    """Apply ``rewrite`` to the matrix factors of a product (None when nothing changes)."""
    if not isinstance(e, Mul):
        return None
    scalars: list[Expr] = []
    chain: list[Expr] = []
    for f in e.factors:  # one pass: each factor's shape is asked once
        (scalars if f.is_scalar else chain).append(f)
    if len(chain) < 2:
        return None
    new = rewrite(chain)
    if new == chain:
        return None
    if not new and not e.is_scalar:
        new = [Identity(e.shape[0])]
    factors = scalars + new
    return (factors[0] if len(factors) == 1 else Mul(tuple(factors))) if factors else num(1)


@applies_to(Mul)
def chain_powers(e: Expr) -> Expr | None:
    """X^a X^b = X^(a+b) for adjacent powers of one square matrix (X^-1 X = I,
    X^T X^-T = I; Matrix Cookbook eq. 1 ff.); rules/simplify.rules: simplify_chain_powers."""
    return _on_chain(e, _merge_chain_powers)


@applies_to(Mul)
def probability_sums(e: Expr) -> Expr | None:
    """1^T p = p^T 1 = 1 for a probability vector or a softmax (rules/simplify.rules)."""
    return _on_chain(e, _probability_sums)


def _is_diagonal_of_vector(e: Expr) -> bool:
    return isinstance(e, Call) and e.name == "diag" and e.shape[1] != 1


@applies_to(Add)
def diagonal_sums(e: Expr) -> Expr | None:
    """diag(u) + diag(v) = diag(u + v): the diagonal matrices of a sum become one
    (rules/simplify.rules)."""
    if not isinstance(e, Add):
        return None
    diagonals: list[Expr] = []
    others: list[Expr] = []
    for t in e.terms:
        c, rest = split_coefficient(t)
        if _is_diagonal_of_vector(rest):
            diagonals.append(with_coefficient(c, rest.args[0]))  # type: ignore[attr-defined]
        else:
            others.append(t)
    if len(diagonals) < 2:
        return None
    merged = Call("diag", (Add(tuple(diagonals)),))
    return Add((*others, merged)) if others else merged


def _diagonal_products(chain: list[Expr]) -> list[Expr]:
    """diag(u) diag(v) = diag(u ⊙ v) for adjacent diagonal matrices of vectors."""
    out: list[Expr] = []
    for f in chain:
        if out and _is_diagonal_of_vector(out[-1]) and _is_diagonal_of_vector(f):
            out[-1] = simplify(Call("diag", (Hadamard((out[-1].args[0], f.args[0])),)))
            continue
        out.append(f)
    return out


@applies_to(Mul)
def diagonal_products(e: Expr) -> Expr | None:
    """diag(u) diag(v) = diag(u ⊙ v) anywhere in a chain (rules/simplify.rules)."""
    return _on_chain(e, _diagonal_products)


@applies_to(Mul)
def mixed_products(e: Expr) -> Expr | None:
    """(A ⊗ B)(C ⊗ D) = (A C) ⊗ (B D) (Matrix Cookbook eq. 511; rules/simplify.rules)."""
    return _on_chain(e, _mixed_products)


@applies_to(Kron)
def kronecker_of_identities(e: Expr) -> Expr | None:
    """``I_m ⊗ I_n = I_mn`` (the identity of the product size, which a pattern cannot name)."""
    if isinstance(e, Kron) and isinstance(e.left, Identity) and isinstance(e.right, Identity):
        return Identity(e.shape[0])
    return None


@applies_to(Call)
def diagonal_of_ones(e: Expr) -> Expr | None:
    """``diag(1) = I`` (the identity of the vector's size, which a pattern cannot name)."""
    if isinstance(e, Call) and e.name == "diag" and isinstance(e.args[0], Ones):
        return Identity(e.args[0].n)
    return None


@applies_to(Call)
def trace_rotation(e: Expr) -> Expr | None:
    """tr of a product: scalars out, and the cheapest cyclic rotation of the chain or of its
    transpose (Matrix Cookbook eqs. 13, 16; rules/simplify.rules: simplify_trace_cyclic)."""
    if isinstance(e, Call) and e.name == "tr" and not e.args[0].is_scalar:
        return Simplifier()._trace(e.args[0])
    return None


def sigmoid_of_negation(e: Expr) -> Expr | None:
    """sigma(-z) = 1 - sigma(z) (rules/expansions.rules: 1/(1 + e^z) = 1 - 1/(1 + e^-z))."""
    if isinstance(e, Call) and e.name == "sigma":
        c, rest = split_coefficient(e.args[0])
        if c < 0:
            inner = with_coefficient(-c, rest)
            return Add((Ones(e.shape[0]) if not e.is_scalar else ONE,
                        Mul((num(-1), Call("sigma", (inner,))))))
    return None


_METHODS: dict[type, Callable[[Simplifier, Expr], Expr] | None] = {}


def _method_for(node_type: type) -> Callable[[Simplifier, Expr], Expr] | None:
    """The Simplifier's method for a node type (``_Add`` for Add), looked up once per type."""
    try:
        return _METHODS[node_type]
    except KeyError:
        method = _METHODS[node_type] = getattr(Simplifier, "_" + node_type.__name__, None)
        return method


# ---------------------------------------------------------------------------- entry points


def simplify(e: Expr, simplifier: Simplifier | None = None) -> Expr:
    """The canonical, textbook form of ``e`` (equal results print identically)."""
    return (simplifier or Simplifier())(e)


def prune_differentials(
    e: Expr,
    keep: Callable[[Differential], bool],
    simplifier: Simplifier | None = None,
) -> Expr:
    """Replace the differentials ``keep`` rejects by zero and simplify.

    Sub-expressions without a differential are left as they are (not even visited), so a
    caller that shares ``simplifier`` pays only for the parts of the differential that
    change.
    """
    from .rewrite import has_differential as contains

    def walk(x: Expr) -> Expr:
        if isinstance(x, Differential):
            return x if keep(x) else zero_like(x)
        if not contains(x):
            return x
        return x.map_children(walk)

    return (simplifier or Simplifier())(walk(e))
