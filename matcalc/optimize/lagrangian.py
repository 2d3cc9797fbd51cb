"""An augmented Lagrangian method, as GENO uses: L-BFGS-B on the bounds, multipliers outside.

For constraints ``c_E(x) = 0`` and ``c_I(x) >= 0`` the inner problems minimize, over the
bounds only,

    f(x) + lambda^T c_E + rho/2 ||c_E||^2 + 1/(2 rho) ||max(0, mu - rho c_I)||^2

(the Powell-Hestenes-Rockafellar form), whose gradient uses the constraints' Jacobians
transposed. After each inner solve the multipliers are updated (``lambda += rho c_E``,
``mu = max(0, mu - rho c_I)``) and ``rho`` grows tenfold when the violation did not fall
to a quarter (unless it is already below the tolerance), up to ``tol / (100 eps)``: the
penalty's gradient ``rho c grad(c)`` carries ``rho`` times the rounding error of ``c``
(about ``eps``), which must stay below the stationarity asked for; the multipliers do
the rest. It stops when the KKT residual
(computed by the caller) is small enough, or makes no progress in five updates (then
the point with the least KKT residual seen is the result: near the floating-point
accuracy of the objective the inner line searches stall and the residual wanders).
Each iteration costs gradient evaluations only, so it scales where SLSQP's dense
quadratic subproblems do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Outcome:
    """What ``solve`` reached: the point, a message, the number of L-BFGS-B iterations."""

    x: np.ndarray
    message: str
    nit: int


def solve(fun_and_grad: Callable, constraints: list, x0: np.ndarray, bounds,
          residual: Callable[[np.ndarray], float], tol: float, max_iter: int,
          minimize: Callable, callback: Callable | None = None) -> Outcome:
    """Minimize with the constraints (``kind``, ``fun``, ``jac``) through multipliers."""
    eq = [c for c in constraints if c.kind == "eq"]
    ineq = [c for c in constraints if c.kind == "ineq"]
    lam = [np.zeros(c.size) for c in eq]
    mu = [np.zeros(c.size) for c in ineq]
    rho, x, total = 10.0, np.array(x0, dtype=float), 0
    # the penalty's gradient rho c grad(c) carries rho times the rounding of c: beyond
    # this, that noise would exceed the stationarity asked for and the inner solves stall
    rho_max = max(100.0, tol / (100.0 * np.finfo(float).eps))
    violation = best = np.inf
    best_x = x
    stalled = 0
    inner_tol = max(tol, 1e-3)

    def lagrangian(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fun_and_grad(z)
        if not np.isfinite(f):
            return f, g
        g = g.copy()
        for c, lm in zip(eq, lam, strict=True):
            v = c.fun(z)
            f += lm @ v + 0.5 * rho * v @ v
            g += c.jac(z).T @ (lm + rho * v)
        for c, m in zip(ineq, mu, strict=True):
            shifted = np.maximum(0.0, m - rho * c.fun(z))
            f += (shifted @ shifted - m @ m) / (2.0 * rho)
            g -= c.jac(z).T @ shifted
        return f, g

    for outer in range(1, 101):
        res = minimize(lagrangian, x, jac=True, method="L-BFGS-B", bounds=bounds,
                       callback=callback,
                       options={"maxiter": max(1, max_iter - total), "gtol": inner_tol,
                                "ftol": 0.0, "maxcor": 20})
        x, total = res.x, total + int(res.nit)
        parts = [np.abs(c.fun(x)) for c in eq] + [np.maximum(0.0, -c.fun(x)) for c in ineq]
        new_violation = max((float(np.max(p, initial=0.0)) for p in parts), default=0.0)
        kkt = residual(x)
        if kkt <= tol:
            return Outcome(x, f"KKT residual reached after {outer} multiplier updates", total)
        stalled = 0 if kkt < 0.99 * best else stalled + 1
        if kkt < best:
            best, best_x = kkt, x
        if total >= max_iter:
            return Outcome(best_x, "iteration limit reached", total)
        if stalled >= 5:
            return Outcome(best_x, "no progress in 5 multiplier updates: the floating-point "
                                   "accuracy of the objective is reached", total)
        lam = [lm + rho * c.fun(x) for c, lm in zip(eq, lam, strict=True)]
        mu = [np.maximum(0.0, m - rho * c.fun(x)) for c, m in zip(ineq, mu, strict=True)]
        if new_violation > max(0.25 * violation, tol):  # feasible enough: keep rho
            rho = min(rho * 10.0, rho_max)
        violation = new_violation
        inner_tol = max(tol, inner_tol * 0.1)
    return Outcome(best_x, "no convergence after 100 multiplier updates", total)
