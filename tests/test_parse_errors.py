"""Malformed and ill-typed input: the right MatcalcError, with a caret, quickly; fuzzing."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import mutated

import matcalc
from matcalc.errors import (
    DeclarationError,
    MatcalcError,
    ParseError,
    ShapeError,
    UnsupportedError,
)

P, Sh, D, U = ParseError, ShapeError, DeclarationError, UnsupportedError

# (input, error class, a fragment the message must contain, whether it has a position)
ERRORS = [
    ("x^2", Sh, "x.^2", True),
    ("foo(x)", P, "known functions: abs", True),
    ("||x", P, "not closed", True),
    ("||x||_2 + ||y", P, "not closed", True),
    ("(x + y", P, "parenthesis is not closed", True),
    ("x + y)", P, "closes nothing", True),
    ("x +", P, "ends too early", True),
    ("+", P, "ends too early", True),
    ("* x", P, "unexpected '*'", True),
    ("A x where", P, "nothing after where", True),
    ("A x where A: blob", P, "unexpected", True),
    ("A x where A: scalar vector", P, "unexpected 'vector'", True),
    ("x where x: symmetric vector", D, "only a matrix can be symmetric", True),
    ("x where x: vector(n, m, p)", D, "vector takes 0 or 1 dimensions", True),
    ("x where x: vector(1)", D, "dimension of 1", True),
    ("A where A: symmetric matrix(m, n)", D, "symmetric matrix is square", True),
    ("x where x: vector, x: scalar", D, "declared twice", True),
    ("s where s = s", D, "refers to itself", True),
    ("s where s = t, t = s", D, "refers to itself", True),
    ("tr(x)", Sh, "square matrix", True),
    ("det(x)", Sh, "square matrix", True),
    ("softmax(A)", Sh, "column vector", True),
    ("x + A", Sh, "shape mismatch in sum", True),
    ("A B where A: matrix(m, n), B: matrix(m, n)", Sh, "inner dimensions differ", True),
    ("x^T y where x: vector(n), y: vector(m)", Sh, "inner dimensions differ", True),
    ("x / y", Sh, "divides by a scalar", True),
    ("||X||", Sh, "ambiguous", True),
    ("||X||_1", U, "matrix 1-norm", True),
    ("A^x", Sh, "must be a scalar", True),
    ("A^(1/2)", U, "integer exponent", True),
    ("x y", Sh, "x^T y", True),
    ("tr", P, "needs an argument", True),
    ("exp(x, y)", P, "takes 1 argument", True),
    ("kron(A)", P, "takes 2 arguments", True),
    ("1 / 0", P, "division by zero", True),
    ("x $ y", P, "unexpected character '$'", True),
    (r"\foo x", P, "unknown LaTeX command", True),
    (r"\tr X", P, "with parentheses", True),
    ("x^", P, "ends too early", True),
    ("|x", P, "absolute value opened with | is not closed", True),
    ("x = y", P, "declarations", True),
    ("x where x vector", P, "expected ':' or '='", True),
    (r"\frac{x}{y", P, "ends too early", True),
    (r"\left( x", P, "not closed", True),
    ("sum()", P, "unexpected ')'", True),
    ("1..2", P, "unexpected character '.'", True),
    ("|| x ||_3", P, "norm subscripts", True),
    ("lambda_max(x)", Sh, "square matrix", True),
    ("a ⊙ B where a: vector(n), B: matrix(m, k)", Sh, "elementwise product", True),
    ("x^T A x where A: symmetric, B", P, "expected ':' or '='", True),
    ("", P, "empty", False),
    ("   ", P, "empty", False),
    ("x\x00y", P, "NUL", True),
    ("x 😀", P, "unexpected character", True),
    ("((((x", P, "not closed", True),
    ("-" * 5000 + "x", P, "nested more than", True),
    ("exp(" * 500 + "x" + ")" * 500, P, "nested more than", True),
    ("x" + " + x" * 60000, P, "limit", False),
]

# A hang guard, not a speed test: a hang or an exponential blow-up takes far longer, while a
# loaded CI machine must not fail a correct parse. Speed and growth are measured in
# benchmarks/stress.py.
HANG_GUARD_SECONDS = 30.0


@pytest.mark.parametrize("text,cls,fragment,positioned", ERRORS,
                         ids=[repr(e[0][:30]) for e in ERRORS])
def test_error(text: str, cls: type, fragment: str, positioned: bool) -> None:
    start = time.perf_counter()
    with pytest.raises(cls) as info:
        matcalc.parse(text)
    assert time.perf_counter() - start < HANG_GUARD_SECONDS
    message = str(info.value)
    assert fragment in message
    if positioned:
        assert info.value.line is not None and info.value.column is not None
        assert f"(line {info.value.line}, column {info.value.column})" in message
        assert "\n" in message and message.splitlines()[2].strip() == "^"


def test_unknown_function_lists_known_functions() -> None:
    with pytest.raises(ParseError) as info:
        matcalc.parse("softmaxx(x)")
    assert "did you mean softmax?" in str(info.value)
    for name in ("tr", "logdet", "softmax", "relu", "kron"):
        assert name in info.value.hint


def test_vector_power_hint_offers_both_spellings() -> None:
    with pytest.raises(ShapeError) as info:
        matcalc.parse("x^2")
    assert "`x.^2`" in info.value.hint and "`x^T x`" in info.value.hint
    assert info.value.column == 1


def test_caret_points_at_the_offending_token() -> None:
    with pytest.raises(ParseError) as info:
        matcalc.parse("x + y)")
    assert info.value.column == 6
    lines = str(info.value).splitlines()
    assert lines[1].index(")") == lines[2].index("^")


def test_keyword_declaration_errors() -> None:
    with pytest.raises(DeclarationError):
        matcalc.parse("x", x="symmetric vector")
    with pytest.raises(MatcalcError):
        matcalc.parse("x", x="blob")
    with pytest.raises(DeclarationError):
        matcalc.parse("x", x=3)  # type: ignore[arg-type]


def test_non_string_input() -> None:
    with pytest.raises(ParseError):
        matcalc.parse(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [
    "(" * 10000 + "x" + ")" * 10000,
    " + ".join(["x"] * 3000),
    "- " * 150 + "x",
    "x^T" * 3000,
    "A" * 3000,
], ids=["10000 parentheses", "3000 terms", "150 minus signs", "3000 transposes",
        "3000-letter run"])
def test_big_inputs_do_not_hang(text: str) -> None:
    start = time.perf_counter()
    try:
        e = matcalc.parse(text)
        assert e.kind in ("scalar", "vector", "row vector", "matrix")
    except MatcalcError:
        pass
    assert time.perf_counter() - start < HANG_GUARD_SECONDS


def test_deep_parentheses_and_long_sums_succeed() -> None:
    assert str(matcalc.parse("(" * 10000 + "x" + ")" * 10000)) == "x"
    assert len(matcalc.parse(" + ".join(["x"] * 3000)).terms) == 3000


VALID = [
    "||Ax - b||_2^2", "tr(AX)", "x^T A x where A: symmetric", "log(exp(x)^T 1)",
    "log(1 + exp(-y w^T x)) where y: scalar", "-y^T log(softmax(W^T x))",
    "x^T (A + lambda I) x", r"\left\| X \right\|_F^2", r"\frac{a}{b}",
    "diag(s) - s s^T where s = softmax(x)",
    "|x| ⊙ sigma(z)", "A^{-1} x", "x.^2 ./ (1 + y)",
]
ALPHABET = list("xyAXWab12 ()[]{}|^T'+-*/.,:=_\\") + ["||", "where", "tr(", r"\frac",
                                                      r"\left(", r"\right)", "⊙", "λ", "\x00"]


def _call(text: str) -> None:
    with contextlib.suppress(MatcalcError):  # only MatcalcError subclasses may escape
        matcalc.parse(text)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(max_size=40))
def test_random_text_raises_only_matcalc_errors(text: str) -> None:
    _call(text)


@FUZZ
@given(st.lists(st.sampled_from(ALPHABET), max_size=30).map("".join))
def test_random_tokens_raise_only_matcalc_errors(text: str) -> None:
    _call(text)


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_mutated_formulas_raise_only_matcalc_errors(formula: str, data) -> None:
    _call(mutated(formula, data, ALPHABET))
