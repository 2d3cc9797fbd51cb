"""``check_derivative``: the checker's entry point, from texts or expressions to a report."""

from __future__ import annotations

import random
from collections.abc import Mapping

import numpy as np

from ..errors import ShapeError, UnsupportedError
from ..expr import SCALAR, Expr, Symbol, substitute_dims
from ..numeric import MODES, shape_value, symbols_of
from .case import Case
from .exact import prove
from .points import check_finite_differences, check_points
from .report import CheckReport
from .sizes import expected_shape, sizes_for


def check_derivative(
    f: Expr | str,
    wrt: Symbol | str,
    result: Expr | str,
    mode: str = "grad",
    *,
    points: int = 3,
    exact: bool = True,
    seed: int = 0,
    **decls: str,
) -> CheckReport:
    """Check that ``result`` is the ``mode`` derivative of ``f`` with respect to ``wrt``.

    Modes (LANGUAGE.md section 6): ``grad`` (f scalar; shape of wrt), ``jacobian``
    (m x n, J_ij = dy_i/dx_j), ``hessian`` (n x n), ``derivative`` (d vec(f) / d vec(wrt)^T,
    column-major). Strings are parsed with ``decls`` as declarations. Safe to call from
    any thread; its cost is bounded by the sizes (see ``points`` and ``exact``).
    """
    f_expr = _as_expr(f, decls)
    result_expr = _as_expr(result, decls)
    if isinstance(result, str):  # parsed on its own: its dimension names are its own
        result_expr = substitute_dims(result_expr, _prime)
    wrt_sym = _find_wrt(wrt, f_expr, result_expr, mode)
    _validate(f_expr, wrt_sym, mode)
    sizes = sizes_for(f_expr, wrt_sym, result_expr, mode)
    want = shape_value(expected_shape(f_expr, wrt_sym, mode), sizes)
    have = shape_value(result_expr.shape, sizes)
    if want != have:
        return CheckReport(False, "exact", sizes, detail=(
            f"the result has shape {have}, a {mode} here has shape {want}"))
    case = Case(f_expr, wrt_sym, result_expr, mode, sizes)
    try:
        report = check_points(case, points, random.Random(seed))
    except UnsupportedError:
        return check_finite_differences(case, points, np.random.default_rng(seed))
    if report and exact:
        try:
            proved = prove(case)
        except (RecursionError, UnsupportedError):  # e.g. max of symbolic entries
            proved = None
        if proved is not None:
            return proved
    return report


def _prime(d: object) -> object:
    """A dimension name of a separately parsed result, kept apart from the function's."""
    return d + "'" if isinstance(d, str) else d


def _as_expr(e: Expr | str, decls: Mapping[str, str]) -> Expr:
    if isinstance(e, Expr):
        return e
    from ..parse import parse

    return parse(e, **decls)


def _validate(f: Expr, wrt: Symbol, mode: str) -> None:
    if mode not in MODES:
        raise UnsupportedError(f"unknown derivative mode {mode!r}; use one of {', '.join(MODES)}")
    if mode in ("grad", "hessian") and f.shape != SCALAR:
        raise ShapeError(f"{mode} needs a scalar-valued function, got shape {f.shape}")
    if mode == "jacobian" and (f.shape[1] != 1 or wrt.dims[1] != 1):
        raise ShapeError("jacobian relates a vector or scalar to a vector or scalar")


def _find_wrt(wrt: Symbol | str, f: Expr, result: Expr, mode: str) -> Symbol:
    if isinstance(wrt, Symbol):
        return wrt
    for sym in symbols_of([f, result]):
        if sym.name == wrt:
            return sym
    rows, cols = result.shape  # absent variable: its shape follows from the result's
    dims = {"grad": (rows, cols), "hessian": (rows, 1)}.get(mode, (cols, 1))
    return Symbol(wrt, dims)
