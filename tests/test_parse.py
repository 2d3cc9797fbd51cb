"""Table-driven parser tests: every seed-note formula and LANGUAGE.md example, with kinds."""

from __future__ import annotations

from fractions import Fraction

import pytest

import matcalc
from matcalc.errors import ShapeError
from matcalc.expr import Add, Call, Identity, Mul, Neg, Number, Ones, Symbol, Transpose

S, V, R, M = "scalar", "vector", "row vector", "matrix"

# (formula, keyword declarations, kind of the whole, {name: kind of the name})
# Formulas copied from the seed lecture notes (LaTeX as written there) and LANGUAGE.md.
TABLE = [
    # -- seed notes: the formulas of the "Common Derivatives" table and the text
    (r"2Ax", {}, V, {"A": M, "x": V}),
    (r"\|Xw - y\|_2^2", {}, S, {"X": M, "w": V, "y": V}),
    (r"\text{tr}(AX)", {}, S, {"A": M, "X": M}),
    (r"A^T", {}, M, {"A": M}),
    (r"Ax", {}, V, {"A": M, "x": V}),
    (r"x^TA^TAx", {}, S, {"A": M, "x": V}),
    (r"2A^TAx", {}, V, {"A": M, "x": V}),
    (r"a^Tx", {}, S, {"a": V, "x": V}),
    (r"a", {}, V, {"a": V}),
    (r"x^TAx", {}, S, {"A": M, "x": V}),
    (r"x^Tx", {}, S, {"x": V}),
    (r"2x", {}, V, {"x": V}),
    (r"\|x\|_2", {}, S, {"x": V}),
    (r"x/\|x\|_2", {}, V, {"x": V}),
    (r"\|Ax - b\|_2^2", {}, S, {"A": M, "x": V, "b": V}),
    (r"2A^T(Ax - b)", {}, V, {"A": M, "x": V, "b": V}),
    (r"\log(\exp(x)^T \mathbf{1})", {}, S, {"x": V}),
    (r"\text{softmax}(x)", {}, V, {"x": V}),
    (r"\text{softmax}(z)", {}, V, {"z": V}),
    (r"\frac{1}{1 + \exp(-z)}", {"z": "scalar"}, S, {"z": S}),
    (r"\sigma(z)", {}, V, {"z": V}),
    (r"W^Tx", {}, V, {"W": M, "x": V}),
    (r"\sigma_1(W_1 x)", {}, V, {"sigma_1": S, "W1": M, "x": V}),
    (r"\sigma_2(W_2 h_1)", {}, V, {"sigma_2": S, "W2": M, "h1": V}),
    (r"H", {}, M, {"H": M}),
    (r"\mathbf{0}", {}, S, {}),  # the zero of the notes' critical point: a broadcast 0
    (r"w - \alpha g", {}, V, {"w": V, "alpha": S, "g": V}),
    (r"L_2", {}, M, {"L2": M}),
    (r"\lambda \|w\|_2^2", {}, S, {"lambda": S, "w": V}),
    (r"2\lambda w", {}, V, {"lambda": S, "w": V}),
    (r"\lambda \|w\|_1", {}, S, {"lambda": S, "w": V}),
    (r"\lambda \text{sign}(w)", {}, V, {"lambda": S, "w": V}),
    (r"QK^T", {}, M, {"Q": M, "K": M}),
    (r"\epsilon \text{sign}(g)", {}, V, {"epsilon": S, "g": V}),
    (r"\|A\|_F^2", {}, S, {"A": M}),
    (r"\hat{y}", {}, V, {"y_hat": V}),
    # the losses and results the notes describe in words
    ("x^T A x where A: symmetric", {}, S, {"A": M, "x": V}),
    ("diag(s) - s s^T where s = softmax(x)", {}, M, {"x": V}),
    ("log(1 + exp(-y w^T x)) where y: scalar", {}, S, {"y": S, "w": V, "x": V}),
    ("-y^T log(softmax(W^T x))", {}, S, {"y": V, "W": M, "x": V}),
    ("x (softmax(W^T x) - y)^T", {}, M, {"x": V, "W": M, "y": V}),
    ("||X||_F^2", {}, S, {"X": M}),
    ("tr(X)", {}, S, {"X": M}),
    ("softmax(Q K^T x)", {}, V, {"Q": M, "K": M, "x": V}),
    # -- LANGUAGE.md examples
    ("x", {}, V, {"x": V}), ("b", {}, V, {"b": V}), ("w1", {}, V, {"w1": V}),
    ("x_i", {}, V, {"x_i": V}), ("h_2", {}, V, {"h2": V}),
    ("X", {}, M, {"X": M}), ("W1", {}, M, {"W1": M}), ("W_2", {}, M, {"W2": M}),
    ("lambda", {}, S, {"lambda": S}), ("alpha", {}, S, {"alpha": S}),
    ("epsilon", {}, S, {"epsilon": S}), ("λ", {}, S, {"lambda": S}), ("α", {}, S, {"alpha": S}),
    ("A + lambda I", {}, M, {"A": M, "lambda": S}),
    ("exp(x)^T 1", {}, S, {"x": V}),
    ("AX", {}, M, {"A": M, "X": M}), ("XW", {}, M, {"X": M, "W": M}),
    ("W1x", {}, V, {"W1": M, "x": V}),
    ("1 + exp(v)", {}, V, {"v": V}),
    ("x^T y", {}, S, {"x": V, "y": V}), ("x y^T", {}, M, {"x": V, "y": V}),
    ("a ⊙ b c^T", {}, M, {"a": V, "b": V, "c": V}),
    ("a .* b", {}, V, {"a": V, "b": V}), ("a ∘ b", {}, V, {"a": V, "b": V}),
    ("a ./ b", {}, V, {"a": V, "b": V}), ("a ⊗ b", {}, V, {"a": V, "b": V}),
    ("kron(A, B)", {}, M, {"A": M, "B": M}), ("-y w^T x", {"y": "scalar"}, S,
                                              {"y": S, "w": V, "x": V}),
    ("A^-1", {}, M, {"A": M}), ("A^{-1}", {}, M, {"A": M}), ("A^3", {}, M, {"A": M}),
    ("x.^2", {}, V, {"x": V}), ("x^T x", {}, S, {"x": V}),
    ("a'", {}, R, {"a": V}), (r"a^\top", {}, R, {"a": V}), ("aᵀ", {}, R, {"a": V}),
    ("a^T", {}, R, {"a": V}), ("2", {}, S, {}), ("0.5", {}, S, {}), ("1e-3", {}, S, {}),
    ("1/2", {}, S, {}), ("A(x - b)", {}, V, {"A": M, "x": V, "b": V}),
    ("||x||", {}, S, {"x": V}), ("||x||_2", {}, S, {"x": V}), ("||x||_1", {}, S, {"x": V}),
    ("||X||_F", {}, S, {"X": M}), ("||X||_2", {}, S, {"X": M}),
    ("||A x - b||_2^2", {}, S, {"A": M, "x": V, "b": V}), ("|x|", {}, V, {"x": V}),
    ("|alpha|", {}, S, {"alpha": S}),
    ("tr(A)", {}, S, {"A": M}), ("det(A)", {}, S, {"A": M}), ("logdet(X)", {}, S, {"X": M}),
    ("log(det(X))", {}, S, {"X": M}), ("inv(A)", {}, M, {"A": M}),
    ("diag(x)", {}, M, {"x": V}), ("diag(X)", {}, V, {"X": M}), ("sum(X)", {}, S, {"X": M}),
    ("vec(X)", {}, V, {"X": M}),
    *[(f"{f}(x)", {}, V, {"x": V}) for f in ("exp", "log", "sqrt", "sin", "cos", "tanh", "sigma",
                                             "sigmoid", "σ", "relu", "softplus", "abs", "sign",
                                             "softmax")],
    ("logsumexp(x)", {}, S, {"x": V}), ("lse(x)", {}, S, {"x": V}),
    ("lambda_max(A)", {"A": "symmetric"}, S, {"A": M}),
    ("lambda_min(A)", {"A": "symmetric"}, S, {"A": M}),
    ("eigvec_max(A)", {"A": "symmetric"}, V, {"A": M}),
    ("eigvec_min(A)", {"A": "symmetric"}, V, {"A": M}),
    ("svec_left(X) svec_right(X)^T", {}, M, {"X": M}),
    ("x^T A x where A: symmetric matrix(n, n), x: vector(n)", {}, S, {"A": M, "x": V}),
    ("x (softmax(W^T x) - y)^T where y: probability vector", {}, M, {"x": V, "W": M, "y": V}),
    ("x^T (A + A^T) d", {}, S, {"x": V, "A": M, "d": V}),
    ("2 W2^T (W2 h - y) ⊙ (1 - h.^2) x^T where h = tanh(W1 x)", {}, M,
     {"W2": M, "W1": M, "x": V, "y": V}),
    ("2 A^T (A x - b)", {}, V, {"A": M, "x": V, "b": V}),
    ("2 A x", {"A": "symmetric"}, V, {"A": M, "x": V}),
    ("log(exp(x)^T 1)", {}, S, {"x": V}),
    ("||Ax - b||_2^2", {}, S, {"A": M, "x": V, "b": V}),
    ("tr(AX)", {}, S, {"A": M, "X": M}),
    ("x^T (A + lambda I) x", {}, S, {"x": V, "A": M, "lambda": S}),
    ("x^T A x", {"A": "symmetric matrix"}, S, {"A": M, "x": V}),
    ("sigma z", {}, V, {"sigma": S, "z": V}),
    ("loss^2 where loss: scalar", {}, S, {"loss": S}),
]


@pytest.mark.parametrize("formula,decls,kind,symbols", TABLE, ids=[t[0] for t in TABLE])
def test_kinds(formula: str, decls: dict, kind: str, symbols: dict) -> None:
    e = matcalc.parse(formula, **decls)
    assert e.kind == kind
    assert {s.name: s.kind for s in e.free_symbols()} == symbols


def shapes(e) -> dict:
    """Name to (kind, shape) of every symbol."""
    return {s.name: (s.kind, s.shape) for s in e.free_symbols()}


def test_least_squares_dimensions() -> None:
    e = matcalc.parse("||Ax - b||_2^2")
    got = shapes(e)
    (rows, cols), (n, _), (k, _) = got["A"][1], got["b"][1], got["x"][1]
    assert (rows, cols) == (n, k) and rows != cols


def test_quadratic_form_is_square_and_symmetric() -> None:
    e = matcalc.parse("x^T A x where A: symmetric")
    a = next(s for s in e.free_symbols() if s.name == "A")
    assert a.props == {"symmetric"}
    assert shapes(e) == {"A": ("matrix", ("n", "n")), "x": ("vector", ("n", 1))}


def test_keyword_declarations_equal_where_clause() -> None:
    by_keyword = matcalc.parse("x^T A x", A="symmetric matrix")
    assert by_keyword == matcalc.parse("x^T A x where A: symmetric matrix")
    assert by_keyword == matcalc.parse("x^T A x where A: symmetric")
    assert matcalc.parse("x^T y", x="vector(n)", y="vector(n)") == matcalc.parse(
        "x^T y where x: vector(n), y: vector(n)")


def test_keyword_declaration_changes_kind() -> None:
    e = matcalc.parse("c x", c="scalar")
    assert shapes(e)["c"] == ("scalar", (1, 1))
    with pytest.raises(ShapeError, match="vector times a vector"):
        matcalc.parse("c x")  # undeclared, c is a vector


def test_trace_of_product() -> None:
    e = matcalc.parse("tr(AX)")
    assert e == Call("tr", (Mul((Symbol("A", ("n", "m")), Symbol("X", ("m", "n")))),))


def test_letter_runs() -> None:
    assert matcalc.parse("Ax") == matcalc.parse("A x")
    assert matcalc.parse("QK^T") == matcalc.parse("Q K^T")
    assert matcalc.parse("W1x") == matcalc.parse("W1 x")
    assert matcalc.parse("AX") == matcalc.parse("A X")
    # a declared name stays whole
    assert shapes(matcalc.parse("loss", loss="scalar")) == {"loss": ("scalar", (1, 1))}


def test_ones_is_all_ones_vector() -> None:
    e = matcalc.parse("log(exp(x)^T 1)")
    (arg,) = e.args
    assert arg == Mul((Transpose(Call("exp", (Symbol("x", ("n", 1)),))), Ones("n")))
    e = matcalc.parse("1^T x")
    assert e.factors[0] == Transpose(Ones("n"))
    # a scalar 1 stays a number
    assert matcalc.parse("1 + alpha") == Add((Number(Fraction(1)), Symbol("alpha", (1, 1))))


def test_identity_takes_its_size() -> None:
    e = matcalc.parse("x^T (A + lambda I) x")
    inner = e.factors[1]
    assert inner == Add((Symbol("A", ("n", "n")), Mul((Symbol("lambda", (1, 1)), Identity("n")))))


def test_greek_function_ambiguity() -> None:
    assert matcalc.parse("sigma(z)") == Call("sigma", (Symbol("z", ("n", 1)),))
    assert matcalc.parse("sigma z") == Mul((Symbol("sigma", (1, 1)), Symbol("z", ("n", 1))))
    assert matcalc.parse("σ(z)") == matcalc.parse("sigmoid(z)") == matcalc.parse("sigma(z)")
    # declared, sigma is a variable even before a parenthesis
    assert matcalc.parse("sigma (z)", sigma="scalar") == matcalc.parse("sigma z")


def test_negation_scope() -> None:
    e = matcalc.parse("-y w^T x", y="scalar")
    assert isinstance(e, Neg) and isinstance(e.arg, Mul)


def test_where_binding_is_inlined() -> None:
    e = matcalc.parse("diag(s) - s s^T where s = softmax(x)")
    assert e == matcalc.parse("diag(softmax(x)) - softmax(x) softmax(x)^T")
    assert shapes(e) == {"x": ("vector", ("n", 1))}


def test_dimension_declarations() -> None:
    with pytest.raises(ShapeError):
        matcalc.parse("x^T y where x: vector(n), y: vector(m)")
    with pytest.raises(ShapeError):
        matcalc.parse("x^T y", x="vector(n)", y="vector(m)")
    e = matcalc.parse("A x where A: matrix(m, n), x: vector(n)")
    assert e.shape == ("m", 1)


def test_products_group_left_to_right() -> None:
    assert matcalc.parse("a ⊙ b c^T") == matcalc.parse("(a ⊙ b) c^T")
    assert matcalc.parse("a ⊙ b ⊙ c") == matcalc.parse("a .* b ∘ c")
    assert len(matcalc.parse("a ⊙ b ⊙ c").factors) == 3


def test_fraction_stays_exact() -> None:
    assert matcalc.parse("1/2") == Number(Fraction(1, 2))
    assert matcalc.parse("0.5") == Number(Fraction(1, 2))
    assert matcalc.parse("1e-3") == Number(Fraction(1, 1000))


def test_long_sum_parses() -> None:
    e = matcalc.parse(" + ".join(["x"] * 3000))
    assert isinstance(e, Add) and len(e.terms) == 3000
