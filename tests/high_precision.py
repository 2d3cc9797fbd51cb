"""A 60-digit reference derivative, for points where float64 finite differences fail.

Central differences in float64 lose about ``1e-16 * cond / step`` of relative accuracy: near an
ill-conditioned matrix (``(I + M^T M)^-2`` with cond 1e8) or a small eigenvalue gap they
differ from the true derivative by tenths of a percent, as much as the tolerance they are
compared with. ``directional_errors`` recomputes the reference at the same point with f
evaluated at ``DIGITS`` significant digits (the SymPy algebra of ``matcalc.verify`` on
SymPy floats; mpmath's symmetric eigensolver and SVD for the spectral functions, which have
no SymPy form) and central differences of step ``STEP`` along random directions, accurate to
far more digits than float64 has; the float64 result under test is then compared with that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mpmath
import numpy as np
import sympy

from matcalc.evaluator import Evaluator
from matcalc.expr import Expr, Symbol
from matcalc.functions import Function
from matcalc.functions.vector import first_extreme
from matcalc.verify.structure import project_direction
from matcalc.verify.translate import SympyAlgebra

DIGITS = 60
STEP = sympy.Float("1e-20", DIGITS)
"""Truncation error ~ STEP^2 f''' and rounding ~ 10^-DIGITS / STEP: both far below 1e-16."""


FLOOR = 1e-10
"""A scale's least part, times 1 + |f|: where the derivative along a direction is exactly
zero (a Hessian of a piecewise-linear f), the reference is its own rounding, about
10^-DIGITS |f| / STEP^2 = 1e-20 |f| for second differences, and an error is compared with
that floor, far below the 1e-6 (1 + |f|) of the float64 oracle's absolute tolerance."""


def _mp(m: sympy.Matrix) -> mpmath.matrix:
    # an entry may still hold an exact constant such as exp(-12): evaluate it at DIGITS
    return mpmath.matrix([[mpmath.mpf(sympy.Float(sympy.N(v, DIGITS), DIGITS)._mpf_)
                           for v in row]
                          for row in m.tolist()])


def _sp(rows: list[list[Any]]) -> sympy.Matrix:
    return sympy.Matrix([[sympy.Float(v, DIGITS) for v in row] for row in rows])


def _unit_sign(v: list[Any]) -> int:
    """The sign convention of matcalc's unit vectors: the entry of largest magnitude > 0."""
    largest = max(range(len(v)), key=lambda i: abs(v[i]))
    return 1 if v[largest] >= 0 else -1


def _eigh(a: sympy.Matrix, which: int) -> tuple[Any, list[Any]]:
    values, vectors = mpmath.eigsy(_mp((a + a.T) / 2))
    order = sorted(range(len(values)), key=lambda i: values[i])
    k = order[which]
    v = [vectors[i, k] for i in range(vectors.rows)]
    sign = _unit_sign(v)
    return values[k], [sign * x for x in v]


def _svd(a: sympy.Matrix) -> tuple[list[Any], list[list[Any]], list[list[Any]]]:
    """Singular values (descending) with the columns of U and the rows of V^T."""
    u, s, vt = mpmath.svd_r(_mp(a), full_matrices=False)
    order = sorted(range(len(s)), key=lambda i: -s[i])
    cols = [[u[r, k] for r in range(u.rows)] for k in order]
    rows = [[vt[k, c] for c in range(vt.cols)] for k in order]
    return [s[k] for k in order], cols, rows


def _leading_singular_vector(a: sympy.Matrix, left: bool) -> sympy.Matrix:
    _, cols, rows = _svd(a)
    sign = _unit_sign(cols[0])
    return _sp([[sign * x] for x in (cols[0] if left else rows[0])])


def _polar(a: sympy.Matrix) -> sympy.Matrix:
    _, cols, rows = _svd(a)
    return _sp([[sum(c[i] * r[j] for c, r in zip(cols, rows, strict=True))
                 for j in range(a.cols)] for i in range(a.rows)])


_SPECTRAL: dict[str, Callable[[sympy.Matrix], sympy.Matrix]] = {
    "lambda_max": lambda a: _sp([[_eigh(a, -1)[0]]]),
    "lambda_min": lambda a: _sp([[_eigh(a, 0)[0]]]),
    "eigvec_max": lambda a: _sp([[x] for x in _eigh(a, -1)[1]]),
    "eigvec_min": lambda a: _sp([[x] for x in _eigh(a, 0)[1]]),
    "svec_left": lambda a: _leading_singular_vector(a, True),
    "svec_right": lambda a: _leading_singular_vector(a, False),
    "polar": _polar,
}


KINK = sympy.Float("1e-40", DIGITS)
"""An argument of ``sign`` or ``step`` this close to 0 is 0 up to the reference's own
rounding (20 digits of DIGITS): which side of the jump it is on is noise."""

_JUMPS = frozenset({"sign", "step"})
_EXTREMES = frozenset({"max", "min", "ismax", "ismin"})


def _extreme(name: str, a: sympy.Matrix) -> sympy.Matrix:
    """max, min and their indicators (the first extreme entry, as NumPy's argmax) at a tie
    too, which the checker's SymPy form refuses (its derivative is not defined there). The
    value is continuous at a tie, so the reference, which only evaluates f, is right; a tie
    at random points is one that persists (max(sign(v)), the entries of X + X^T), along
    which the derivative of either tied entry is the same."""
    entries = [sympy.N(v, DIGITS) for v in a]
    best = first_extreme(entries, largest=name in ("max", "ismax"))
    if name in ("max", "min"):
        return _sp([[entries[best]]])
    return sympy.Matrix(len(entries), 1, lambda i, j: 1 if i == best else 0)


@contextmanager
def finer(level: int = 1) -> Iterator[None]:
    """The reference at 120 digits with steps of 1e-45 (level 2: 240 digits, steps of
    1e-90; the soak is single-threaded): for a function that varies on a scale of 1e-19, as
    cos(U / exp(-43)) does, steps of 1e-20 are not small and the 60-digit reference is off
    by percents; cos(sqrt(exp(exp(H)))) varies on a scale of 1e-58 where H = 5.6."""
    global DIGITS, STEP, KINK
    saved = DIGITS, STEP, KINK
    DIGITS = 120 * level
    STEP = sympy.Float(f"1e-{45 * level}", DIGITS)
    KINK = sympy.Float(f"1e-{100 * level}", DIGITS)
    try:
        yield
    finally:
        DIGITS, STEP, KINK = saved


class AtAKink(Exception):
    """The point is on a jump of a piecewise-constant function, up to rounding: the
    reference cannot say on which side (sign(sylvester(G, G, G)) = sign(I/2) is constant,
    but the off-diagonal zeros come out as +-1e-60)."""


class HighPrecisionAlgebra(SympyAlgebra):
    """The SymPy algebra on DIGITS-digit floats, with mpmath for the spectral functions."""

    how = f"at {DIGITS} digits"

    # mpmath rounds every operation to its working precision: each runs inside workdps.

    def spectral_norm(self, a: sympy.Matrix) -> sympy.Matrix:
        with mpmath.workdps(DIGITS):
            return _sp([[_svd(a)[0][0]]])

    def nuclear_norm(self, a: sympy.Matrix) -> sympy.Matrix:
        with mpmath.workdps(DIGITS):
            return _sp([[sum(_svd(a)[0])]])

    def call(self, fn: Function, a: sympy.Matrix) -> sympy.Matrix:
        if fn.name in _JUMPS and any(abs(sympy.N(v, DIGITS)) < KINK for v in a):
            raise AtAKink(fn.name)
        if fn.name in _EXTREMES:
            return _extreme(fn.name, a)
        if fn.sympy is None:
            with mpmath.workdps(DIGITS):
                return _SPECTRAL[fn.name](a)
        return fn.sympy_matrix(sympy, a).evalf(DIGITS)  # exp(3) as a number, not a symbol


def _evaluate(f: Expr, env: dict[str, sympy.Matrix], sizes: dict) -> sympy.Matrix:
    return Evaluator(HighPrecisionAlgebra(), env, sizes).run(f)


def evaluate(e: Expr, point: dict, sizes: dict) -> np.ndarray:
    """The value of ``e`` at a float64 point, computed at DIGITS digits, rounded to float64."""
    env = {name: _as_matrix(v) for name, v in point.items()}
    return np.array(_evaluate(e, env, sizes).tolist(), dtype=float)


def _as_matrix(value: Any) -> sympy.Matrix:
    arr = np.atleast_2d(np.asarray(value, dtype=float))
    if np.ndim(value) == 1:
        arr = arr.T
    return _sp(arr.tolist())


def directional_errors(f: Expr, wrt: Symbol, point: dict, sizes: dict, mode: str,
                       got: np.ndarray, rng: np.random.Generator, directions: int = 3
                       ) -> list[tuple[float, float]]:
    """For random directions v (and w): (|reference - claimed|, scale) where the reference
    is the derivative of f along the structure-projected directions at DIGITS digits and
    the claimed value is ``got`` (the float64 result, in the layout of ``mode``: gradient,
    d vec(f) / d vec(wrt)^T, or Hessian) applied to them; scale is the sum of the absolute
    values of the terms of that product (the size of what may cancel), plus |reference|
    and FLOOR (1 + |f|)."""
    env = {name: _as_matrix(v) for name, v in point.items()}
    x0 = env[wrt.name]
    rows, cols = x0.shape

    def value(x: sympy.Matrix) -> sympy.Matrix:
        return _evaluate(f, {**env, wrt.name: x}, sizes)

    def direction() -> tuple[sympy.Matrix, list[float]]:
        v = _sp(rng.standard_normal((rows, cols)).tolist())
        return project_direction(v, wrt), [float(e) for e in v.T]  # vec: column-major

    out = []
    h = STEP
    claimed = np.asarray(got, dtype=float)
    floor = FLOOR * (1 + float(max(abs(v) for v in value(x0))))
    for _ in range(directions):
        pv, v = direction()
        if mode == "hessian":
            pw, w = direction()
            ref = (value(x0 + h * pv + h * pw) - value(x0 + h * pv - h * pw)
                   - value(x0 - h * pv + h * pw) + value(x0 - h * pv - h * pw)) / (4 * h * h)
            terms = np.asarray(v)[:, None] * claimed.reshape(len(v), len(w)) * np.asarray(w)
            reference = np.array([float(ref[0, 0])])
            have = np.array([terms.sum()])
            scale = float(np.abs(terms).sum())
        else:
            ref = (value(x0 + h * pv) - value(x0 - h * pv)) / (2 * h)
            reference = np.array([float(e) for e in ref.T])  # vec of the directional derivative
            jac = claimed.reshape(-1, len(v), order="F") if mode == "derivative" else (
                claimed.reshape(1, -1, order="F") if claimed.ndim == 2 else claimed.reshape(1, -1))
            terms = jac * np.asarray(v)
            have = terms.sum(axis=1)
            scale = float(np.abs(terms).sum(axis=1).max())
        error = float(np.max(np.abs(reference - have)))
        out.append((error, scale + float(np.max(np.abs(reference))) + floor))
    return out
