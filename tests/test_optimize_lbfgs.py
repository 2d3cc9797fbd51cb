"""matcalc's own L-BFGS (lbfgs.py): against the reference solvers, its pieces against their
definitions, and on the hard cases (bounds, domain walls, unbounded objectives)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from solver_checks import KKT, close

from matcalc.optimize import minimize
from matcalc.optimize.lbfgs import C1, C2, MEMORY, _Memory, _projected_armijo, _wolfe

# ------------------------------------------------------------------ acceptance


def test_lasso_on_the_split_matches_sklearn():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Lasso

    X, y = load_diabetes(return_X_y=True)
    y = y - y.mean()
    n, alpha = len(y), 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lasso = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y)

    def objective(w):
        return ((X @ w - y) ** 2).sum() / (2 * n) + alpha * np.abs(w).sum()

    r = minimize("||X w - y||_2^2 / (2 nu) + alpha ||w||_1", "w",
                 {"X": X, "y": y, "nu": n, "alpha": alpha}, method="L-BFGS", tol=1e-10)
    assert r.status == "optimal", r.message
    assert close(r.fun, objective(lasso.coef_))
    assert r.kkt_residual < KKT
    assert set(np.flatnonzero(np.abs(r["w"]) > 1e-6)) == set(np.flatnonzero(lasso.coef_))


def test_nnls_matches_scipy():
    from scipy.optimize import nnls

    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((60, 20)), rng.standard_normal(60)
    x, norm = nnls(A, b)
    r = minimize("||A x - b||_2^2", "x", {"A": A, "b": b}, constraints="x >= 0",
                 method="L-BFGS", tol=1e-10)
    assert r.status == "optimal", r.message
    assert close(r.fun, norm**2)
    assert r.kkt_residual < KKT
    assert r["x"].min() >= 0
    np.testing.assert_allclose(r["x"], x, atol=1e-6)


@pytest.mark.filterwarnings("ignore:graphical_lasso")  # its dual gap stalls near 1e-7
def test_graphical_lasso_matches_sklearn_and_scipy():
    from sklearn.covariance import graphical_lasso

    Z = np.random.default_rng(3).standard_normal((200, 10))
    C, lam = np.cov(Z.T), 0.1
    mask = 1.0 - np.eye(10)

    def objective(S):
        return -np.linalg.slogdet(S)[1] + np.trace(S @ C) + lam * np.abs(mask * S).sum()

    _, precision = graphical_lasso(C, alpha=lam, tol=1e-10, max_iter=2000)
    args = ("-logdet(S) + tr(S C) + lambda sum(abs(M ⊙ S))", "S",
            {"C": C, "lambda": lam, "M": mask})
    ours = minimize(*args, x0={"S": np.eye(10)}, tol=1e-10)
    scipy = minimize(*args, x0={"S": np.eye(10)}, tol=1e-10, method="L-BFGS-B")
    assert ours.method == "L-BFGS" and ours.status == "optimal", ours.message
    assert ours.kkt_residual < KKT
    assert close(ours.fun, objective(precision)) and close(ours.fun, scipy.fun)
    assert ours.fun <= objective(precision) + 1e-9  # coordinate descent stalls a little higher
    np.testing.assert_allclose(ours["S"], scipy["S"], atol=1e-6)


def test_upper_and_lower_bounds_both_active():
    """Box-constrained least squares: the solution is the clipped unconstrained one when
    the matrix is orthogonal (then the problem separates by coordinate)."""
    Q, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((8, 8)))
    target = np.array([-2.0, -0.5, 0.0, 0.3, 0.9, 1.5, 3.0, -0.1])
    b = Q @ target
    r = minimize("||Q x - b||_2^2", "x", {"Q": Q, "b": b}, constraints="-1 <= x <= 1",
                 method="L-BFGS", tol=1e-10)
    assert r.status == "optimal", r.message
    np.testing.assert_allclose(r["x"], np.clip(target, -1, 1), atol=1e-8)
    assert r.kkt_residual < KKT


# ------------------------------------------------------------------ hard cases


def test_stays_in_the_domain_of_logdet():
    """Long steps leave the positive definite matrices, where logdet has no value: the line
    search steps back (matcalc's wall), and the iterates stay inside."""
    C = np.diag([1e-3, 1.0, 10.0])
    r = minimize("-logdet(S) + tr(S C)", "S", {"C": C}, x0={"S": np.eye(3)},
                 method="L-BFGS", tol=1e-10)
    assert r.status == "optimal", r.message
    np.testing.assert_allclose(r["S"], np.linalg.inv(C), rtol=1e-6)


def _glasso_data(seed: int, n: int, samples: int) -> np.ndarray:
    return np.cov(np.random.default_rng(seed).standard_normal((samples, n)).T)


@pytest.mark.filterwarnings("ignore:graphical_lasso")  # its dual gap stalls near 1e-7
def test_graphical_lasso_stays_positive_definite():
    """With a small penalty, long steps reach symmetric matrices with an even number of
    negative eigenvalues, where det > 0 and -logdet(S) + tr(S C) falls without bound (this
    case was reported unbounded). logdet of a symmetric S means S positive definite
    (Boyd and Vandenberghe, Convex Optimization, 3.1.5): the wall keeps the iterates
    there, and the solution is the graphical lasso's."""
    from sklearn.covariance import graphical_lasso

    n, lam = 6, 0.01
    C = _glasso_data(0, n, 40)
    mask = 1.0 - np.eye(n)  # sklearn leaves the diagonal unpenalized

    def objective(S):  # -log det S + tr(S C) + lambda sum_{i != j} |S_ij|
        sign, logdet = np.linalg.slogdet(S)
        assert sign > 0
        return -logdet + np.trace(S @ C) + lam * np.abs(mask * S).sum()

    _, precision = graphical_lasso(C, alpha=lam, tol=1e-12, max_iter=5000)
    r = minimize("-logdet(S) + tr(S C) + lambda sum(abs(M ⊙ S))", "S",
                 {"C": C, "lambda": lam, "M": mask}, x0={"S": np.eye(n)}, tol=1e-10,
                 decls={"S": "symmetric"}, method="L-BFGS")
    assert r.status == "optimal", r.message
    assert r.kkt_residual < KKT
    S = r["S"]
    assert np.linalg.eigvalsh(S).min() > 0
    assert close(r.fun, objective(precision)) and close(r.fun, objective(S))
    # the optimality conditions of the written problem, from the textbook subgradient:
    # G = C - S^-1 has a zero diagonal, G_ij = -lambda sign(S_ij) where S_ij != 0 and
    # |G_ij| <= lambda where S_ij = 0
    G = C - np.linalg.inv(S)
    off = mask.astype(bool)
    nonzero = off & (np.abs(S) > 1e-8)
    assert np.abs(np.diag(G)).max() < KKT
    assert np.abs(G[nonzero] + lam * np.sign(S[nonzero])).max() < KKT
    assert np.abs(G[off & ~nonzero]).max(initial=0.0) <= lam + KKT


def test_logdet_unbounded_inside_its_domain_is_still_unbounded():
    """-logdet(S) - tr(S C) with C positive definite falls without bound along S = t I,
    inside the positive definite matrices: the domain does not hide it."""
    r = minimize("-logdet(S) - tr(S C)", "S", {"C": np.eye(3) + 0.1},
                 x0={"S": np.eye(3)}, decls={"S": "symmetric"}, method="L-BFGS")
    assert r.status == "unbounded" and r.fun == -np.inf


def test_start_outside_the_positive_definite_matrices_is_refused():
    """-I has det 1 for an even size but is not positive definite: refused as a start."""
    from matcalc.errors import MatcalcError

    with pytest.raises(MatcalcError, match="positive definite"):
        minimize("-logdet(S) + tr(S C)", "S", {"C": np.eye(2)}, x0={"S": -np.eye(2)},
                 decls={"S": "symmetric"})


def test_unbounded_with_and_without_bounds():
    free = minimize("m^T x", "x", {"m": np.array([1.0, -2.0])}, method="L-BFGS")
    assert free.status == "unbounded" and free.fun == -np.inf
    boxed = minimize("m^T x", "x", {"m": np.array([1.0, -2.0])}, constraints="x >= 0",
                     method="L-BFGS")
    assert boxed.status == "unbounded"


def test_iteration_limit_is_reported():
    rng = np.random.default_rng(5)
    A, b = rng.standard_normal((40, 30)), rng.standard_normal(40)
    r = minimize("||A x - b||_2^2 + 1^T exp(x)", "x", {"A": A, "b": b}, method="L-BFGS",
                 max_iter=2, tol=1e-12)
    assert r.status == "max_iter" and r.iterations == 2


def test_progress_is_logged(capsys):
    minimize("||x - m||_2^2 + 1^T exp(x)", "x", {"m": np.arange(3.0)}, method="L-BFGS",
             verbose=True)
    err = capsys.readouterr().err
    assert "method L-BFGS" in err and "iteration     1   objective" in err


# ------------------------------------------------------------------ the pieces


def _bfgs_inverse(pairs, n, mask=None):
    """The dense L-BFGS matrix by its definition: the BFGS inverse update
    H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T over the pairs, from gamma I, with
    s and y restricted to ``mask`` (rho and gamma those of the whole pairs)."""
    m = np.ones(n) if mask is None else mask
    s, y = pairs[-1]
    H = (float(s @ y) / float(y @ y)) * np.diag(m)
    for s, y in pairs:
        rho = 1.0 / float(s @ y)
        V = np.eye(n) - rho * np.outer(y * m, s * m)
        H = V.T @ H @ V + rho * np.outer(s * m, s * m)
    return H


def test_memory_applies_the_bfgs_inverse_update():
    """Compact form (theorem 2.2 of Byrd, Nocedal, Schnabel) against the definition, past
    the memory's length (the oldest pairs forgotten), and the two-loop recursion on the
    free coordinates against the same definition with the pairs restricted to them."""
    rng = np.random.default_rng(6)
    n = 12
    A = rng.standard_normal((n, n))
    A = A @ A.T + np.eye(n)
    memory, pairs = _Memory(n), []
    g = rng.standard_normal(n)
    for k in range(MEMORY + 4):
        s = rng.standard_normal(n)
        memory.add(s, A @ s, float(s @ A @ s))
        pairs = (pairs + [(s, A @ s)])[-MEMORY:]
        if k in (0, 3, MEMORY - 1, MEMORY + 3):
            np.testing.assert_allclose(memory.times(g), _bfgs_inverse(pairs, n) @ g,
                                       rtol=1e-9, atol=1e-12)
    free = (rng.random(n) < 0.6).astype(float)
    np.testing.assert_allclose(memory.times_on(g, free),
                               _bfgs_inverse(pairs, n, free) @ (g * free), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(memory.times_on(g, np.ones(n)), memory.times(g), rtol=1e-9)
    memory.clear()
    np.testing.assert_array_equal(memory.times(g), g)


@pytest.mark.parametrize("start", [1e-6, 1.0, 1e4])
def test_line_search_meets_the_strong_wolfe_conditions(start):
    """From a step far too short (extrapolation) or far too long (interpolation)."""
    c = np.array([3.0, -1.0])

    def fun_and_grad(x):
        with np.errstate(over="ignore"):  # the longest trials overflow: inf, a failed trial
            e = np.exp(x)
        return float(np.sum(e) - c @ x), e - c

    x = np.zeros(2)
    f0, g0 = fun_and_grad(x)
    d = -g0
    slope0 = float(g0 @ d)
    point, f, g = _wolfe(fun_and_grad, x, f0, d, slope0, start)
    t = float((point - x) @ d / (d @ d))
    assert f <= f0 + C1 * t * slope0
    assert abs(float(g @ d)) <= C2 * abs(slope0)


def test_projected_line_search_keeps_the_bounds_and_decreases():
    def fun_and_grad(x):
        return float(np.sum((x - 2.0) ** 2)), 2.0 * (x - 2.0)

    x = np.array([0.5, 0.9])
    lower, upper = np.zeros(2), np.ones(2)
    f0, g0 = fun_and_grad(x)
    point, f, _ = _projected_armijo(fun_and_grad, x, f0, g0, -g0, lower, upper, 10.0)
    assert np.all(point >= lower) and np.all(point <= upper)
    assert f <= f0 + C1 * float(g0 @ (point - x))
    # a direction that only pushes against the bounds gains nothing
    assert _projected_armijo(fun_and_grad, np.ones(2), *fun_and_grad(np.ones(2)),
                             np.ones(2), lower, upper, 1.0) is None
    assert math.isfinite(f)
