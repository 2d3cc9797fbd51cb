"""Tests of NumPy evaluation, finite differences and generated NumPy code."""

from __future__ import annotations

import re

import numpy as np
import pytest

import matcalc
from matcalc.errors import DeclarationError, UnsupportedError
from matcalc.expr import Differential, Symbol
from matcalc.numeric import evaluate, finite_difference, random_point, symbols_of
from matcalc.printing.numpy import compile_numpy, python_name, to_numpy_source
from matcalc.verify import concrete_sizes


def _point(expr, seed=0, positive=False):
    sizes = concrete_sizes([expr])
    return random_point(symbols_of([expr]), sizes, np.random.default_rng(seed), positive)


def test_evaluate_matches_numpy():
    rng = np.random.default_rng(0)
    a, x, b = rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=3)
    value = evaluate(matcalc.parse("||A x - b||_2^2"), {"A": a, "x": x, "b": b})
    assert isinstance(value, float)
    assert value == pytest.approx(np.sum((a @ x - b) ** 2))
    grad = evaluate(matcalc.parse("2 A^T (A x - b)"), {"A": a, "x": x, "b": b})
    assert grad.shape == (2,)
    np.testing.assert_allclose(grad, 2 * a.T @ (a @ x - b))


def test_evaluate_errors():
    with pytest.raises(DeclarationError):
        evaluate(matcalc.parse("A x"), {"A": np.eye(2)})
    with pytest.raises(UnsupportedError):
        evaluate(Differential(Symbol("x", ("n", 1))), {"x": np.ones(2)}, {"n": 2})


def test_random_point_respects_declarations():
    e = matcalc.parse("x^T S y + sum(Q)", S="symmetric matrix", y="probability vector")
    values = _point(e)
    s, y = values["S"], values["y"]
    np.testing.assert_allclose(s, s.T)
    assert np.all(np.linalg.eigvalsh(s) > 0)
    assert y.ndim == 1 and np.all(y > 0) and y.sum() == pytest.approx(1)
    positive = _point(e, positive=True)
    assert np.all(positive["x"] > 0)


def test_finite_difference_gradient():
    f = matcalc.parse("||A x - b||_2^2")
    values = _point(f)
    fd = finite_difference(f, "x", values)
    want = evaluate(matcalc.parse("2 A^T (A x - b)"), values)
    np.testing.assert_allclose(fd, want, rtol=1e-6, atol=1e-8)


def test_finite_difference_symmetric_logdet():
    f = matcalc.parse("logdet(X) where X: symmetric")
    values = _point(f)
    fd = finite_difference(f, "X", values)
    np.testing.assert_allclose(fd, np.linalg.inv(values["X"]), rtol=1e-6, atol=1e-8)


def test_finite_difference_jacobian_and_hessian():
    x = np.array([0.3, -0.2, 0.5])
    jac = finite_difference(matcalc.parse("softmax(x)"), "x", {"x": x}, "jacobian")
    s = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(jac, np.diag(s) - np.outer(s, s), atol=1e-8)
    a = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0], [0.0, 1.0, 2.0]])
    hess = finite_difference(matcalc.parse("x^T A x"), "x", {"x": x, "A": a}, "hessian")
    np.testing.assert_allclose(hess, a + a.T, atol=1e-5)


GENERATED = [
    "2 A^T (A x - b)",
    "x^T A x",
    "diag(s) - s s^T where s = softmax(x)",
    "A^T diag(v) A x",
    "x^T diag(v) A",
    "kron(A, B) x",
    "x^T kron(A, B)",
    "kron(A, B)",
    "lambda I + A^-1 B",
    "diag(v) X^-1 b",
    "b^T X^-1",
    "logsumexp(W x) + logdet(S) + lambda_max(S) where S: symmetric",
    "eigvec_max(S) + eigvec_min(S) where S: symmetric",
    "svec_left(X) svec_right(X)^T",
    "||X||_2 + ||X||_F + ||x||_1 + ||x||",
    "sigma(x) .* relu(x) ./ softplus(x) + abs(x) + sign(x) + sqrt(exp(x))",
    "tr(A) + det(A) + sum(A) + vec(A)^T vec(A) + diag(A)^T 1",
    "(x^T y) A z",
    "2 W2^T (W2 h - y) .* (1 - h.^2) x^T where h = tanh(W1 x)",
    "alpha^2 / beta + sin(alpha) cos(beta)",
]


@pytest.mark.parametrize("text", GENERATED)
def test_generated_code_agrees_with_evaluate(text):
    e = matcalc.parse(text)
    values = _point(e, seed=3)
    fn = compile_numpy(e, symbols_of([e]))
    got = fn(**{python_name(k): v for k, v in values.items()})
    want = evaluate(e, values)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    source = to_numpy_source(e, symbols_of([e]))
    assert "np.kron" not in source
    assert "np.diag(" not in source
    assert "np.diagflat" not in source


def test_generated_code_orders_chains_and_shares_subexpressions():
    source = to_numpy_source(matcalc.parse("A^T A x"))
    assert "A.T @ A" not in source
    assert re.search(r"\bA @ x\b", source)
    softmax = to_numpy_source(matcalc.parse("diag(s) - s s^T where s = softmax(x)"))
    assert softmax.count("np.exp(") == 1
    row_scaling = to_numpy_source(matcalc.parse("diag(v) A"))
    assert "v[:, None] * A" in row_scaling and "@" not in row_scaling


def test_generated_code_accepts_columns_and_returns_natural_shapes():
    e = matcalc.parse("A x")
    fn = compile_numpy(e)
    a = np.arange(6.0).reshape(2, 3)
    assert fn(A=a, x=np.ones(3)).shape == (2,)
    assert fn(A=a, x=np.ones((3, 1))).shape == (2,)
    assert isinstance(compile_numpy(matcalc.parse("x^T x"))(x=[1.0, 2.0]), float)


def test_generated_code_names():
    e = matcalc.parse("lambda x")
    source = to_numpy_source(e, name="scaled")
    assert source.startswith("def scaled(*, lambda_, x):")
    with pytest.raises(DeclarationError):
        to_numpy_source(e, [Symbol("x", ("n", 1))])
    with pytest.raises(DeclarationError):
        to_numpy_source(e, name="not valid")
