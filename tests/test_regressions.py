"""Regressions found by the differential tests: each a shrunk example that once went wrong."""

from __future__ import annotations

import numpy as np
import pytest
from differentiable import check_gradient

import matcalc
from matcalc.expr import Add, Norm, Symbol
from matcalc.simplify import simplify

X = Symbol("x", ("n", 1))
Q = Symbol("q", ("n", 1), frozenset({"probability"}))
BETA = Symbol("beta", (1, 1))


def _agrees(f, wrt):
    outcome = check_gradient(f, wrt)
    assert outcome.status == "checked", f"{outcome.status}: {outcome.detail} ({outcome.result})"
    assert outcome.result.check(), str(outcome.result.check())
    return outcome.result


def test_scalar_broadcast_into_a_vector_sums_the_gradient():
    # ||x + beta + q|| d/dbeta was the vector (beta + q + x) / ||.||: the scalar beta is
    # added to every entry, so its gradient is the sum of the entries of that vector.
    result = _agrees(Norm(Add((X, BETA, Q)), None), BETA)
    assert result.shape == (1, 1)


@pytest.mark.parametrize("f, wrt, decls, expected", [
    # S^T = S must not move the gradient: w.r.t. a symmetric S it is sym(G) of the
    # independent-entries gradient G (contract v2, section 6) however S^T is written
    ("x^T S^T y", "S", {"S": "symmetric"}, "1/2 (x y^T + y x^T)"),
    ("tr(S^T A)", "S", {"S": "symmetric", "A": "matrix(n, n)"}, "1/2 (A + A^T)"),
    ("tr(S A)", "S", {"S": "symmetric"}, "1/2 (A + A^T)"),
    ("logdet(X)", "X", {"X": "symmetric matrix"}, "X^-1"),
    # nor may 1^T q = 1 for a probability vector q
    ("1^T q", "q", {"q": "probability vector"}, "𝟏"),  # the ones vector, not the number
    ("1^T q + q^T x", "q", {"q": "probability vector"}, "1 + x"),
])
def test_declared_properties_of_wrt_do_not_change_the_gradient(f, wrt, decls, expected):
    result = matcalc.grad(f, wrt, **decls)
    assert str(result) == expected
    assert result.check(), str(result.check())


def test_lambda_max_of_an_expression_in_a_symmetric_variable():
    # was off by the symmetric part: S^T S had been rewritten to S^2 before differentiating
    f = matcalc.parse("lambda_max((I + S^T S)^-1 + ((I + S^T S)^-1)^T)", S="symmetric")
    s = next(iter(f.free_symbols()))
    _agrees(f, s)


def test_other_variables_keep_their_declared_properties():
    # the cross-entropy gradient still uses 1^T y = 1 for the probability vector y
    result = matcalc.grad("-y^T log(softmax(W^T x))", "W", y="probability vector")
    assert str(result) == "x (softmax(W^T x) - y)^T"


def test_kronecker_product_with_a_scalar_factor_compiles():
    # the generated NumPy code applied einsum to a scalar factor of ⊗ (a ValueError)
    f = matcalc.parse("alpha ((y ⊗ y)^T (x ⊗ x))", x="vector(n)", y="vector(n)")
    _agrees(f, next(s for s in f.free_symbols() if s.name == "alpha"))


def test_cancelled_array_terms_keep_the_broadcast_scalar():
    # M + alpha - M was simplified to the scalar alpha instead of alpha 1 1^T, so
    # (M + alpha - M)^T (M + alpha - M) became alpha^2
    f = matcalc.parse("logdet(I + (M + alpha - M)^T (M + alpha - M))", M="matrix(p, m)")
    _agrees(f, next(s for s in f.free_symbols() if s.name == "alpha"))


def test_scalar_chain_is_not_spliced_into_a_matrix_chain():
    # 1^T ((y^T x) 1) was flattened to the ill-formed chain 1^T y^T x 1
    f = matcalc.parse("1^T (c + x) y^T x", c="scalar")
    result = _agrees(f, next(s for s in f.free_symbols() if s.name == "c"))
    assert "1^T y^T" not in str(result)


@pytest.mark.parametrize("text", ["1e999999999 x^T x", "1" + "0" * 5000 + " x^T x"])
def test_huge_numbers_are_parse_errors(text):
    with pytest.raises(matcalc.ParseError, match="too long or too large"):
        matcalc.parse(text)


@pytest.mark.parametrize("text", ["(10^900)^(10^900) x^T x", "2^99999 x^T x"])
def test_huge_constants_are_unsupported_not_slow(text):
    # folding 10^900 to the power 10^900 never ended; 2^99999 could not be printed
    with pytest.raises(matcalc.UnsupportedError, match="bits"):
        matcalc.grad(text, "x")


def test_norm_gradient_at_zero_is_the_zero_subgradient():
    """LANGUAGE.md section 6: at a kink the result is the usual subgradient, not nan."""
    import numpy as np

    f = matcalc.grad("||x||_2", "x").to_numpy()
    np.testing.assert_array_equal(f(x=np.zeros(3)), np.zeros(3))
    np.testing.assert_allclose(f(x=np.array([3.0, 4.0])), [0.6, 0.8])
    g = matcalc.grad("||relu(x - q)||_2", "x").to_numpy()
    assert not np.isnan(g(x=np.zeros(3), q=np.ones(3))).any()


def test_generated_code_squares_a_scalar_chain() -> None:
    """x^T y y^T x is (y^T x)^T (y^T x) of plain numbers: the code squares it (was `g.T @ g`
    on NumPy scalars, a TypeError; found by the soak)."""
    import numpy as np

    g = matcalc.grad("alpha (x^T y) (y^T x)", "alpha")
    x, y = np.array([1.0, -2.0, 0.5]), np.array([3.0, 1.0, 4.0])
    assert g.to_numpy()(alpha=2.0, x=x, y=y) == pytest.approx(float(x @ y) ** 2)


@pytest.mark.parametrize("f, wrt, expected", [
    # d sqrt(e^s) = e^s ds / (2 sqrt(e^s)) = sqrt(e^s) ds / 2: as a quotient, the code
    # returned 0/0 = nan wherever e^s underflows to 0 (found by the soak)
    ("sum(sqrt(exp(x)))", "x", "1/2 sqrt(exp(x))"),
    ("sqrt(exp(alpha))", "alpha", "1/2 sqrt(exp(alpha))"),
    ("sqrt(exp(-x^T x))", "x", "-sqrt(exp(-x^T x)) x"),
])
def test_a_quotient_by_its_own_square_root_is_the_square_root(f, wrt, expected) -> None:
    import numpy as np

    g = matcalc.grad(f, wrt)
    assert str(g) == expected
    assert g.check()
    point = {"x": np.array([-2000.0, 0.5, 1.0]), "alpha": -2000.0}
    got = np.asarray(g.to_numpy()(**{s.name: point[s.name] for s in g.params()}))
    assert np.all(np.isfinite(got))
    if wrt == "x" and "sum" in f:
        np.testing.assert_allclose(got, np.sqrt(np.exp(point["x"])) / 2)


def test_a_square_root_times_itself_is_its_argument() -> None:
    # sqrt(u) ⊙ sqrt(u) = u (u >= 0 where the square root is defined); u ⊙ sqrt(u) = u.^(3/2)
    from matcalc.simplify import simplify

    assert str(simplify(matcalc.parse("sqrt(exp(x)) ⊙ sqrt(exp(x))"))) == "exp(x)"
    assert str(simplify(matcalc.parse("x ⊙ sqrt(x)"))) == "x.^(3/2)"


@pytest.mark.parametrize("f, wrt", [
    # a lone power with a negative exponent next to another factor once swapped between
    # numerator and denominator forever when square roots became half powers
    ("tr(exp(Q^T).^-1)", "Q"),
    ("sum((1 + J.^2).^-1)", "J"),
    ("sum(exp(v).^(1/2))", "v"),
    ("sum(sqrt(1 + x.^2).^-1 ⊙ x)", "x"),
])
def test_elementwise_monomials_with_square_roots_terminate(f, wrt) -> None:
    assert matcalc.grad(f, wrt).check()


def test_log_of_exp_is_its_argument_so_the_code_stays_finite() -> None:
    # d(e^Gamma) = e^Gamma log(e) dGamma with e = exp(det(.)): as log(e) the code computed
    # log(inf) * 0 = nan where exp(det) overflows, though the derivative is ~0 there
    # (found by the soak, seed 0)
    import numpy as np

    g = matcalc.grad("sqrt(exp(exp(det(I + H^T H))^Gamma))", "Gamma")
    assert "log" not in str(g)
    assert g.check()
    h = np.diag([5.0, 4.0, 5.0])  # det(I + H^T H) = 26 * 17 * 26: exp overflows
    with np.errstate(over="ignore"):  # exp(det) is inf, as it may be
        got = g.to_numpy()(Gamma=-1.2, H=h)
    assert np.isfinite(got) and got == pytest.approx(0.0, abs=1e-300)


@pytest.mark.parametrize("f, scale", [("det(X) tr(X)", 1.0), ("det(A X) tr(X)", 2.0)])
def test_det_times_a_sum_with_the_inverse_is_finite_at_singular_points(f, scale) -> None:
    # d(det(X) tr(X)) = det(X) I + tr(X) det(X) X^-T = det(X) I + tr(X) adj(X)^T: defined
    # at a singular X, where the code computed det(X) (I + tr(X) X^-T) = 0 * inf = nan
    import numpy as np

    g = matcalc.grad(f, "X")
    assert g.check()
    x = np.array([[1.0, 2.0], [2.0, 4.0]])  # det 0, tr 5, adj(X)^T = [[4, -2], [-2, 1]]
    a = np.array([[1.0, 0.5], [0.0, 2.0]])  # det(A) = 2
    args = {"X": x, "A": a} if "A" in f else {"X": x}
    with np.errstate(all="ignore"):
        got = g.to_numpy()(**args)
    np.testing.assert_allclose(got, scale * 5 * np.array([[4.0, -2.0], [-2.0, 1.0]]),
                               atol=1e-12)


def test_elementwise_powers_with_a_symbolic_exponent_add_up() -> None:
    # d/dx sum(x ⊙ x.^(b - 1)) = d/dx sum(x.^b) = b x.^(b - 1)
    g = matcalc.grad("sum(x ⊙ x.^(b - 1)) where b: scalar", "x")
    assert str(g) == "b x.^(b - 1)"
    assert g.check()


def test_a_power_that_underflows_gives_a_zero_derivative_not_nan() -> None:
    # soak case 13000577: with beta < 0, exp(l e.^(-beta)) overflows to inf, its power
    # .^beta is 0 and the derivative is 0; the code must not compute inf ⊙ inf.^(beta - 1)
    d = matcalc.derivative("exp(log(1 + E.^2) exp(J ⊙ Q).^(-beta)).^beta "
                           "where beta: scalar, Q: symmetric", "J")
    assert d.check()
    rng = np.random.default_rng(0)
    E = rng.uniform(-1, 1, (3, 4)) + 0.3
    J = np.eye(4) * 5 + rng.uniform(-1, 1, (4, 4))
    Q = np.eye(4) * 5 + 0.1
    with np.errstate(over="ignore"):  # exp overflows to inf on purpose
        value = d.to_numpy()(E=E, J=J, Q=Q, beta=-0.44)
    assert np.all(np.isfinite(value)) and np.allclose(value, 0.0)


def test_symbolic_exponents_that_add_to_a_number() -> None:
    # x.^b ⊙ x.^(1 - b) = x.^1 = x and x.^b ./ x.^b = 1 (found by the normal-form property
    # test: the merged exponent left the table of symbolic ones while it was being read)
    from matcalc.simplify import simplify

    assert str(simplify(matcalc.parse("x.^b ⊙ x.^(1 - b) where b: scalar"))) == "x"
    assert str(simplify(matcalc.parse("x.^b ./ x.^b ⊙ y where b: scalar"))) == "y"


def test_sum_of_a_kronecker_product_of_vectors_only_for_vectors() -> None:
    # 1^T (a ⊗ b) = (1^T a) (1^T b) matched b^T ⊗ I (a row vector and a matrix) and built
    # an ill-typed product (found by tests/soak.py --seed 5 --mode all); the Jacobian of
    # u 1^T W b with respect to W is u vec(1 b^T)^T, i.e. u (1^T (b^T ⊗ I))
    j = matcalc.jacobian("u 1^T (W - A) b", "W")
    assert j.check()
    rng = np.random.default_rng(0)
    u, w, a, b = (rng.standard_normal(s) for s in ((3,), (4, 2), (4, 2), (2,)))
    expected = np.outer(u, np.outer(np.ones(4), b).reshape(-1, order="F"))
    np.testing.assert_allclose(j.to_numpy()(u=u, W=w, A=a, b=b), expected, atol=1e-12)


def test_sylvester_equation_with_a_zero_right_side_is_zero() -> None:
    # d polar(A + tanh(sign(X))) = sylvester(.., .., d(tanh(sign(X)))) with d sign = 0: the
    # solution of a Sylvester equation with a zero right side is 0, which was left
    # unsimplified and then could not be read off as a Jacobian (found by tests/soak.py
    # --seed 5 --mode all)
    for f in ("polar(A + tanh(sign(X)))", "sylvester(A, B, sign(X))"):
        d = matcalc.derivative(f, "X")
        assert str(d) == "0"
        assert d.check()


def test_scalar_powers_with_symbolic_exponents_merge() -> None:
    # soak seed 3, case seed 3003237, sin(exp(det(tanh(P H mu) + 12 I))^mu): the chain rule
    # wrote e e^(mu - 1) for d(e^mu) / du with e = exp(u), inf * 0 = NaN in float64 where e
    # overflows although e^mu is 0. By hand: d(exp(x^T x)^mu) = mu e^(mu - 1) e 2 x^T dx,
    # so the gradient is 2 mu e^mu x
    g = matcalc.grad("exp(x^T x)^mu", "x")
    assert str(g) == "2 mu exp(x^T x)^mu x"
    assert g.check()
    x = np.full(3, 20.0)  # x^T x = 1200: exp overflows float64, exp(x^T x)^-1 is 0
    with np.errstate(over="ignore"):  # exp overflows to inf on purpose
        value = g.to_numpy()(x=x, mu=-1.0)
    assert np.array_equal(value, np.zeros(3))


def test_a_rule_for_vectors_does_not_bind_a_matrix() -> None:
    # soak seed 6, case seeds 6005260 and 6008263: kron_diag_vec, an identity of vectors
    # a and b, bound the matrix C in (a^T ⊗ I) diag(vec(M)) (I ⊗ C), and the Jacobian of
    # tanh(C D) a stopped with "a rule produced an ill-typed result". By hand:
    # d(tanh(C D) a) = ((1 - tanh(C D).^2) ⊙ (C dD)) a, and vec(M ⊙ (C dD)) =
    # diag(vec(M)) (I ⊗ C) vec(dD), vec(N a) = (a^T ⊗ I) vec(N)
    j = matcalc.jacobian("tanh(C D) a", "D")
    assert str(j) == "(a^T ⊗ I) diag(vec(1 - tanh(C D).^2)) (I ⊗ C)"
    assert j.check()
    assert matcalc.jacobian("softplus(C D) (sign(q) - sign(y))", "D").check()


def test_sums_and_means_of_row_vectors() -> None:
    # sum of a row vector had no canonical form (sum(1^T X) and a column-wise
    # log-sum-exp stopped with UnsupportedError) and logsumexp(u) bound a matrix u
    g = matcalc.grad("sum(x^T A)", "x")  # sum(x^T A) = x^T A 1
    assert str(g) == "A 1" and g.check()
    g = matcalc.grad("mean(x^T A)", "x")  # x^T A 1 / m
    assert str(g) == "A 1 / (1^T 1)" and g.check()
    g = matcalc.grad("sum(exp(x^T A))", "x")  # sum_j exp(a_j^T x) a_j
    assert str(g) == "A exp(x^T A)^T" and g.check()
    # the column-wise softmax: d/dU_ij sum_k log(sum_l exp(U_lk)) = exp(U_ij) / sum_l exp(U_lj)
    g = matcalc.grad("sum(log(1^T exp(U)))", "U")
    U = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_allclose(g.to_numpy()(U=U), np.exp(U) / np.exp(U).sum(axis=0),
                               rtol=1e-12)


def test_ones_rows_are_neutral_in_a_hadamard_product() -> None:
    assert str(simplify(matcalc.parse("1^T ⊙ x^T"))) == "x^T"
    assert str(simplify(matcalc.parse("1^T ⊙ 1^T"))) == "1^T"


def test_a_linear_function_of_zero_is_zero() -> None:
    # soak seed 7, case seed 7006143: d mean(sign(C)) = mean(0) stayed unsimplified and a
    # Jacobian could not be read off it; mean, like sum, tr, diag and vec, is linear
    d = matcalc.derivative("A mean(sign(C))", "C")
    assert str(d) == "0" and d.check()
