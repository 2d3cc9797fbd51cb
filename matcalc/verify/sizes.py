"""Dimension instantiation: distinct small sizes for the symbolic dimensions of a check."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from ..dims import Dim, DimUnion, Product, dim_factors, mul_dims
from ..expr import (
    SCALAR,
    Add,
    Call,
    ElemDiv,
    Expr,
    Hadamard,
    Mul,
    Pow,
    Symbol,
    leaf_dims,
)
from ..functions import FUNCTIONS


def checker_union() -> DimUnion:
    """The checker's union-find: any two names may be joined, numbers are fixed (a size
    mismatch with a number shows when evaluating)."""
    return DimUnion(lambda root, other: not isinstance(root, int) and not isinstance(other, int))


def _structural_pairs(e: Expr) -> Iterator[tuple[Dim, Dim]]:
    """Dimension equalities an expression's operators imply."""
    if isinstance(e, Mul):
        mats = [f for f in e.factors if f.shape != SCALAR]
        for left, right in zip(mats, mats[1:], strict=False):
            yield left.shape[1], right.shape[0]
    elif isinstance(e, (Add, Hadamard, ElemDiv)):
        items = [t for t in e.children if t.shape != SCALAR]
        for other in items[1:]:
            yield items[0].shape[0], other.shape[0]
            yield items[0].shape[1], other.shape[1]
    elif (isinstance(e, Pow) and e.base.shape != SCALAR) or (
        isinstance(e, Call) and FUNCTIONS[e.name].accepts == "square"
    ):
        yield e.children[0].shape[0], e.children[0].shape[1]


def small_first(exprs: Sequence[Expr]) -> list[Dim]:
    """Dimensions of matrices that are inverted or whose determinant is taken: their SymPy
    forms grow fastest with the size, so they get the smallest sizes."""
    out: list[Dim] = []
    for e in exprs:
        for node in e.walk():
            if (isinstance(node, Pow) and node.base.shape != SCALAR) or (
                isinstance(node, Call) and FUNCTIONS[node.name].small_sizes
            ):
                out.append(node.children[0].shape[0])
    return out


def build_union(exprs: Sequence[Expr]) -> DimUnion:
    """The dimension classes of some expressions: operators and same-named variables join."""
    union = checker_union()
    by_name: dict[str, Symbol] = {}
    for e in exprs:
        for node in e.walk():
            for d in leaf_dims(node):
                union.add(d)
            for a, b in _structural_pairs(node):
                union.union(a, b)
            if isinstance(node, Symbol):
                first = by_name.setdefault(node.name, node)
                union.union(first.dims[0], node.dims[0])
                union.union(first.dims[1], node.dims[1])
    return union


def assign(union: DimUnion, priority: Sequence[Dim]) -> dict[Dim, int]:
    """Distinct sizes 2, 3, ... per class of names; a class equal to a product gets the
    product. The result maps every name (never a product) to its size."""
    classes = union.classes()
    value: dict[Dim, int] = {}
    for root, members in classes.items():
        fixed = [m for m in members if isinstance(m, int)]
        if fixed:
            value[root] = fixed[0]
    free = [r for r, ms in classes.items()
            if r not in value and not any(isinstance(m, Product) for m in ms)]
    ranked = [union.find(d) for d in priority if union.find(d) in free]
    for size, root in enumerate(dict.fromkeys([*ranked, *free]), start=2):
        value[root] = size
    _resolve_products(union, classes, value)
    out: dict[Dim, int] = {}
    for d in union.order:
        for name in (f for f in dim_factors(d) if isinstance(f, str)):
            root = union.find(name)
            if root not in value:  # only ever seen inside products: a size of its own
                value[root] = max(value.values(), default=1) + 1
            out[name] = value[root]
    return out


def _product_value(union: DimUnion, d: Product, value: dict[Dim, int]) -> int | None:
    out = 1
    for f in dim_factors(d):
        size = f if isinstance(f, int) else value.get(union.find(f))
        if size is None:
            return None
        out *= size
    return out


def _resolve_products(union: DimUnion, classes: dict[Dim, list[Dim]],
                      value: dict[Dim, int]) -> None:
    """Give each class that contains a product the product of its factors' sizes."""
    pending = [r for r in classes if r not in value]
    next_size = max(value.values(), default=1) + 1
    while pending:
        progress = False
        for root in list(pending):
            for m in classes[root]:
                size = _product_value(union, m, value) if isinstance(m, Product) else None
                if size is not None:
                    value[root] = size
                    pending.remove(root)
                    progress = True
                    break
        if not progress:  # a product of unknown factors only: fix one factor and retry
            root = pending[0]
            product = next(m for m in classes[root] if isinstance(m, Product))
            unknown = next(union.find(p) for p in product.names if union.find(p) not in value)
            value[unknown] = next_size
            next_size += 1
            if unknown in pending:
                pending.remove(unknown)


def concrete_sizes(exprs: Iterable[Expr], equal: Iterable[tuple[Dim, Dim]] = ()
                   ) -> dict[Dim, int]:
    """Distinct sizes 2, 3, 4, ... for the dimension names of some expressions.

    Same-named variables in different expressions get the same sizes; a dimension equal
    to a product (``k = m*n``) gets the product; ``equal`` lists further dimensions known
    to be equal. Products themselves are not keys: ``dims.dim_value`` computes them.
    """
    exprs = list(exprs)
    union = build_union(exprs)
    for a, b in equal:
        union.union(a, b)
    return assign(union, small_first(exprs))


def expected_shape(f: Expr, wrt: Symbol, mode: str) -> tuple[Dim, Dim]:
    """The shape of the ``mode`` derivative of ``f`` with respect to ``wrt``."""
    if mode == "grad":
        return wrt.dims
    size_x = mul_dims(*wrt.dims)
    if mode == "hessian":
        return size_x, size_x
    return mul_dims(*f.shape), size_x


def sizes_for(f: Expr, wrt: Symbol, result: Expr, mode: str) -> dict[Dim, int]:
    """Sizes for checking ``result`` against ``f``: the result's own dimensions follow
    the expected shape only where ``f`` does not fix them, so that a transposed result
    still shows up as a shape mismatch."""
    union = build_union([f, wrt, result])
    anchored = {union.find(d) for e in (f, wrt) for n in e.walk() for d in leaf_dims(n)}
    for want, have in zip(expected_shape(f, wrt, mode), result.shape, strict=True):
        if isinstance(have, str) and union.find(have) not in anchored:
            union.union(want, have)
    return assign(union, small_first([f, result]))
