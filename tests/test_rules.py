"""Every rule in rules/ holds: both sides instantiated as explicit SymPy matrices.

Identities are compared exactly (to 30 digits) at random rational points; a differential
rule d f(V) = R(V, dV) is checked as a directional derivative, d/dt f(V + t D) at t = 0
computed by SymPy, against R with dV := D. Spectral rules (eigenvectors have no closed
form in SymPy) are checked with NumPy central differences. The test id is the rule name.
"""

import random

import numpy as np
import pytest
import sympy

from matcalc.errors import UnsupportedError
from matcalc.expr import Differential, Expr, Symbol
from matcalc.numeric import evaluate, random_point
from matcalc.parse import parse
from matcalc.rewrite import load_rules
from matcalc.verify import concrete_sizes, rational_point, to_sympy

FAMILIES = ("canonical", "differentials", "adjoint", "jacobian", "kronecker", "simplify")
PATTERN_RULES = [r for fam in FAMILIES for r in load_rules(fam) if r.rhs is not None]
SPECTRAL = {"d_lambda_max", "d_lambda_min", "d_spectral_norm", "d_eigvec_max", "d_eigvec_min",
            "d_svec_left", "d_svec_right"}
DIGITS = 30


def differentials_to_symbols(e: Expr) -> Expr:
    if isinstance(e, Differential):
        return Symbol("d_" + e.var.name, e.var.dims, e.var.props)
    if not e.children:
        return e
    return e.rebuild(tuple(differentials_to_symbols(c) for c in e.children))


def assert_close(left: sympy.Matrix, right: sympy.Matrix) -> None:
    assert left.shape == right.shape
    for a, b in zip(left, right, strict=True):
        diff = sympy.N(a - b, DIGITS)
        scale = 1 + abs(sympy.N(a, DIGITS))
        assert abs(diff) < 1e-20 * scale, (a, b)


def symmetric_point(point: dict) -> dict:
    return {k: (sympy.Matrix(v) + sympy.Matrix(v).T) / 2
            if v.shape[0] == v.shape[1] and v.shape[0] > 1 else v for k, v in point.items()}


@pytest.mark.parametrize("rule", PATTERN_RULES, ids=[r.name for r in PATTERN_RULES])
def test_rule_holds(rule):
    lhs, rhs = rule.lhs, differentials_to_symbols(rule.rhs)
    if rule.name in SPECTRAL:
        check_numerically(rule, lhs, rhs)
        return
    sizes = concrete_sizes([lhs, rhs])
    variables = sorted(lhs.free_symbols(), key=lambda s: s.name)
    rng = random.Random(rule.name)
    for _ in range(2):
        point = rational_point(variables, sizes, rng, positive=True)
        if rule.family != "differentials":
            assert_close(to_sympy(lhs, point, sizes), to_sympy(rhs, point, sizes))
            continue
        direction = rational_point(variables, sizes, rng)
        t = sympy.Symbol("t", real=True)
        moved = {k: v + t * direction[k] for k, v in point.items()}
        along = to_sympy(lhs, moved, sizes).diff(t).subs(t, 0)
        values = {**point, **{"d_" + k: v for k, v in direction.items()}}
        assert_close(along, to_sympy(rhs, values, sizes))


def check_numerically(rule, lhs: Expr, rhs: Expr) -> None:
    """Spectral rules: central differences with NumPy (symmetric values where needed)."""
    sizes = concrete_sizes([lhs, rhs])
    variables = sorted(lhs.free_symbols(), key=lambda s: s.name)
    rng = np.random.default_rng(5)
    with pytest.raises(UnsupportedError):
        to_sympy(lhs, rational_point(variables, sizes, random.Random(0)), sizes)
    symmetric = rule.name not in ("d_spectral_norm", "d_svec_left", "d_svec_right")
    for _ in range(3):
        point, direction = (random_point(variables, sizes, rng) for _ in range(2))
        if symmetric:
            point = {k: (v + v.T) / 2 for k, v in point.items()}
            direction = {k: (v + v.T) / 2 for k, v in direction.items()}
        h = 1e-6
        plus = {k: v + h * direction[k] for k, v in point.items()}
        minus = {k: v - h * direction[k] for k, v in point.items()}
        numeric = (np.asarray(evaluate(lhs, plus, sizes), float)
                   - np.asarray(evaluate(lhs, minus, sizes), float)) / (2 * h)
        values = {**point, **{"d_" + k: v for k, v in direction.items()}}
        symbolic = np.asarray(evaluate(rhs, values, sizes), float)
        np.testing.assert_allclose(symbolic.reshape(numeric.shape), numeric, rtol=1e-5,
                                   atol=1e-6)


def test_every_rule_has_a_name_and_source():
    names = [r.name for fam in FAMILIES for r in load_rules(fam)]
    assert len(names) == len(set(names)), "rule names are unique"
    for family in FAMILIES:
        for rule in load_rules(family):
            assert rule.name and rule.source, rule


def test_matrix_power_rule_expands_the_product_rule():
    from matcalc.calculus import differential_of_matrix_power

    d = differential_of_matrix_power(parse("X^3"))
    assert str(d) == "dX X X + X dX X + X X dX"


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
