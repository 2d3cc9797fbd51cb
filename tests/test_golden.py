"""Golden tests: the seed notes' results in exact textbook text (issue #3 acceptance)."""

import pytest

import matcalc

SEED_TABLE = [
    # The seed's Common Derivatives table, row by row.
    ("a^T x", "x", {}, "a"),
    ("x^T A x", "x", {"A": "symmetric matrix"}, "2 A x"),
    ("x^T A x", "x", {}, "(A + A^T) x"),
    ("x^T x", "x", {}, "2 x"),
    ("||x||_2", "x", {}, "x / ||x||_2"),
    ("||A x - b||_2^2", "x", {}, "2 A^T (A x - b)"),
    ("log(exp(x)^T 1)", "x", {}, "softmax(x)"),
]

SEED_RESULTS = [
    ("tr(X)", "X", {}, "I"),
    ("tr(A X)", "X", {}, "A^T"),
    ("||X||_F^2", "X", {}, "2 X"),
    ("||A x||^2", "x", {}, "2 A^T A x"),
    ("log(1 + exp(-y w^T x))", "w", {"y": "scalar"}, "-y sigma(-y w^T x) x"),
    (
        "-y^T log(softmax(W^T x))",
        "W",
        {"y": "probability vector"},
        "x (softmax(W^T x) - y)^T",
    ),
    ("||X w - y||_2^2 + lambda ||w||_2^2", "w", {}, "2 X^T (X w - y) + 2 lambda w"),
    ("||X w - y||_2^2 + lambda ||w||_1", "w", {}, "2 X^T (X w - y) + lambda sign(w)"),
]


@pytest.mark.parametrize("f, wrt, decls, expected", SEED_TABLE + SEED_RESULTS,
                         ids=[c[0] for c in SEED_TABLE + SEED_RESULTS])
def test_textbook_form(f, wrt, decls, expected):
    result = matcalc.grad(f, wrt, **decls)
    assert str(result) == expected
    assert result.shape == result.wrt.shape
    assert result.check()


def test_where_clause_equals_keyword_declaration():
    a = matcalc.grad("x^T A x where A: symmetric", "x")
    b = matcalc.grad("x^T A x", "x", A="symmetric")
    assert str(a) == str(b) == "2 A x"


def test_latex_input_gives_the_same_gradient():
    assert str(matcalc.grad(r"\|A x - b\|_2^2", "x")) == "2 A^T (A x - b)"


def test_variable_that_does_not_occur_gives_zero_of_its_shape():
    result = matcalc.grad("x^T A x", "W")
    assert str(result) == "0"
    assert result.shape[1] != 1 and result.expr.kind == "matrix"
    scalar = matcalc.grad("x^T A x", "alpha")
    assert scalar.expr.kind == "scalar" and str(scalar) == "0"


def test_explain_lists_rules_with_sources():
    text = matcalc.grad("||A x - b||_2^2", "x").explain()
    assert "d_product" in text and "Matrix Cookbook" in text
    assert "canonical_squared_norm" in text
    assert "grad f = 2 A^T (A x - b)" in text
    verbose = matcalc.grad("||A x - b||_2^2", "x").explain(verbose=True)
    assert verbose.strip().endswith("result: 2 A^T (A x - b)")
    latex = matcalc.grad("||A x - b||_2^2", "x").explain(format="latex", verbose=True)
    assert latex.startswith(r"\begin{enumerate}") and r"\item" in latex


def test_differential_of_quadratic_form():
    assert str(matcalc.differential("x^T A x", "x")) == "x^T (A + A^T) dx"


def test_grad_of_non_scalar_is_a_shape_error():
    with pytest.raises(matcalc.ShapeError):
        matcalc.grad("A x", "x")


def test_unsupported_operator_raises_unsupported_error():
    with pytest.raises(matcalc.UnsupportedError) as err:
        matcalc.grad("logdet(u v^T)", "u")  # a rank-one matrix is never invertible
    assert "rank one" in str(err.value)
