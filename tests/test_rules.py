"""Every rule in rules/ holds (``matcalc.verify.rules.check_rule``, the check the rule
table's self-check uses too), and a wrong identity fails it. The test id is the rule name.
"""

import random

import pytest
import sympy

from matcalc.errors import MatcalcError, UnsupportedError
from matcalc.parse import parse
from matcalc.rewrite import load_rules, parse_rules
from matcalc.verify import concrete_sizes, rational_point, to_sympy
from matcalc.verify.rules import check_rule

FAMILIES = ("canonical", "differentials", "adjoint", "jacobian", "kronecker", "simplify",
            "expansions")
PATTERN_RULES = [r for fam in FAMILIES for r in load_rules(fam) if r.rhs is not None]
SPECTRAL = {"d_lambda_max", "d_lambda_min", "d_spectral_norm", "d_eigvec_max", "d_eigvec_min",
            "d_svec_left", "d_svec_right", "d_nuclear_norm", "d_polar"}


@pytest.mark.parametrize("rule", PATTERN_RULES, ids=[r.name for r in PATTERN_RULES])
def test_rule_holds(rule):
    assert check_rule(rule) is True


def test_rules_without_a_sympy_form_are_checked_with_numpy():
    for rule in PATTERN_RULES:
        if rule.name in SPECTRAL:
            lhs = rule.lhs
            sizes = concrete_sizes([lhs])
            variables = sorted(lhs.free_symbols(), key=lambda s: s.name)
            with pytest.raises(UnsupportedError):
                to_sympy(lhs, rational_point(variables, sizes, random.Random(0)), sizes)


WRONG_IDENTITY = """
wrong_transpose: tr(A B) = tr(A^T B)
  where A: matrix(n, n), B: matrix(n, n)
  source: a deliberate mistake
"""

WRONG_DIFFERENTIALS = """
wrong_product_rule: d(U V) = d(U) V + d(V) U
  where U: matrix(n, n), V: matrix(n, n)
  source: a deliberate mistake

wrong_eigenvalue: d(lambda_max(U)) = 2 eigvec_max(U)^T d(U) eigvec_max(U)
  where U: matrix(n, n)
  source: a deliberate mistake

wrong_sylvester: d(sylvester(A, B, C)) = sylvester(A, B, d(C) - d(A) sylvester(A, B, C))
  source: a deliberate mistake (the term of d(B) left out)

wrong_polar: d(polar(U)) = sylvester(U polar(U)^T, polar(U)^T U, d(U) - d(U)^T)
  if U matrix
  source: a deliberate mistake (dX^T where Q dX^T Q belongs)
"""

WRONG = [*parse_rules(WRONG_IDENTITY, "canonical"),
         *parse_rules(WRONG_DIFFERENTIALS, "differentials")]


@pytest.mark.parametrize("rule", WRONG, ids=[r.name for r in WRONG])
def test_a_wrong_identity_fails(rule):
    assert check_rule(rule) is False


# The matcher binds a pattern variable to any sub-expression its `if` conditions admit:
# a `where a: vector` only types the identity. So a rule must hold, well typed, for every
# kind its conditions admit. A column vector or scalar variable without a condition on
# its kind is widened here (vector -> matrix, scalar -> vector and matrix); where the left
# side still types, the right side must type too (or a derivation stops with RuleError, as
# kron_diag_vec did on the Jacobian of tanh(C D) a, soak seed 6) and the identity must hold.
_KINDS_FIXED_BY = {"vector", "scalar", "integer", "number", "probability", "square",
                   "symmetric"}


def _widened(rule):
    """(variable, kind, the rule with that variable of that kind) for each variable a
    wider kind could bind; the rule is None when only its right side fails to type."""
    fixed = {v for v, c in rule.conditions if c in _KINDS_FIXED_BY}
    for symbol in sorted(rule.lhs.free_symbols(), key=lambda s: s.name):
        if symbol.name in fixed or symbol.dims[1] != 1:
            continue
        for kind in ("vector", "matrix") if symbol.dims[0] == 1 else ("matrix",):
            decls = {**rule.declared_kinds(), symbol.name: kind}
            where = ", ".join(f"{k}: {v}" for k, v in decls.items())
            lhs_text = rule.text.split("=", 1)[0]
            try:  # can a subject of that kind match at all?
                next(parse_rules(f"probe: {lhs_text} = 0\n  where {where}\n  source: -\n",
                                 rule.family))
            except MatcalcError:
                continue
            try:
                yield symbol.name, kind, next(parse_rules(
                    f"{rule.name}: {rule.text}\n  where {where}\n  source: -\n",
                    rule.family))
            except MatcalcError:
                yield symbol.name, kind, None


def test_every_rule_holds_for_every_kind_its_conditions_admit():
    widened = [(r.name, v, k, w) for r in PATTERN_RULES for v, k, w in _widened(r)]
    assert len(widened) >= 4  # the rules whose left side types with a wider variable
    for name, variable, kind, rule in widened:
        assert rule is not None, f"{name} with {variable} a {kind}: its right side is ill-typed"
        assert check_rule(rule) is True, f"{name} with {variable} a {kind}"


def test_a_rule_with_an_unguarded_vector_is_caught():
    rule = next(parse_rules(
        "kron_diag_vec: (b^T ⊗ I) diag(vec(M)) (I ⊗ a) = diag(a) M diag(b)\n"
        "  where a: vector, b: vector\n  source: -\n", "kronecker"))
    assert any(w is None for _, _, w in _widened(rule))


# An example subject for every Python rule of the simplification families: the rule must
# apply to it, and both sides must agree entrywise (SymPy, exact rational point).
PYTHON_EXAMPLES = {
    "simplify_det_power": ("det(X^3)", {}),
    "simplify_det_rank_deficient": ("det(u v^T)", {"u": "vector(3)", "v": "vector(3)"}),
    "simplify_logdet_power": ("logdet(X^-2)", {}),
    "simplify_trace_cyclic": ("tr(X^-1 A X)", {}),
    "simplify_chain_powers": ("X^2 X^-1 A A^-1 X^T X^-T B", {}),
    "simplify_probability_sum": ("softmax(x)^T 1", {}),
    "simplify_mixed_product": ("(A ⊗ B) (C ⊗ D)", {"A": "matrix(n, n)", "C": "matrix(n, n)",
                                                    "B": "matrix(m, m)", "D": "matrix(m, m)"}),
    "simplify_kron_identities": ("I ⊗ I", {}),
    "simplify_diag_ones": ("diag(𝟏)", {}),
    "simplify_diag_product": ("A diag(x) diag(y) B", {}),
    "simplify_diag_sum": ("diag(x) + 2 diag(y) + A", {}),
    "expand_sigmoid_of_negation": ("sigma(-2 x)", {}),
}
PYTHON_RULES = [r for fam in ("simplify", "expansions") for r in load_rules(fam)
                if r.function is not None]


@pytest.mark.parametrize("rule", PYTHON_RULES, ids=[r.name for r in PYTHON_RULES])
def test_python_simplification_rule_holds(rule):
    from matcalc.simplify import simplify

    text, decls = PYTHON_EXAMPLES[rule.name]
    subject = simplify(parse(text, **decls)) if rule.name.startswith("expand") else parse(
        text, **decls)
    out = rule.apply(subject)
    assert out is not None and out != subject, rule.name
    sizes = concrete_sizes([subject, out])
    variables = sorted(subject.free_symbols(), key=lambda s: s.name)
    rng = random.Random(rule.name)
    point = rational_point(variables, sizes, rng, positive=True)
    left, right = to_sympy(subject, point, sizes), to_sympy(out, point, sizes)
    assert left.shape == right.shape
    for a, b in zip(left, right, strict=True):
        assert abs(sympy.N(a - b, 30)) < 1e-20 * (1 + abs(sympy.N(a, 30))), (a, b)


def test_every_rule_has_a_name_and_source():
    names = [r.name for fam in FAMILIES for r in load_rules(fam)]
    assert len(names) == len(set(names)), "rule names are unique"
    for family in FAMILIES:
        for rule in load_rules(family):
            assert rule.name and rule.source, rule


def test_matrix_power_rule_is_the_closed_sum():
    from matcalc.calculus import differential_of_matrix_power

    d = differential_of_matrix_power(parse("X^3"))
    assert str(d) == "dX X^2 + X dX X + X^2 dX"  # sum_i X^i dX X^(k-1-i)


def test_matrix_power_rule_has_k_terms_of_bounded_size():
    from matcalc.calculus import differential_of_matrix_power

    d = differential_of_matrix_power(parse("X^500"))
    assert len(d.terms) == 500
    assert all(len(t.factors) <= 3 for t in d.terms if hasattr(t, "factors"))


def test_broadcast_rule_sums_the_cotangent():
    from matcalc.calculus import adjoint_of_broadcast
    from matcalc.expr import Call, Mul, Transpose

    g, lam = parse("g"), parse("alpha")
    out = adjoint_of_broadcast(Call("tr", (Mul((Transpose(g), lam)),)))
    assert str(out) == "tr((1^T g)^T alpha)"


def test_kronecker_rules_read_off_vec_layout():
    from matcalc import derivative

    assert str(derivative("A X B", "X")) == "B^T ⊗ A"
    assert str(derivative("X B", "X")) == "B^T ⊗ I"
