"""Property tests: printing a well-typed expression and parsing it back gives it back."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from strategies import declarations, well_typed_exprs, where_clause

import matcalc
from matcalc.expr import Add, Div, Expr, Mul, Number, Pow, Symbol

_X, _Y = Symbol("x", ("n", 1)), Symbol("y", ("n", 1))
_SIGMA, _ALPHA = Symbol("sigma", (1, 1)), Symbol("alpha", (1, 1))
# Regressions: a function name before a parenthesis must not print as a call.
SIGMA_TIMES_SUM = Mul((_SIGMA, Add((_X, _Y))))
POWER_SIGMA_TIMES_SUM = Mul((Pow(_ALPHA, _SIGMA), Add((_X, _Y))))
ONE_OVER_ALPHA = Div(Number(1), _ALPHA)

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(SETTINGS, max_examples=100)


@SETTINGS
@given(well_typed_exprs())
@example(SIGMA_TIMES_SUM)
@example(POWER_SIGMA_TIMES_SUM)
@example(ONE_OVER_ALPHA)
def test_text_round_trip(e: Expr) -> None:
    text = str(e)
    assert "(1)" not in text
    assert matcalc.parse(text, **declarations(e)) == e, text


@FEWER
@given(well_typed_exprs(max_depth=2))
def test_text_round_trip_with_where_clause(e: Expr) -> None:
    text = str(e) + where_clause(e)
    assert matcalc.parse(text) == e, text


@SETTINGS
@given(well_typed_exprs(spectral=False))
@example(SIGMA_TIMES_SUM)
@example(POWER_SIGMA_TIMES_SUM)
@example(ONE_OVER_ALPHA)
def test_latex_round_trip(e: Expr) -> None:
    latex = e.latex()
    assert isinstance(latex, str) and latex
    assert matcalc.parse(latex, **declarations(e)) == e, latex


@FEWER
@given(well_typed_exprs())
def test_latex_never_fails(e: Expr) -> None:
    latex = e.latex()
    assert latex.count("{") == latex.count("}")
    assert latex.count(r"\left") == latex.count(r"\right")


@FEWER
@given(well_typed_exprs(kind="scalar"))
def test_kind_is_kept(e: Expr) -> None:
    parsed = matcalc.parse(str(e), **declarations(e))
    assert parsed.kind == "scalar"
    assert parsed.shape == e.shape
