"""Fuzzing bad input through parse, grad and the CLI: only MatcalcError escapes, in bounded time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import declarations, mutated, well_typed_exprs

import matcalc
from matcalc.errors import MatcalcError, RewriteError
from matcalc.expr import Symbol
from matcalc.rewrite import Trace, bottom_up, exhaust, first_of, parse_rules

ROOT = Path(__file__).resolve().parent.parent
HANG_SECONDS = 5.0
"""A hang guard, not a benchmark: every single input must be answered within this time."""

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class Hang(BaseException):  # noqa: N818 - not an Exception, so the engine cannot swallow it
    """Raised in the main thread when one input takes longer than ``HANG_SECONDS``."""


@contextlib.contextmanager
def hang_guard(seconds: float = HANG_SECONDS):
    """Fail with ``Hang`` if the block runs longer than ``seconds`` (POSIX main thread)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield
        return

    def expire(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def only_matcalc_errors(fn, *args, **kwargs):
    """Call ``fn``; a MatcalcError is an acceptable answer, anything else fails the test."""
    with hang_guard():
        try:
            return fn(*args, **kwargs)
        except MatcalcError:
            return None


def parse_and_grad(text: str, wrt: str = "x") -> None:
    """The text through parse, then grad (and the result's printers), as a user would."""
    if only_matcalc_errors(matcalc.parse, text) is None:
        return
    result = only_matcalc_errors(matcalc.grad, text, wrt)
    if result is not None:
        assert isinstance(str(result), str) and isinstance(result.latex(), str)


# ---------------------------------------------------------------------------- random text

VALID = [
    "||Ax - b||_2^2", "tr(AX)", "x^T A x where A: symmetric", "log(exp(x)^T 1)",
    "log(1 + exp(-y w^T x)) where y: scalar", "-y^T log(softmax(W^T x))",
    "x^T (A + lambda I) x", r"\left\| X \right\|_F^2", r"\frac{x^T x}{1 + x^T x}",
    "sum(diag(s) - s s^T) where s = softmax(x)", "sum(|x| ⊙ sigma(x))",
    "1^T (A^{-1} x)", "sum(x.^2 ./ (1 + x.^2))", "logdet(X^T X + I)", "lambda_max(S)",
    "||X||_2 + ||x||_1", "sum(kron(x, x))", "vec(X)^T vec(X)", "det(X^-1) x^T X^2 x",
]
ALPHABET = list("xyAXWSab12 ()[]{}|^T'+-*/.,:=_\\") + [
    "||", "where", "tr(", "det(", "log(", "exp(", "softmax(", r"\frac", r"\left(", r"\right)",
    "⊙", "⊗", "λ", "^-1", ".^", "./", "symmetric", "matrix(n, n)", "vector", "1^T", "\x00"]
WRT = st.sampled_from(["x", "X", "A", "w", "lambda", "S", "b"])


@FUZZ
@given(st.text(max_size=60), WRT)
def test_random_text(text: str, wrt: str) -> None:
    parse_and_grad(text, wrt)


@FUZZ
@given(st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join), WRT)
def test_random_tokens(text: str, wrt: str) -> None:
    parse_and_grad(text, wrt)


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_mutated_formulas(formula: str, data) -> None:
    parse_and_grad(mutated(formula, data, ALPHABET), data.draw(WRT))


@FUZZ
@given(well_typed_exprs(max_depth=3), st.data())
def test_random_well_typed_expressions_through_grad(e, data) -> None:
    # Any kind (a vector-valued f is a ShapeError) and no care for domains: the engine
    # answers or refuses with a MatcalcError, never crashes or hangs.
    symbols = sorted(e.free_symbols(), key=lambda s: s.name) or [Symbol("x", ("n", 1))]
    wrt = data.draw(st.sampled_from(symbols))
    result = only_matcalc_errors(matcalc.grad, e, wrt)
    if result is not None:
        assert result.shape == wrt.shape
        with hang_guard():
            assert str(result) and result.latex() and result.explain()
    text = str(e)
    only_matcalc_errors(matcalc.grad, text, wrt.name, **declarations(e))


# ---------------------------------------------------------------------------- long and deep

DEEP = 150  # below the parser's nesting limit of 200, which is itself tested below
LONG_AND_DEEP = {
    "nested exp": ("sum(" + "exp(" * DEEP + "x" + ")" * (DEEP + 1), "x"),
    "nested tanh layers": ("sum(" + "tanh(A " * 60 + "x" + ")" * 61, "x"),
    "nested inverses": ("tr(" + "(I + " * 40 + "X" + ")^-1" * 40 + ")", "X"),
    "nested log": ("sum(" + "log(1 + " * 40 + "x.^2" + ")" * 41, "x"),
    "nested sums in products": ("sum(" + "A (x + " * 40 + "x" + ")" * 41, "x"),
    "negations": ("-" * DEEP + "x^T x", "x"),
    "parentheses": ("(" * 5000 + "x^T x" + ")" * 5000, "x"),
    "long sum": (" + ".join(["x^T A x"] * 2000), "x"),
    "long distinct sum": (" + ".join(f"x^T A{i} x" for i in range(300)), "x"),
    "long product": ("1^T " + "A " * 300 + "x", "x"),
    "long hadamard": ("sum(" + " ⊙ ".join(["x"] * 60) + ")", "x"),
    "tall power tower": ("(x^T x)" + "^2" * 60, "x"),
    "too deep": ("sum(" + "exp(" * 1000 + "x" + ")" * 1001, "x"),
    "huge number": ("1" + "0" * 5000 + " x^T x", "x"),
    "long name": ("x" * 5000 + "^T x", "x"),
}


@pytest.mark.parametrize("text, wrt", LONG_AND_DEEP.values(), ids=LONG_AND_DEEP.keys())
def test_long_and_deeply_nested_inputs(text: str, wrt: str) -> None:
    parse_and_grad(text, wrt)


def test_nesting_beyond_the_limit_is_a_parse_error() -> None:
    with pytest.raises(matcalc.ParseError, match="nested"):
        matcalc.grad("sum(" + "exp(" * 1000 + "x" + ")" * 1001, "x")


# ---------------------------------------------------------------------------- rewriting ends


def test_a_looping_rule_set_runs_out_of_its_step_budget() -> None:
    rules = tuple(parse_rules("swap: U + V = V + U\n  source: test\n", "test"))
    strategy = exhaust(bottom_up(first_of(rules, Trace(budget=1000))))
    with hang_guard(), pytest.raises(RewriteError, match="budget"):
        strategy(matcalc.parse("x + y"))


def test_grad_respects_the_step_budget() -> None:
    from matcalc.calculus import Differentiator

    f = matcalc.parse("sum(" + "tanh(A " * 20 + "x" + ")" * 21)
    x = next(s for s in f.free_symbols() if s.name == "x")
    with hang_guard(), pytest.raises(RewriteError):
        Differentiator(Trace(budget=10)).gradient(f, x)


# ---------------------------------------------------------------------------- the command line

CLI_CASES = [
    ("\x01garbage ||| ((", "x"),  # (argv cannot hold a NUL byte)
    ("||Ax - b||_2^^2", "x"),
    ("sum(" + "exp(" * 1000 + "x" + ")" * 1001, "x"),
    ("x^T A x where A: symmetric matrix(n, m)", "x"),
    ("tr(AX)", "lambda lambda"),
    ("softmax(x)", "x"),
]


@pytest.mark.parametrize("formula, wrt", CLI_CASES)
def test_cli_rejects_bad_input_cleanly(formula: str, wrt: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT),
                                                       os.environ.get("PYTHONPATH", "")]))
    env.pop("MATCALC_TRACEBACK", None)
    proc = subprocess.run([sys.executable, "-m", "matcalc", "grad", "--wrt", wrt, "--", formula],
                          capture_output=True, text=True, encoding="utf-8", errors="replace",
                          env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip()
