"""Jacobians, Hessians, vec-layout derivatives, differentials and spectral gradients (issue #4)."""

import keyword

import numpy as np
import pytest

import matcalc
from matcalc.numeric import evaluate, finite_difference, random_point
from matcalc.verify import concrete_sizes

JACOBIANS = [
    ("A x", "x", {}, "A"),
    ("softmax(x)", "x", {}, "diag(s) - s s^T where s = softmax(x)"),
    ("sigma(x)", "x", {}, "diag(sigma(x) ⊙ (1 - sigma(x)))"),
    ("tanh(W x)", "x", {}, "diag(1 - tanh(W x).^2) W"),
    ("(a^T x) x", "x", {}, "(a^T x) I + x a^T"),
    ("x^T A x", "x", {}, "x^T (A + A^T)"),
    ("alpha x", "alpha", {}, "x"),
]

HESSIANS = [
    ("x^T A x", "x", {}, "A + A^T"),
    ("x^T A x", "x", {"A": "symmetric matrix"}, "2 A"),
    ("||A x - b||_2^2", "x", {}, "2 A^T A"),
    ("logsumexp(x)", "x", {}, "diag(s) - s s^T where s = softmax(x)"),
    ("log(exp(x)^T 1)", "x", {}, "diag(s) - s s^T where s = softmax(x)"),
    ("1^T softplus(X w) - y^T X w", "w", {}, "X^T diag(s ⊙ (1 - s)) X where s = sigma(X w)"),
    ("||X w - y||_2^2 + lambda ||w||_2^2", "w", {}, "2 (X^T X + lambda I)"),
]

DERIVATIVES = [
    ("A X B", "X", {}, "B^T ⊗ A"),
    ("X^-1", "X", {}, "-X^-T ⊗ X^-1"),
    ("A X", "X", {}, "I ⊗ A"),
]


def numeric_agreement(result, mode, positive=True):
    """The closed form, its generated NumPy code and central differences agree."""
    symbols = sorted(result.function.free_symbols() | result.expr.free_symbols() | {result.wrt},
                     key=lambda s: s.name)
    sizes = concrete_sizes([result.function, result.expr, result.wrt])
    point = random_point(symbols, sizes, np.random.default_rng(3), positive=positive)
    expected = np.atleast_2d(finite_difference(result.function, result.wrt, point, mode=mode))
    got = np.atleast_2d(np.asarray(evaluate(result.expr, point, sizes), dtype=float))
    if mode == "jacobian" and got.shape != expected.shape:
        got = got.reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    fn = result.to_numpy()
    generated = fn(**{k + "_" if keyword.iskeyword(k) else k: v for k, v in point.items()})
    np.testing.assert_allclose(np.atleast_2d(np.asarray(generated, float)).reshape(got.shape),
                               got, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("y, wrt, decls, expected", JACOBIANS, ids=[c[0] for c in JACOBIANS])
def test_jacobian_textbook_form(y, wrt, decls, expected):
    result = matcalc.jacobian(y, wrt, **decls)
    assert str(result) == expected
    assert result.check()
    numeric_agreement(result, "jacobian")


def test_denominator_layout_is_the_transpose():
    numerator = matcalc.jacobian("A x", "x")
    denominator = matcalc.jacobian("A x", "x", layout="denominator")
    assert str(denominator) == "A^T"
    assert numerator.shape == tuple(reversed(denominator.shape))
    assert denominator.check()
    with pytest.raises(matcalc.MatcalcError):
        matcalc.jacobian("A x", "x", layout="sideways")


@pytest.mark.parametrize("f, wrt, decls, expected", HESSIANS, ids=[c[0] for c in HESSIANS])
def test_hessian_textbook_form(f, wrt, decls, expected):
    result = matcalc.hessian(f, wrt, **decls)
    assert str(result) == expected
    assert result.check()
    numeric_agreement(result, "hessian")


def test_hessian_of_quadratic_form_does_not_depend_on_x():
    result = matcalc.hessian("x^T A x", "x")
    assert "x" not in {s.name for s in result.expr.free_symbols()}


@pytest.mark.parametrize("F, wrt, decls, expected", DERIVATIVES, ids=[c[0] for c in DERIVATIVES])
def test_vec_layout_derivative(F, wrt, decls, expected):
    result = matcalc.derivative(F, wrt, **decls)
    assert str(result) == expected
    assert result.check()
    numeric_agreement(result, "derivative")


def test_hessian_with_respect_to_a_matrix_is_a_kronecker_product():
    result = matcalc.hessian("||A X B - C||_F^2", "X")
    assert str(result) == "2 ((B B^T) ⊗ (A^T A))"  # contract v2: parenthesised operands
    assert result.check()


def test_differentials_as_the_seed_writes_them():
    assert str(matcalc.differential("x^T A x", "x")) == "x^T (A + A^T) dx"
    assert str(matcalc.differential("X^-1", "X")) == "-X^-1 dX X^-1"
    assert str(matcalc.differential("logdet(X)", "X")) == "tr(X^-1 dX)"


def test_spectral_gradients():
    lam = matcalc.grad("lambda_max(A)", "A", A="symmetric matrix")
    assert str(lam) == "eigvec_max(A) eigvec_max(A)^T"
    assert lam.check()
    norm = matcalc.grad("||X||_2", "X")
    assert str(norm) == "svec_left(X) svec_right(X)^T"
    assert norm.check()
    numeric_agreement(norm, "grad", positive=False)


def test_spectral_gradient_numpy_code_matches_numpy_eigh():
    fn = matcalc.grad("lambda_max(A)", "A", A="symmetric matrix").to_numpy()
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    a = m + m.T
    w, v = np.linalg.eigh(a)
    np.testing.assert_allclose(fn(A=a), np.outer(v[:, -1], v[:, -1]), atol=1e-12)


def test_positive_definite_hessian_at_the_minimum_of_a_convex_quadratic():
    """Seed notes, Hessian: a positive definite Hessian at a critical point is a minimum."""
    f = "1/2 x^T A x - b^T x"
    g = matcalc.grad(f, "x", A="symmetric matrix").to_numpy()
    h = matcalc.hessian(f, "x", A="symmetric matrix")
    assert str(h) == "A"
    rng = np.random.default_rng(1)
    m = rng.normal(size=(5, 5))
    a, b = m @ m.T + 5 * np.eye(5), rng.normal(size=5)
    x_star = np.linalg.solve(a, b)
    np.testing.assert_allclose(g(A=a, b=b, x=x_star), 0, atol=1e-10)
    hess = h.to_numpy()(A=a, b=b, x=x_star)
    np.testing.assert_allclose(hess, hess.T)
    assert np.linalg.eigvalsh(hess).min() > 0


def test_newton_on_logistic_regression_converges_quadratically():
    """Seed notes, Newton's method: w <- w - H^-1 grad, with matcalc's gradient and Hessian."""
    f = "1^T softplus(X w) - y^T X w + lambda/2 w^T w"
    grad = matcalc.grad(f, "w").to_numpy()
    hess = matcalc.hessian(f, "w").to_numpy()
    rng = np.random.default_rng(2)
    n, d = 200, 5
    data = rng.normal(size=(n, d))
    labels = (rng.random(n) < 1 / (1 + np.exp(-data @ rng.normal(size=d)))).astype(float)
    w = np.zeros(d)
    norms = []
    for _ in range(12):
        g = grad(X=data, y=labels, w=w, lambda_=0.1)
        norms.append(np.linalg.norm(g))
        if norms[-1] < 1e-12:
            break
        w = w - np.linalg.solve(hess(X=data, y=labels, w=w, lambda_=0.1), g)
    assert norms[-1] < 1e-10
    # quadratic convergence: the exponent of the error roughly doubles near the optimum
    late = [v for v in norms if 1e-11 < v < 1e-1]
    assert len(late) >= 2
    ratios = [np.log(b) / np.log(a) for a, b in zip(late, late[1:], strict=False)]
    assert max(ratios) > 1.6
