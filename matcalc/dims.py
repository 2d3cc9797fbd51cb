"""The dimension algebra: sizes as numbers, names and products, and one union-find over them.

A dimension is a concrete size (``3``), a name (``"n"``; ``"?3"`` while inferring) or a
``Product`` of names and a number, kept in one canonical form (names sorted), so that
``m*n`` and ``n*m`` are the same size. Shape inference (``shapes.py``) and the checker's
size assignment (``verify/``) use the same ``DimUnion``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .errors import UnsupportedError


@dataclass(frozen=True)
class Product:
    """A product of dimension names times a positive number, names in sorted order.

    Built by ``mul_dims`` only, which keeps it canonical: at least two factors in all,
    at least one name, and a number of 1 left out.
    """

    names: tuple[str, ...]
    number: int = 1

    def __str__(self) -> str:
        return "*".join(([str(self.number)] if self.number != 1 else []) + list(self.names))


Dim = int | str | Product
"""A dimension: a concrete size, a name such as ``"n"`` (``"?3"`` while inferring), or a
product of names (Kronecker products, vec)."""


def dim_factors(d: Dim) -> tuple[int | str, ...]:
    """The factors of a dimension: ``m*n`` -> (``"m"``, ``"n"``), ``2*n`` -> (2, ``"n"``)."""
    if isinstance(d, Product):
        return ((d.number,) if d.number != 1 else ()) + d.names
    return (d,)


def dim_names(d: Dim) -> tuple[str, ...]:
    """The names a dimension is made of (none for a number)."""
    return tuple(f for f in dim_factors(d) if isinstance(f, str))


def product_of(factors: Iterable[Dim]) -> Dim:
    """The product of some dimensions, in canonical form (a number or a name when it is one)."""
    number, names = 1, []
    for d in factors:
        for f in dim_factors(d):
            if isinstance(f, int):
                number *= f
            else:
                names.append(f)
    if not names:
        return number
    if number == 1 and len(names) == 1:
        return names[0]
    return Product(tuple(sorted(names)), number)


def mul_dims(a: Dim, b: Dim) -> Dim:
    """The product of two dimensions (Kronecker products, vec): ``mul_dims("n", "m")`` is
    the same ``m*n`` as ``mul_dims("m", "n")``."""
    return product_of((a, b))


def map_dim(d: Dim, fn: Callable[[Dim], Dim]) -> Dim:
    """Rename each factor of ``d`` with ``fn`` (numbers pass through ``fn`` too)."""
    if isinstance(d, Product):
        return product_of(fn(f) for f in dim_factors(d))
    return fn(d)


def dim_size(d: Dim, sizes: Mapping[Dim, int], default: int | None = None) -> int | None:
    """The concrete size of ``d`` given sizes of names (a product multiplies its factors);
    a name without a size counts as ``default``, or makes the result None."""
    if isinstance(d, int):
        return d
    if d in sizes:
        return sizes[d]
    out = 1
    for f in dim_factors(d):
        size = f if isinstance(f, int) else sizes.get(f, default)
        if size is None:
            return None
        out *= size
    return out


def dim_value(d: Dim, sizes: Mapping[Dim, int]) -> int:
    """The concrete size of ``d``; an ``UnsupportedError`` when a name has no size."""
    size = dim_size(d, sizes)
    if size is None:
        raise UnsupportedError(f"the size of dimension {d} is not known")
    return size


class DimUnion:
    """Union-find over dimensions, with the classes in order of first appearance.

    ``bindable(root, other)`` says whether the class of ``root`` may join that of
    ``other``: shape inference binds only inference variables (``?3``, never to 1), the
    checker any two names (never a number).
    """

    def __init__(self, bindable: Callable[[Dim, Dim], bool]) -> None:
        self.bindable = bindable
        self.parent: dict[Dim, Dim] = {}
        self.order: list[Dim] = []

    def add(self, d: Dim) -> None:
        if d not in self.parent:
            self.parent[d] = d
            self.order.append(d)

    def find(self, d: Dim) -> Dim:
        parent = self.parent
        up = parent.get(d)
        if up is None:  # a new class (``add``, inline: shape inference asks for every dim)
            parent[d] = d
            self.order.append(d)
            return d
        if up == d:  # a root (most dims)
            return d
        root = up
        while parent[root] != root:
            root = parent[root]
        while d != root:  # path compression
            parent[d], d = root, parent[d]
        return root

    def union(self, a: Dim, b: Dim) -> bool:
        """Make ``a`` and ``b`` one class; False when they may not be joined."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if self.bindable(ra, rb):
            self.parent[ra] = rb
            return True
        if self.bindable(rb, ra):
            self.parent[rb] = ra
            return True
        return False

    def classes(self) -> dict[Dim, list[Dim]]:
        """Every class by its root, members in order of first appearance."""
        out: dict[Dim, list[Dim]] = {}
        for d in self.order:
            out.setdefault(self.find(d), []).append(d)
        return out
