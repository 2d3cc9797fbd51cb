"""A rough count of the floating-point operations that evaluating formulas takes at given sizes.

``flops`` walks the formulas once (a sub-expression shared between them counts once, as
the generated code computes it once): a chain of matrix products in its cheapest order,
with a ``diag(v)`` or identity factor costing a scaling; inverses, determinants and the
other matrix functions of an n×n argument n³; everything else one operation per entry
of its result. It only compares methods (a dense Hessian against a gradient), so a factor
of two either way does not matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..dims import dim_size
from ..expr import (
    Call,
    Commutation,
    Expr,
    Identity,
    Kron,
    Mul,
    Number,
    Ones,
    Pow,
    Symbol,
    Transpose,
    Zero,
)
from ..functions import FUNCTIONS

_FREE = (Symbol, Number, Ones, Zero, Identity, Transpose)
_CUBIC = {name for name, f in FUNCTIONS.items() if f.family == "spectral"} | {
    "det", "logdet", "adj"}
"""Functions of an n×n matrix that take a factorisation: about n³ operations."""


def _size(d, sizes: Mapping) -> int:
    return dim_size(d, sizes, default=1) or 1


def _entries(e: Expr, sizes: Mapping) -> float:
    return float(_size(e.shape[0], sizes) * _size(e.shape[1], sizes))


def _is_diagonal(e: Expr) -> bool:
    return isinstance(e, Identity) or (isinstance(e, Call) and e.name == "diag"
                                       and e.shape[0] != 1 and e.args[0].shape[1] == 1)


def _chain(factors: list[Expr], sizes: Mapping) -> float:
    """The cheapest order of a product chain (the classic dynamic program); a diagonal
    factor costs one operation per entry of what it scales."""
    mats = [f for f in factors if not f.is_scalar]
    scalars = len(factors) - len(mats)
    if not mats:
        return float(scalars)
    dims = [_size(mats[0].shape[0], sizes)] + [_size(m.shape[1], sizes) for m in mats]
    diag = [_is_diagonal(m) for m in mats]
    n = len(mats)
    best = {(i, i): 0.0 for i in range(n)}
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            best[(i, j)] = min(
                best[(i, k)] + best[(k + 1, j)]
                + (dims[i] * dims[j + 1] if all(diag[i:k + 1]) or all(diag[k + 1:j + 1])
                   else dims[i] * dims[k + 1] * dims[j + 1])
                for k in range(i, j))
    return best[(0, n - 1)] + scalars * dims[0] * dims[-1]


def _node_cost(e: Expr, sizes: Mapping) -> float:
    if isinstance(e, _FREE):
        return 0.0
    if isinstance(e, Mul):
        return _chain(list(e.factors), sizes)
    if isinstance(e, (Kron, Commutation)):
        return _entries(e, sizes)
    if isinstance(e, Pow):  # a matrix power or inverse
        return float(_size(e.base.shape[0], sizes)) ** 3
    if isinstance(e, Call) and e.name in _CUBIC and e.args[0].shape[0] != 1:
        return float(_size(e.args[0].shape[0], sizes)) ** 3
    return _entries(e, sizes) * max(1, len(e.children))


def flops(exprs: Iterable[Expr], sizes: Mapping) -> float:
    """Operations to evaluate all of ``exprs`` once, with ``sizes`` giving each dimension."""
    total, seen = 0.0, set()
    for root in exprs:
        for node in root.walk():
            if node not in seen:
                seen.add(node)
                total += _node_cost(node, sizes)
    return total
