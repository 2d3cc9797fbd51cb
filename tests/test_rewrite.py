"""The rewrite engine: strategies are generic, matching respects conditions, budgets stop loops."""

import pytest

from matcalc.errors import RewriteError, RuleError
from matcalc.parse import parse
from matcalc.rewrite import Trace, bottom_up, exhaust, first_of, parse_rules


def test_strategies_are_generic_over_plain_integers():
    halve = lambda n: n // 2 if n % 2 == 0 else n  # noqa: E731
    assert exhaust(halve)(48) == 3


RULES = """
double_negation: -(-U) = U
  source: derivation

drop_transpose_of_symmetric: S^T = S
  if S symmetric
  source: definition of a symmetric matrix
"""


def test_rules_respect_conditions():
    rules = tuple(parse_rules(RULES, "test"))
    step = first_of(rules, Trace())
    sym = parse("A^T", A="symmetric matrix")
    plain = parse("A^T")
    assert str(step(sym)) == "A"
    assert step(plain) == plain


def test_bottom_up_reaches_every_node():
    rules = tuple(parse_rules(RULES, "test"))
    trace = Trace()
    e = parse("-(-(-(-x)))")
    assert str(bottom_up(exhaust(first_of(rules, trace)))(e)) == "x"
    assert [s.rule for s in trace.steps] and all(s.source for s in trace.steps)


def test_a_looping_rule_set_stops_at_the_budget_and_names_the_rules():
    looping = tuple(parse_rules("flip: U + V = V + U\n  source: commutativity\n", "test"))
    trace = Trace(budget=50)
    with pytest.raises(RewriteError) as err:
        exhaust(first_of(looping, trace))(parse("x + y"))
    assert "flip" in str(err.value)


@pytest.mark.parametrize("text", [
    "no_source: x = x\n",
    "bad header without colon\n  source: s\n",
    "bad_condition: U = U\n  if U shiny\n  source: s\n",
    "missing_equals: U U\n  source: s\n",
])
def test_malformed_rule_files_raise_rule_error(text):
    with pytest.raises(RuleError):
        list(parse_rules(text, "test"))
