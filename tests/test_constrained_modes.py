"""One meaning in every mode: grad, jacobian (both layouts), hessian and derivative of
functions of constrained variables agree with finite differences at random points.

probability: the values are constrained (1^T q = 1 simplifies data), the derivative is
not (LANGUAGE.md section 6), so every mode equals unconstrained finite differences.
symmetric: the gradient is sym(G), a vec-derivative J N, a Hessian N H N, with G, J, H the
independent-entries derivatives at a symmetric point and N = (I + K)/2 (section 6).
"""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.numeric import evaluate, finite_difference, random_point

SIZES = {"n": 3, "m": 2}
SEEDS = range(3)


def _symbol(f, name):
    return next(s for s in f.free_symbols() if s.name == name)


def _point(f, result, seed):
    symbols = sorted(f.free_symbols() | result.free_symbols(), key=lambda s: s.name)
    point = random_point(symbols, SIZES, np.random.default_rng(seed))
    for s in symbols:
        if "probability" in s.props:  # a point of the simplex, where 1^T q = 1 holds
            v = np.abs(np.asarray(point[s.name], dtype=float)) + 0.1
            point[s.name] = v / v.sum()
    return point


def _value(result, point):
    return np.atleast_2d(np.asarray(evaluate(result, point, SIZES), dtype=float))


PROBABILITY_SCALARS = [
    "(1^T q) x^T x", "q^T A q", "log(1^T exp(q))", "(1^T q)^2 + q^T q", "y^T log(softmax(q))",
    "(1^T q) log(1^T q + 1)",
]
PROBABILITY_VECTORS = ["(1^T q) x", "q ⊙ x", "softmax(q) (1^T q)", "A q + (1^T q) x"]
DECLARE = {"q": "probability vector(n)", "x": "vector(n)", "y": "vector(n)",
           "A": "matrix(n, n)"}


def _parse(text):
    names = [k for k in DECLARE if k in text.replace("exp", "").replace("softmax", "")]
    return matcalc.parse(text, **{k: DECLARE[k] for k in names})


@pytest.mark.parametrize("text", PROBABILITY_SCALARS)
@pytest.mark.parametrize("seed", SEEDS)
def test_probability_scalar_every_mode(text: str, seed: int) -> None:
    f = _parse(text)
    q = _symbol(f, "q")
    grad = matcalc.grad(f, q)
    numerator = matcalc.jacobian(f, q)
    denominator = matcalc.jacobian(f, q, layout="denominator")
    hessian = matcalc.hessian(f, q)
    point = _point(f, grad.expr, seed)
    point.update(_point(f, hessian.expr, seed))
    fd = np.asarray(finite_difference(f, q, point), dtype=float).reshape(-1, 1)
    fd_h = np.asarray(finite_difference(f, q, point, mode="hessian"), dtype=float)
    assert np.allclose(_value(grad.expr, point).reshape(-1, 1), fd, atol=1e-5)
    assert np.allclose(_value(numerator.expr, point).reshape(1, -1), fd.T, atol=1e-5)
    assert np.allclose(_value(denominator.expr, point).reshape(-1, 1), fd, atol=1e-5)
    assert np.allclose(_value(hessian.expr, point), fd_h, atol=1e-3)


@pytest.mark.parametrize("text", PROBABILITY_VECTORS)
@pytest.mark.parametrize("seed", SEEDS)
def test_probability_vector_every_mode(text: str, seed: int) -> None:
    f = _parse(text)
    q = _symbol(f, "q")
    numerator = matcalc.jacobian(f, q)
    denominator = matcalc.jacobian(f, q, layout="denominator")
    vec = matcalc.derivative(f, q)
    point = _point(f, numerator.expr, seed)
    fd = np.asarray(finite_difference(f, q, point, mode="jacobian"), dtype=float)
    assert np.allclose(_value(numerator.expr, point), fd, atol=1e-5)
    assert np.allclose(_value(denominator.expr, point), fd.T, atol=1e-5)
    assert np.allclose(_value(vec.expr, point), fd, atol=1e-5)


def test_probability_gradient_and_jacobian_agree_on_the_issue_example() -> None:
    decls = {"q": "probability vector"}
    g = matcalc.grad("(1^T q) x^T x", "q", **decls)
    j = matcalc.jacobian("(1^T q) x^T x", "q", **decls)
    assert str(g) == "(x^T x) 1"  # d((1^T q) c) = c 1^T dq: unconstrained
    assert str(j) == "(x^T x) 1^T"


def test_absent_variable_has_its_own_shape() -> None:
    g = matcalc.grad("x^T A x", "Y", Y="matrix(5, 6)")
    assert g.expr.shape == (5, 6)


# ---------------------------------------------------------------------------- symmetric

SYMMETRIC_SCALARS = ["tr(A S)", "x^T S x", "logdet(S)", "tr(S S)", "y^T S^2 y"]
SYM_DECLARE = {"S": "symmetric matrix(n, n)", "A": "matrix(n, n)", "x": "vector(n)",
               "y": "vector(n)"}


def _symmetric_point(f, result, seed):
    point = _point(f, result, seed)
    for s in f.free_symbols() | result.free_symbols():
        if "symmetric" in s.props:
            v = np.asarray(point[s.name], dtype=float)
            point[s.name] = (v + v.T) / 2 + 3 * np.eye(v.shape[0])
    return point


def _sym_parse(text):
    names = [k for k in SYM_DECLARE if k in text]
    return matcalc.parse(text, **{k: SYM_DECLARE[k] for k in names})


@pytest.mark.parametrize("text", SYMMETRIC_SCALARS)
def test_symmetric_gradient_is_sym_of_the_independent_gradient(text: str) -> None:
    f = _sym_parse(text)
    s = _symbol(f, "S")
    grad = matcalc.grad(f, s)
    point = _symmetric_point(f, grad.expr, 0)
    fd = np.asarray(finite_difference(f, s, point), dtype=float)
    got = _value(grad.expr, point)
    assert np.allclose(got, (fd + fd.T) / 2, atol=1e-5)


@pytest.mark.parametrize("text", SYMMETRIC_SCALARS)
def test_symmetric_modes_agree_with_each_other(text: str) -> None:
    # whatever the convention, grad, jacobian and hessian must describe one derivative:
    # the Jacobian of a scalar is vec(grad)^T and the Hessian is symmetric
    f = _sym_parse(text)
    s = _symbol(f, "S")
    grad = matcalc.grad(f, s)
    jac = matcalc.jacobian(f, s)
    point = _symmetric_point(f, grad.expr, 1)
    g = _value(grad.expr, point)
    j = _value(jac.expr, point)
    assert np.allclose(j.reshape(-1), g.reshape(-1, order="F"), atol=1e-6)


# ---------------------------------------------------------------------------- diagonal

DIAGONAL_SCALARS = ["tr(A D)", "x^T D x", "logdet(D)", "tr(D D)", "y^T D^2 y"]


@pytest.mark.parametrize("text", DIAGONAL_SCALARS)
def test_diagonal_gradient_is_the_diagonal_of_the_independent_gradient(text: str) -> None:
    """w.r.t. a diagonal matrix the gradient is I ⊙ G (contract v2 section 6), and the
    Jacobian of the scalar is vec of that gradient: one derivative in every mode."""
    declare = {"D": "diagonal matrix(n, n)", "A": "matrix(n, n)", "x": "vector(n)",
               "y": "vector(n)"}
    f = matcalc.parse(text, **{k: v for k, v in declare.items() if k in text})
    d = _symbol(f, "D")
    grad = matcalc.grad(f, d)
    point = _point(f, grad.expr, 2)
    point["D"] = np.diag(np.abs(np.diag(np.asarray(point["D"], dtype=float))) + 1.0)
    fd = np.asarray(finite_difference(f, d, point), dtype=float)
    got = _value(grad.expr, point)
    assert np.allclose(got, np.diag(np.diag(fd)), atol=1e-5)
    jac = _value(matcalc.jacobian(f, d).expr, point)
    assert np.allclose(jac.reshape(-1), got.reshape(-1, order="F"), atol=1e-6)
