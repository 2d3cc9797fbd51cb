"""A Newton method with the exact dense Hessian, for bounds or no constraints.

Each iteration at ``x`` (gradient ``g``, Hessian ``H`` from matcalc's derived formulas)
works on the quadratic model ``m(s) = g^T s + 1/2 s^T H s``, as L-BFGS-B does with its
quasi-Newton matrix (Byrd, Lu, Nocedal, Zhu, SIAM J. Sci. Comput. 16(5), 1995) and TRON
with the exact one (Lin, Moré, SIAM J. Optim. 9(4), 1999):

1. with bounds, the generalized Cauchy point: the first minimizer of the model along the
   projected gradient path ``P(x - t g)`` (``P`` clips to the bounds), found segment by
   segment between the points where coordinates reach their bounds. The coordinates on a
   bound there are the active set; this identifies many of them in one step;
2. a Newton step on the free coordinates from the Cauchy point, ``-H_FF^-1 r_F`` with
   ``r`` the model's gradient there (when ``H_FF`` is not positive definite: Newton along
   its eigenvectors of positive curvature, ``|lambda|`` in place of a negative
   eigenvalue, and along zero curvature, where the objective is linear, the gradient up
   to the first bound, as for the two halves of a split ``w = w_plus - w_minus`` that are
   both free), projected onto the bounds; if the model is higher there than at the
   Cauchy point, the step stops instead where it first reaches a bound (as L-BFGS-B's);
3. Armijo's rule along the segment from ``x`` to that point,
   ``f(x + a s) <= f(x) + 1e-4 a g^T s + 1e-14 |f|`` for ``a = 1, 1/2, ...`` (the last term
   is f's rounding error, below which a Newton step's promised decrease falls near the
   solution); if it fails, along the segment to the Cauchy point before giving up.

It stops when the projected gradient ``max|x - P(x - g)|`` is at most the tolerance,
which is the KKT residual ``minimize`` reports for bounds, or after eight steps in a row
that neither lowered ``f`` beyond its rounding nor halved the projected gradient (the
accuracy of floating point is reached). On a quadratic the model is
exact and one step is exact once the active set is right; near a nondegenerate solution
the convergence is quadratic. Each iteration evaluates the Hessian once (once in all when
it does not depend on the variables) and factorises its free block, so it suits problems
with up to a few hundred unknowns whose Hessian costs about as much as a few gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from .lagrangian import Outcome

_SIGMA = 1e-4  # Armijo's sufficient decrease
_FLOOR = 1e-10  # smallest eigenvalue kept, relative to the largest
_HALVINGS = 40
_NOISE = 1e-14  # relative rounding error allowed in f by the Armijo test
_STALLS = 8  # steps without progress in f or in the projected gradient before giving up


@dataclass
class _Point:
    x: np.ndarray
    f: float
    g: np.ndarray


def _free_step(H: np.ndarray, r: np.ndarray, x: np.ndarray, lower: np.ndarray,
               upper: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The Newton step of the model on the free coordinates (zero on the others).

    A free coordinate whose row of the Schur complement is (numerically) zero where the
    Cholesky factorisation reaches it depends on the ones before it: it keeps its value
    for this step and the factorisation goes on without it (as for the two halves of a
    split ``w = w_plus - w_minus`` that are both free: one moves now, the other next
    time if it must). Otherwise a failed factorisation means negative curvature, and the
    step comes from the eigenvalues (``_modified_step``)."""
    from scipy.linalg.lapack import dposv, dtrtrs  # SciPy is the optional extra minimize needs

    step = np.zeros_like(r)
    index = np.flatnonzero(free)
    while index.size:
        HF = H[index[:, None], index]
        factor, solution, info = dposv(HF, r[index], lower=1)
        scale = float(np.max(np.diagonal(HF)))
        if info == 0:
            pivots = np.diagonal(factor) ** 2
            k = int(np.argmin(pivots))
            if pivots[k] > _FLOOR * scale:
                step[index] = -solution
                return step
        else:  # the factorisation stopped at k: is its row of the Schur complement zero?
            k = info - 1
            row = HF[k, k:].copy()
            if k > 0:
                Z = dtrtrs(factor[:k, :k], HF[:k, k:], lower=1)[0]
                row -= Z[:, 0] @ Z
            if not float(np.max(np.abs(row))) <= _FLOOR * scale:  # negative curvature
                step[index] = _modified_step(HF, r[index], x[index], lower[index],
                                             upper[index])
                return step
        index = np.delete(index, k)
    index = np.flatnonzero(free)  # no curvature anywhere (a linear objective)
    if index.size:
        step[index] = _modified_step(H[index[:, None], index], r[index], x[index],
                                     lower[index], upper[index])
    return step


def _modified_step(H: np.ndarray, g: np.ndarray, x: np.ndarray, lower: np.ndarray,
                   upper: np.ndarray) -> np.ndarray:
    """The step for a Hessian that is not positive definite, from its eigenvalues: Newton
    along positive curvature, ``|lambda|`` for negative curvature, and along (numerically)
    zero curvature, where the objective is linear, the gradient up to the first bound that
    the rest of the step leaves room for."""
    values, vectors = np.linalg.eigh(H)
    top = float(np.max(np.abs(values), initial=0.0))
    curved = np.abs(values) > _FLOOR * top
    along = vectors.T @ g
    step = -vectors[:, curved] @ (along[curved] / np.abs(values[curved]))
    flat = -vectors[:, ~curved] @ along[~curved]
    if not flat.any():
        return step
    base = x + step
    room = np.where(flat < 0, (base - lower) / -flat,
                    np.where(flat > 0, (upper - base) / flat, np.inf))
    t = float(np.min(room, initial=np.inf))
    if not np.isfinite(t):  # linear and unbounded along it: a long step, the search decides
        t = 1.0 / (_FLOOR * max(top, 1.0))
    return step + max(t, 0.0) * flat


def _cauchy_point(x: np.ndarray, g: np.ndarray, H: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray) -> np.ndarray:
    """The first minimizer of the model along the projected gradient path ``P(x - t g)``.

    Between breakpoints the path is a segment ``s + tau d``; the model's slope and
    curvature along it are updated as each coordinate reaches its bound (Byrd, Lu,
    Nocedal, Zhu 1995, section 4), one row of ``H`` per breakpoint."""
    breaks = np.where(g > 0, (x - lower) / g, np.where(g < 0, (x - upper) / g, np.inf))
    d = np.where(breaks > 0, -g, 0.0)
    Hd = H @ d
    slope, curvature = -float(d @ d), float(d @ Hd)
    s = np.zeros_like(x)
    t_prev = 0.0
    order = np.argsort(breaks, kind="stable")
    for i in order[np.searchsorted(breaks[order], 0.0, side="right"):]:
        if slope >= 0:
            break
        t = breaks[i]
        if curvature > 0 and -slope < curvature * (t - t_prev):  # the minimum is inside
            return x + s + (-slope / curvature) * d
        if t == np.inf:  # no bound ahead and no minimum: the model decreases without end
            return x + s + d
        s += (t - t_prev) * d
        slope += (t - t_prev) * curvature
        b = d[i]
        s[i] = (lower[i] if b < 0 else upper[i]) - x[i]  # exactly on its bound
        slope -= b * (g[i] + float(H[i] @ s))
        curvature -= b * (2.0 * Hd[i] - b * H[i, i])
        Hd -= b * H[:, i]
        d[i] = 0.0
        t_prev = t
    return x + s


def _feasible_fraction(x: np.ndarray, d: np.ndarray, lower: np.ndarray,
                       upper: np.ndarray) -> float:
    """The largest ``a`` in [0, 1] with ``x + a d`` within the bounds."""
    room = np.where(d < 0, (lower - x) / d, np.where(d > 0, (upper - x) / d, np.inf))
    return float(np.clip(np.min(room, initial=1.0), 0.0, 1.0))


def _model(g: np.ndarray, H: np.ndarray, s: np.ndarray) -> float:
    return float(g @ s + 0.5 * s @ (H @ s))


def _search(fun_and_grad: Callable, p: _Point, s: np.ndarray) -> _Point | None:
    """Armijo along ``x + a s``: the first accepted point, or None.

    The test allows the rounding error of ``f`` (``_NOISE`` times ``|f|``): near a solution
    the decrease a Newton step promises is below it, and a strict test would reject the
    very steps that converge quadratically."""
    slope = float(p.g @ s)
    if not slope < 0:
        return None
    noise = _NOISE * max(1.0, abs(p.f))
    a = 1.0
    for _ in range(_HALVINGS):
        x = p.x + a * s
        f, g = fun_and_grad(x)
        if f <= p.f + _SIGMA * a * slope + noise:
            return _Point(x, f, g)
        a *= 0.5
    return None


def solve(fun_and_grad: Callable, hessian: Callable[[np.ndarray], np.ndarray], x0: np.ndarray,
          lower: np.ndarray | None, upper: np.ndarray | None, tol: float, max_iter: int,
          callback: Callable | None = None) -> Outcome:
    """Minimize over the box ``lower <= x <= upper`` (None: no bounds) to a projected
    gradient of at most ``tol``. The caller ignores floating-point warnings
    (``np.errstate``): divisions by zero here give the infinities meant."""
    n = x0.size
    bounded = lower is not None
    lower = np.full(n, -np.inf) if lower is None else lower
    upper = np.full(n, np.inf) if upper is None else upper
    x = np.clip(np.asarray(x0, dtype=float), lower, upper)
    f, g = fun_and_grad(x)
    p = _Point(x, f, g)
    best, stalled = np.inf, 0
    for k in range(max_iter):
        residual = float(np.max(np.abs(p.x - np.clip(p.x - p.g, lower, upper)), initial=0.0))
        if residual <= tol:
            return Outcome(p.x, "projected gradient below the tolerance", k)
        if residual < 0.5 * best:
            stalled = 0
        best = min(best, residual)
        if stalled >= _STALLS:
            return Outcome(p.x, f"the projected gradient stays near {best:.2g} for "
                                f"{_STALLS} steps: the floating-point accuracy of the "
                                "objective and its gradient is reached", k)
        H = hessian(p.x)
        if bounded:
            cauchy = _cauchy_point(p.x, p.g, H, lower, upper)
            free = (cauchy > lower) & (cauchy < upper)
            r = p.g + H @ (cauchy - p.x)
        else:
            cauchy, free, r = p.x, np.ones(n, dtype=bool), p.g
        newton_step = _free_step(H, r, cauchy, lower, upper, free)
        to_cauchy = cauchy - p.x
        trial = cauchy + newton_step
        clipped = np.clip(trial, lower, upper)
        step = clipped - p.x
        if (bounded and not np.array_equal(clipped, trial)
                and _model(p.g, H, step) > _model(p.g, H, to_cauchy)):
            # the projection made it worse: stop the Newton step at the first bound
            step = to_cauchy + _feasible_fraction(cauchy, newton_step, lower, upper) * newton_step
        found = _search(fun_and_grad, p, step)
        if found is None and step is not to_cauchy and to_cauchy.any():
            found = _search(fun_and_grad, p, to_cauchy)
        if found is None:
            return Outcome(p.x, "no step decreases the objective: the floating-point "
                                "accuracy of the objective is reached", k)
        # a step that lowers f beyond its rounding is progress; one that does not, and
        # does not halve the projected gradient either, counts toward _STALLS
        stalled = 0 if p.f - found.f > _NOISE * max(1.0, abs(p.f)) else stalled + 1
        p = found
        if callback is not None:
            callback(SimpleNamespace(x=p.x, fun=p.f))
    return Outcome(p.x, "iteration limit reached", max_iter)
