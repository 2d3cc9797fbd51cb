"""The user-facing subcommands (jacobian, hessian, derivative, differential, check, explain,
rules, doc) run as subprocesses: output, exit status, errors on stderr."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from test_cli import assert_clean_failure, run

import matcalc
from matcalc import cli

# ------------------------------------------------------------------ derivatives


def test_grad_numpy_format_is_runnable_code() -> None:
    proc = run("grad", "||A x - b||_2^2", "--wrt", "x", "--format", "numpy")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("import numpy as np")
    import numpy as np

    namespace: dict = {}
    exec(proc.stdout, namespace)
    A, b, x = np.arange(6.0).reshape(3, 2), np.ones(3), np.array([1.0, -1.0])
    np.testing.assert_allclose(namespace["f"](A=A, b=b, x=x), 2 * A.T @ (A @ x - b))


def test_grad_check_and_steps_in_json() -> None:
    proc = run("grad", "x^T A x", "-w", "x", "-d", "A: symmetric", "-f", "json", "--check",
               "--steps")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["result"] == "2 A x"
    assert data["check"]["ok"] is True and data["check"]["report"].startswith("passed")
    assert any("d_product" in line for line in data["steps"])


def test_jacobian_layouts() -> None:
    proc = run("jacobian", "A x", "--wrt", "x", "--decl", "A: matrix(m, n)", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["result"] == "A" and data["shape"] == ["m", "n"]
    proc = run("jacobian", "A x", "--wrt", "x", "--decl", "A: matrix(m, n)", "--layout",
               "denominator", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["result"] == "A^T" and data["shape"] == ["n", "m"]
    proc = run("jacobian", "softmax(x)", "--wrt", "x", "--check")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == str(matcalc.jacobian("softmax(x)", "x"))
    assert proc.stdout.startswith("diag(")
    assert "passed" in proc.stdout


def test_jacobian_bad_layout_is_a_usage_error() -> None:
    proc = run("jacobian", "A x", "--wrt", "x", "--layout", "sideways")
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr


def test_hessian() -> None:
    proc = run("hessian", "x^T A x", "--wrt", "x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "A + A^T\n"
    proc = run("hessian", "log(1 + exp(-y w^T x)) where y: scalar", "--wrt", "w", "-f", "latex")
    assert proc.returncode == 0, proc.stderr
    assert r"\sigma" in proc.stdout and "x^{\\top}" in proc.stdout


def test_derivative_vec_layout() -> None:
    proc = run("derivative", "A X B", "--wrt", "X")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "B^T ⊗ A\n"


def test_differential() -> None:
    proc = run("differential", "x^T A x", "--wrt", "x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "x^T (A + A^T) dx\n"
    proc = run("differential", "x^T A x", "--wrt", "x", "--format", "latex")
    assert proc.stdout == "x^{\\top} \\left(A + A^{\\top}\\right) \\mathrm{d}x\n"


# ------------------------------------------------------------------ check and explain


def test_check_passes_with_exit_0() -> None:
    proc = run("check", "-y^T log(softmax(W^T x))", "--wrt", "W", "--decl",
               "y: probability vector")
    assert proc.returncode == 0, proc.stderr
    result, _, report = proc.stdout.partition("\n\n")
    assert result == "x (softmax(W^T x) - y)^T"
    assert report.startswith("passed")


def test_check_of_a_jacobian() -> None:
    proc = run("check", "tanh(W x)", "--wrt", "x", "--of", "jacobian", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["check"]["ok"] is True


def test_check_failure_exits_1(monkeypatch, capsys) -> None:
    """A failing report (simulated: matcalc's own results pass) gives exit status 1."""
    from matcalc.verify import CheckReport

    monkeypatch.setattr(matcalc.Derivative, "check",
                        lambda self, **kw: CheckReport(False, "exact", detail="simulated"))
    assert cli.main(["check", "x^T x", "--wrt", "x"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("2 x\n\nFAILED")
    assert cli.main(["grad", "x^T x", "--wrt", "x", "--check"]) == 1


def test_check_rejected_input() -> None:
    proc = run("check", "x^T y where x: vector(n), y: vector(m)", "--wrt", "x")
    assert_clean_failure(proc)
    assert "      ^" in proc.stderr.splitlines()


def test_explain_text_matches_the_api() -> None:
    proc = run("explain", "||A x - b||_2^2", "--wrt", "x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n") == str(matcalc.grad("||A x - b||_2^2", "x").explain())
    assert re.search(r"^grad f = 2 A\^T \(A x - b\) ", proc.stdout, re.M)
    proc = run("explain", "||A x - b||_2^2", "--wrt", "x", "--verbose")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^\s+1\. \[", proc.stdout, re.M)


def test_explain_latex_and_markdown() -> None:
    proc = run("explain", "x^T A x", "--wrt", "x", "--decl", "A: symmetric", "-f", "latex")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("\\begin{align*}")
    assert "\\end{align*}" in proc.stdout
    proc = run("explain", "x^T A x", "--wrt", "x", "-f", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert "`d_product`" in proc.stdout and "$$" in proc.stdout
    proc = run("explain", "x^T A x", "--wrt", "x", "-f", "markdown", "--verbose")
    assert proc.returncode == 0, proc.stderr
    assert "1. `d_product`" in proc.stdout


def test_explain_error_has_caret() -> None:
    proc = run("explain", "foo(x)", "--wrt", "x")
    assert_clean_failure(proc)
    assert proc.stderr.splitlines()[1:3] == ["  foo(x)", "  ^"]


# ------------------------------------------------------------------ rules


def test_rules_lists_every_rule_verified() -> None:
    from matcalc.rewrite import load_rules
    from matcalc.ruletable import families

    proc = run("rules")
    assert proc.returncode == 0, proc.stderr
    names = [r.name for f in families() for r in load_rules(f)]
    for name in names:
        assert re.search(rf"^{name}: ", proc.stdout, re.M), name
    assert "FAILED" not in proc.stdout
    patterns = [r for f in families() for r in load_rules(f) if r.rhs is not None]
    assert proc.stdout.count("verified: yes") >= len(patterns) - 6  # Python rules are n/a
    assert proc.stdout.rstrip().endswith("verified numerically just now")


def test_rules_json_and_family() -> None:
    proc = run("rules", "--family", "differentials", "--format", "json", "--no-verify")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    product = next(r for r in rows if r["name"] == "d_product")
    assert product["identity"] == "d(U V) = d(U) V + U d(V)"
    assert product["latex"] == r"\mathrm{d}\left(U V\right) = \mathrm{d}U V + U \mathrm{d}V"
    assert "Matrix Cookbook" in product["source"]
    assert {r["family"] for r in rows} == {"differentials"}
    assert {r["verified"] for r in rows} == {"not run"}


def test_rules_unknown_family() -> None:
    proc = run("rules", "--family", "nope")
    assert proc.returncode == 2 and "usage:" in proc.stderr


# ------------------------------------------------------------------ doc


def test_doc_writes_tex(tmp_path) -> None:
    out = tmp_path / "sheet.tex"
    proc = run("doc", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {out}\n"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("\\documentclass") and text.rstrip().endswith("\\end{document}")
    assert "\\char95{}product" in text


def test_doc_to_stdout_and_bad_suffix(tmp_path) -> None:
    proc = run("doc")
    assert proc.returncode == 0 and proc.stdout.startswith("\\documentclass")
    proc = run("doc", "-o", str(tmp_path / "sheet.docx"))
    assert_clean_failure(proc)
    assert "-o FILE.pdf" in proc.stderr


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (.ci/run installs texlive)")
def test_doc_pdf_from_the_command_line(tmp_path) -> None:
    out = tmp_path / "sheet.pdf"
    proc = run("doc", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(b"%PDF")


def test_doc_pdf_without_tex_engine(tmp_path) -> None:
    import os
    import subprocess
    import sys

    from test_cli import ROOT

    env = dict(os.environ, PATH=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "matcalc", "doc", "-o", str(tmp_path / "s.pdf")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert "no TeX engine" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "s.tex").exists()


# ------------------------------------------------------------------ help


@pytest.mark.parametrize("name", [c.name for c in cli.COMMANDS])
def test_every_subcommand_has_help_with_examples(name: str) -> None:
    proc = run(name, "--help")
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and f"matcalc {name}" in proc.stdout


def test_help_lists_the_user_commands() -> None:
    proc = run("--help")
    for name in ("grad", "differential", "check", "explain", "rules", "doc"):
        assert name in proc.stdout
