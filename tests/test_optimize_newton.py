"""The projected Newton method (exact dense Hessian, generalized Cauchy point) and when
``method="auto"`` picks it."""

from __future__ import annotations

import numpy as np
import pytest
from solver_checks import KKT, close

import matcalc
from matcalc.optimize import minimize
from matcalc.optimize.cost import flops
from matcalc.optimize.model import build_model
from matcalc.optimize.problem import bind


def test_lasso_by_newton_matches_sklearn():
    """The split w = w_plus - w_minus has a singular Hessian (both halves free): the step
    goes along the flat direction only up to the first bound."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Lasso

    X, y = load_diabetes(return_X_y=True)
    y = y - y.mean()
    n, alpha = len(y), 0.1
    lasso = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y)

    def objective(w):
        return ((X @ w - y) ** 2).sum() / (2 * n) + alpha * np.abs(w).sum()

    r = minimize("||X w - y||_2^2 / (2 nu) + alpha ||w||_1", "w",
                 {"X": X, "y": y, "nu": n, "alpha": alpha}, tol=1e-10)
    assert r.method == "projected-Newton"
    assert r.status == "optimal" and r.kkt_residual < KKT
    assert close(r.fun, objective(lasso.coef_))
    np.testing.assert_allclose(r["w"], lasso.coef_, atol=1e-6 * np.abs(lasso.coef_).max())
    assert r.iterations <= 20  # an active-set method: a handful of steps, not hundreds
    assert "hessian block w_plus, w_minus" in r.formulas


def test_nnls_by_newton_matches_scipy():
    from scipy.optimize import nnls

    rng = np.random.default_rng(20)
    A, b = rng.standard_normal((80, 30)), rng.standard_normal(80)
    x, norm = nnls(A, b)
    r = minimize("||A x - b||_2^2", "x", {"A": A, "b": b}, constraints="x >= 0",
                 method="projected-Newton", tol=1e-10)
    assert r.status == "optimal" and r.kkt_residual < KKT
    assert close(r.fun, norm**2)
    np.testing.assert_allclose(r["x"], x, atol=1e-8)
    assert (r["x"] == 0).sum() == (x == 0).sum()  # on the bound exactly, not near it


def test_box_bounded_smooth_convex():
    """sum(exp(x)) - m^T x over 0 <= x <= 1: coordinatewise, x_i = clip(log m_i, 0, 1)."""
    m = np.array([0.5, 1.5, 2.0, 4.0, 0.2, 2.7])
    r = minimize("sum(exp(x)) - m^T x", "x", {"m": m}, constraints="0 <= x <= 1",
                 method="projected-Newton", tol=1e-12)
    expected = np.clip(np.log(m), 0.0, 1.0)
    assert r.status == "optimal" and r.kkt_residual < KKT
    np.testing.assert_allclose(r["x"], expected, atol=1e-10)


def test_nonconvex_rosenbrock_against_a_bound():
    """Rosenbrock with a <= 1/2: the minimum is at a = 1/2, b = a^2 = 1/4 (the curved
    valley meets the bound), where df/da = -(2 - 2a) = -1 presses on the bound."""
    r = minimize("100 (b - a^2)^2 + (1 - a)^2", ["a", "b"], {}, constraints="a <= 1/2",
                 x0={"a": -1.2, "b": 1.0}, decls={"a": "scalar", "b": "scalar"},
                 method="projected-Newton", tol=1e-12)
    assert r.status == "optimal", r.message
    assert r["a"] == pytest.approx(0.5, abs=1e-12)
    assert r["b"] == pytest.approx(0.25, abs=1e-9)
    assert close(r.fun, 0.25)


def test_indefinite_hessian_reaches_a_vertex():
    """A concave quadratic over a box has its local minima at vertices; starting from the
    centre, Newton steps along negative curvature must leave it for one. The brute-force
    minimum over the 2^5 vertices bounds the result from below."""
    rng = np.random.default_rng(21)
    B = rng.standard_normal((5, 5))
    A, c = -(B @ B.T) - np.eye(5), rng.standard_normal(5)
    r = minimize("x^T A x + c^T x", "x", {"A": A, "c": c}, constraints="-1 <= x <= 1",
                 method="projected-Newton", tol=1e-10)
    assert r.status == "optimal" and r.kkt_residual < KKT
    np.testing.assert_allclose(np.abs(r["x"]), 1.0)
    vertices = np.array(np.meshgrid(*[[-1.0, 1.0]] * 5)).reshape(5, -1).T
    values = np.einsum("ki,ij,kj->k", vertices, A, vertices) + vertices @ c
    assert r.fun <= 0.0 and r.fun >= values.min() - 1e-9


def test_sparse_logistic_regression_matches_liblinear():
    """l1-regularised logistic regression, a non-quadratic objective with the split:
    liblinear minimizes ||w||_1 + C sum_i log(1 + exp(-y_i x_i^T w))."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, labels = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y, C = 2.0 * labels - 1.0, 0.5
    clf = LogisticRegression(l1_ratio=1.0, C=C, solver="liblinear", fit_intercept=False,
                             tol=1e-12, max_iter=100_000).fit(X, labels)

    def objective(w):  # liblinear's, divided by C
        return np.abs(w).sum() / C + np.logaddexp(0.0, -y * (X @ w)).sum()

    r = minimize("lambda ||w||_1 + 1^T softplus(-y ⊙ (X w))", "w",
                 {"X": X, "y": y, "lambda": 1.0 / C}, method="projected-Newton", tol=1e-10)
    assert r.status == "optimal" and r.kkt_residual < KKT
    assert r.fun <= objective(clf.coef_.ravel()) + 1e-6
    assert close(r.fun, objective(clf.coef_.ravel()))


def test_unbounded_and_outside_the_domain():
    r = minimize("m^T x", "x", {"m": np.array([1.0, -2.0])}, method="projected-Newton")
    assert r.status == "unbounded" and r.fun == -np.inf
    Z = np.random.default_rng(22).standard_normal((40, 3))
    C = np.cov(Z.T)
    r = minimize("-logdet(S) + tr(S C)", "S", {"C": C}, x0={"S": np.eye(3)},
                 method="projected-Newton", tol=1e-10)
    assert r.status == "optimal"
    np.testing.assert_allclose(r["S"], np.linalg.inv(C), atol=1e-8)


def test_refusals():
    with pytest.raises(matcalc.UnsupportedError, match="bounds only"):
        minimize("x^T x", "x", {}, x0={"x": [1.0, 2.0]}, constraints="1^T x = 1",
                 method="projected-Newton")
    with pytest.raises(matcalc.UnsupportedError, match="symmetric"):
        minimize("-logdet(S) + tr(S C)", "S", {"C": np.eye(2)}, x0={"S": np.eye(2)},
                 decls={"S": "symmetric"}, method="projected-Newton")


def test_the_dense_hessian_is_the_exact_one():
    """Assembled from matcalc's blocks (a matrix variable, two variables with cross
    blocks), against central differences of the gradient."""
    rng = np.random.default_rng(23)
    X, y = rng.standard_normal((30, 4)), np.sign(rng.standard_normal(30))
    cases = [
        ("1/2 w^T w + 1^T softplus(-y ⊙ (X w + beta 1))", ["w", "beta"], {"X": X, "y": y},
         None),
        ("-logdet(S) + tr(S C)", "S", {"C": np.eye(3) + 0.1}, {"S": np.eye(3)}),
    ]
    for f, wrt, data, x0 in cases:
        p = bind(build_model(f, wrt), data, x0)
        x = p.x0 + 0.05 * rng.standard_normal(p.n)
        h, eye = 1e-6, np.eye(p.n)
        fd = np.array([(p.fun_and_grad(x + h * e)[1] - p.fun_and_grad(x - h * e)[1]) / (2 * h)
                       for e in eye]).T
        np.testing.assert_allclose(p.hessian(x), fd, atol=1e-6)


def test_auto_prefers_newton_only_where_the_hessian_is_cheap():
    """The choice follows the estimated cost: a Hessian n times a gradient loses to
    L-BFGS when n is large, a constant one is paid once."""
    rng = np.random.default_rng(24)
    small = minimize("||A x - b||_2^2", "x", {"A": rng.standard_normal((50, 5)),
                                              "b": rng.standard_normal(50)})
    assert small.method == "projected-Newton"
    X = rng.standard_normal((400, 300))
    wide = minimize("1/2 w^T w + 1^T softplus(-y ⊙ (X w))", "w",
                    {"X": X, "y": np.sign(rng.standard_normal(400))}, tol=1e-4)
    assert wide.method == "L-BFGS"
    assert small.status == wide.status == "optimal"


def test_flop_estimate_counts_products_in_their_best_order():
    m = build_model("||X w - y||_2^2", "w")
    sizes = {"m": 1000, "n": 10}
    gradient = m.gradients["w"]  # 2 X^T (X w - y): two matrix-vector products
    assert flops([gradient], sizes) < 5 * 1000 * 10
    (block,) = m.hessian_blocks().values()  # 2 X^T X: one matrix-matrix product
    assert flops([block], sizes) >= 1000 * 10 * 10


def test_a_hessian_too_costly_to_derive_falls_back(monkeypatch):
    """auto weighs Newton only when the Hessian's blocks derive within a small budget;
    past it, L-BFGS (and an explicit projected-Newton says why it cannot run)."""
    from matcalc.optimize import model as model_module

    monkeypatch.setattr(model_module, "HESSIAN_STEPS", 1)
    model_module._build.cache_clear()
    try:
        data = {"A": np.eye(3) + 0.5, "b": np.ones(3)}
        r = minimize("||A z - b||_2^2 + 1^T exp(z)", "z", data)
        assert r.method == "L-BFGS" and r.status == "optimal"
        with pytest.raises(matcalc.UnsupportedError, match="needs the Hessian"):
            minimize("||A z - b||_2^2 + 1^T exp(z)", "z", data, method="projected-Newton")
    finally:
        model_module._build.cache_clear()  # no model remembers the failure


def test_newton_converges_past_the_rounding_of_f():
    """Near the minimum a Newton step promises a decrease below f's rounding error; the
    Armijo test allows for it, so the gradient still falls quadratically (a strict test
    rejected every step there and looped). The reference minimizer solves the
    stationarity condition 2 A^T (A x - b) + 4 ||x||^2 x = 0 by SciPy's root finder."""
    from scipy.optimize import root

    rng = np.random.default_rng(25)
    A, b = rng.standard_normal((30, 8)), rng.standard_normal(30)
    r = minimize("||A x - b||_2^2 + ||x||_2^4", "x", {"A": A, "b": b}, tol=1e-12,
                 method="projected-Newton")
    assert r.status == "optimal" and r.iterations < 30
    sol = root(lambda x: 2 * A.T @ (A @ x - b) + 4 * (x @ x) * x, np.zeros(8), tol=1e-14)
    np.testing.assert_allclose(r["x"], sol.x, atol=1e-10)


# -- linear conjugate gradient for quadratics -----------------------------------------


def test_ridge_by_conjugate_gradient_matches_the_closed_form():
    """A 2000 × 200 ridge: the dense Hessian 2 (X^T X + lambda I) costs far more than a few
    products 2 (X^T (X p) + lambda p), so auto picks linear CG."""
    rng = np.random.default_rng(31)
    X, y, lam = rng.standard_normal((2000, 200)), rng.standard_normal(2000), 10.0
    w_star = np.linalg.solve(X.T @ X + lam * np.eye(200), X.T @ y)

    def objective(w):
        return float(((X @ w - y) ** 2).sum() + lam * w @ w)

    r = minimize("||X w - y||_2^2 + lambda ||w||_2^2", "w", {"X": X, "y": y, "lambda": lam},
                 tol=1e-10)
    assert r.method == "linear-CG"
    assert r.status == "optimal" and r.kkt_residual < KKT
    assert close(r.fun, objective(w_star)) and close(objective(r["w"]), objective(w_star))
    assert 0 < r.iterations <= 200
    np.testing.assert_allclose(r["w"], w_star, atol=1e-8)


def test_conjugate_gradient_on_a_matrix_variable():
    """||A X - B||_F^2 + lambda ||X||_F^2 over a 30 × 4 matrix X: X* = (A^T A + lambda I)^-1
    A^T B, each column a ridge problem."""
    rng = np.random.default_rng(32)
    A, B, lam = rng.standard_normal((60, 30)), rng.standard_normal((60, 4)), 0.5
    X_star = np.linalg.solve(A.T @ A + lam * np.eye(30), A.T @ B)

    def objective(X):
        return float(((A @ X - B) ** 2).sum() + lam * (X**2).sum())

    r = minimize("||A X - B||_F^2 + lambda ||X||_F^2", "X", {"A": A, "B": B, "lambda": lam},
                 method="linear-CG", tol=1e-10)
    assert r.method == "linear-CG" and r.status == "optimal" and r.kkt_residual < KKT
    assert r["X"].shape == (30, 4)
    assert close(r.fun, objective(X_star))
    np.testing.assert_allclose(r["X"], X_star, atol=1e-8)


def test_conjugate_gradient_reports_an_unbounded_quadratic():
    """x^T Q x - 1^T x with Q indefinite decreases without bound: the result says so."""
    Q = np.diag([2.0, 1.0, -1.0])
    for method in ("linear-CG", "auto"):
        r = minimize("x^T Q x + b^T x", "x", {"Q": Q, "b": np.ones(3)}, method=method)
        assert r.status == "unbounded" and not r.success
        assert r.fun == -np.inf


def test_conjugate_gradient_reports_zero_curvature_along_a_slope():
    """A linear term on a direction of zero curvature: unbounded too, not a division by 0."""
    Q = np.diag([1.0, 0.0])
    r = minimize("x^T Q x + b^T x", "x", {"Q": Q, "b": np.array([0.0, 1.0])},
                 method="linear-CG")
    assert r.status == "unbounded" and "curvature" in r.message


def test_conjugate_gradient_refuses_what_it_cannot_solve():
    rng = np.random.default_rng(33)
    data = {"A": rng.standard_normal((8, 3)), "b": rng.standard_normal(8)}
    with pytest.raises(matcalc.UnsupportedError, match="does not depend on the variables"):
        minimize("||A z - b||_2^2 + 1^T exp(z)", "z", data, method="linear-CG")
    with pytest.raises(matcalc.UnsupportedError, match="no constraints"):
        minimize("||A z - b||_2^2", "z", data, constraints="z >= 0", method="linear-CG")


def test_auto_solves_a_small_quadratic_by_one_newton_step():
    """A handful of unknowns: the dense Hessian costs less than a few products' call
    overhead, and one exact Newton step solves the quadratic."""
    rng = np.random.default_rng(34)
    A, b = rng.standard_normal((50, 5)), rng.standard_normal(50)
    r = minimize("||A x - b||_2^2", "x", {"A": A, "b": b}, tol=1e-10)
    assert r.method == "projected-Newton" and r.iterations == 1
    np.testing.assert_allclose(r["x"], np.linalg.lstsq(A, b, rcond=None)[0], atol=1e-10)
