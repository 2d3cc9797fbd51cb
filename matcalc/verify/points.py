"""The numeric phase of a check: the derivative at random exact points, compared entrywise.

At each point the derivative of ``f`` along random directions is taken by central
differences of its SymPy value at ``DIGITS`` significant digits (steps of 1e-12; 1e-10 for
second derivatives), accurate to about 20 digits, and compared with the claimed
derivative to a relative 1e-12. The cost is a fixed number of evaluations of ``f`` per
point (four; eight for a Hessian), whatever the formula and its sizes; a disagreement is
located entry by entry (two evaluations per entry). Points satisfy the declarations; a point where a
side is not a finite real number (log of a negative number, ...) is replaced, preferring
positive entries. Functions without a SymPy form are compared with NumPy finite
differences instead (relative 1e-5).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy

from .. import numeric
from ..errors import MatcalcError
from ..functions.matrix import vec_entries
from ..numeric import shape_value
from .case import Case
from .report import CheckReport
from .sizes import expected_shape
from .structure import project_derivative, project_direction
from .translate import layout, rational_point, to_sympy

DIGITS = 40
_STEP = sympy.Float("1e-12", DIGITS)
_STEP_SECOND = sympy.Float("1e-10", DIGITS)
RTOL = 1e-12


def number(value: sympy.Expr) -> complex | None:
    """A finite complex value at high precision, or None."""
    try:
        z = complex(sympy.N(value, DIGITS))
    except (TypeError, ValueError):
        return None
    return z if np.isfinite(z.real) and np.isfinite(z.imag) else None


def _real(value: sympy.Expr) -> bool:
    z = number(value)
    return z is not None and abs(z.imag) <= 1e-20 * (1 + abs(z.real))


def show(value: sympy.Expr) -> str:
    """A value for a report: a number to 10 digits when it is one."""
    z = number(value)
    if z is None:
        return str(value)
    if abs(z.imag) <= 1e-20 * (1 + abs(z.real)):
        return f"{z.real:.10g}"
    return f"{z:.10g}"


def _compare(expected: sympy.Matrix, got: sympy.Matrix
             ) -> tuple[tuple[int, int], Any, Any] | None:
    """The first entry where two evaluated matrices differ, or None."""
    for i in range(expected.rows):
        for j in range(expected.cols):
            e, g = expected[i, j], got[i, j]
            scale, diff = number(e), number(e - g)
            if scale is None or diff is None or abs(diff) > RTOL * (1 + abs(scale)):
                return (i, j), show(e), show(g)
    return None


def central_differences(value: Callable[[sympy.Matrix], sympy.Matrix], x0: sympy.Matrix,
                        mode: str) -> sympy.Matrix:
    """The ``mode`` derivative of ``value`` at ``x0`` by central differences, entries of
    ``x0`` moved one at a time (column-major, as vec)."""
    rows, cols = x0.shape
    n = rows * cols

    def at(*moves: tuple[int, Any]) -> sympy.Matrix:
        x = x0.copy()
        for k, h in moves:
            x[k % rows, k // rows] += h
        return value(x)

    if mode == "hessian":
        h = _STEP_SECOND
        hess = sympy.zeros(n, n)
        for i in range(n):
            for j in range(i, n):
                total = (at((i, h), (j, h)) - at((i, h), (j, -h)) - at((i, -h), (j, h))
                         + at((i, -h), (j, -h)))[0, 0]
                hess[i, j] = hess[j, i] = total / (4 * h * h)
        return hess
    h = _STEP
    columns = [vec_entries((at((k, h)) - at((k, -h))) / (2 * h)) for k in range(n)]
    d = sympy.Matrix(len(columns[0]), n, lambda i, k: columns[k][i])
    return layout(d, (rows, cols), mode)


def _direction(case: Case, rng: random.Random) -> sympy.Matrix:
    """A random direction for ``wrt``: entries k/8, k in 2..10, of both signs."""
    rows, cols = shape_value(case.wrt.dims, case.sizes)
    return sympy.Matrix(rows, cols, lambda i, j: sympy.Rational(rng.randint(2, 10), 8)
                        * rng.choice((-1, 1)))


def _along(case: Case, value: Callable[[sympy.Matrix], sympy.Matrix], x0: sympy.Matrix,
           got: sympy.Matrix, rng: random.Random) -> tuple[Any, Any, list[Any]]:
    """(the derivative of ``f`` along random directions by central differences, the same
    read off the claimed derivative ``got``, the terms of that reading for a scale)."""
    # The derivative on a declared structure is the independent-entries one projected
    # (sym(G), J P, P H P): f is moved along the projected directions P v.
    v = _direction(case, rng).evalf(DIGITS)
    pv = project_direction(v, case.wrt)
    if case.mode == "hessian":
        w = _direction(case, rng).evalf(DIGITS)
        pw = project_direction(w, case.wrt)
        h = _STEP_SECOND
        numeric = (value(x0 + h * pv + h * pw) - value(x0 + h * pv - h * pw)
                   - value(x0 - h * pv + h * pw) + value(x0 - h * pv - h * pw)) / (4 * h * h)
        vs, ws = vec_entries(v), vec_entries(w)
        terms = [vs[i] * got[i, j] * ws[j] for i in range(got.rows) for j in range(got.cols)]
        return numeric, sympy.Matrix([[sum(terms)]]), terms
    h = _STEP
    numeric = (value(x0 + h * pv) - value(x0 - h * pv)) / (2 * h)
    if case.mode == "grad":
        terms = [got[i, j] * v[i, j] for i in range(v.rows) for j in range(v.cols)]
        return numeric, sympy.Matrix([[sum(terms)]]), terms
    return sympy.Matrix(vec_entries(numeric)), got * sympy.Matrix(vec_entries(v)), list(got)


def _at_a_kink(case: Case, value: Callable[[sympy.Matrix], sympy.Matrix], x0: sympy.Matrix,
               rng: random.Random) -> bool:
    """Whether f (its gradient, for a Hessian) has no derivative at ``x0`` along a random
    direction: the one-sided differences disagree (at a kink the central ones do not see,
    ``(relu(h) - relu(-h)) / 2h = 1/2``), as small rational points often land on one."""
    pv = project_direction(_direction(case, rng).evalf(DIGITS), case.wrt)
    h = _STEP
    sides = [((value(x0 + h * pv) - value(x0)) / h, (value(x0) - value(x0 - h * pv)) / h)]
    if case.mode == "hessian":
        h = _STEP_SECOND
        sides.append(((value(x0 + 2 * h * pv) - 2 * value(x0 + h * pv) + value(x0)) / (h * h),
                      (value(x0) - 2 * value(x0 - h * pv) + value(x0 - 2 * h * pv)) / (h * h)))
    for ahead, behind in sides:
        for a, b in zip(ahead, behind, strict=True):
            diff, size = number(a - b), number(a)
            if diff is None or size is None or abs(diff) > 1e-6 * (1 + abs(size)):
                return True
    return False


def _agree(numeric: sympy.Matrix, claimed: sympy.Matrix, terms: list[Any]) -> bool:
    """Equal to a relative RTOL of the size of the terms (their sum may cancel)."""
    scale = sum(abs(number(t) or 0) for t in terms)
    for a, b in zip(numeric, claimed, strict=True):
        diff = number(a - b)
        if diff is None or abs(diff) > RTOL * (1 + scale):
            return False
    return True


def check_points(case: Case, points: int, rng: random.Random) -> CheckReport:
    """Compare at ``points`` random points (raises UnsupportedError without a SymPy form).

    At each point the derivative is compared along two random directions (two
    evaluations of ``f`` each, four for a Hessian), so the cost does not grow with the
    number of entries; only a disagreement costs the entrywise derivative, to name the
    entry that differs.
    """
    done = attempts = 0
    while done < points and attempts < 4 * points:
        positive = attempts % 2 == 1 or attempts >= 2 * points
        attempts += 1
        point = rational_point(case.symbols, case.sizes, rng, positive)
        floats = {name: m.evalf(DIGITS) for name, m in point.items()}

        def value(x: sympy.Matrix, floats: dict = floats) -> sympy.Matrix:
            return to_sympy(case.f, {**floats, case.wrt.name: x}, case.sizes)

        x0 = floats[case.wrt.name]
        got = to_sympy(case.result, floats, case.sizes)
        if not all(_real(v) for v in value(x0)):
            continue  # outside the domain (log of a negative number, ...)
        along = [_along(case, value, x0, got, rng) for _ in range(2)]
        if not all(_real(v) for numeric, _, _ in along for v in numeric):
            continue
        if all(_agree(*a) for a in along):
            done += 1
            continue
        if _at_a_kink(case, value, x0, rng):
            continue  # relu(sum(x)) where sum(x) = 0: no derivative to compare
        done += 1
        deriv = project_derivative(central_differences(value, x0, case.mode), case.wrt,
                                   case.mode, x0.rows, exact=True)
        if got.shape != deriv.shape:
            return CheckReport(False, "exact", case.sizes, detail=(
                f"the result has shape {got.shape}, expected {deriv.shape}"))
        differs = _compare(deriv, got)
        if differs is None:  # every entry agrees: the directions were at the tolerance's
            continue  # edge (a kink of the gradient shifts central differences by h)
        index, expected, have = differs
        return CheckReport(False, "numeric", case.sizes, index, expected, have,
                           detail=f"at {_describe_point(point)}", points=done)
    if done == 0:
        return CheckReport(False, "numeric", case.sizes, detail=(
            "no point found where the function is defined, real and differentiable"))
    return CheckReport(True, "numeric", case.sizes, points=done)


def _describe_point(point: Mapping[str, sympy.Matrix]) -> str:
    parts = []
    for name, m in point.items():
        shown = m[0, 0] if m.shape == (1, 1) else m.tolist()
        parts.append(f"{name} = {shown}")
    text = "; ".join(parts)
    return text if len(text) < 400 else text[:400] + " ..."


def check_finite_differences(case: Case, points: int, rng: np.random.Generator) -> CheckReport:
    """Functions without a SymPy form: compare with NumPy central differences (relative 1e-5)."""
    done = 0
    shape = shape_value(expected_shape(case.f, case.wrt, case.mode), case.sizes)
    for attempt in range(3 * points):
        values = numeric.random_point(case.symbols, case.sizes, rng, positive=attempt % 2 == 1)
        try:
            fd = numeric.finite_difference(case.f, case.wrt, values, case.mode)
            got = numeric.evaluate(case.result, values, case.sizes)
        except MatcalcError as err:
            return CheckReport(False, "numeric", case.sizes, detail=str(err))
        fd2 = project_derivative(np.asarray(fd, dtype=float).reshape(shape), case.wrt,
                                 case.mode, shape_value(case.wrt.dims, case.sizes)[0],
                                 exact=False)
        got2 = np.asarray(got, dtype=float).reshape(shape)
        if not np.all(np.isfinite(fd2)):
            continue
        done += 1
        bad = np.abs(fd2 - got2) > 1e-5 * (1 + np.abs(fd2))
        if bad.any() or not np.all(np.isfinite(got2)):
            i, j = map(int, np.argwhere(bad | ~np.isfinite(got2))[0])
            return CheckReport(False, "numeric", case.sizes, (i, j), f"{fd2[i, j]:.8g}",
                               f"{got2[i, j]:.8g}", detail="finite differences", points=done)
        if done >= points:
            break
    if done == 0:
        return CheckReport(False, "numeric", case.sizes, detail="no point where f is finite")
    return CheckReport(True, "numeric", case.sizes, detail="finite differences", points=done)
