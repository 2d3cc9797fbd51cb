"""check_claim and `matcalc check --claim`: proofs, reproducible counterexamples, mistakes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.numeric import evaluate, finite_difference, shape_value

CASES = json.loads((Path(__file__).parent / "data" / "gradients.json").read_text("utf-8"))

# The five classic mistakes: (function, variable, options, wrong answer, the mistake's name)
CLASSIC = [
    ("x^T A x", "x", {}, "2 A x", "symmetric only"),
    ("||A x - b||_2^2", "x", {}, "A^T (A x - b)", "factor"),
    ("a^T X b", "X", {}, "b a^T", "transpose"),
    ("||A x - b||_2^2", "x", {}, "2 (A x - b)^T A", "layout"),
    ("softmax(x)", "x", {"of": "jacobian"}, "diag(softmax(x))", "missing term"),
]


@pytest.mark.parametrize("f, wrt, options, claim, mistake", CLASSIC,
                         ids=[c[4] for c in CLASSIC])
def test_classic_mistakes_are_named(f, wrt, options, claim, mistake):
    report = matcalc.check_claim(f, wrt, claim, **options)
    assert not report
    assert mistake in [d.name for d in report.diagnoses], str(report)
    assert "incorrect" in str(report)


@pytest.mark.parametrize("f, wrt, options, claim, mistake",
                         [c for c in CLASSIC if c[4] != "layout"],
                         ids=[c[4] for c in CLASSIC if c[4] != "layout"])
def test_counterexample_reproduces_numerically(f, wrt, options, claim, mistake):
    report = matcalc.check_claim(f, wrt, claim, **options)
    c = report.counterexample
    assert c is not None
    i, j = c.entry[0] - 1, c.entry[1] - 1
    shape = shape_value(report.claim.shape, c.sizes)
    claimed = np.asarray(evaluate(report.claim, c.values, c.sizes), dtype=float).reshape(shape)
    # the true derivative by finite differences of the function itself, an independent oracle
    d = report.derivative
    expected = np.asarray(finite_difference(d.function, d.wrt, c.values, mode=d.mode),
                          dtype=float).reshape(shape)
    assert claimed[i, j] == pytest.approx(c.claimed)
    assert expected[i, j] == pytest.approx(c.expected, rel=1e-5, abs=1e-6)
    assert abs(claimed[i, j] - expected[i, j]) > 1e-3


def test_smallest_sizes_first():
    # a factor of 2 shows at size 1; a transpose needs size 2
    assert set(matcalc.check_claim("||A x - b||_2^2", "x", "A^T (A x - b)")
               .counterexample.sizes.values()) == {1}
    assert set(matcalc.check_claim("a^T X b", "X", "b a^T").counterexample.sizes.values()) == {2}


def test_every_textbook_form_in_the_gradient_table_is_accepted():
    rejected = []
    for case in CASES:
        if "expected" not in case:
            continue
        report = matcalc.check_claim(case["f"], case["wrt"], case["expected"],
                                     **case.get("decls", {}))
        if not report:
            rejected.append(f"{case['f']} d/d{case['wrt']}: {report}")
    assert rejected == []


def test_equal_forms_are_proved_by_sympy_when_the_normal_forms_differ():
    # 2 A^T A x - 2 A^T b now has the normal form 2 A^T (A x - b); a scalar factor moved
    # into a chain is an equality only SymPy sees
    report = matcalc.check_claim("(a^T x)^2", "x", "2 a a^T x")
    assert report and "SymPy" in report.method


def test_a_sign_error_is_named():
    report = matcalc.check_claim("||x - a||_2^2", "x", "2 (a - x)")
    assert [d.name for d in report.diagnoses] == ["sign"]


def test_claim_with_unknown_names_is_rejected():
    with pytest.raises(matcalc.DeclarationError):
        matcalc.check_claim("x^T x", "x", "2 y")


def run(*args):
    return subprocess.run([sys.executable, "-m", "matcalc", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_check_claim():
    proc = run("check", "x^T A x", "--wrt", "x", "--claim", "2 A x")
    assert proc.returncode == 1
    assert "symmetric only" in proc.stdout and "counterexample" in proc.stdout
    proc = run("check", "||A x - b||_2^2", "--wrt", "x", "--claim", "2 A^T (A x - b)")
    assert proc.returncode == 0 and proc.stdout.startswith("correct")
    proc = run("check", "softmax(x)", "--wrt", "x", "--of", "jacobian", "--claim",
               "diag(s) where s = softmax(x)", "--format", "json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and data["diagnoses"][0]["name"] == "missing term"


def test_logdet_inverse_only_for_symmetric_x():
    report = matcalc.check_claim("logdet(X)", "X", "X^-1")
    names = [d.name for d in report.diagnoses]
    assert not report and "symmetric only" in names and "transpose" in names
    assert matcalc.check_claim("logdet(X)", "X", "X^-1", X="symmetric matrix")


def test_hessian_claim_with_a_where_clause():
    f = "1^T softplus(X w) - y^T X w"
    assert matcalc.check_claim(f, "w", "X^T diag(s ⊙ (1 - s)) X where s = sigma(X w)",
                               of="hessian")
    wrong = matcalc.check_claim(f, "w", "X^T diag(s) X where s = sigma(X w)", of="hessian")
    assert not wrong and wrong.counterexample is not None


def test_cli_explain_json_is_the_derivation_as_data():
    proc = run("explain", "||A x - b||_2^2", "--wrt", "x", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [line["lhs"] for line in data["lines"]] == ["f", "df", "", "grad f"]


def test_one_name_for_the_verdict_in_python_cli_json_and_web():
    # the verdict is `ok` everywhere: the report's attribute, its JSON, the CLI and the web
    wrong = matcalc.check_claim("x^T A x", "x", "2 A x")
    right = matcalc.check_claim("x^T A x", "x", "(A + A^T) x")
    assert (wrong.ok, right.ok) == (False, True)
    assert wrong.as_dict()["ok"] is False and "correct" not in wrong.as_dict()
    assert wrong.correct is False  # the former name, an alias
    proc = run("check", "x^T A x", "--wrt", "x", "--claim", "(A + A^T) x", "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"] is True
    from matcalc.web.service import derive
    request = {"formula": "x^T A x", "where": "", "decls": {}, "wrt": "x", "op": "grad",
               "options": {"layout": "numerator", "check": True, "claim": "2 A x",
                           "derivation": False, "code": False}}
    answer = derive(request)
    assert answer["check"]["ok"] is True and answer["claim"]["ok"] is False
    assert "correct" not in answer["claim"]
    check = matcalc.grad("x^T A x", "x").check()
    assert check.ok and check.passed  # `passed`, the former name, an alias
