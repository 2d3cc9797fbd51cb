"""The LaTeX cheat sheet compiles with a real TeX engine and its PDF names every rule."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import matcalc
from matcalc.doc import WORKED_EXAMPLES, build_document, compile_pdf, tex_text
from matcalc.rewrite import load_rules
from matcalc.ruletable import families, rule_latex

RULES = [r for f in families() for r in load_rules(f)]


@pytest.fixture(scope="module")
def document() -> str:
    return build_document()


def test_document_holds_every_rule_and_every_example_result(document: str) -> None:
    for rule in RULES:
        latex = rule_latex(rule)
        if latex is not None:
            assert latex in document, rule.name
    for ex in WORKED_EXAMPLES:
        d = getattr(matcalc, ex.kind)(ex.formula, ex.wrt, **ex.decls)
        assert d.latex() in document, ex.title
        assert d.function.latex() in document, ex.title


def test_tex_text_escapes_specials() -> None:
    assert tex_text("a_b & 50% {x}^T ⊙ #") == r"a\_b \& 50\% \{x\}\^{}T $\odot$ \#"


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (.ci/run installs texlive from Debian)")
def test_document_compiles_and_pdf_text_names_every_rule(document: str, tmp_path) -> None:
    pdf = compile_pdf(document, tmp_path / "matcalc.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is not installed (poppler-utils)")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    missing = [r.name for r in RULES if r.name not in text]
    assert not missing
    for ex in WORKED_EXAMPLES:
        assert ex.title in text


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_broken_latex_is_reported(tmp_path) -> None:
    source = "\\documentclass{article}\\begin{document}$\\frac{1}$\\end{document}\n"
    with pytest.raises(matcalc.MatcalcError, match="pdflatex failed|latexmk failed"):
        compile_pdf(source, tmp_path / "bad.pdf")
