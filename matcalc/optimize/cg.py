"""Linear conjugate gradient for an unconstrained objective with a constant Hessian.

When the Hessian ``H`` does not depend on the variables (a quadratic: least squares,
ridge), minimizing ``f`` is solving ``H s = -g(x0)`` for the step ``s``. Conjugate
gradient (Hestenes, Stiefel 1952; Nocedal, Wright, *Numerical Optimization*, algorithm
5.2) does it with one Hessian-vector product per iteration (matcalc's derived forward
differential of the gradient; ``H`` is never formed), the exact step length along each
direction and no evaluation of ``f``: the gradient ``r = g(x)`` is updated as
``r + a H p``. It stops when the largest entry of ``r`` is at most the tolerance (the
stationarity every other method stops on); the recursion's rounding is then checked
against the gradient evaluated at the point, and CG restarts from it if that is not yet
below the tolerance. A direction of negative curvature (or of zero curvature with a
nonzero slope) means the quadratic decreases without bound along it: ``Unbounded``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

from .lagrangian import Outcome

_RESTARTS = 5  # restarts from the evaluated gradient when the recursion has drifted
_FLAT = 1e-14  # curvature p^T H p at most this times ||p||^2 max|H| is taken as zero


class Unbounded(Exception):
    """A direction along which the quadratic decreases without bound."""


def solve(fun_and_grad: Callable, hvp: Callable[[np.ndarray, np.ndarray], np.ndarray],
          x0: np.ndarray, tol: float, max_iter: int,
          callback: Callable | None = None) -> Outcome:
    """Minimize a quadratic from ``x0`` to a gradient of at most ``tol`` (largest entry)."""
    x = np.array(x0, dtype=float)
    r = np.array(fun_and_grad(x)[1], dtype=float)
    k, top = 0, 0.0
    for _ in range(_RESTARTS + 1):
        p = -r
        rr = float(r @ r)
        while float(np.max(np.abs(r), initial=0.0)) > tol:
            if k >= max_iter:
                return Outcome(x, "iteration limit reached", k)
            Hp = hvp(x, p)
            curvature = float(p @ Hp)
            pp = float(p @ p)
            top = max(top, float(np.max(np.abs(Hp), initial=0.0)) / max(np.sqrt(pp), 1e-300))
            if not curvature > _FLAT * pp * top:
                raise Unbounded(f"the Hessian has {'negative' if curvature < 0 else 'zero'} "
                                f"curvature ({curvature:.3g}) along a descent direction: "
                                "the quadratic decreases without bound")
            a = rr / curvature
            x += a * p
            r += a * Hp
            rr_next = float(r @ r)
            p = -r + (rr_next / rr) * p
            rr = rr_next
            k += 1
            if callback is not None:
                callback(SimpleNamespace(x=x, residual=float(np.max(np.abs(r)))))
        r = np.array(fun_and_grad(x)[1], dtype=float)  # the recursion's rounding
        if float(np.max(np.abs(r), initial=0.0)) <= tol:
            return Outcome(x, "gradient below the tolerance", k)
    return Outcome(x, "the gradient stays above the tolerance after restarts: the "
                      "floating-point accuracy of the Hessian-vector products is reached", k)
