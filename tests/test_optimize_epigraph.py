"""Exact rewrites of ||E||_1, 1^T relu(E) and max(E) through a new variable bounding E
(an epigraph), against linear programs solved by SciPy's HiGHS and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.optimize import minimize

RTOL = 1e-6
KKT = 1e-6


def _close(value: float, reference: float) -> bool:
    return abs(value - reference) <= RTOL * max(1.0, abs(reference))


def _lad_lp(A, b, lam=0.0):
    """min ||A x - b||_1 + lam ||x||_1 as an LP in (x, s, u): -s <= A x - b <= s,
    -u <= x <= u, minimizing 1^T s + lam 1^T u."""
    from scipy.optimize import linprog

    n, m = A.shape
    c = np.r_[np.zeros(m), np.ones(n), lam * np.ones(m)]
    rows = [np.c_[A, -np.eye(n), np.zeros((n, m))], np.c_[-A, -np.eye(n), np.zeros((n, m))],
            np.c_[np.eye(m), np.zeros((m, n)), -np.eye(m)],
            np.c_[-np.eye(m), np.zeros((m, n)), -np.eye(m)]]
    res = linprog(c, A_ub=np.vstack(rows), b_ub=np.r_[b, -b, np.zeros(2 * m)],
                  bounds=[(None, None)] * (2 * m + n), method="highs")
    assert res.status == 0
    return res.fun


def test_least_absolute_deviations_matches_a_linear_program():
    rng = np.random.default_rng(30)
    A, b = rng.standard_normal((40, 5)), rng.standard_normal(40)
    r = minimize("||A x - b||_1", "x", {"A": A, "b": b}, tol=1e-9)
    assert r.status == "optimal" and r.kkt_residual < KKT
    assert _close(r.fun, _lad_lp(A, b))
    assert _close(np.abs(A @ r["x"] - b).sum(), r.fun)  # fun is the objective as written
    assert "epigraph of ||A x - b||_1" in r.formulas
    assert set(r.solution) == {"x"}  # the new variable t is not part of the solution


def test_lad_lasso_combines_the_split_and_the_epigraph():
    """x is split (x_plus - x_minus) by its l1 penalty and appears inside the other
    rewritten term."""
    rng = np.random.default_rng(31)
    A, b = rng.standard_normal((30, 6)), rng.standard_normal(30)
    r = minimize("||A x - b||_1 + lambda ||x||_1", "x", {"A": A, "b": b, "lambda": 2.0},
                 tol=1e-9)
    assert r.status == "optimal" and r.kkt_residual < KKT
    assert _close(r.fun, _lad_lp(A, b, 2.0))


def test_hinge_relu_closed_form():
    """sum_i (x_i - v_i)^2 + relu(x_i) is minimized coordinatewise: x = v - 1/2 where
    v > 1/2, x = v where v < 0, and x = 0 between."""
    v = np.array([-1.3, -0.2, 0.1, 0.4, 0.7, 2.0])
    r = minimize("||x - v||_2^2 + 1^T relu(x)", "x", {"v": v}, tol=1e-10)
    assert r.status == "optimal" and r.kkt_residual < KKT
    expected = np.where(v > 0.5, v - 0.5, np.where(v < 0, v, 0.0))
    np.testing.assert_allclose(r["x"], expected, atol=1e-7)


def test_minimax_matches_a_linear_program():
    from scipy.optimize import linprog

    rng = np.random.default_rng(32)
    A, b = rng.standard_normal((25, 4)), rng.standard_normal(25)
    r = minimize("max(A x - b)", "x", {"A": A, "b": b}, constraints="-1 <= x <= 1",
                 tol=1e-9)
    assert r.status == "optimal" and r.kkt_residual < KKT
    lp = linprog(np.r_[np.zeros(4), 1.0], A_ub=np.c_[A, -np.ones(25)], b_ub=b,
                 bounds=[(-1, 1)] * 4 + [(None, None)], method="highs")
    assert _close(r.fun, lp.fun)
    assert _close((A @ r["x"] - b).max(), r.fun)


def test_sum_of_absolute_values_of_a_matrix():
    """sum(abs(A X - B)) separates by columns: each is a least-absolute-deviations fit."""
    rng = np.random.default_rng(33)
    A, B = rng.standard_normal((15, 3)), rng.standard_normal((15, 2))
    r = minimize("sum(abs(A X - B))", "X", {"A": A, "B": B}, tol=1e-9)
    assert r.status == "optimal" and r["X"].shape == (3, 2)
    assert _close(r.fun, sum(_lad_lp(A, B[:, j]) for j in range(2)))


def test_a_negative_coefficient_is_refused():
    with pytest.raises(matcalc.UnsupportedError, match="concave"):
        minimize("||A x - b||_2^2 + lambda ||A x||_1", "x",
                 {"A": np.eye(3), "b": np.ones(3), "lambda": -1.0})


def test_hinge_loss_svm_matches_liblinear():
    """The linear SVM 1/2 ||w||^2 + C sum_i max(0, 1 - y_i x_i^T w), liblinear's
    objective for LinearSVC(loss="hinge") without intercept."""
    import warnings

    from sklearn.datasets import load_breast_cancer
    from sklearn.svm import LinearSVC

    X, labels = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(axis=0)) / X.std(axis=0))[:150]
    labels = labels[:150]
    y, C = 2.0 * labels - 1.0, 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear's dual may warn about convergence
        svc = LinearSVC(loss="hinge", C=C, fit_intercept=False, tol=1e-12,
                        max_iter=1_000_000).fit(X, labels)

    def objective(w):
        return 0.5 * w @ w + C * np.maximum(0.0, 1.0 - y * (X @ w)).sum()

    r = minimize("1/2 w^T w + gamma 1^T relu(1 - y ⊙ (X w))", "w",
                 {"X": X, "y": y, "gamma": C}, tol=1e-7)
    assert r.status == "optimal" and r.kkt_residual < KKT
    assert _close(r.fun, objective(svc.coef_.ravel()))
    assert r.fun <= objective(svc.coef_.ravel()) + 1e-9
