"""Results print as a textbook prints them: the expected texts are written from the
derivations (never copied from the engine), and each is checked against an independent
oracle (NumPy values, finite differences or SymPy via ``.check()``)."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.dims import dim_names
from matcalc.expr import Number, Ones, Pow
from matcalc.numeric import evaluate

RNG = np.random.default_rng(11)


def _sizes(e, n: int = 4) -> dict:
    """Every dimension of ``e`` at size n (a formula whose sizes nothing distinguishes)."""
    dims: set = set()
    for node in e.walk():
        for d in node.shape:
            if not isinstance(d, int):
                dims.add(d)
    return dict.fromkeys(dims, n)


# ---------------------------------------------------------------- the ones vector `1`


def test_gradient_of_the_mean_of_a_matrix_is_the_ones_matrix_over_m_n():
    # d mean(X) = 1^T dX 1 / (m n) = tr((1 1^T)^T dX) / (m n): the ones matrix over the count
    g = matcalc.grad("mean(X)", "X")
    assert str(g) == "1 1^T / (1^T 1 1^T 1)"
    assert g.check()
    assert str(matcalc.parse(str(g))) == str(g)  # text parses back


def test_gradient_of_the_mean_is_a_vector_over_n():
    # d mean(x) = 1^T dx / n, so grad = (1/n) 1, with n written 1^T 1
    g = matcalc.grad("mean(x)", "x")
    assert str(g) == "(1 / (1^T 1)) 1"
    assert g.latex() == r"\frac{1}{\mathbf{1}^{\top} \mathbf{1}} \mathbf{1}"
    assert g.check()
    for text in (str(g), g.latex()):
        back = matcalc.parse(text)
        assert back.shape[1] == 1 and back.shape[0] != 1, text  # a vector, not a number
        value = evaluate(back, {}, _sizes(back))
        assert np.allclose(value, np.full(4, 1 / 4)), text


@pytest.mark.parametrize("f, text, latex", [
    ("sum(x)", "𝟏", r"\mathbf{1}"),
    ("-sum(x)", "-𝟏", r"-\mathbf{1}"),
])
def test_a_lone_ones_vector_does_not_print_as_the_number(f, text, latex):
    g = matcalc.grad(f, "x")
    assert (str(g), g.latex()) == (text, latex)
    sign = -1 if f.startswith("-") else 1
    for shown in (text, latex):
        back = matcalc.parse(shown)
        assert back.shape[0] != 1 and back.shape[1] == 1, shown
        assert np.allclose(evaluate(back, {}, _sizes(back)), sign * np.ones(4))


def test_a_ones_vector_after_a_scalar_factor_parses_back_as_the_vector():
    # d (1^T x)^2 = 2 (1^T x) 1^T dx: the gradient is 2 (1^T x) 1
    g = matcalc.grad("(1^T x)^2", "x")
    assert str(g) == "2 (1^T x) 1"
    assert g.latex() == r"2 \left(\mathbf{1}^{\top} x\right) \mathbf{1}"
    for shown in (str(g), g.latex()):
        assert matcalc.check_claim("(1^T x)^2", "x", shown), shown


@pytest.mark.parametrize("text, shape_kind", [
    ("1 1^T", "matrix"),  # the ones matrix: an outer product, never 1 times a row
    ("x 1^T", "matrix"),
    ("1^T x", "scalar"),
    ("2 1", "vector"),
    (r"\mathbf{1}", "vector"),  # a bold one is always the vector
    ("𝟏", "vector"),
    ("1", "scalar"),  # a plain one alone is the number
    ("1 + x", "vector"),
])
def test_where_a_written_one_is_the_ones_vector(text, shape_kind):
    e = matcalc.parse(text)
    rows, cols = e.shape
    kind = "scalar" if (rows, cols) == (1, 1) else "vector" if cols == 1 else "matrix"
    assert kind == shape_kind


def test_ones_in_a_kronecker_product_is_the_vector():
    # 1 ⊗ x stacks copies of x (Magnus & Neudecker ch. 2: 1_m ⊗ x)
    e = matcalc.parse("1 ⊗ x")
    assert isinstance(e.left, Ones)
    x = RNG.standard_normal(3)
    sizes = {d: 2 for d in e.left.shape if not isinstance(d, int)}
    sizes.update({d: 3 for d in e.right.shape if not isinstance(d, int)})
    assert np.allclose(evaluate(e, {"x": x}, sizes), np.kron(np.ones(2), x))


def test_the_gradient_of_a_sum_of_entries_is_the_ones_matrix():
    g = matcalc.grad("sum(X)", "X")
    assert str(g) == "1 1^T"
    assert matcalc.check_claim("sum(X)", "X", str(g))
    assert matcalc.check_claim("sum(X)", "X", g.latex())


@pytest.mark.parametrize("f, wrt, decls, text", [
    # d(lambda sum(M ⊙ S)) = lambda sum(M ⊙ dS) = tr((lambda M)^T dS): the ones matrix a
    # scalar multiplies is the Hadamard identity, so the gradient is lambda M
    ("lambda sum(M ⊙ S)", "S", {}, "lambda M"),
    # on the symmetric space the gradient is sym(G) = (G + G^T)/2 (LANGUAGE.md section 6)
    ("lambda sum(M ⊙ S)", "S", {"S": "symmetric"}, "1/2 lambda (M + M^T)"),
    # d sum(alpha 1 ⊙ x) = alpha 1^T dx
    ("sum((alpha 1) ⊙ x)", "x", {}, "alpha 1"),
])
def test_a_scaled_ones_matrix_in_a_hadamard_product_is_its_scalar(f, wrt, decls, text):
    g = matcalc.grad(f, wrt, **decls)
    assert str(g) == text
    assert g.check()


# ---------------------------------------------------------------- scalar coefficients


def test_logistic_hvp_collects_its_scalars_in_front():
    # f = log(1 + exp(-y w^T x)); grad = -y s x with s = sigma(-y w^T x); ds = -s (1 - s) y x^T dw,
    # so H v = y^2 s (1 - s) x x^T v = y^2 s (1 - s) (v^T x) x (the chain oriented v^T x:
    # equal transposes, then the structural order, docs/NORMAL_FORM.md)
    r = matcalc.hvp("log(1 + exp(-y w^T x))", "w", y="scalar")
    assert str(r) == "y^2 s (1 - s) (v^T x) x where s = sigma(-y w^T x)"
    w, x, v = (RNG.standard_normal(3) for _ in range(3))
    y = 0.7
    s = 1 / (1 + np.exp(y * w @ x))
    expected = y**2 * s * (1 - s) * np.outer(x, x) @ v
    got = evaluate(r.expr, {"w": w, "x": x, "v": v, "y": y})
    assert np.allclose(got, expected)


def test_the_hessian_and_the_hvp_share_one_coefficient_order():
    h = matcalc.hessian("log(1 + exp(-y w^T x))", "w", y="scalar")
    assert str(h) == "y^2 s (1 - s) x x^T where s = sigma(-y w^T x)"
    assert h.check()


# ---------------------------------------------------------------- Kronecker products


@pytest.mark.parametrize("f, wrt, text", [
    # ||A ⊗ B||_F = ||A||_F ||B||_F, so d ||A||_F^2 ||B||_F^2 = 2 ||B||_F^2 tr(A^T dA)
    ("||A ⊗ B||_F^2", "A", "2 ||B||_F^2 A"),
    # tr(A ⊗ X) = tr(A) tr(X) (Cookbook sec. 10.2.2) and d tr(X) = tr(I dX)
    ("tr(A ⊗ X)", "X", "tr(A) I"),
    # d tr(M X) = tr(M dX) gives M^T (Cookbook eq. 100), (A ⊗ B)^T = A^T ⊗ B^T
    ("tr((A ⊗ B) X)", "X", "A^T ⊗ B^T"),
    # (A ⊗ B)^-1 = A^-1 ⊗ B^-1, then transposed as above
    ("tr((A ⊗ B)^-1 X)", "X", "A^-T ⊗ B^-T"),
    # d x^T M x = x^T (M + M^T) dx (Cookbook eq. 81)
    ("x^T (A ⊗ B) x", "x", "(A ⊗ B + A^T ⊗ B^T) x"),
])
def test_kronecker_gradients_print_the_textbook_form(f, wrt, text):
    g = matcalc.grad(f, wrt)
    assert str(g) == text
    assert g.check()
    # the claim is read with the function's sizes, products such as matrix(m*p, n*q)
    assert matcalc.check_claim(f, wrt, text)


def test_a_declared_size_may_be_a_product():
    e = matcalc.parse("X where X: matrix(m*q, 2*n)")
    assert [str(d) for d in e.shape] == ["m*q", "2*n"]
    with pytest.raises(matcalc.DeclarationError):
        matcalc.parse("X where X: matrix(m/q, n)")


@pytest.mark.parametrize("text, expected", [
    ("I ⊗ I", "I"),
    ("(2 A) ⊗ B", "2 (A ⊗ B)"),
    ("(alpha A) ⊗ (beta B)", "alpha beta (A ⊗ B)"),
    ("tr(A ⊗ B)", "tr(A) tr(B)"),
    ("(A ⊗ B)^-1", "A^-1 ⊗ B^-1"),
    ("(A ⊗ B)^T (C ⊗ D)", "(A^T C) ⊗ (B^T D)"),
])
def test_kronecker_algebra_of_the_normal_form(text, expected):
    from matcalc.simplify import simplify

    e = matcalc.parse(text)
    s = simplify(e)
    assert str(s) == expected
    assert s.shape == e.shape
    sizes = {name: 2 for node in e.walk() for d in node.shape for name in dim_names(d)}
    values = {sym.name: RNG.standard_normal((2, 2)) for sym in e.free_symbols()
              if sym.shape != (1, 1)}
    values.update({sym.name: 0.5 for sym in e.free_symbols() if sym.shape == (1, 1)})
    assert np.allclose(evaluate(e, values, sizes), evaluate(s, values, sizes))


# ---------------------------------------------------------------- the audit's textbook forms


def test_logistic_regression_gradient_is_the_residual_times_the_input():
    # -y log s - (1 - y) log(1 - s) with s = sigma(w^T x): ds = s (1 - s) x^T dw, so
    # grad = (-y (1 - s) + (1 - y) s) x = (s - y) x (Bishop, PRML eq. 4.91)
    f = "-y log(sigma(w^T x)) - (1 - y) log(1 - sigma(w^T x))"
    g = matcalc.grad(f, "w", y="scalar")
    assert str(g) == "(sigma(w^T x) - y) x"
    assert g.check()


def test_a_bare_function_name_is_bare_only_as_the_last_factor():
    # d det(X) = det(X) tr(X^-1 dX) (Cookbook eq. 49: det(X) (X^-1)^T)
    g = matcalc.grad("det(X)", "X")
    assert str(g) == "det(X) X^-T"
    assert g.latex() == r"\det(X) X^{-\top}"
    assert matcalc.check_claim("det(X)", "X", g.latex())


def test_a_numeric_fraction_joins_the_denominator():
    # d sqrt(u) = du / (2 sqrt(u)) with du = x^T (A + A^T) dx
    g = matcalc.grad("sqrt(x^T A x)", "x")
    assert str(g) == "(A + A^T) x / (2 sqrt(x^T A x))"
    assert g.latex() == r"\frac{\left(A + A^{\top}\right) x}{2 \sqrt{x^{\top} A x}}"
    assert g.check()
    for shown in (str(g), g.latex()):
        assert matcalc.check_claim("sqrt(x^T A x)", "x", shown), shown


def test_a_kronecker_chain_groups_left_without_parentheses():
    # ⊗ is associative (Cookbook sec. 10.2.2) and groups left to right
    e = matcalc.parse("(A ⊗ B) ⊗ C")
    assert str(e) == "A ⊗ B ⊗ C" and matcalc.parse(str(e)) == e
    right = matcalc.parse("A ⊗ (B ⊗ C)")
    assert str(right) == "A ⊗ (B ⊗ C)"
    assert e.latex() == r"A \otimes B \otimes C"


@pytest.mark.parametrize("f, wrt, decls, text", [
    # Gaussian log-likelihood -1/2 logdet(S) - 1/2 r^T S^-1 r, r = x - m (Bishop, PRML
    # eq. 2.122): d/dm = S^-1 (x - m) for symmetric S, 1/2 (S^-1 + S^-T) (x - m) in general
    ("-1/2 logdet(S) - 1/2 (x - m)^T S^-1 (x - m)", "m", {"S": "symmetric matrix"},
     "S^-1 (x - m)"),
    ("-1/2 logdet(S) - 1/2 (x - m)^T S^-1 (x - m)", "m", {}, "1/2 (S^-1 + S^-T) (x - m)"),
    # d/dS = -1/2 S^-1 + 1/2 S^-1 r r^T S^-1 (Cookbook eqs. 57 and 61, symmetric space)
    ("-1/2 logdet(S) - 1/2 (x - m)^T S^-1 (x - m)", "S", {"S": "symmetric matrix"},
     "1/2 (S^-1 (x - m) (x - m)^T S^-1 - S^-1)"),
    # the residual as the formula writes it (Cookbook eq. 86: -2 A^T W (x - A s))
    ("(x - A s)^T W (x - A s)", "s", {"W": "symmetric matrix"}, "-2 A^T W (x - A s)"),
    ("||y - X w||_2^2", "w", {}, "-2 X^T (y - X w)"),
    ("||X w - y||_2^2", "w", {}, "2 X^T (X w - y)"),
])
def test_sums_keep_the_orientation_the_formula_gives_them(f, wrt, decls, text):
    g = matcalc.grad(f, wrt, **decls)
    assert str(g) == text
    assert g.check()
    assert matcalc.check_claim(f, wrt, text, **decls)


def test_terms_equal_up_to_the_sign_of_a_sum_are_collected():
    from matcalc.simplify import simplify

    e = matcalc.parse("A (x - m) + A (m - x)")
    assert str(simplify(e)) == "0"
    e = matcalc.parse("B (x - m) (x - m)^T + B (m - x) (m - x)^T")
    assert str(simplify(e)) == "2 B (x - m) (x - m)^T"
    # one product agrees on the sign of its sums: (m - x) (x - m)^T is -(m - x) (m - x)^T
    e = matcalc.parse("C (m - x) (x - m)^T")
    assert str(simplify(e)) == "-C (m - x) (m - x)^T"


@pytest.mark.parametrize("mode, f, wrt, text", [
    # d sigma(z) = s (1 - s) dz, d(s (1 - s)) = (1 - 2 s) ds: H = s (1 - s) (1 - 2 s) x x^T
    ("hessian", "sigma(w^T x)", "w", "s (1 - 2 s) (1 - s) x x^T where s = sigma(w^T x)"),
    # f = ||V^T s - y||^2, s = softmax(K q): grad = 2 K^T (diag(s) - s s^T) V (V^T s - y),
    # the common 2 in front of the product
    ("grad", "||V^T softmax(K q) - y||_2^2", "q",
     "2 K^T (V (V^T s - y) ⊙ s - (s^T V (V^T s - y)) s) where s = softmax(K q)"),
    # matrix factorization: d ||X - U V^T||_F^2 = -2 tr((X - U V^T)^T (dU V^T + U dV^T))
    ("grad", "||X - U V^T||_F^2", "U", "-2 (X - U V^T) V"),
    ("grad", "||X - U V^T||_F^2", "V", "-2 (X - U V^T)^T U"),
    # (exp(a x^T) b)_i = sum_k exp(a_i x_k) b_k: J_ik = a_i exp(a_i x_k) b_k
    ("jacobian", "exp(a x^T) b", "x", "diag(a) exp(a x^T) diag(b)"),
    # (c X)^-1 = X^-1 / c: d a^T X^-1 b / c = -a^T X^-1 dX X^-1 b / c
    ("grad", "a^T (c X)^-1 b where c: scalar", "X", "-X^-T a b^T X^-T / c"),
    ("grad", "tr((2 X)^-1)", "X", "-1/2 (X^-T)^2"),
    # Cookbook eq. 68, du = (lambda I - A)^+ dA u with (lambda I - A)^+ =
    # (lambda I - A + ||A||_F u u^T)^-1 (I - u u^T) (the shift scaled like A's spectrum),
    # is J vec(dA) with J = (...)^-1 (I - u u^T) (u^T ⊗ I); on the symmetric space J N,
    # N = (I + K)/2 once
    ("derivative", "eigvec_max(A) where A: symmetric", "A",
     "1/2 (lambda_max(A) I + ||A||_F u u^T - A)^-1 (I - u u^T) (u^T ⊗ I) (commutation(n, n) + I)"
     " where u = eigvec_max(A)"),
])
def test_audited_formulas_print_their_textbook_form(mode, f, wrt, text):
    r = getattr(matcalc, mode)(f, wrt)
    assert str(r) == text
    assert r.check()


def test_a_leading_inner_product_scales_the_rest_of_a_chain():
    # x^T x a is (x^T x) a: d = 2 a x^T dx; the chain must never be split between x and a
    from matcalc.simplify import simplify

    assert str(simplify(matcalc.parse("x^T x a"))) == "(x^T x) a"
    j = matcalc.jacobian("x^T x a", "x")
    assert str(j) == "2 a x^T"
    assert j.check()
    x, a = RNG.standard_normal(3), RNG.standard_normal(2)
    assert np.allclose(evaluate(matcalc.parse("x^T x a"), {"x": x, "a": a}), (x @ x) * a)


@pytest.mark.parametrize("text, expected", [
    # (A + B) ⊗ C = A ⊗ C + B ⊗ C and A ⊗ (B + C) = A ⊗ B + A ⊗ C (Cookbook sec. 10.2.2)
    ("A ⊗ I + A^T ⊗ I", "(A + A^T) ⊗ I"),
    ("A ⊗ C - B ⊗ C", "(A - B) ⊗ C"),
    ("2 (C ⊗ A) + C ⊗ B", "C ⊗ (2 A + B)"),
    ("A ⊗ B + A^T ⊗ B^T", "A ⊗ B + A^T ⊗ B^T"),  # nothing in common: stays
])
def test_a_common_kronecker_factor_comes_out_of_a_sum(text, expected):
    from matcalc.simplify import simplify

    e = matcalc.parse(text, A="matrix(n, n)")
    s = simplify(e)
    assert str(s) == expected
    sizes = {name: 2 for node in e.walk() for d in node.shape for name in dim_names(d)}
    values = {sym.name: RNG.standard_normal((2, 2)) for sym in e.free_symbols()}
    assert np.allclose(evaluate(e, values, sizes), evaluate(s, values, sizes))


def test_quadratic_form_in_a_kronecker_product_with_the_identity():
    # d x^T M x = x^T (M + M^T) dx with M = A ⊗ I, and A ⊗ I + A^T ⊗ I = (A + A^T) ⊗ I
    g = matcalc.grad("x^T (A ⊗ I) x", "x")
    assert str(g) == "((A + A^T) ⊗ I) x"
    assert g.check()


@pytest.mark.parametrize("f, wrt", [("mean(x)", "x"), ("mean(X)", "X"), ("sign(max(-b))", "b")])
def test_printed_results_are_accepted_as_claims(f, wrt):
    # what matcalc prints, pasted back, is the derivative: the n of (1 / (1^T 1)) 1 is
    # read off the derivative of the same form, and `0` is the zero of its shape
    g = matcalc.grad(f, wrt)
    for shown in (str(g), g.latex()):
        assert matcalc.check_claim(f, wrt, shown), shown
    assert not matcalc.check_claim("x^T x", "x", "0")


def test_a_power_of_a_scalar_product_splits_off_its_chain():
    from matcalc.simplify import simplify

    # (a b)^-1 = a^-1 b^-1 for scalars, the inner product x^T x being one scalar
    e = simplify(matcalc.parse("(alpha x^T x)^-1", alpha="scalar"))
    assert str(e) == "1 / (alpha (x^T x))"
    alpha, x = matcalc.parse("alpha", alpha="scalar"), matcalc.parse("x^T x")
    assert set(e.factors) == {Pow(alpha, Number(-1)), Pow(x, Number(-1))}


def test_the_diagonal_of_an_outer_product_is_elementwise():
    # d x^T diag(d) x = x^T diag(dd) x = (x ⊙ x)^T dd: grad = x.^2
    g = matcalc.grad("x^T diag(d) x", "d")
    assert str(g) == "x.^2"
    assert g.check()


def test_the_logistic_function_written_with_exp_is_sigma():
    # exp(z) / (1 + exp(z)) = sigma(z), sigma' = sigma (1 - sigma)
    g = matcalc.grad("exp(a^T x) / (1 + exp(a^T x))", "x")
    assert str(g) == "s (1 - s) a where s = sigma(a^T x)"
    assert g.check()


@pytest.mark.parametrize("text, expected", [
    ("diag(2 alpha x)", "2 alpha diag(x)"),  # diag and vec are linear
    ("vec(alpha X)", "alpha vec(X)"),
    ("diag(𝟏)", "I"),
    ("A diag(x) diag(y) B", "A diag(x ⊙ y) B"),  # a product of diagonal matrices
    ("(alpha 1) ⊙ y", "alpha y"),  # the ones vector is the unit of ⊙
])
def test_diagonal_and_elementwise_algebra(text, expected):
    from matcalc.simplify import simplify

    e = matcalc.parse(text, alpha="scalar")
    s = simplify(e)
    assert str(s) == expected
    sizes = {name: 3 for node in e.walk() for d in node.shape for name in dim_names(d)}
    values = {sym.name: RNG.standard_normal(tuple(sizes.get(d, d) for d in sym.shape))
              for sym in e.free_symbols()}
    values = {k: (float(v[0, 0]) if v.shape == (1, 1) else v.reshape(-1) if v.shape[1] == 1
                  else v) for k, v in values.items()}
    assert np.allclose(evaluate(e, values, sizes), evaluate(s, values, sizes))


def test_hessian_of_a_mean_is_one_diagonal():
    # mean(sqrt(1 + y.^2)): gradient y ./ sqrt(1 + y.^2) / n, Hessian
    # diag(1 ./ sqrt(1 + y.^2) - y.^2 ./ (1 + y.^2).^(3/2)) / n
    h = matcalc.hessian("mean(sqrt(1 + y.^2))", "y")
    assert str(h) == "diag(1 ./ sqrt(1 + y.^2) - y.^2 ./ (1 + y.^2).^(3/2)) / (1^T 1)"
    assert h.check()


def test_the_jacobian_of_an_elementwise_product_is_one_diagonal():
    # d(sigma(x) ⊙ tanh(x)) = (s ⊙ (1 - s) ⊙ tanh(x) + s ⊙ (1 - tanh(x).^2)) ⊙ dx
    j = matcalc.jacobian("sigma(x) ⊙ tanh(x)", "x")
    assert str(j) == "diag(s ⊙ (1 - tanh(x).^2) + s ⊙ tanh(x) ⊙ (1 - s)) where s = sigma(x)"
    assert j.check()
