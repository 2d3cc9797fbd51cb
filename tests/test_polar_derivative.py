"""The derivative of the polar factor and the Hessian of the nuclear norm (issue 11).

Expected values are written from the derivation, never from the engine's output: with
Q = polar(X) of a full-rank X, X = Q (Q^T X) = (X Q^T) Q gives

    (X Q^T) dQ + dQ (Q^T X) = dX - Q dX^T Q,

so d vec(Q) = (I ⊗ X Q^T + (Q^T X)^T ⊗ I)^-1 (I - (Q^T ⊗ Q) K) d vec(X), K the commutation
matrix (vec(dX^T) = K vec(dX)). Each is compared with central differences too.
"""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.commutation import permutation
from matcalc.expr import Sylvester
from matcalc.numeric import evaluate
from matcalc.parse import parse

RNG = np.random.default_rng(11)
SHAPES = [(3, 3), (5, 3), (3, 5)]  # square, tall, wide


def polar(x: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(x, full_matrices=False)
    return u @ vt


def vec(m: np.ndarray) -> np.ndarray:
    return m.reshape(-1, order="F")


def commutation(m: int, n: int) -> np.ndarray:
    """K with vec(X^T) = K vec(X) for X m×n, built from its definition."""
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1.0  # X[i, j] is entry j*m+i of vec(X), i*n+j of vec(X^T)
    return k


def polar_derivative(x: np.ndarray) -> np.ndarray:
    """d vec(polar(X)) / d vec(X)^T from the Sylvester equation above."""
    m, n = x.shape
    q = polar(x)
    kronecker_sum = np.kron(np.eye(n), x @ q.T) + np.kron((q.T @ x).T, np.eye(m))
    rhs = np.eye(m * n) - np.kron(q.T, q) @ commutation(m, n)
    return np.linalg.solve(kronecker_sum, rhs)


def central_jacobian(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Columns d vec(f) / d x_k by central differences, k in column-major order."""
    cols = []
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        step = e.reshape(x.shape, order="F")
        cols.append((vec(np.atleast_2d(f(x + step))) - vec(np.atleast_2d(f(x - step)))) / (2 * h))
    return np.column_stack(cols)


def test_the_hand_derivation_matches_central_differences():
    # the oracle itself, before anything is compared with it
    assert np.array_equal(commutation(3, 2) @ vec(np.arange(6.0).reshape(3, 2)),
                          vec(np.arange(6.0).reshape(3, 2).T))
    assert list(permutation(3, 2)) == [int(np.argmax(r)) for r in commutation(3, 2)]
    for shape in SHAPES:
        x = RNG.standard_normal(shape)
        np.testing.assert_allclose(polar_derivative(x), central_jacobian(polar, x), atol=1e-7)


@pytest.mark.parametrize("shape", SHAPES)
def test_derivative_of_polar(shape):
    m, n = shape
    d = matcalc.derivative("polar(X)", "X", X=f"matrix({m}, {n})")
    x = RNG.standard_normal(shape)
    value = d.to_function()(X=x)
    np.testing.assert_allclose(value, polar_derivative(x), atol=1e-10)
    np.testing.assert_allclose(value, central_jacobian(polar, x), atol=1e-7)
    np.testing.assert_allclose(evaluate(d.expr, {"X": x}), value, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_hessian_of_the_nuclear_norm(shape):
    m, n = shape
    h = matcalc.hessian("||X||_*", "X", X=f"matrix({m}, {n})")
    x = RNG.standard_normal(shape)
    value = h.to_function()(X=x)
    np.testing.assert_allclose(value, polar_derivative(x), atol=1e-10)
    # the Hessian of a scalar is symmetric, and it is the derivative of the gradient
    np.testing.assert_allclose(value, value.T, atol=1e-10)
    np.testing.assert_allclose(value, central_jacobian(polar, x), atol=1e-7)
    for target in ("jax", "torch"):  # the inverse Kronecker sum by eigendecompositions
        np.testing.assert_allclose(np.asarray(h.to_function(target)(X=x)), polar_derivative(x),
                                   atol=1e-10)


def test_hessian_of_the_nuclear_norm_checks_and_prints_the_kronecker_sum():
    h = matcalc.hessian("||X||_*", "X")
    assert h.check()
    # M (I - (Q^T ⊗ Q) K) with M the inverse Kronecker sum of the Sylvester equation of
    # d polar(X) ((Q^T X)^T = Q^T X, symmetric), distributed as the normal form does
    assert str(h) == ("M - M (Q^T ⊗ Q) commutation(n, m) where Q = polar(X), "
                      "M = (I ⊗ (X Q^T) + (Q^T X) ⊗ I)^-1")
    assert matcalc.derivative("polar(X)", "X").check()


def test_differential_of_polar_is_a_sylvester_equation():
    d = matcalc.differential("polar(X)", "X")
    assert str(d) == "sylvester(X polar(X)^T, polar(X)^T X, dX - polar(X) dX^T polar(X))"


def test_gradient_through_polar():
    # tr(C^T dQ) with dQ = S^-1(L), S(W) = X Q^T W + W Q^T X, L = dX - Q dX^T Q: the adjoint
    # of S is S itself (X Q^T, Q^T X symmetric), so the gradient is Y - Q Y^T Q with S(Y) = C
    g = matcalc.grad("tr(C^T polar(X))", "X")
    assert str(g) == "W - Q W^T Q where Q = polar(X), W = sylvester(X Q^T, Q^T X, C)"
    assert g.check()
    for shape in SHAPES:
        x, c = RNG.standard_normal(shape), RNG.standard_normal(shape)
        q = polar(x)
        y = np.linalg.solve(np.kron(np.eye(shape[1]), x @ q.T) + np.kron(x.T @ q, np.eye(shape[0])),
                            vec(c)).reshape(shape, order="F")
        expected = y - q @ y.T @ q
        grad_fd = central_jacobian(lambda z, c=c: np.sum(c * polar(z)), x).reshape(shape, order="F")
        np.testing.assert_allclose(expected, grad_fd, atol=1e-7)
        for target in ("numpy", "jax", "torch"):
            np.testing.assert_allclose(np.asarray(g.to_function(target)(C=c, X=x)), expected,
                                       atol=1e-9)
        np.testing.assert_allclose(g.to_function(scipy=False)(C=c, X=x), expected, atol=1e-9)


def test_composite_nuclear_norms():
    a = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    x, b = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    # ||A X||_*: chain rule, d vec(grad) = (I ⊗ A^T) D(A X) (I ⊗ A) d vec(X)
    h = matcalc.hessian("||A X||_*", "X", A="matrix(m, m)", X="matrix(m, n)")
    assert h.check()
    expected = np.kron(np.eye(4), a.T) @ polar_derivative(a @ x) @ np.kron(np.eye(4), a)
    np.testing.assert_allclose(h.to_function()(A=a, X=x), expected, atol=1e-9)
    # ||X||_* + ||X - B||_F^2: D(X) + 2 I
    h = matcalc.hessian("||X||_* + ||X - B||_F^2", "X")
    assert h.check()
    np.testing.assert_allclose(h.to_function()(B=b, X=x), polar_derivative(x) + 2 * np.eye(12),
                               atol=1e-9)
    # a Hessian-vector product of the nuclear norm, never forming the Hessian
    v = RNG.standard_normal((3, 4))
    hv = matcalc.hvp("||X||_*", "X")
    np.testing.assert_allclose(vec(hv.to_function()(X=x, V=v)), polar_derivative(x) @ vec(v),
                               atol=1e-9)


def test_jacobian_of_polar_of_a_vector_is_the_normalisation():
    # polar(x) = x / ||x||_2, so its Jacobian is (I - u u^T) / ||x||_2 with u = x / ||x||_2
    j = matcalc.jacobian("polar(x)", "x")
    assert j.check()
    x = RNG.standard_normal(4)
    u = x / np.linalg.norm(x)
    expected = (np.eye(4) - np.outer(u, u)) / np.linalg.norm(x)
    np.testing.assert_allclose(evaluate(j.expr, {"x": x}), expected, atol=1e-10)
    for target in ("numpy", "jax", "torch"):
        np.testing.assert_allclose(np.asarray(j.to_function(target)(x=x)), expected,
                                   atol=1e-10)


# -- the Sylvester node ------------------------------------------------------------------


def test_sylvester_reads_prints_and_parses_back():
    e = parse("sylvester(A, B, C)")
    assert isinstance(e, Sylvester)
    (m, _), (n, _) = e.a.shape, e.b.shape
    assert e.shape == (m, n) and e.c.shape == (m, n)
    assert str(e) == "sylvester(A, B, C)"
    assert e.latex() == r"\operatorname{sylvester}(A, B, C)"
    assert parse(e.latex()) == e
    with pytest.raises(matcalc.ShapeError):
        parse("sylvester(A, B, C) where A: matrix(m, m), C: matrix(n, n)")
    with pytest.raises(matcalc.ShapeError):
        parse("sylvester(A, B, C) where A: matrix(m, n)")
    with pytest.raises(matcalc.ParseError):
        parse("sylvester(A, B)")


def test_sylvester_evaluates_for_general_coefficients():
    a, b = RNG.standard_normal((3, 3)) + 4 * np.eye(3), RNG.standard_normal((2, 2)) + np.eye(2)
    c = RNG.standard_normal((3, 2))
    w = evaluate(parse("sylvester(A, B, C)"), {"A": a, "B": b, "C": c})
    np.testing.assert_allclose(a @ w + w @ b, c, atol=1e-12)
    s = (a + a.T) / 2
    w = evaluate(parse("sylvester(S, S, C) where S: symmetric", C="matrix(n, n)"),
                 {"S": s, "C": c[:, :1] @ c[:, :1].T})
    np.testing.assert_allclose(s @ w + w @ s, c[:, :1] @ c[:, :1].T, atol=1e-12)


@pytest.mark.parametrize("target", ["numpy", "jax", "torch"])
def test_sylvester_code(target):
    a, b = RNG.standard_normal((3, 3)) + 4 * np.eye(3), RNG.standard_normal((2, 2)) + np.eye(2)
    c = RNG.standard_normal((3, 2))
    # the gradient with respect to C is the adjoint solve, sylvester(A^T, B^T, D)
    d = matcalc.grad("tr(sylvester(A, B, C)^T D)", "C")
    assert str(d) == "sylvester(A^T, B^T, D)"
    expected = np.linalg.solve(np.kron(np.eye(2), a.T) + np.kron(b, np.eye(3)), vec(c))
    got = np.asarray(d.to_function(target)(A=a, B=b, C=c, D=c))
    np.testing.assert_allclose(vec(got), expected, atol=1e-10)
    if target == "numpy":
        np.testing.assert_allclose(vec(d.to_function(scipy=False)(A=a, B=b, C=c, D=c)),
                                   expected, atol=1e-10)


def test_derivatives_of_sylvester():
    # vec(A W + W B) = (I ⊗ A + B^T ⊗ I) vec(W) (Matrix Cookbook eq. 520)
    d = matcalc.derivative("sylvester(A, B, X)", "X")
    assert str(d) == "(B^T ⊗ I + I ⊗ A)^-1"
    assert d.check()
    # d W = sylvester(A, B, -dA W) when A moves: -(I ⊗ A + B^T ⊗ I)^-1 (W^T ⊗ I)
    d = matcalc.derivative("sylvester(X, B, C)", "X")
    assert d.check()
    a, b = RNG.standard_normal((3, 3)) + 4 * np.eye(3), RNG.standard_normal((2, 2)) + np.eye(2)
    c = RNG.standard_normal((3, 2))
    system = np.kron(np.eye(2), a) + np.kron(b.T, np.eye(3))
    w = np.linalg.solve(system, vec(c)).reshape((3, 2), order="F")
    np.testing.assert_allclose(d.to_function()(X=a, B=b, C=c),
                               -np.linalg.solve(system, np.kron(w.T, np.eye(3))), atol=1e-10)
    assert matcalc.hessian("tr(sylvester(X, X, C))", "X").check()


def test_rank_deficient_point_gives_nan_not_a_number():
    # the nuclear norm has no Hessian where X loses rank: the singular equation is NaN
    h = matcalc.hessian("||X||_*", "X")
    x = RNG.standard_normal((4, 1)) @ RNG.standard_normal((1, 3))
    for target in ("numpy", "jax", "torch"):
        assert np.isnan(np.asarray(h.to_function(target)(X=x))).any()
    g = matcalc.grad("tr(C^T polar(X))", "X")
    for target in ("numpy", "jax", "torch"):
        assert np.isnan(np.asarray(g.to_function(target)(C=x, X=x))).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_hessian_of_the_nuclear_norm_against_a_60_digit_reference(shape):
    # second differences of ||X||_* at 60 digits (mpmath's SVD) along random directions, an
    # oracle independent of float64 finite differences and of the hand derivation
    from high_precision import directional_errors

    m, n = shape
    f = parse("||X||_*", X=f"matrix({m}, {n})")
    wrt = next(iter(f.free_symbols()))
    x = RNG.standard_normal(shape)
    got = matcalc.hessian(f, wrt).to_function()(X=x)
    errors = directional_errors(f, wrt, {"X": x}, {}, "hessian", got, RNG)
    assert all(error <= 1e-10 * scale for error, scale in errors), errors
    wrong = got + 1e-3 * np.abs(got).max() * np.eye(m * n)  # a result off by 0.1 % fails
    errors = directional_errors(f, wrt, {"X": x}, {}, "hessian", wrong, RNG)
    assert any(error > 1e-6 * scale for error, scale in errors), errors


def test_nuclear_norm_of_an_outer_product_is_the_product_of_norms():
    # u v^T = (u / ||u||) (||u|| ||v||) (v / ||v||)^T: one singular value, ||u||_2 ||v||_2,
    # so its Hessian in u is ||v|| (I - u u^T / ||u||^2) / ||u|| (polar(u v^T) has none)
    h = matcalc.hessian("||u v^T||_*", "u")
    assert h.check()
    u, v = RNG.standard_normal(3), RNG.standard_normal(2)
    nu = np.linalg.norm(u)
    expected = np.linalg.norm(v) * (np.eye(3) - np.outer(u, u) / nu**2) / nu
    np.testing.assert_allclose(h.to_function()(u=u, v=v), expected, atol=1e-12)


def test_polar_of_a_rank_one_product_is_a_located_error():
    # polar(u v^T) has no derivative (u v^T is not of full rank for sizes above 1), and the
    # error points at it in the text; polar of a vector, u v^T w, is differentiable
    with pytest.raises(matcalc.UnsupportedError) as info:
        matcalc.grad("tr(A) + 2 tr(C^T polar(x y^T))", "x")
    err = info.value
    assert "`polar(x y^T)` needs a matrix of full rank" in err.message
    assert (err.line, err.column) == (1, 18)
    assert matcalc.jacobian("polar(u v^T w)", "u").check()
