"""``minimize``: matcalc's derivatives driving its own solvers and SciPy's; a KKT check of its own.

Method choice (``method="auto"``): with at most bounds, ``projected-Newton``
(``newton.py``: the exact dense Hessian from matcalc's derived blocks, a generalized
Cauchy point for the active set, Newton on the free variables) when the Hessian is
cheap: at most 1000 unknowns, no structured variable, and one Newton iteration (a
Hessian, counted once in ten iterations when it does not depend on the variables, and
a Cholesky factorisation) estimated at no more than ten gradient evaluations
(``cost.flops`` on the formulas at the sizes of the data; the constants were set from
the problems of benchmarks/solvers.py); ``L-BFGS`` otherwise (``lbfgs.py``: L-BFGS with
a strong Wolfe line search, and the two-metric projection for bounds, in NumPy: the same
iterations as SciPy's L-BFGS-B without the cost of its wrapper). With general constraints
SLSQP up to 300 unknowns and beyond that an augmented Lagrangian around L-BFGS-B
(``lagrangian.py``, as GENO does). With no constraint or bound and a Hessian that does not
depend on the variables (a quadratic: its derived Hessian-vector products are free of
them), ``linear-CG`` (``cg.py``: conjugate gradient on ``H s = -g``, one product per
iteration, exact steps, no evaluation of ``f``) unless the dense Hessian and its
factorisation cost at most ten products, when one projected-Newton step solves it.
``Newton-CG``, ``trust-ncg`` and ``trust-krylov`` use
Hessian-vector products, the forward differential of matcalc's gradient in a direction
(the Hessian is never formed); ``trust-constr`` handles general constraints with them.

The domain of the objective is where the generated code has a finite value, except that
``logdet(A)`` of an argument ``A`` matcalc knows symmetric (a symmetric variable, ``X^T X``,
``S + S^T``, ...) means ``A`` positive definite, as in the graphical lasso and every use
of log det in optimization (Boyd and Vandenberghe, Convex Optimization, §3.1.5:
``dom log det = S^n_{++}``), not the language's ``det(A) > 0``, where an even number of
negative eigenvalues can make ``-logdet(S) + tr(S C)`` decrease without bound. A trial
point outside (a failed Cholesky factorisation, or no finite value) meets a steep wall
around the last point inside (``_Counter._wall``), so every line search steps back and
the iterates stay inside.

Whatever the method, the result's KKT residual is computed here, not taken from SciPy:
the projected gradient for bounds, and for general constraints the least residual of
stationarity and complementarity over multipliers of the right sign (a bounded linear
least-squares problem), together with the largest constraint violation.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..budget import derivation_budget
from ..errors import InfeasibleError, MatcalcError, UnsupportedError
from ..expr import Expr
from . import cg, lagrangian, lbfgs, newton
from .model import HESSIAN_STEPS, build_model
from .problem import Problem, bind
from .result import MinimizeResult

METHODS = ("auto", "projected-Newton", "linear-CG", "L-BFGS", "L-BFGS-B", "SLSQP",
           "augmented-lagrangian", "trust-constr", "Newton-CG", "trust-ncg", "trust-krylov")
_HVP_METHODS = ("Newton-CG", "trust-ncg", "trust-krylov")
_STALL = 50
"""Iterations without a decrease of the objective (beyond its rounding) after which a
Hessian-vector method has stalled: it accepts a step on the decrease of f, which rounding
hides once the gradient is near the square root of float64's precision (a KKT residual of
about 1e-10 on -logdet(S) + tr(S C)); it would otherwise run on to max_iter."""
_SLSQP_LIMIT = 300
_DENSE_LIMIT = 1000  # unknowns beyond which auto never forms the dense Hessian
_NEWTON_ITERATIONS = 10  # a constant Hessian is evaluated once in about this many iterations
_NEWTON_RATIO = 10.0  # a Newton iteration may cost this many gradient evaluations
_CALL_FLOPS = 2e4  # the fixed cost of one evaluation from Python, as operations
_CG_PRODUCTS = 10  # a dense Hessian costlier than this many products: conjugate gradient
_OUTSIDE = (np.linalg.LinAlgError, ValueError, ZeroDivisionError, FloatingPointError)
"""What evaluating at a point outside the domain raises (a singular matrix, SciPy's
factorisations refusing NaN)."""
_NEAR = 1e-4  # an inequality farther from its bound than this (relative) gets no multiplier
_UNBOUNDED = 1e9  # a decrease by this many times the starting scale is taken as unbounded


class _Unbounded(Exception):
    pass


def _scipy():
    try:
        import scipy.optimize
        import scipy.sparse
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise UnsupportedError(
            "minimize needs SciPy", hint='pip install "matcalc-symbolic[optimize]"'
        ) from None
    return scipy


class _Counter:
    """Wraps the objective: counts iterations, logs progress, detects unboundedness."""

    def __init__(self, problem: Problem, verbose: bool, stream: Any) -> None:
        self.problem = problem
        self.iterations = 0
        self.verbose = verbose
        self.stream = stream
        self.floor = -np.inf
        self.inside = (0.0, problem.x0)
        self.stalled = False  # a Hessian-vector method stopped decreasing f (_StallGuard)

    def fun_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        try:  # minimize runs the solvers under np.errstate(all="ignore")
            f, g = self.problem.fun_and_grad(x)
        except _OUTSIDE:
            f, g = np.nan, x
        if math.isfinite(f) and not self.problem.inside(x):  # before the unbounded test:
            return self._wall(x)  # outside, -logdet(A) of a symmetric A may fall forever
        if f < self.floor or f == -np.inf:
            raise _Unbounded
        if not (math.isfinite(f) and np.isfinite(g).all()):
            return self._wall(x)
        self.inside = (f, x.copy())
        return f, g

    def _wall(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Outside the domain (``logdet`` of a matrix with a negative determinant or of a
        symmetric matrix that is not positive definite, ``log`` of a negative number): a
        steep quadratic wall around the last point inside, so that the line search of any
        SciPy method steps back instead of stopping. Accepted iterates are always inside,
        where the objective is exactly the formula."""
        f_in, x_in = self.inside
        d = x - x_in
        dd = float(d @ d) or 1.0
        height = 1e6 * (1.0 + abs(f_in))
        return f_in + height, (2.0 * height / dd) * d

    def fun(self, x: np.ndarray) -> float:
        return self.fun_and_grad(x)[0]

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.fun_and_grad(x)[1]

    def callback(self, intermediate_result: Any) -> None:
        self.iterations += 1
        if self.verbose:
            k = self.iterations
            if k <= 10 or k % 10 == 0:
                if hasattr(intermediate_result, "residual"):  # linear-CG: no objective
                    print(f"  iteration {k:5d}   gradient {intermediate_result.residual:.3g}",
                          file=self.stream)
                    return
                f = getattr(intermediate_result, "fun", float("nan"))
                print(f"  iteration {k:5d}   objective {f: .12g}", file=self.stream)


def kkt_residual(problem: Problem, x: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """(KKT residual, largest constraint violation) at ``x`` with gradient ``g``.

    With bounds only it is the projected gradient. With general constraints ``c`` the
    multipliers ``nu`` (of the right sign for inequalities) are fitted by bounded least
    squares to stationarity on the coordinates off their bounds, together with
    complementarity ``c_i nu_i``; each bound's multiplier is then the best one for its
    coordinate. The residual is the largest entry of stationarity, complementarity and
    violation: a certificate for these multipliers, so never below the true minimum.
    """
    lower, upper = problem.lower, problem.upper
    violation = 0.0
    if lower is not None:
        violation = max(float(np.max(lower - x, initial=0.0)),
                        float(np.max(x - upper, initial=0.0)), 0.0)
    if not problem.constraints:
        if lower is None:
            return float(np.max(np.abs(g), initial=0.0)), 0.0
        projected = x - np.clip(x - g, lower, upper)
        return max(float(np.max(np.abs(projected), initial=0.0)), violation), violation
    sp = _scipy()
    jacobians, gaps, signs = [], [], []
    for c in problem.constraints:
        value = c.fun(x)
        jacobians.append(np.atleast_2d(c.jac(x)))
        if c.kind == "eq":
            violation = max(violation, float(np.max(np.abs(value), initial=0.0)))
            gaps.append(np.zeros(c.size))
            signs.append(np.full(c.size, -np.inf))
        else:
            violation = max(violation, float(np.max(-value, initial=0.0)))
            gaps.append(value)
            signs.append(np.zeros(c.size))
    J, gap, sign = np.vstack(jacobians), np.concatenate(gaps), np.concatenate(signs)
    if lower is not None:
        scale = 1e-8 * (1.0 + np.abs(x))
        free = ~((x - lower <= scale) | (upper - x <= scale))
    else:
        free = np.ones(problem.n, dtype=bool)
    # multipliers only for the equalities and the inequalities near their bound: one far
    # from it keeps nu = 0 (any choice of multipliers gives an upper bound on the least
    # residual, and this one keeps the fit small when there are many constraints, as in
    # an epigraph of ||A x - b||_1 with a row per sample)
    near = np.isinf(sign) | (gap <= _NEAR * (1.0 + np.abs(gap)))
    nu = np.zeros(gap.size)
    if near.any():
        matrix = np.vstack([J[near][:, free].T, np.diag(gap[near])])
        rhs = np.concatenate([g[free], np.zeros(int(near.sum()))])
        if np.all(np.isinf(sign[near])):
            nu[near] = np.linalg.lstsq(matrix, rhs, rcond=None)[0]
        else:
            method = "bvls" if matrix.size <= 1_000_000 else "trf"
            nu[near] = sp.optimize.lsq_linear(matrix, rhs, bounds=(sign[near], np.inf),
                                              method=method, tol=1e-14).x
    r = g - J.T @ nu
    worst = float(np.max(np.abs(gap * nu), initial=0.0))
    if lower is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            below = np.where(np.isfinite(lower), x - lower, np.inf)
            above = np.where(np.isfinite(upper), upper - x, np.inf)
            z_low = np.where(np.isfinite(below), np.maximum(0.0, r) / (1.0 + below**2), 0.0)
            z_up = np.where(np.isfinite(above), np.maximum(0.0, -r) / (1.0 + above**2), 0.0)
            worst = max(worst, float(np.max(np.abs(np.where(np.isfinite(below), below, 0.0)
                                                   * z_low), initial=0.0)),
                        float(np.max(np.abs(np.where(np.isfinite(above), above, 0.0) * z_up),
                                     initial=0.0)))
        r = r - z_low + z_up
    worst = max(worst, float(np.max(np.abs(r), initial=0.0)))
    return max(worst, violation), violation


def _check_linear_feasibility(problem: Problem) -> None:
    linear = [c for c in problem.constraints if c.linear]
    if not linear:
        return
    sp = _scipy()
    zero = np.zeros(problem.n)
    a_ub = [-c.jac(zero) for c in linear if c.kind == "ineq"]
    b_ub = [c.fun(zero) for c in linear if c.kind == "ineq"]
    a_eq = [c.jac(zero) for c in linear if c.kind == "eq"]
    b_eq = [-c.fun(zero) for c in linear if c.kind == "eq"]
    bounds = (list(zip(problem.lower, problem.upper, strict=True))
              if problem.lower is not None else (None, None))
    res = sp.optimize.linprog(
        np.zeros(problem.n),
        A_ub=np.vstack(a_ub) if a_ub else None, b_ub=np.concatenate(b_ub) if b_ub else None,
        A_eq=np.vstack(a_eq) if a_eq else None, b_eq=np.concatenate(b_eq) if b_eq else None,
        bounds=bounds, method="highs")
    if res.status == 2:
        texts = "; ".join(dict.fromkeys([b.text for b in problem.model.bounds]
                                        + [c.text for c in linear]))
        raise InfeasibleError(f"no point satisfies the linear constraints: {texts}",
                              hint="check the constraints and the data they use")


def _dense_newton_pays(problem: Problem) -> bool:
    """Whether the exact dense Hessian is cheap enough for the projected Newton method: at
    most _DENSE_LIMIT unknowns, no structured variable, and (estimated in floating-point
    operations) its iterations, each a Hessian (counted once when it is constant) and a
    Cholesky factorisation, cost no more than _NEWTON_RATIO gradient evaluations."""
    if problem.n > _DENSE_LIMIT or any(v.props for v in problem.variables):
        return False
    try:
        gradient, hessian = problem.evaluation_costs()
        if problem.hessian_is_constant():
            hessian /= _NEWTON_ITERATIONS
    except MatcalcError:  # no Hessian: quasi-Newton
        return False
    return hessian + problem.n**3 / 3 <= _NEWTON_RATIO * (gradient + _CALL_FLOPS)


def _quadratic(problem: Problem) -> bool:
    """Whether the objective is a quadratic (unconstrained, no bounds): its derived
    Hessian-vector products do not depend on the variables. Derived within the budget of
    a dense Hessian's blocks, since ``auto`` asks on every unconstrained problem."""
    if problem.constraints or problem.lower is not None:
        return False
    try:
        with derivation_budget(HESSIAN_STEPS):
            return problem.hvp_is_constant()
    except MatcalcError:
        return False


def _dense_beats_cg(problem: Problem) -> bool:
    """For a quadratic: whether one dense Hessian and its Cholesky factorisation (the one
    step that solves it exactly) cost at most _CG_PRODUCTS Hessian-vector products."""
    if not _dense_newton_pays(problem):
        return False
    hessian = problem.evaluation_costs()[1]
    return hessian + problem.n**3 / 3 <= _CG_PRODUCTS * (problem.hvp_cost() + _CALL_FLOPS)


def _choose(method: str, problem: Problem) -> str:
    if method not in METHODS:
        raise MatcalcError(f"unknown method {method!r}", hint="one of " + ", ".join(METHODS))
    general = bool(problem.constraints)
    if method == "projected-Newton":
        if general:
            raise UnsupportedError("projected-Newton handles bounds only",
                                   hint="use SLSQP or trust-constr for general constraints")
        if any(v.props for v in problem.variables):
            raise UnsupportedError("projected-Newton takes no symmetric or diagonal variable "
                                   "(its Hessian is on every entry)", hint="use L-BFGS")
    if method == "auto":
        if not general and _quadratic(problem):
            return "projected-Newton" if _dense_beats_cg(problem) else "linear-CG"
        if not general:
            return "projected-Newton" if _dense_newton_pays(problem) else "L-BFGS"
        # SLSQP solves dense quadratic programs in all unknowns; beyond a few hundred the
        # augmented Lagrangian, which needs gradients only, is the faster
        return "SLSQP" if problem.n <= _SLSQP_LIMIT else "augmented-lagrangian"
    if method == "linear-CG":
        if general or problem.lower is not None:
            raise UnsupportedError("linear-CG handles no constraints",
                                   hint="use projected-Newton or L-BFGS for bounds")
        try:
            constant = problem.hvp_is_constant()
        except MatcalcError as err:
            raise UnsupportedError(f"linear-CG needs Hessian-vector products, which matcalc "
                                   f"cannot derive here: {err.message}",
                                   hint="use method='L-BFGS'") from None
        if not constant:
            raise UnsupportedError("linear-CG needs a Hessian that does not depend on the "
                                   "variables (a quadratic objective)",
                                   hint="use Newton-CG, which takes the same products")
    if method in _HVP_METHODS and (general or problem.lower is not None):
        raise UnsupportedError(f"{method} handles no constraints",
                               hint="use L-BFGS for bounds, SLSQP or trust-constr otherwise")
    if method in ("L-BFGS", "L-BFGS-B") and general:
        raise UnsupportedError(f"{method} handles bounds only",
                               hint="use SLSQP or trust-constr for general constraints")
    return method


def minimize(
    f: str | Expr,
    wrt: str | list[str] | tuple[str, ...],
    data: Mapping[str, Any],
    *,
    constraints: str | list[str] | tuple[str, ...] = (),
    method: str = "auto",
    x0: Mapping[str, Any] | None = None,
    tol: float = 1e-7,
    max_iter: int = 10_000,
    decls: dict[str, str] | None = None,
    verbose: bool = False,
) -> MinimizeResult:
    """Minimize the formula ``f`` over the variables ``wrt``; ``data`` binds every other name.

    ``constraints`` are formulas with ``<=``, ``>=`` or ``=`` (``w >= 0``, ``0 <= w <= 1``,
    ``1^T w = 1``, ``A w <= b``, ``||w||_2^2 <= 1``). The solution is ``optimal`` when its
    KKT residual is at most ``tol`` times the largest gradient entry at the start (or
    ``tol`` if that is below 1). Linear constraints that no point satisfies raise
    ``InfeasibleError`` (checked by a linear program when the solver ends infeasible).
    See ``matcalc.optimize`` for the methods and the exact rewriting of ``c ||w||_1``
    terms.
    """
    start = time.perf_counter()
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise MatcalcError(f"tol must be a number between 0 and 1, got {tol!r}",
                           hint="for example tol=1e-8")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise MatcalcError(f"max_iter must be a positive integer, got {max_iter!r}")
    model = build_model(f, wrt, constraints, decls)
    problem = bind(model, data, x0)
    chosen = _choose(method, problem)
    stream = sys.stderr
    counter = _Counter(problem, verbose, stream)
    try:
        with np.errstate(all="ignore"):
            f0, g0 = problem.fun_and_grad(problem.x0)
    except _OUTSIDE as err:
        f0, g0 = np.nan, None
        reason = str(err)
    else:
        reason = ""
    if np.isfinite(f0) and not problem.inside(problem.x0):
        f0, reason = np.nan, "a symmetric argument of logdet is not positive definite"
    if not np.isfinite(f0) or not np.all(np.isfinite(g0)):
        raise MatcalcError(
            f"the objective or its gradient cannot be evaluated at the starting point "
            f"({reason or f'objective {f0}'})",
            hint="give a starting point x0 inside the domain (e.g. a positive definite matrix "
                 "for logdet)")
    # tol is relative to the gradient at the start (at least 1): stationarity is then
    # asked to the same number of digits whatever the scale of the data
    gradient_scale = float(np.max(np.abs(g0), initial=0.0))
    threshold = tol * max(1.0, gradient_scale)
    scale = max(1.0, abs(f0), gradient_scale)
    counter.floor = f0 - _UNBOUNDED * scale
    counter.inside = (f0, problem.x0.copy())
    if chosen == "projected-Newton":
        try:
            problem.hessian_is_constant()  # derives and compiles the Hessian
        except MatcalcError as err:
            raise UnsupportedError(f"projected-Newton needs the Hessian, which matcalc cannot "
                                   f"derive here: {err.message}",
                                   hint="use method='L-BFGS'") from None
    if chosen in _HVP_METHODS or chosen == "trust-constr":
        try:
            problem.hvp(problem.x0, np.zeros(problem.n))
        except MatcalcError as err:
            if chosen != "trust-constr":
                raise UnsupportedError(f"{chosen} needs the Hessian, which matcalc cannot "
                                       f"derive here: {err.message}",
                                       hint="use method='L-BFGS'") from None
    setup = time.perf_counter() - start
    if verbose:
        print(f"matcalc.minimize: {problem.n} unknowns, method {chosen}, objective at start "
              f"{f0:.12g}", file=stream)
    sp = _scipy()
    solve_start = time.perf_counter()
    status, message = "", ""
    try:
        with np.errstate(all="ignore"):  # trial points outside the domain are expected
            res = _run(sp, chosen, problem, counter, threshold, max_iter)
        x = res.x
        message = str(res.message)
        if getattr(res, "nit", None) is not None and not counter.iterations:
            counter.iterations = int(res.nit)
    except _Unbounded:
        x = problem.x0
        status = "unbounded"
        message = (f"the objective fell below {counter.floor:.3g}, {_UNBOUNDED:.0e} times its "
                   "scale at the start: it decreases without bound")
    except cg.Unbounded as err:
        x = problem.x0
        status = "unbounded"
        message = str(err)
    elapsed = time.perf_counter() - solve_start
    with np.errstate(all="ignore"):
        f_x, g_x = problem.fun_and_grad(x)
    kkt, violation = kkt_residual(problem, x, g_x)
    if not status:
        if kkt <= threshold:
            status = "optimal"
            if counter.stalled:
                message = (f"the objective stopped decreasing (float64 rounding) with the KKT "
                           f"residual {kkt:.3g} within tol")
        elif violation > max(threshold, 1e-6):
            _check_linear_feasibility(problem)  # raises InfeasibleError when they are
            status = "infeasible"
            message = (f"the solver ended {violation:.3g} outside the constraints; they may "
                       f"be infeasible ({message})")
        elif counter.iterations >= max_iter:
            status = "max_iter"
        else:
            status = "stopped"
            if counter.stalled:
                message = (f"the objective did not decrease beyond its rounding in {_STALL} "
                           f"iterations: the "
                           f"solver is at the limit of float64 rounding (KKT residual "
                           f"{kkt:.3g}; ask for a larger tol)")
    solution = problem.solution(x)
    notes = []
    if model.epigraph_terms:
        notes.append("each c ||E||_1, c 1^T relu(E) and c max(E) term is minimized exactly "
                     "through a new variable t bounding E (see the epigraph formulas); the "
                     "KKT residual is that of this form")
    if model.l1_terms:
        notes.append("each c ||w||_1 term is minimized exactly through w = w_plus - w_minus "
                     "with w_plus, w_minus >= 0; the KKT residual is that of this form")
    result = MinimizeResult(
        solution=solution,
        fun=(-np.inf if status == "unbounded" else
             problem.original_value(solution) if model.rewritten else f_x),
        kkt_residual=kkt, grad_norm=float(np.max(np.abs(g_x), initial=0.0)),
        iterations=counter.iterations, evaluations=problem.evaluations, time=elapsed,
        setup_time=setup, method=chosen, status=status, message=message,
        max_violation=violation, formulas=model.formulas(), notes=notes)
    if verbose:
        print(f"matcalc.minimize: {status}, objective {result.fun:.12g}, KKT residual "
              f"{kkt:.3g}, {counter.iterations} iterations, {elapsed * 1e3:.1f} ms",
              file=stream)
    return result


class _StallGuard:
    """The callback of a Hessian-vector method: ends the run (StopIteration, which SciPy
    turns into a result) when the objective has decreased by less than its rounding
    (1e-12 of its size) over the last ``_STALL`` iterations: not at all, or by an ulp now
    and then."""

    def __init__(self, callback: Any, counter: _Counter) -> None:
        self.callback, self.counter = callback, counter
        self.values: deque[float] = deque(maxlen=_STALL + 1)

    def __call__(self, intermediate_result: Any) -> None:
        if self.callback is not None:
            self.callback(intermediate_result)
        f = float(intermediate_result.fun)
        self.values.append(f)
        if len(self.values) > _STALL and self.values[0] - f <= 1e-12 * (1.0 + abs(f)):
            self.counter.stalled = True
            raise StopIteration


def _run(sp, method: str, problem: Problem, counter: _Counter, tol: float, max_iter: int):
    opt = sp.optimize
    bounds = (opt.Bounds(problem.lower, problem.upper) if problem.lower is not None else None)
    # the solvers report their iteration counts; the callback is for the progress log
    callback = counter.callback if counter.verbose else None
    common = dict(x0=problem.x0, callback=callback)
    if method == "projected-Newton":
        return newton.solve(counter.fun_and_grad, problem.hessian, problem.x0, problem.lower,
                            problem.upper, tol, max_iter, callback)
    if method == "L-BFGS":
        return lbfgs.solve(counter.fun_and_grad, problem.x0, problem.lower, problem.upper, tol,
                           max_iter, callback)
    if method == "linear-CG":
        return cg.solve(counter.fun_and_grad, problem.hvp, problem.x0, tol, max_iter, callback)
    if method == "L-BFGS-B":
        return opt.minimize(counter.fun_and_grad, jac=True, method=method, bounds=bounds,
                            options={"maxiter": max_iter, "gtol": tol, "ftol": 0.0,
                                     "maxcor": 20}, **common)
    if method in _HVP_METHODS:
        options = {"maxiter": max_iter}
        options.update({"xtol": float(np.clip(tol, 1e-12, 1e-5))} if method == "Newton-CG"
                       else {"gtol": tol})
        return opt.minimize(counter.fun_and_grad, jac=True, hessp=problem.hvp, method=method,
                            options=options, x0=problem.x0,
                            callback=_StallGuard(callback, counter))
    if method == "augmented-lagrangian":
        def residual(x: np.ndarray) -> float:
            return kkt_residual(problem, x, problem.fun_and_grad(x)[1])[0]

        return lagrangian.solve(counter.fun_and_grad, problem.constraints, problem.x0, bounds,
                                residual, tol, max_iter, opt.minimize, callback)
    if method == "SLSQP":
        cons = [{"type": c.kind, "fun": c.fun, "jac": c.jac} for c in problem.constraints]
        return opt.minimize(counter.fun_and_grad, jac=True, method=method, bounds=bounds,
                            constraints=cons,
                            # SLSQP stops on the change of f: about the square of the
                            # stationarity asked for
                            options={"maxiter": max_iter,
                                     "ftol": float(np.clip(tol * tol, 1e-16, 1e-4))},
                            **common)
    cons = []
    for c in problem.constraints:
        lo = 0.0
        hi = 0.0 if c.kind == "eq" else np.inf
        if c.linear:
            zero = np.zeros(problem.n)
            cons.append(opt.LinearConstraint(c.jac(zero), lo - c.fun(zero), hi - c.fun(zero)))
        else:
            cons.append(opt.NonlinearConstraint(c.fun, lo, hi, jac=c.jac, hess=opt.BFGS()))
    try:
        problem.hvp(problem.x0, np.zeros(problem.n))
        hessp = problem.hvp
    except MatcalcError:
        hessp = None
    return opt.minimize(counter.fun_and_grad, jac=True, hessp=hessp, method="trust-constr",
                        bounds=bounds, constraints=cons,
                        options={"maxiter": max_iter, "gtol": tol, "xtol": 1e-14,
                                 "barrier_tol": 1e-12}, **common)
