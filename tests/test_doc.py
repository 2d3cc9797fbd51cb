"""The LaTeX cheat sheet compiles with a real TeX engine and its PDF names every rule."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import matcalc
from matcalc.doc import WORKED_EXAMPLES, build_document, compile_pdf, tex_text
from matcalc.printing.source import source_latex, source_parts
from matcalc.rewrite import load_rules
from matcalc.ruletable import families, rule_latex

RULES = [r for f in families() for r in load_rules(f)]


@pytest.fixture(scope="module")
def document() -> str:
    return build_document()


def _words(text: str) -> str:
    return " ".join(text.split())  # the source is wrapped: a line break is a space to TeX


def test_document_holds_every_rule_and_every_example_result(document: str) -> None:
    flat = _words(document)
    for rule in RULES:
        latex = rule_latex(rule)
        if latex is not None:
            assert _words(latex) in flat, rule.name
    for ex in WORKED_EXAMPLES:
        d = getattr(matcalc, ex.kind)(ex.formula, ex.wrt, **ex.decls)
        assert _words(d.latex()) in flat, ex.title
        assert _words(d.function.latex()) in flat, ex.title


def test_no_source_line_overflows(document: str) -> None:
    assert max(len(line) for line in document.splitlines()) <= 100


def test_rule_sources_typeset_their_formulas(document: str) -> None:
    # Matrix Cookbook eq. 16 as mathematics, not as escaped ASCII
    cyclic = r"$\operatorname{tr}(G^{\top} A L) = \operatorname{tr}\left(\left(A^{\top} G\right)"
    assert _words(cyclic) in _words(document)
    assert r"tr(G\^{}T A L)" not in document


def _rule_sources(document: str) -> list[str]:
    """The typeset sources of the rule table (the footnotesize text beside each rule name)."""
    table = document.split(r"\section{The rule table}")[1].split(r"\section{Worked examples}")[0]
    flat = _words(table)
    return re.findall(r"\\hspace\{1em plus 1fill\}\{\\footnotesize (.*?)\}\\nopagebreak", flat)


def test_rule_sources_have_no_escaped_scripts(document: str) -> None:
    sources = _rule_sources(document)
    assert len(sources) == len(RULES)
    escaped = [s for s in sources if any(e in s for e in (r"\^{}", r"\_", r"\textbar"))]
    assert not escaped


def test_rule_sources_quote_formulas_in_pairs() -> None:
    # rules/README.md: a formula in a source is written between backticks
    unpaired = [r.name for r in RULES if r.source.count("`") % 2]
    assert not unpaired


def test_quoted_formulas_in_sources_are_typeset() -> None:
    # matcalc syntax through matcalc's printer, the rest (K_{m,n}, <a, b>, sum_ij) in math mode
    assert source_latex("eq. 9: `vec(X^T) = K_{m,n} vec(X)` defines K") == (
        r"eq. 9: $\operatorname{vec}(X^{\top}) = K_{m,n} \operatorname{vec}(X)$ defines K")
    assert source_latex("`<G, A> = sum_ij G_ij A_ij`") == (
        r"$\langle G,\ A \rangle = \sum_{ij} G_{ij} A_{ij}$")
    assert source_latex("`(s I - B)^+ = x`, so") == r"$(s I - B)^{+} = x$, so"
    # a differential as the rule table prints it, never d times X; m×n is a size
    assert source_latex("`d(tr(X)) = tr(I d(X))`") == (
        r"$\mathrm{d}\operatorname{tr}(X) = \operatorname{tr}(I \mathrm{d}X)$")
    assert source_latex("`A` of size `m×n`") == r"$A$ of size $m\times n$"
    # an unquoted word with a script is still mathematics, never an escaped caret
    assert source_latex("applied to U^T U") == r"applied to $U^{\top}$ U"


def test_glance_table_states_the_assumptions(document: str) -> None:
    glance = _words(document.split(r"\section{The rule table}")[0])
    assert r"2 A x \qquad \text{($A$ symmetric)}" in glance
    assert r"X^{-1} \qquad \text{($X$ symmetric)}" in glance


def test_tex_text_escapes_specials() -> None:
    assert tex_text("a_b & 50% {x}^T ⊙ #") == r"a\_b \& 50\% \{x\}\^{}T \ensuremath{\odot} \#"
    # a backslash is \textbackslash{}: "\\" would be a LaTeX line break
    assert tex_text("a\\b") == r"a\textbackslash{}b"
    assert "\\\\" not in tex_text("\\sigma \\ x")


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


def test_source_parts_split_prose_from_typeset_formulas() -> None:
    """The web page typesets a source's quoted formulas and shows its prose as text."""
    parts = source_parts("derivation: a scalar added to a vector, `G^T 1 l = l 1^T G`")
    assert parts[0] == {"text": "derivation: a scalar added to a vector, "}
    assert len(parts) == 2 and "\\top" in parts[1]["math"] and "`" not in parts[1]["math"]
    assert source_parts("Matrix Cookbook (2012) eq. 35") == [
        {"text": "Matrix Cookbook (2012) eq. 35"}]
