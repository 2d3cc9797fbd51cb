"""Every rule in rules/ holds: both sides instantiated on concrete values (test id = rule name)."""

import numpy as np
import pytest

from matcalc.expr import Differential, Expr, Symbol
from matcalc.numeric import evaluate, random_point
from matcalc.parse import parse
from matcalc.rewrite import load_rules

PATTERN_RULES = [r for fam in ("canonical", "differentials", "adjoint") for r in load_rules(fam)
                 if r.rhs is not None]
SPECTRAL = {"d_lambda_max", "d_lambda_min"}


def sizes_for(*exprs: Expr) -> dict:
    sizes, nxt = {}, 2
    for e in exprs:
        for n in e.walk():
            dims = getattr(n, "dims", None) or ((n.n,) if hasattr(n, "n") else ())
            for d in dims:
                if isinstance(d, str) and d not in sizes:
                    sizes[d] = nxt
                    nxt += 1
    return sizes


def differentials_to_symbols(e: Expr) -> Expr:
    if isinstance(e, Differential):
        return Symbol("d_" + e.var.name, e.var.dims, e.var.props)
    if not e.children:
        return e
    return e.rebuild(tuple(differentials_to_symbols(c) for c in e.children))


def symmetrize(values: dict) -> dict:
    return {k: (v + v.T) / 2 if np.ndim(v) == 2 and v.shape[0] == v.shape[1] else v
            for k, v in values.items()}


@pytest.mark.parametrize("rule", PATTERN_RULES, ids=[r.name for r in PATTERN_RULES])
def test_rule_holds(rule):
    lhs, rhs = rule.lhs, differentials_to_symbols(rule.rhs)
    sizes = sizes_for(lhs, rhs)
    variables = sorted(lhs.free_symbols(), key=lambda s: s.name)
    rng = np.random.default_rng(abs(hash(rule.name)) % 2**32)
    for _ in range(3):
        point = random_point(variables, sizes, rng, positive=True)
        if rule.name in SPECTRAL:
            point = symmetrize(point)
        if rule.family != "differentials":
            left, right = evaluate(lhs, point, sizes), evaluate(rhs, point, sizes)
            np.testing.assert_allclose(np.asarray(left, float), np.asarray(right, float),
                                       rtol=1e-9, atol=1e-9)
            continue
        # d f(V)[D] = lim (f(V + h D) - f(V - h D)) / 2h, the right side with dV := D.
        direction = random_point(variables, sizes, rng)
        if rule.name in SPECTRAL:
            direction = symmetrize(direction)
        h = 1e-6
        plus = {k: v + h * np.asarray(direction[k]) for k, v in point.items()}
        minus = {k: v - h * np.asarray(direction[k]) for k, v in point.items()}
        numeric = (np.asarray(evaluate(lhs, plus, sizes), float)
                   - np.asarray(evaluate(lhs, minus, sizes), float)) / (2 * h)
        values = {**point, **{"d_" + k: v for k, v in direction.items()}}
        symbolic = np.asarray(evaluate(rhs, values, sizes), float)
        np.testing.assert_allclose(symbolic.reshape(numeric.shape), numeric, rtol=1e-5, atol=1e-6)


def test_every_rule_has_a_name_and_source():
    for family in ("canonical", "differentials", "adjoint"):
        for rule in load_rules(family):
            assert rule.name and rule.source, rule


def test_matrix_power_rule_expands_the_product_rule():
    from matcalc.calculus import differential_of_matrix_power

    node = parse("X^3")
    d = differential_of_matrix_power(node)
    assert str(d) == "dX X X + X dX X + X X dX"


def test_broadcast_rule_sums_the_cotangent():
    from matcalc.calculus import adjoint_of_broadcast
    from matcalc.expr import Call, Mul, Transpose

    g, l = parse("g"), parse("alpha")
    out = adjoint_of_broadcast(Call("tr", (Mul((Transpose(g), l)),)))
    assert str(out) == "tr((1^T g)^T alpha)"
