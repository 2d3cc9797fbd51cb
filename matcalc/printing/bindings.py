"""Name repeated sub-expressions (``... where h = tanh(W1 x)``), as backpropagation caches them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ..expr import (
    Call,
    Commutation,
    Differential,
    Expr,
    Identity,
    Number,
    Ones,
    Sylvester,
    Symbol,
    Transpose,
    Zero,
    fold_dag,
    map_bottom_up,
    topological_order,
)
from ..functions import FUNCTIONS

MIN_SAVING = 4
"""Name a repeated function value when that saves at least this many printed nodes
(softmax(x) three times is named, sigma(x) twice is not: diag(sigma(x) ⊙ (1 - sigma(x))))."""
MIN_SAVING_OTHER = 12
"""Other repeated sub-expressions (sums, inverses, products) are named only when large:
(x - a) / ||x - a||_2 reads better inline."""

_TRIVIAL = (Symbol, Number, Identity, Ones, Zero, Differential, Commutation)


def _trivial(e: Expr) -> bool:
    if isinstance(e, _TRIVIAL):
        return True
    return isinstance(e, Transpose) and isinstance(e.arg, _TRIVIAL)


def bind_common(expr: Expr) -> tuple[Expr, list[tuple[Symbol, Expr]]]:
    """The expression with each repeated non-trivial sub-expression replaced by a name.

    One pass over the DAG, parents first: a node printed twice or more gets a name, and
    its definition is printed once (so its own sub-expressions count once through it).
    Returns the body and the bindings, innermost first (a binding may use earlier ones).
    """
    taken = {s.name for s in expr.free_symbols()}
    order = topological_order(expr)
    sizes: dict[Expr, int] = {}
    for node in reversed(order):  # children before parents
        sizes[node] = 1 + sum(sizes[c] for c in node.children)
    times: Counter[Expr] = Counter({expr: 1})
    chosen: dict[Expr, Symbol] = {}
    for node in order:
        n = times[node]
        needed = MIN_SAVING if isinstance(node, Call) else MIN_SAVING_OTHER
        worth = (n - 1) * sizes[node] >= needed
        if n >= 2 and worth and not _trivial(node) and node is not expr:
            chosen[node] = Symbol(f"_{len(chosen)}", node.shape)
            n = 1
        for c in node.children:
            times[c] += n
    if not chosen:
        return expr, []
    named: dict[Expr, Expr] = {}  # each node with its chosen sub-expressions named
    inside: dict[Expr, Expr] = {}  # the same, for the definition of a chosen node
    for node in reversed(order):  # children first, iteratively
        kids = node.children
        new = tuple(named[c] for c in kids)
        inside[node] = node.rebuild(new) if kids and new != kids else node
        named[node] = chosen.get(node, inside[node])
    bindings = [(name, inside[node]) for node, name in chosen.items()]
    return _rename(named[expr], _dependency_order(bindings), taken)


# A tree this much larger than its DAG prints with where-bindings even from ``str()``:
# spelled out, sub-expressions shared by bindings that double at each step would make the
# text exponential in the size of the formula.
_SPELLED_OUT_LIMIT = 10_000
_TREE_SIZES: dict[Expr, int] = {}


def needs_bindings(expr: Expr) -> bool:
    """Printing ``expr`` in full would repeat shared parts many times over."""
    tree = fold_dag(expr, lambda node, inner: 1 + sum(inner), _TREE_SIZES)
    if tree <= _SPELLED_OUT_LIMIT:
        return False
    return tree > 4 * len(topological_order(expr))


def with_where(expr: Expr, render: Callable[[Expr], str], where: str, sep: str) -> str:
    """``render(body)`` followed by the where-bindings of its repeated sub-expressions."""
    body, named = bind_common(expr)
    if not named:
        return render(body)
    return f"{render(body)}{where}" + sep.join(f"{render(n)} = {render(d)}" for n, d in named)


def _letter(e: Expr) -> str:
    if isinstance(e, Call):
        return FUNCTIONS[e.name].letter  # s = softmax(z), h = tanh(W x), ...
    if isinstance(e, Sylvester):
        return "W"  # the unknown of A W + W B = C
    if e.is_scalar:
        return "z"
    return "u" if e.kind in ("vector", "row vector") else "M"  # M: a matrix


def _rename(body: Expr, bindings: list[tuple[Symbol, Expr]], taken: set[str]
            ) -> tuple[Expr, list[tuple[Symbol, Expr]]]:
    """Readable names, numbered innermost first: h1 = tanh(W1 x), h2 = tanh(W2 h1)."""
    letters = [_letter(d) for _, d in bindings]
    total = Counter(letters)
    used: Counter[str] = Counter()
    mapping: dict[Expr, Expr] = {}
    for (old, _), letter in zip(bindings, letters, strict=True):
        if total[letter] == 1 and letter not in taken:
            name = letter
        else:
            used[letter] += 1
            while f"{letter}{used[letter]}" in taken:
                used[letter] += 1
            name = f"{letter}{used[letter]}"
        taken.add(name)
        mapping[old] = Symbol(name, old.dims)

    def sub(e: Expr) -> Expr:
        return map_bottom_up(e, lambda node, rebuilt: mapping.get(node, rebuilt))

    return sub(body), [(mapping[n], sub(d)) for n, d in bindings]


def _dependency_order(bindings: list[tuple[Symbol, Expr]]) -> list[tuple[Symbol, Expr]]:
    """Definitions that others use come first."""
    placed: list[tuple[Symbol, Expr]] = []
    remaining = list(bindings)
    names = {n for n, _ in bindings}
    while remaining:
        for item in remaining:
            uses = item[1].free_symbols() & names
            if uses <= {n for n, _ in placed}:
                placed.append(item)
                remaining.remove(item)
                break
        else:  # pragma: no cover - bindings never form a cycle
            placed.extend(remaining)
            break
    return placed
