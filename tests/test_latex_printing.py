"""LaTeX printer fixes: forms that must print well and still parse back."""

import pytest

import matcalc


@pytest.mark.parametrize(
    "text, latex",
    [
        ("sqrt(x^T x)", r"\sqrt{x^{\top} x}"),
        ("sqrt(x) .* y", r"\sqrt{x} \odot y"),
        ("2 sqrt(alpha)", r"2 \sqrt{\alpha}"),
    ],
)
def test_sqrt_prints_with_braces_and_parses_back(text: str, latex: str) -> None:
    e = matcalc.parse(text)
    assert e.latex() == latex
    assert matcalc.parse(e.latex()) == e


@pytest.mark.parametrize("text", [r"\sqrt{x^T x}", r"\sqrt(x^T x)", r"\sqrt\left(x^T x\right)"])
def test_sqrt_latex_spellings_agree(text: str) -> None:
    assert str(matcalc.parse(text)) == "sqrt(x^T x)"


def test_differential_of_a_compound_expression_is_parenthesised() -> None:
    from matcalc.expr import Differential

    e = Differential(matcalc.parse("A x - b"))
    assert e.latex() == r"\mathrm{d}\left(A x - b\right)"
    assert Differential(matcalc.parse("x")).latex() == r"\mathrm{d}x"
