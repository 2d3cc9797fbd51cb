"""Declared structure of the variable (LANGUAGE.md section 6): derivatives on the
symmetric or diagonal subspace from the independent-entries ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from ..expr import Symbol
from ..functions.matrix import vec_entries


def structure_projector(sym: Symbol, size: int) -> np.ndarray | None:
    """P with P vec(E) the orthogonal projection of a direction E onto the declared
    structure of ``sym``: N = (I + K)/2 for a symmetric matrix, diag(vec(I)) for a
    diagonal one; None when the entries are independent."""
    from ..commutation import permutation

    if "symmetric" in sym.props:
        k = np.eye(size * size)[permutation(size, size)]
        return (np.eye(size * size) + k) / 2
    if "diagonal" in sym.props:
        return np.diag(np.eye(size).reshape(-1, order="F"))
    return None


def project_direction(v: sympy.Matrix, sym: Symbol) -> sympy.Matrix:
    """P vec(v) as a matrix shaped like ``v`` (``v`` itself for independent entries)."""
    p = structure_projector(sym, v.rows)
    if p is None:
        return v
    out = _exact(p) * sympy.Matrix(vec_entries(v))
    return sympy.Matrix(v.rows, v.cols, lambda i, j: out[i + v.rows * j])


def project_derivative(d: Any, sym: Symbol, mode: str, size: int, exact: bool) -> Any:
    """The derivative on the declared structure from the independent-entries one ``d``:
    sym(G) or I ⊙ G for a gradient, J P for a derivative, P H P for a Hessian."""
    p = structure_projector(sym, size)
    if p is None:
        return d
    if exact:
        p = _exact(p)
    if mode == "grad" and exact:
        out = p @ sympy.Matrix(vec_entries(d))
        return sympy.Matrix(size, size, lambda i, j: out[i + size * j])
    if mode == "grad":
        out = p @ np.asarray(d).reshape(-1, 1, order="F")
        return out.reshape((size, size), order="F")
    if mode == "hessian":
        return p @ d @ p
    return d @ p


def _exact(p: np.ndarray) -> sympy.Matrix:
    """A projector with entries 0, 1/2, 1 as exact rationals."""
    return sympy.Matrix(p.shape[0], p.shape[1],
                        lambda i, j: sympy.Rational(int(round(2 * p[i, j])), 2))
