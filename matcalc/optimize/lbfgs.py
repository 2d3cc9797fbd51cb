"""L-BFGS in NumPy, for no constraints or bounds: the quasi-Newton method without SciPy's wrapper.

The direction is L-BFGS's (Nocedal, Wright, *Numerical Optimization*, section 7.2: the
inverse Hessian approximation of the last ``MEMORY`` steps from ``gamma I``,
``gamma = s^T y / y^T y``; a step whose ``s^T y`` is not positive is not stored),
applied in the compact form (``_Memory``), with bounds by the two-loop recursion on the
free coordinates.

- **No bounds:** the step satisfies the strong Wolfe conditions
  ``f(x + t d) <= f(x) + C1 t g^T d`` and ``|g(x + t d)^T d| <= C2 |g^T d|`` (the first
  up to the rounding of ``f``, 1e-14 relative: near the solution the slopes still tell
  where the minimum lies when the values no longer do), found by
  extrapolation and safeguarded cubic interpolation of the values and slopes (algorithms
  3.5 and 3.6); the first trial is ``t = 1`` (``1 / ||g||`` for a steepest-descent step).
- **Bounds** (``lower <= x <= upper``): the two-metric projection method (Bertsekas,
  *SIAM J. Control Optim.* 20(2), 1982; Schmidt, Kim, Sra, in *Optimization for Machine
  Learning*, 2012). The coordinates within ``eps`` of a bound whose gradient pushes
  against it are held (their step is ``-gamma g``, which projection keeps on the bound);
  the others take the L-BFGS direction computed with the pairs restricted to them; the
  step follows the
  projected arc ``P(x + t d)`` back from ``t = 1`` until
  ``f(P(x + t d)) <= f(x) + C1 g^T (P(x + t d) - x)`` (Armijo's rule), ``t`` halved or
  set by the minimum of the quadratic through ``f`` and the slope at 0; a direction
  without a quasi-Newton scale (no pair stored) is followed further, ten times at a
  time, while ``f`` stays nearly linear along it (so that an objective unbounded below
  is found so).

It stops when the projected gradient ``max|x - P(x - g)|`` (the gradient without
bounds) is at most the tolerance: the KKT residual ``minimize`` reports. Each trial
point is an evaluation of the value and the gradient; what SciPy's L-BFGS-B spends
around them in Python (its bounds converted twice, its function wrappers) is gone,
which is most of its cost on problems of a few hundred unknowns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

from .lagrangian import Outcome

C1 = 1e-4  # sufficient decrease
C2 = 0.9  # curvature (no bounds): the usual choice for quasi-Newton methods
MEMORY = 20
_TRIALS = 40  # trial steps per line search before giving up
_SAFEGUARD = 0.1  # an interpolated step keeps this fraction of the bracket from its ends
_NOISE = 1e-14  # relative rounding of f allowed by Armijo's rule near the solution

FunAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _cubic(a: float, fa: float, sa: float, b: float, fb: float, sb: float) -> float:
    """The minimizer of the cubic through the values and slopes at ``a`` and ``b``
    (NaN when there is none)."""
    d1 = sa + sb - 3.0 * (fa - fb) / (a - b)
    root = d1 * d1 - sa * sb
    if not root >= 0.0:
        return math.nan
    d2 = math.copysign(math.sqrt(root), b - a)
    den = sb - sa + 2.0 * d2
    return b - (b - a) * (sb + d2 - d1) / den if den != 0.0 else math.nan


def _wolfe(fun_and_grad: FunAndGrad, x: np.ndarray, f0: float, d: np.ndarray, slope0: float,
           t: float) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The point ``x + t d`` of a step satisfying the strong Wolfe conditions (the best
    point of sufficient decrease when the trials run out), or ``None``."""
    lo, f_lo, s_lo, best = 0.0, f0, slope0, None  # the best step with sufficient decrease
    hi: tuple[float, float, float] | None = None  # the other end of the bracket
    noise = _NOISE * abs(f0)  # near the solution f changes by its rounding only
    for _ in range(_TRIALS):
        point = x + t * d
        f, g = fun_and_grad(point)
        s = float(g @ d)
        if (not (math.isfinite(f) and math.isfinite(s)) or f > f0 + C1 * t * slope0 + noise
                or f > f_lo + noise):
            hi = (t, f, s)
        elif abs(s) <= -C2 * slope0:
            return point, f, g
        else:
            if s * (t - lo) >= 0:  # the minimum lies back towards lo
                hi = (lo, f_lo, s_lo)
            previous = (lo, s_lo)
            lo, f_lo, s_lo, best = t, f, s, (point, f, g)
            if hi is None:  # still descending: extrapolate by the secant of the slope
                p, sp = previous
                guess = t - s * (t - p) / (s - sp) if s > sp else math.inf
                t = min(max(guess, 2.0 * t), 10.0 * t)
                continue
        a, b, (fb, sb) = lo, hi[0], hi[1:]
        width = b - a
        if abs(width) <= 1e-16 * max(1.0, abs(a)):
            break
        guess = (_cubic(a, f_lo, s_lo, b, fb, sb) if math.isfinite(fb) and math.isfinite(sb)
                 else math.nan)
        if not math.isfinite(guess):
            guess = a + 0.5 * width
        t = min(max(guess, min(a, b) + _SAFEGUARD * abs(width)),
                max(a, b) - _SAFEGUARD * abs(width))
    return best


def _projected_armijo(fun_and_grad: FunAndGrad, x: np.ndarray, f0: float, g0: np.ndarray,
                      d: np.ndarray, lower: np.ndarray, upper: np.ndarray, t: float,
                      expand: bool = False) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The point ``P(x + t d)`` of the first step back from ``t`` along the projected arc
    that satisfies Armijo's rule, or ``None``. With ``expand`` (a direction without a
    quasi-Newton scale) a step that satisfies it where the slope is still more than C2
    of the slope at 0 (``f`` nearly linear, the step far too short) is followed by steps
    ten times longer while they satisfy it and lower ``f``."""
    noise = _NOISE * abs(f0)
    for _ in range(_TRIALS):
        point = np.clip(x + t * d, lower, upper)
        decrease = float(g0 @ (point - x))
        if not decrease < 0.0:  # the arc has left the descent directions: nothing to gain
            return None
        f, g = fun_and_grad(point)
        if math.isfinite(f) and f <= f0 + C1 * decrease + noise:
            found = (point, f, g)
            # the slope along the step still C2 of what it was: f is nearly linear there
            while expand and float(g @ (point - x)) < C2 * float(g0 @ (point - x)):
                t *= 10.0
                point = np.clip(x + t * d, lower, upper)
                if np.array_equal(point, found[0]):  # every coordinate on its bound
                    break
                f, g = fun_and_grad(point)
                if not (math.isfinite(f) and f < found[1]
                        and f <= f0 + C1 * float(g0 @ (point - x)) + noise):
                    break
                found = (point, f, g)
            return found
        # the minimum of the quadratic with f(0), slope and f(t) along the arc's first piece
        guess = (-decrease * t / (2.0 * (f - f0 - decrease)) if math.isfinite(f)
                 and f - f0 - decrease > 0.0 else 0.5 * t)
        t = min(max(guess, 0.1 * t), 0.5 * t)
    return None


class _Memory:
    """The last ``MEMORY`` pairs ``(s, y)`` and the inverse Hessian approximation they
    define, applied in the compact form of Byrd, Nocedal and Schnabel (*Math. Program.*
    63, 1994, theorem 2.2) with the initial matrix ``gamma I``, ``gamma = s^T y / y^T y``
    of the newest pair:

        H = gamma I + [S gamma Y] [[R^-T (D + gamma Y^T Y) R^-1, -R^-T], [-R^-1, 0]] [S; gamma Y]

    (the rows of ``S`` and ``Y`` are the pairs, oldest first; ``R`` is the upper triangle
    of ``S Y^T``, ``D`` its diagonal). ``R^-1`` and ``Y Y^T`` are kept up to date as pairs
    come and go, so that applying ``H`` is a few products with the stored pairs whatever
    their number (the two-loop recursion takes four small operations per pair)."""

    def __init__(self, n: int) -> None:
        self._S, self._Y = np.empty((MEMORY, n)), np.empty((MEMORY, n))
        self._R_inv, self._YY = np.empty((MEMORY, MEMORY)), np.empty((MEMORY, MEMORY))
        self._D = np.empty(MEMORY)
        self.k = 0

    def __len__(self) -> int:
        return self.k

    def clear(self) -> None:
        self.k = 0

    def add(self, s: np.ndarray, y: np.ndarray, sy: float) -> None:
        """Store a pair with ``s^T y = sy > 0``, forgetting the oldest beyond MEMORY."""
        k = self.k
        if k == MEMORY:  # a trailing block of a triangular inverse is the inverse
            for stored in (self._S, self._Y, self._D):
                stored[:-1] = stored[1:]
            for stored in (self._R_inv, self._YY):
                stored[:-1, :-1] = stored[1:, 1:]
            k -= 1
        R_inv, YY = self._R_inv, self._YY
        R_inv[:k, k] = (R_inv[:k, :k] @ (self._S[:k] @ y)) / -sy  # the new column s_i^T y
        R_inv[k, :k] = 0.0
        R_inv[k, k] = 1.0 / sy
        YY[:k, k] = YY[k, :k] = self._Y[:k] @ y
        YY[k, k] = y @ y
        self._S[k], self._Y[k], self._D[k] = s, y, sy
        self.k = k + 1

    def gamma(self) -> float:
        """The scale of the initial matrix (1 without a pair)."""
        k = self.k
        return float(self._D[k - 1] / self._YY[k - 1, k - 1]) if k else 1.0

    def times(self, g: np.ndarray) -> np.ndarray:
        """``H g``."""
        k = self.k
        if not k:
            return g.copy()
        S, Y, R_inv = self._S[:k], self._Y[:k], self._R_inv[:k, :k]
        gamma = self.gamma()
        r = R_inv @ (S @ g)
        p = R_inv.T @ (self._D[:k] * r + gamma * (self._YY[:k, :k] @ r - Y @ g))
        return gamma * g + S.T @ p - gamma * (Y.T @ r)

    def times_on(self, g: np.ndarray, free: np.ndarray) -> np.ndarray:
        """``H g`` on the ``free`` coordinates (a 0/1 vector; zero on the others): the
        two-loop recursion with ``s`` and ``y`` restricted to them, ``1 / s^T y`` and
        ``gamma`` those of the whole pairs (for the two-metric projection)."""
        S, Y, D = self._S, self._Y, self._D
        q = g * free
        alphas = np.empty(self.k)
        for i in range(self.k - 1, -1, -1):
            alphas[i] = float(S[i] @ q) / D[i]
            q -= alphas[i] * (Y[i] * free)
        q *= self.gamma()
        for i in range(self.k):
            q += (alphas[i] - float(Y[i] @ q) / D[i]) * (S[i] * free)
        return q


def _projected_gradient(x: np.ndarray, g: np.ndarray, lower: np.ndarray | None,
                        upper: np.ndarray | None) -> np.ndarray:
    return g if lower is None else x - np.clip(x - g, lower, upper)


def solve(fun_and_grad: FunAndGrad, x0: np.ndarray, lower: np.ndarray | None,
          upper: np.ndarray | None, tol: float, max_iter: int,
          callback: Callable | None = None) -> Outcome:
    """Minimize from ``x0`` (clipped to the bounds) until the largest entry of the
    projected gradient is at most ``tol``."""
    x = np.array(x0, dtype=float) if lower is None else np.clip(x0, lower, upper)
    f, g = fun_and_grad(x)
    pairs = _Memory(x.size)
    k = 0
    while True:
        pg = _projected_gradient(x, g, lower, upper)
        residual = float(np.abs(pg).max()) if pg.size else 0.0
        if residual <= tol:
            return Outcome(x, "projected gradient below the tolerance", k)
        if k >= max_iter:
            return Outcome(x, "iteration limit reached", k)
        found = None
        for attempt in range(2):  # the quasi-Newton direction, then steepest descent
            if attempt:
                if not pairs:
                    break
                pairs.clear()
            first = 1.0 if pairs else 1.0 / max(1.0, float(np.linalg.norm(pg)))
            if lower is None:
                d = -pairs.times(g)
                slope = float(g @ d)
                if not slope < 0.0:
                    continue
                found = _wolfe(fun_and_grad, x, f, d, slope, first)
            else:
                eps = min(residual, 1e-3)
                held = (((x - lower <= eps) & (g > 0)) | ((upper - x <= eps) & (g < 0)))
                free = (~held).astype(float)
                d = -(pairs.times_on(g, free) + pairs.gamma() * g * held)
                found = _projected_armijo(fun_and_grad, x, f, g, d, lower, upper, first,
                                          expand=not pairs)
            if found is not None:
                break
        if found is None:
            return Outcome(x, "the line search found no decrease along the steepest descent: "
                              "the floating-point accuracy of f is reached", k)
        x_new, f_new, g_new = found
        s, y = x_new - x, g_new - g
        sy = float(s @ y)
        if sy > 1e-12 * float(y @ y):  # positive curvature: the update stays definite
            pairs.add(s, y, sy)
        x, f, g = x_new, f_new, g_new
        k += 1
        if callback is not None:
            callback(SimpleNamespace(x=x, fun=f))
