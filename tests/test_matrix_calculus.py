"""Issue 11: the commutation matrix, vec-derivatives of matrix-valued expressions, Jacobians
and Hessians that used to stop with UnsupportedError. Each result is checked by `.check()`
(SymPy / finite differences) and compared with a closed form written from the textbook."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.parse import parse

RNG = np.random.default_rng(11)


def commutation_matrix(m: int, n: int) -> np.ndarray:
    """K with K vec(X) = vec(X^T), built entry by entry from the definition."""
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            # vec(X)[i + m j] = X[i, j] = X^T[j, i] = vec(X^T)[j + n i]
            k[j + n * i, i + m * j] = 1.0
    return k


def vec(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1, order="F")


def value(d: matcalc.Derivative, **arrays: np.ndarray) -> np.ndarray:
    """The result evaluated by its generated NumPy code."""
    return np.asarray(d.to_numpy()(**arrays), float)


# -- the table of issue 11: every row succeeds and checks -------------------------------

TABLE = [
    ("derivative", "X^T X", "X"),
    ("derivative", "X^T", "X"),
    ("derivative", "X A X^T", "X"),
    ("hessian", "logdet(X)", "X"),
    ("hessian", "tr(X^-1)", "X"),
    ("derivative", "X ⊗ Y", "X"),
    ("derivative", "X ⊗ Y", "Y"),
    ("grad", "tr(A ⊗ X)", "X"),
    ("jacobian", "diag(x) y", "x"),
    ("jacobian", "kron(a, x)", "x"),
    ("jacobian", "log(softmax(x))", "x"),
    ("jacobian", "exp(a x^T) b", "x"),
    ("derivative", "eigvec_max(A) where A: symmetric", "A"),
    ("hessian", "det(A + (b^T x) B)", "x"),
    ("grad", "||x^T x||_2", "x"),
]


@pytest.mark.parametrize(("mode", "formula", "wrt"), TABLE, ids=[f"{m}:{f}" for m, f, _ in TABLE])
def test_issue_table_row_succeeds_and_checks(mode, formula, wrt):
    d = getattr(matcalc, mode)(formula, wrt)
    report = d.check()
    assert report, str(report)


# -- closed forms from the textbook -----------------------------------------------------


def test_commutation_matrix_prints_parses_and_evaluates():
    e = parse("commutation(m, n) vec(X) where X: matrix(m, n)")
    assert str(e) == "commutation(m, n) vec(X)"
    back = parse(str(e) + " where X: matrix(m, n)")
    assert back == e
    assert "K_{m,n}" in e.latex()
    # a user's matrix K stays the user's matrix
    user = parse("K vec(X)")
    assert str(user) == "K vec(X)"
    assert "Commutation" not in repr(user)
    x = RNG.standard_normal((2, 3))
    got = matcalc.derivative("X^T", "X", X="matrix(2, 3)")
    np.testing.assert_allclose(value(got, X=x), commutation_matrix(2, 3))
    np.testing.assert_allclose(commutation_matrix(2, 3) @ vec(x), vec(x.T))


def test_derivative_of_transpose_is_commutation():
    d = matcalc.derivative("X^T", "X")
    assert "commutation" in str(d)
    assert "K_{" in d.latex()


def test_derivative_of_gram_matrix():
    # d(X^T X) = dX^T X + X^T dX, vec: (X^T ⊗ I) K + (I ⊗ X^T)  (Magnus & Neudecker)
    x = RNG.standard_normal((4, 3))
    d = matcalc.derivative("X^T X", "X", X="matrix(4, 3)")
    expected = np.kron(x.T, np.eye(3)) @ commutation_matrix(4, 3) + np.kron(np.eye(3), x.T)
    np.testing.assert_allclose(value(d, X=x), expected, atol=1e-12)


def test_hessian_of_logdet_wrt_matrix():
    # grad = X^-T; d(X^-T) = -X^-T dX^T X^-T, so H = -(X^-1 ⊗ X^-T) K: entry
    # d2/dX_ij dX_kl = -(X^-1)_jk (X^-1)_li
    x = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    d = matcalc.hessian("logdet(X)", "X", X="matrix(3, 3)")
    inv = np.linalg.inv(x)
    expected = -np.kron(inv, inv.T) @ commutation_matrix(3, 3)
    np.testing.assert_allclose(value(d, X=x), expected, atol=1e-12)
    assert np.allclose(expected, expected.T)  # a Hessian is symmetric


def test_kronecker_derivative_cookbook_39():
    # vec(dX ⊗ Y) = (I_n ⊗ K_{q,m} ⊗ I_p)(I_mn ⊗ vec Y) vec(dX) for X m×n, Y p×q
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal((4, 2))
    d = matcalc.derivative("X ⊗ Y", "X", X="matrix(2, 3)", Y="matrix(4, 2)")
    shuffle = np.kron(np.kron(np.eye(3), commutation_matrix(2, 2)), np.eye(4))
    expected = shuffle @ np.kron(np.eye(6), vec(y))
    np.testing.assert_allclose(value(d, X=x, Y=y), expected, atol=1e-12)


def test_trace_of_kronecker_product():
    d = matcalc.grad("tr(A ⊗ X)", "X")
    assert str(d) == "tr(A) I"


def test_diag_times_vector_jacobian():
    assert str(matcalc.jacobian("diag(x) y", "x")) == "diag(y)"


def test_log_softmax_jacobian():
    assert str(matcalc.jacobian("log(softmax(x))", "x")) == "I - 1 softmax(x)^T"


def test_kronecker_of_vectors():
    assert str(matcalc.jacobian("kron(a, x)", "x")) == "a ⊗ I"
    assert str(matcalc.jacobian("kron(x, a)", "x")) == "I ⊗ a"


def test_matrix_valued_function_of_a_vector():
    # d(exp(a x^T) b) = (a dx^T ⊙ E) b = diag(a) E diag(b) dx with E = exp(a x^T)
    a, x, b = (RNG.standard_normal((3, 1)) for _ in range(3))
    d = matcalc.jacobian("exp(a x^T) b", "x")
    e = np.exp(a @ x.T)
    expected = np.diag(a[:, 0]) @ e @ np.diag(b[:, 0])
    np.testing.assert_allclose(value(d, a=a, x=x, b=b), expected, atol=1e-12)


def test_determinant_inside_hessian_cookbook_48():
    # f = det(M), M = A + (b^T x) B: H = det(M) (tr(M^-1 B)^2 - tr(M^-1 B M^-1 B)) b b^T
    a, bm = RNG.standard_normal((3, 3)) + 3 * np.eye(3), RNG.standard_normal((3, 3))
    b, x = RNG.standard_normal((3, 1)), RNG.standard_normal((3, 1))
    d = matcalc.hessian("det(A + (b^T x) B)", "x")
    m = a + (b.T @ x).item() * bm
    inv = np.linalg.inv(m)
    scale = np.linalg.det(m) * (np.trace(inv @ bm) ** 2 - np.trace(inv @ bm @ inv @ bm))
    np.testing.assert_allclose(value(d, A=a, B=bm, b=b, x=x), scale * b @ b.T, rtol=1e-9)


def test_norm_of_a_scalar_is_its_absolute_value():
    x = RNG.standard_normal((3, 1))
    d = matcalc.grad("||x^T x||_2", "x")
    np.testing.assert_allclose(value(d, x=x).ravel(), 2 * x.ravel())


def test_eigenvector_derivative_cookbook_68():
    # dv = (lambda I - A)^+ dA v for symmetric A and a simple eigenvalue
    a = RNG.standard_normal((4, 4))
    a = a + a.T
    d = matcalc.derivative("eigvec_max(A) where A: symmetric", "A")
    w, vecs = np.linalg.eigh(a)
    v = vecs[:, -1:]
    v = v * np.sign(v[np.argmax(np.abs(v))])
    pinv = np.linalg.pinv(w[-1] * np.eye(4) - a)
    direction = RNG.standard_normal((4, 4))
    direction = direction + direction.T
    got = value(d, A=a) @ vec(direction)
    np.testing.assert_allclose(got, pinv @ direction @ v, atol=1e-9)


def test_commutation_rules_move_k_right_and_cancel():
    from matcalc.calculus import tidy_kronecker
    from matcalc.rewrite import Trace

    e = parse("commutation(p, m) (A ⊗ B) where A: matrix(m, n), B: matrix(p, q)")
    assert str(tidy_kronecker(e, Trace())) == "(B ⊗ A) commutation(q, n)"
    e = parse("commutation(m, n) commutation(n, m) vec(X) where X: matrix(n, m)")
    assert str(tidy_kronecker(e, Trace())) == "vec(X)"
    e = parse("commutation(m, n)^T")
    assert str(tidy_kronecker(e, Trace())) == "commutation(n, m)"


# -- structured variables (LANGUAGE.md section 6) --------------------------------------


def symmetric(n: int) -> np.ndarray:
    a = RNG.standard_normal((n, n))
    return a + a.T


def test_symmetric_gradient_is_sym_of_independent_gradient():
    d = matcalc.grad("tr(A X) where X: symmetric", "X")
    assert str(d) == "1/2 (A + A^T)"
    assert d.check()


def test_symmetric_logdet_gradient_and_hessian():
    assert str(matcalc.grad("logdet(X) where X: symmetric", "X")) == "X^-1"
    d = matcalc.hessian("logdet(X) where X: symmetric", "X")
    assert d.check()
    # second directional derivative along symmetric E1, E2: -tr(X^-1 E1 X^-1 E2)
    x = symmetric(3) + 8 * np.eye(3)
    e1, e2 = symmetric(3), symmetric(3)
    inv = np.linalg.inv(x)
    h = value(d, X=x)
    np.testing.assert_allclose(vec(e1).T @ h @ vec(e2), -np.trace(inv @ e1 @ inv @ e2),
                               rtol=1e-10)
    # N H N: symmetric directions only, so h vec(A) = 0 for an antisymmetric A
    anti = RNG.standard_normal((3, 3))
    anti = anti - anti.T
    np.testing.assert_allclose(h @ vec(anti), 0, atol=1e-12)


def test_check_rejects_what_issue_11_found_wrong():
    from matcalc.verify import check_derivative

    f = parse("logdet(X) where X: symmetric")
    x = next(iter(f.free_symbols()))
    assert not check_derivative(f, x, "-X^-1 ⊗ X^-1", "hessian", X="symmetric matrix")
    # the Matrix Cookbook's 2 G - diag(G) is not the gradient on symmetric matrices
    g = parse("tr(A X) where X: symmetric")
    x = next(s for s in g.free_symbols() if s.name == "X")
    assert not check_derivative(g, x, "2 A^T - diag(diag(A))", "grad", X="symmetric matrix")
    assert check_derivative(g, x, "(A + A^T)/2", "grad", X="symmetric matrix")


def test_symmetric_derivative_is_j_times_symmetriser():
    d = matcalc.derivative("A X where X: symmetric", "X")
    assert d.check()
    a, x = RNG.standard_normal((3, 3)), symmetric(3)
    n = (np.eye(9) + commutation_matrix(3, 3)) / 2
    np.testing.assert_allclose(value(d, A=a, X=x), np.kron(np.eye(3), a) @ n, atol=1e-12)


def test_every_mode_agrees_on_a_symmetric_variable():
    # grad, derivative of the scalar and hessian describe the same first/second order model
    f = "x^T X X x where X: symmetric"
    g = matcalc.grad(f, "X")
    j = matcalc.derivative(f, "X")
    h = matcalc.hessian(f, "X")
    for d in (g, j, h):
        assert d.check(), d
    x, v = symmetric(3), RNG.standard_normal((3, 1))
    np.testing.assert_allclose(value(j, X=x, x=v).reshape(-1),
                               vec(value(g, X=x, x=v)).reshape(-1), atol=1e-12)


def test_diagonal_variable():
    d = matcalc.grad("tr(A X) where X: diagonal", "X")
    assert d.check()
    a = RNG.standard_normal((3, 3))
    np.testing.assert_allclose(value(d, A=a, X=np.diag([1.0, 2.0, 3.0])), np.diag(np.diag(a)))
    h = matcalc.hessian("tr(A X X) where X: diagonal", "X")
    assert h.check()


def test_probability_vector_is_unconstrained_in_every_mode():
    g = matcalc.grad("1^T q where q: probability", "q")
    j = matcalc.jacobian("(1^T q) q where q: probability", "q")
    assert str(g) == "𝟏"  # the ones vector; a plain `1` alone would read as the number
    assert g.check() and j.check()


# -- a variable that does not occur ------------------------------------------------------


def test_absent_variable_gives_a_zero_of_its_own_shape():
    d = matcalc.grad("a^T x", "b")
    assert d.shape[0] not in {s.shape[0] for s in d.function.free_symbols()}
    out = d.to_numpy()(a=np.ones((3, 1)), x=np.ones((3, 1)), b=np.ones((5, 1)))
    assert np.shape(out) in ((5,), (5, 1)) and not np.any(out)
    y = matcalc.grad("x^T A x", "Y", Y="matrix(5, 6)")
    assert y.shape == (5, 6)
    assert np.shape(y.to_numpy()(x=np.ones((3, 1)), A=np.eye(3), Y=np.ones((5, 6)))) == (5, 6)
    assert matcalc.hessian("a^T x", "b").check()
    assert matcalc.derivative("A X", "Y").check()


def test_kronecker_gradients_of_vectors_and_vec_inner_products():
    d = matcalc.grad("w^T kron(a, x)", "x")
    assert str(d) == "(a^T ⊗ I) w"
    assert d.check()
    d = matcalc.grad("vec(A)^T vec(X X)", "X")
    assert d.check()


# -- gradients through a Kronecker product of matrices (Magnus & Neudecker Theorem 3.10) --


def kronecker_blocks(g: np.ndarray, m: int, n: int) -> list[list[np.ndarray]]:
    """The m×n grid of blocks of g (each (rows/m)×(cols/n)), G_ij as in A ⊗ B = [A_ij B]."""
    p, q = g.shape[0] // m, g.shape[1] // n
    return [[g[i * p:(i + 1) * p, j * q:(j + 1) * q] for j in range(n)] for i in range(m)]


def finite_difference_gradient(f, x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar function, entry by entry."""
    out = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[index] = step
        out[index] = (f(x + e) - f(x - e)) / (2 * step)
    return out


KRON_SHAPES = {"A": "matrix(2, 3)", "B": "matrix(4, 2)", "C": "matrix(6, 8)",
               "x": "vector(8)", "y": "vector(6)"}


def test_kronecker_trace_gradient_left_factor():
    # tr(C (dA ⊗ B)) = tr(G^T (dA ⊗ B)) with G = C^T: entry (i, j) of the gradient is
    # tr(G_ij^T B) = (I ⊗ vec(I)^T)(G ⊗ I)(I ⊗ vec(B)), the partial trace of G (I ⊗ B^T)
    d = matcalc.grad("tr(C (A ⊗ B))", "A", **KRON_SHAPES)
    assert str(d) == "(I ⊗ vec(I)^T) (C^T ⊗ I) (I ⊗ vec(B))"
    assert d.check()
    a, b, c = RNG.standard_normal((2, 3)), RNG.standard_normal((4, 2)), RNG.standard_normal((6, 8))
    blocks = kronecker_blocks(c.T, 2, 3)
    expected = np.array([[np.trace(blocks[i][j].T @ b) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(value(d, A=a, B=b, C=c), expected, atol=1e-12)
    numeric = finite_difference_gradient(lambda t: np.trace(c @ np.kron(t, b)), a)
    np.testing.assert_allclose(expected, numeric, atol=1e-6)


def test_kronecker_trace_gradient_right_factor():
    # tr(G^T (A ⊗ dB)) = sum_ij A_ij tr(G_ij^T dB): the gradient is sum_ij A_ij G_ij
    d = matcalc.grad("tr(C (A ⊗ B))", "B", **KRON_SHAPES)
    assert str(d) == "(vec(A)^T ⊗ I) (I ⊗ C^T) (vec(I) ⊗ I)"
    assert d.check()
    a, b, c = RNG.standard_normal((2, 3)), RNG.standard_normal((4, 2)), RNG.standard_normal((6, 8))
    blocks = kronecker_blocks(c.T, 2, 3)
    expected = sum(a[i, j] * blocks[i][j] for i in range(2) for j in range(3))
    np.testing.assert_allclose(value(d, A=a, B=b, C=c), expected, atol=1e-12)
    numeric = finite_difference_gradient(lambda t: np.trace(c @ np.kron(a, t)), b)
    np.testing.assert_allclose(expected, numeric, atol=1e-6)


def test_kronecker_bilinear_form_gradients():
    # x^T (A ⊗ B) y = tr((x y^T)^T (A ⊗ B)): G = x y^T in both identities above
    da = matcalc.grad("x^T (A ⊗ B) y", "A", **KRON_SHAPES)
    db = matcalc.grad("x^T (A ⊗ B) y", "B", **KRON_SHAPES)
    assert str(da) == "(I ⊗ vec(I)^T) ((x y^T) ⊗ I) (I ⊗ vec(B))"
    assert str(db) == "(vec(A)^T ⊗ I) (I ⊗ (x y^T)) (vec(I) ⊗ I)"
    assert da.check() and db.check()
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((4, 2))
    x, y = RNG.standard_normal((8, 1)), RNG.standard_normal((6, 1))
    f = lambda s, t: (x.T @ np.kron(s, t) @ y).item()  # noqa: E731
    np.testing.assert_allclose(value(da, A=a, B=b, x=x, y=y),
                               finite_difference_gradient(lambda t: f(t, b), a), atol=1e-6)
    np.testing.assert_allclose(value(db, A=a, B=b, x=x, y=y),
                               finite_difference_gradient(lambda t: f(a, t), b), atol=1e-6)


def test_kronecker_of_a_vector_and_a_matrix_gradient():
    # a ⊗ dB = (a ⊗ I) dB (Matrix Cookbook eq. 510 with a vector factor): the gradient is
    # (a^T ⊗ I) G, here with G = C^T; no 1×1 identity is left in the printed form
    d = matcalc.grad("tr(C (a ⊗ B))", "B")
    assert str(d) == "(a^T ⊗ I) C^T"
    assert d.check()


def test_kronecker_frobenius_norm_gradients():
    # ||A ⊗ B||_F^2 = ||A||_F^2 ||B||_F^2 (Matrix Cookbook eq. 511 with the trace), so the
    # gradients are 2 ||B||_F^2 A and 2 ||A||_F^2 B
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((4, 2))
    da = matcalc.grad("||A ⊗ B||_F^2", "A", A="matrix(2, 3)", B="matrix(4, 2)")
    db = matcalc.grad("||A ⊗ B||_F^2", "B", A="matrix(2, 3)", B="matrix(4, 2)")
    assert da.check() and db.check()
    np.testing.assert_allclose(value(da, A=a, B=b), 2 * np.sum(b * b) * a, atol=1e-10)
    np.testing.assert_allclose(value(db, A=a, B=b), 2 * np.sum(a * a) * b, atol=1e-10)


# -- functions of contract v2 section 3 --------------------------------------------------


def test_max_min_subgradients_put_one_on_the_first_extreme_entry():
    d = matcalc.grad("max(x)", "x")
    assert str(d) == "ismax(x)"
    assert d.check()
    x = np.array([[1.0], [3.0], [3.0]])  # a tie: 1 on the first arg-max
    np.testing.assert_array_equal(np.ravel(value(d, x=x)), [0.0, 1.0, 0.0])
    d = matcalc.grad("min(A x)", "x")
    assert str(d) == "A^T ismin(A x)"
    assert d.check()


def test_mean_gradient_is_one_over_the_number_of_entries():
    d = matcalc.grad("mean(X)", "X")
    assert d.check()
    np.testing.assert_allclose(value(d, X=np.ones((2, 3))), np.full((2, 3), 1 / 6))
    assert matcalc.hessian("mean(x)^2", "x").check()


def test_infinity_norm():
    for text in ("||A x - b||_inf", "||A x - b||_∞", r"\|A x - b\|_\infty"):
        d = matcalc.grad(text, "x")
        assert str(d) == "A^T (ismax(abs(A x - b)) ⊙ sign(A x - b))"
        assert d.check()
    assert parse("||x||_inf").latex().endswith(r"\right\|_{\infty}")
    assert str(parse(r"\left\| x \right\|_{\infty}")) == "||x||_inf"


def test_nuclear_norm_gradient_is_the_polar_factor():
    d = matcalc.grad("||X||_*", "X")
    assert str(d) == "polar(X)"
    assert d.check()
    x = RNG.standard_normal((4, 3))
    u, _, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(value(d, X=x), u @ vt, atol=1e-12)
    assert str(parse(r"\|X\|_*")) == "||X||_*"


@pytest.mark.parametrize("call", [
    # these raised "polar(X) has no differential in closed form" before d polar(X) was the
    # solution of a Sylvester equation (tests/test_polar_derivative.py has the values)
    lambda: matcalc.hessian("||X||_*", "X"),
    lambda: matcalc.hessian("tr(A^T X) + 3 ||X^T B||_*", "X", B="matrix(m, m)"),
    lambda: matcalc.jacobian("vec(polar(X))", "X"),
    lambda: matcalc.jacobian("vec(polar(X))", "X", layout="denominator", X="matrix(m, n)"),
    lambda: matcalc.grad("tr(A polar(X))", "X"),
])
def test_what_needs_the_differential_of_polar_is_derived_and_checked(call):
    assert call().check()


# -- det near singular points -----------------------------------------------------------


@pytest.mark.parametrize("target", ["numpy"] + [t for t in ("jax", "torch")
                                                 if __import__("importlib").util.find_spec(t)])
def test_det_gradient_is_the_adjugate_at_a_singular_point(target):
    from matcalc.printing.codegen import compile_source

    if target == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    adjugate_t = np.array([[4.0, -2.0], [-2.0, 1.0]])  # d det / dX = adj(X)^T
    d = matcalc.grad("det(X)", "X")
    f = compile_source(d.expr, [d.wrt], target)
    np.testing.assert_allclose(np.asarray(f(X=singular), float), adjugate_t, atol=1e-12)
    x = RNG.standard_normal((3, 3))
    np.testing.assert_allclose(np.asarray(f(X=x), float),
                               np.linalg.det(x) * np.linalg.inv(x).T, atol=1e-12)
    # a power of det keeps one factor with the adjugate: 2 det(X) adj(X)^T
    g = matcalc.grad("det(X)^2", "X").to_numpy()
    np.testing.assert_allclose(g(X=singular), 0.0, atol=1e-12)
