"""The textbook normal form (issue 10): exact text of results, and equal inputs print alike.

Expected strings are the textbook's (Matrix Cookbook 2012, the seed notes, or a
derivation written out in the comment), never copied from engine output.
"""

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import well_typed_exprs

import matcalc
from matcalc.expr import Add, Call, Expr, Mul, Number, Transpose
from matcalc.simplify import order_key, simplify

# (formula, variable, textbook form) -- the table of issue 10
TABLE = [
    # Cookbook eq. 124: -(X^-1 B A X^-1)^T
    ("tr(A X^-1 B)", "X", "-X^-T A^T B^T X^-T"),
    # det(X^2) = det(X)^2, Cookbook eq. 49 and the chain rule: 2 det(X) det(X) X^-T
    ("det(X^2)", "X", "2 det(X)^2 X^-T"),
    # det(X^-1) = 1/det(X): -det(X)^-2 det(X) X^-T; printed as the equally short fraction
    ("det(X^-1)", "X", "-X^-T / det(X)"),
    # tr(X^-1 A X) = tr(A) by the cyclic property (Cookbook eq. 16)
    ("tr(X^-1 A X)", "X", "0"),
    # 2 (X - X^T) - 2 (X - X^T)^T
    ("||X - X^T||_F^2", "X", "4 (X - X^T)"),
    # chain rule and Cookbook eq. 81
    ("(x^T A x)^3", "x", "3 (x^T A x)^2 (A + A^T) x"),
    # Cookbook eq. 57 (d logdet = tr(X^-1 dX)) with dX = I dlambda
    ("logdet(A + lambda I)", "lambda", "tr((A + lambda I)^-1)"),
    # d(M^-1) = -M^-1 dM M^-1 (Cookbook eq. 59) with dM = I dlambda
    ("b^T (A + lambda I)^-1 b", "lambda", "-b^T (A + lambda I)^-2 b"),
    # -p ./ q: d/dq of p^T (log p - log q)
    ("p^T log(p ./ q)", "q", "-p ./ q"),
    # relu' is the Heaviside step (LANGUAGE.md section 3)
    ("sum(relu(W x))", "W", "step(W x) x^T"),
    # softmax sums to one, so its sum is constant
    ("sum(softmax(K q))", "q", "0"),
]


@pytest.mark.parametrize("f,wrt,expected", TABLE, ids=[f"{r[0]} d/d{r[1]}" for r in TABLE])
def test_issue_table_prints_the_textbook_form(f, wrt, expected):
    result = matcalc.grad(f, wrt)
    assert str(result) == expected
    assert result.check()


@pytest.mark.parametrize("text,expected", [
    ("(X^-1)^T", "X^-T"),
    ("X^{-T} X^T", "I"),
    ("X^T X^-T", "I"),
    ("X^2 X^-1", "X"),
    ("((X^-1)^T)^2", "(X^-T)^2"),
    ("(X^-2)^T", "(X^-T)^2"),
    ("((X^T)^-1)^T", "X^-1"),
    ("((M^T)^T)^T", "M^T"),
    ("tr(X^T)", "tr(X)"),
    ("tr(2 A B)", "2 tr(A B)"),
    ("tr(x y^T)", "x^T y"),  # = y^T x (Cookbook eq. 16); names in structural order
    ("det(X^T)", "det(X)"),
    ("det(X^-1)", "1 / det(X)"),
    ("det(X^3)", "det(X)^3"),
    ("logdet(X^-1)", "-logdet(X)"),
    ("logdet(X^2)", "2 logdet(X)"),
    ("det(A X)", "det(A) det(X)"),
    ("x ⊙ x", "x.^2"),
    ("p ./ (p ./ q)", "q"),
    ("x ./ x.^3", "1 ./ x.^2"),
    ("3 A + 3 A^T", "3 (A + A^T)"),
    ("2 (a - b) + 2 b", "2 a"),
    ("1^T softmax(x)", "1"),
])
def test_normal_form_laws(text, expected):
    decls = {"X": "matrix(n, n)", "A": "matrix(n, n)"} if "det(A X)" in text else {}
    assert str(simplify(matcalc.parse(text, **decls))) == expected


@pytest.mark.parametrize("text,expected", [
    # a scalar is its own transpose: x^T a = a^T x, one orientation (names in order)
    ("a^T x + x^T a", "2 a^T x"),
    ("x^T a - a^T x", "0"),
    # fewer transposes win: (M b)^T (M b) read from the other side has the same count;
    # b^T M^T a = a^T M b has one transpose less
    ("b^T M^T a", "a^T M b"),
    # y^T x = x^T y, so the product is a square
    ("x^T y y^T x", "(x^T y)^2"),
    ("(x^T y) (y^T x)", "(x^T y)^2"),
    # the transposed function value is avoided: log(p)^T y = y^T log(p)
    ("log(p)^T y", "y^T log(p)"),
])
def test_a_scalar_chain_has_one_orientation(text, expected):
    assert str(simplify(matcalc.parse(text))) == expected


def test_equal_scalar_factors_merge_into_a_power_in_a_gradient():
    # d/dalpha of alpha (x^T y) (y^T x) = (x^T y) (y^T x) = (x^T y)^2 since y^T x = x^T y
    assert str(matcalc.grad("alpha (x^T y) (y^T x)", "alpha")) == "(x^T y)^2"


def test_order_of_terms_is_structural_not_printed():
    # the key never calls a printer: a printer change cannot reorder sums
    e = matcalc.parse("b + A x + A^T x")
    assert [str(t) for t in simplify(e).terms] if isinstance(simplify(e), Add) else True
    assert order_key(matcalc.parse("A x")) < order_key(matcalc.parse("A^T x"))
    assert order_key(matcalc.parse("A^T x")) < order_key(matcalc.parse("b"))


# ------------------------------------------------------------------ equal inputs print alike

def _rotate_sum(e: Expr) -> Expr:
    return Add(e.terms[1:] + e.terms[:1])


def _refactor(e: Expr) -> Expr:
    """a + b as 2 (1/2 a + 1/2 b): distributing and refactoring a number."""
    half = Number(Fraction(1, 2))
    return Mul((Number(2), Add(tuple(Mul((half, t)) for t in e.terms))))


def _cycle_trace(e: Expr) -> Expr:
    arg = e.args[0]
    chain = [f for f in arg.factors if not f.is_scalar]
    scalars = [f for f in arg.factors if f.is_scalar]
    if len(chain) < 2:
        return e
    return Call("tr", (Mul((*scalars, *chain[1:], chain[0])),))


def _moves(e: Expr) -> list[tuple[str, Expr, Expr]]:
    """(name, node, replacement) for every equivalence-preserving move at every node."""
    out = []
    for node in set(e.walk()):
        if isinstance(node, Add) and len(node.terms) > 1:
            out.append(("commute the sum", node, _rotate_sum(node)))
            out.append(("distribute and refactor 2", node, _refactor(node)))
        if node.children and not node.is_scalar:
            out.append(("transpose twice", node, Transpose(Transpose(node))))
        if isinstance(node, Call) and node.name == "tr" and isinstance(node.args[0], Mul):
            out.append(("cycle the trace", node, _cycle_trace(node)))
        if _is_sum_free_scalar_chain(node):
            out.append(("transpose a scalar sub-chain", node, _transposed_chain(node)))
    return out


def _is_sum_free_scalar_chain(e: Expr) -> bool:
    """A scalar product of arrays such as ``a^T B x`` (no sums: a chain holding a sum
    keeps its orientation by design, see docs/NORMAL_FORM.md)."""
    return (isinstance(e, Mul) and e.is_scalar and any(not f.is_scalar for f in e.factors)
            and not any(isinstance(n, Add) for n in e.walk()))


def _transposed_chain(e: Mul) -> Expr:
    """s = s^T for a scalar chain: ``a^T B x`` as ``x^T B^T a``."""
    return Mul(tuple(f if f.is_scalar else Transpose(f) for f in reversed(e.factors)))


def _replace(e: Expr, old: Expr, new: Expr) -> Expr:
    if e == old:
        return new
    if not e.children:
        return e
    return e.map_children(lambda c: _replace(c, old, new))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(well_typed_exprs(max_depth=3, spectral=False), st.data())
def test_equivalent_rewrites_simplify_to_identical_text(e, data):
    moves = _moves(e)
    if not moves:
        return
    name, node, replacement = data.draw(st.sampled_from(sorted(moves, key=lambda m: (
        m[0], order_key(m[1])))))
    moved = _replace(e, node, replacement)
    try:
        before = str(simplify(e))
    except matcalc.MatcalcError:
        return  # a constant too large for exact arithmetic, in both
    assert str(simplify(moved)) == before, f"{name} at {node}: {e} vs {moved}"


@pytest.mark.parametrize("text,expected", [
    ("x^T + 1", "(1 + x)^T"), ("s^T - y^T", "(s - y)^T"), ("x^T A^T - b^T", "(A x - b)^T"),
    ("A + A^T", "A + A^T"), ("(B X + X B)^T", "B^T X^T + X^T B^T")])
def test_transposed_sum_has_one_form(text, expected):
    # a row: the transpose of a column sum unless that has more transposes;
    # a matrix: transposes inside the terms (Matrix Cookbook eq. 107 style)
    e = matcalc.parse(text)
    assert str(simplify(e)) == expected
    assert str(simplify(Transpose(Transpose(e)))) == expected


def test_latex_contract_v2():
    # a bare \det X before another factor would read as det(X X^-T) (Cookbook eq. 49
    # prints det(X)(X^-1)^T); it stays bare as the last factor
    assert matcalc.parse("det(X) X^-T").latex() == r"\det(X) X^{-\top}"
    assert matcalc.parse("2 det(X)").latex() == r"2 \det X"
    assert matcalc.parse("tr(A X)").latex() == r"\operatorname{tr}(A X)"
    assert matcalc.parse("W2 h1").latex() == r"W_{2} h_{1}"
    assert matcalc.parse("(W2^T e ⊙ (1 - h.^2)) x^T").latex() == (
        r"\left(W_{2}^{\top} e \odot \left(1 - h^{\circ 2}\right)\right) x^{\top}")
    assert str(matcalc.parse("(x ⊗ I) H (x^T ⊗ I)")) == "(x ⊗ I) H (x^T ⊗ I)"
    # a scalar fraction is a \frac, without parentheses (text needs them)
    e = matcalc.parse("2 (x^T x / (x^T A x)) y")
    assert e.latex() == r"2 \frac{x^{\top} x}{x^{\top} A x} y"
    assert str(e) == "2 (x^T x / (x^T A x)) y"


@pytest.mark.parametrize("text,expected", [
    # a fraction that clears every coefficient goes into the sum
    ("1/2 (2 A - 2 A (x - m) (x - m)^T A)", "A - A (x - m) (x - m)^T A"),
    ("1/2 (2 A + B)", "1/2 (2 A + B)"),  # 1/2 B would be a new fraction: stays outside
    ("1/2 (A + A^T)", "1/2 (A + A^T)"),
    # a fraction comes out of the terms it divides into +-1, no other term scaled up to
    # join them: the symmetric part sym(A) = 1/2 (A + A^T) stays whole
    ("1/2 A + 1/2 A^T - S^-1", "1/2 (A + A^T) - S^-1"),
    ("1/2 (A + A^T + 2 I)", "1/2 (A + A^T) + I"),
    ("1/2 (A x + A^T x - 2 S x)", "(1/2 (A + A^T) - S) x"),
    ("-1/2 A - 1/2 A^T + C", "C - 1/2 (A + A^T)"),
    # where it divides every term, or no two of them, it comes out of the whole sum
    ("1/2 A + 1/2 B - 1/2 C", "1/2 (A + B - C)"),
    ("1/2 a + 3/2 b", "1/2 (a + 3 b)"),
    ("2 a + 4 b", "2 (a + 2 b)"),
])
def test_a_fraction_in_a_sum_stands_where_it_divides_into_one(text, expected):
    assert str(simplify(matcalc.parse(text))) == expected


@pytest.mark.parametrize("f,expected", [
    # sym(G) = (G + G^T)/2 of G = C - S^-1 (Boyd & Vandenberghe, Convex Optimization,
    # A.4.1: the gradient of logdet(S) on the symmetric matrices is S^-1)
    ("-logdet(S) + tr(S C)", "1/2 (C + C^T) - S^-1"),
    ("tr(A S) + tr(S)", "1/2 (A + A^T) + I"),
    ("tr(A S) + x^T S x", "1/2 (A + A^T) + x x^T"),
])
def test_symmetric_gradients_keep_the_symmetric_part_whole(f, expected):
    g = matcalc.grad(f, "S", S="symmetric")
    assert str(g) == expected
    assert g.check()


def test_gaussian_covariance_gradient_on_the_symmetric_space():
    """d/dS [logdet(S) + r^T S^-1 r] = S^-1 - S^-1 r r^T S^-1 for symmetric S (Bishop,
    PRML (2006) eq. 2.122 route; Matrix Cookbook (2012) eqs. 57 and 61): sym(G) of a
    symmetric G is G, so no 1/2 (2 ... - 2 ...) is left."""
    g = matcalc.grad("logdet(S) + (x - m)^T S^-1 (x - m)", "S", S="symmetric")
    assert str(g) == "S^-1 - S^-1 (x - m) (x - m)^T S^-1"
    assert g.check()
