"""The ``matcalc`` command line, run as a subprocess: output, exit status, error display."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import matcalc

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m matcalc ARGS`` against this checkout."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    env.pop("MATCALC_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "matcalc", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def assert_clean_failure(proc: subprocess.CompletedProcess[str]) -> None:
    """Rejected input: status 2, nothing on stdout, no traceback on stderr."""
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------- parse


def test_parse_text_output() -> None:
    proc = run("parse", "x^T A x where A: symmetric")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.splitlines() == [
        "x^T A x",
        "kind: scalar",
        "names:",
        "  A: symmetric matrix(n, n)",
        "  x: vector(n)",
        "latex: x^{\\top} A x",
    ]


def test_parse_names_are_sorted_and_show_shapes() -> None:
    proc = run("parse", "||A x - b||_2^2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["||A x - b||_2^2", "kind: scalar"]
    assert lines[3:6] == ["  A: matrix(n, m)", "  b: vector(n)", "  x: vector(m)"]


def test_parse_whole_expression_shape() -> None:
    proc = run("parse", "A x where A: matrix(m, n)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1] == "kind: vector (m)"


def test_parse_latex_format() -> None:
    proc = run("parse", "||A x - b||_2^2", "--format", "latex")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "\\left\\|A x - b\\right\\|_{2}^{2}\n"


def test_parse_latex_input() -> None:
    proc = run("parse", "\\|A x - b\\|_2^2", "-f", "latex")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == run("parse", "||A x - b||_2^2", "-f", "latex").stdout


def test_parse_json_format() -> None:
    proc = run("parse", "x^T A x", "--decl", "A: symmetric matrix", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["text"] == "x^T A x"
    assert data["latex"] == "x^{\\top} A x"
    assert data["kind"] == "scalar"
    assert data["shape"] == [1, 1]
    assert data["names"]["A"] == {
        "kind": "matrix",
        "shape": ["n", "n"],
        "properties": ["symmetric"],
        "declaration": "symmetric matrix(n, n)",
    }
    assert data["names"]["x"]["declaration"] == "vector(n)"


def test_decl_is_repeatable_and_joins_a_where_clause() -> None:
    proc = run(
        "parse", "x^T A y where A: matrix(n, m)", "--decl", "x: vector(n)", "-d", "lambda: scalar"
    )
    assert proc.returncode == 0, proc.stderr
    assert "  A: matrix(n, m)" in proc.stdout.splitlines()
    proc = run("parse", "x^T y", "--decl", "x: vector(n)", "--decl", "y: vector(m)")
    assert_clean_failure(proc)
    assert "inner dimensions differ" in proc.stderr


def test_decl_equals_keyword_declaration() -> None:
    proc = run("parse", "x^T A x", "--decl", "A: symmetric", "-f", "json")
    expected = matcalc.parse("x^T A x", A="symmetric")
    data = json.loads(proc.stdout)
    assert data["text"] == str(expected)
    assert data["names"]["A"]["properties"] == ["symmetric"]


def test_formula_from_stdin() -> None:
    proc = run("parse", "-", "--format", "latex", stdin="x^T A x\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "x^{\\top} A x\n"


def test_formula_starting_with_minus_after_double_dash() -> None:
    proc = run("parse", "--", "-x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "-x"


@pytest.mark.parametrize(
    "formula",
    ["x^T A x", "||A x - b||_2^2", "log(1 + exp(-y w^T x)) where y: scalar", "tr(A X B)"],
)
def test_printed_text_parses_back(formula: str) -> None:
    first = run("parse", formula).stdout.splitlines()[0]
    again = run("parse", first).stdout.splitlines()[0]
    assert again == first


# ------------------------------------------------------------------------- errors


def test_parse_error_shows_caret_and_hint() -> None:
    proc = run("parse", "foo(x)")
    assert_clean_failure(proc)
    assert proc.stderr.splitlines()[:3] == [
        "error: unknown function 'foo' (line 1, column 1)",
        "  foo(x)",
        "  ^",
    ]
    assert "hint: known functions:" in proc.stderr


def test_shape_error_shows_caret() -> None:
    proc = run("parse", "x^T y where x: vector(n), y: vector(m)")
    assert_clean_failure(proc)
    lines = proc.stderr.splitlines()
    assert "(line 1, column 5)" in lines[0]
    assert lines[1:3] == ["  x^T y where x: vector(n), y: vector(m)", "      ^"]


def test_syntax_error() -> None:
    proc = run("parse", "x + + ")
    assert_clean_failure(proc)
    assert "^" in proc.stderr
    assert "line 1" in proc.stderr


def test_bad_declaration() -> None:
    proc = run("parse", "x", "--decl", "x: vectr")
    assert_clean_failure(proc)
    assert proc.stderr.startswith("error: ")
    assert "^" in proc.stderr


def test_empty_formula() -> None:
    proc = run("parse", " ")
    assert_clean_failure(proc)
    assert "empty" in proc.stderr


# ------------------------------------------------------------------------- usage


def test_help_shows_examples() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    assert "examples:" in proc.stdout
    assert 'matcalc parse "x^T A x where A: symmetric"' in proc.stdout
    sub = run("parse", "--help")
    assert sub.returncode == 0
    assert "examples:" in sub.stdout
    assert "--decl" in sub.stdout and "--format" in sub.stdout


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"matcalc {matcalc.__version__}"


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("parse",),
        ("nosuchcommand", "x"),
        ("parse", "x", "--format", "nope"),
        ("parse", "--bogus", "x"),
    ],
)
def test_usage_errors_fail_without_traceback(args: tuple[str, ...]) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------- grad

def test_grad_least_squares() -> None:
    proc = run("grad", "||A x - b||_2^2", "--wrt", "x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "2 A^T (A x - b)\n"


def test_grad_latex_with_declaration() -> None:
    proc = run("grad", "x^T A x", "--wrt", "x", "--decl", "A: symmetric", "--format", "latex")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "2 A x\n"


def test_grad_json() -> None:
    proc = run("grad", "||A x - b||_2^2", "-w", "x", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["result"] == "2 A^T (A x - b)"
    assert data["wrt"] == "x"
    assert data["kind"] == "vector"


def test_grad_steps_prints_the_derivation() -> None:
    proc = run("grad", "||A x - b||_2^2", "--wrt", "x", "--steps")
    assert proc.returncode == 0, proc.stderr
    first, _, derivation = proc.stdout.partition("\n\n")
    assert first == "2 A^T (A x - b)"
    expected = matcalc.grad("||A x - b||_2^2", "x").explain()
    assert derivation.rstrip("\n") == expected


def test_grad_check_prints_the_report() -> None:
    proc = run("grad", "||A x - b||_2^2", "--wrt", "x", "--check")
    assert proc.returncode == 0, proc.stderr
    result, _, report = proc.stdout.partition("\n\n")
    assert result == "2 A^T (A x - b)"
    assert report.strip()


def test_grad_errors() -> None:
    proc = run("grad", "A x", "--wrt", "x")
    assert_clean_failure(proc)
    assert "scalar-valued" in proc.stderr
    proc = run("grad", "x^T y where x: vector(n), y: vector(m)", "--wrt", "x")
    assert_clean_failure(proc)
    assert "      ^" in proc.stderr.splitlines()
    proc = run("grad", "x^T x")
    assert proc.returncode == 2
    assert "--wrt" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_only_working_subcommands_are_listed() -> None:
    from matcalc.cli import COMMANDS

    names = [cmd.name for cmd in COMMANDS]
    assert "parse" in names
    assert ("grad" in names) == hasattr(matcalc, "grad")
    for name in names:
        assert run(name, "--help").returncode == 0


def test_max_steps_bounds_the_derivation() -> None:
    proc = run("grad", "a^T X^30 b", "--wrt", "X", "--max-steps", "50")
    assert_clean_failure(proc)
    assert "needs more than 50 steps (the budget given)" in proc.stderr
    ok = run("grad", "a^T X^30 b", "--wrt", "X", "--max-steps", "100000")
    assert ok.returncode == 0, ok.stderr
    terms = ok.stdout.strip().split(" + ")  # sum over i of (X^T)^i a b^T (X^T)^(29-i)
    assert len(terms) == 30 and "a b^T (X^T)^29" in terms and "(X^T)^29 a b^T" in terms


def test_max_steps_must_be_a_positive_whole_number() -> None:
    for bad in ("0", "-3", "many"):
        proc = run("grad", "x^T x", "--wrt", "x", "--max-steps", bad)
        assert proc.returncode == 2
        assert "--max-steps" in proc.stderr and "Traceback" not in proc.stderr
