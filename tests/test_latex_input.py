"""LaTeX input parses to the same AST as the text notation, and printed LaTeX reads back."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from lark import Lark

import matcalc
from matcalc.parse import PostLexer

# (LaTeX, text, keyword declarations)
PAIRS = [
    (r"\|A x - b\|_2^2", "||A x - b||_2^2", {}),
    (r"\|Ax - b\|_2^2", "||Ax - b||_2^2", {}),
    (r"x^\top A x", "x^T A x", {}),
    (r"x^{\top} A x", "x^T A x", {}),
    (r"x^{T} A x", "x^T A x", {}),
    (r"\det X X^{-\top}", "det(X) X^-T", {}),
    (r"X^{-T} + X^-T", "X^-T + X^-T", {}),
    (r"\log \det X", "log(det(X))", {}),
    (r"\log x^{2} + \exp \alpha", "log(x^2) + exp(alpha)", {"x": "scalar"}),
    (r"x^TAx", "x^T A x", {}),
    (r"\operatorname{tr}(A X)", "tr(AX)", {}),
    (r"\mathrm{tr}(A X)", "tr(A X)", {}),
    (r"\text{tr}(AX)", "tr(AX)", {}),
    (r"\left\| X \right\|_F^2", "||X||_F^2", {}),
    (r"\left\| X \right\|_{F}^{2}", "||X||_F^2", {}),
    (r"A^{-1}", "A^-1", {}),
    (r"\log(\exp(x)^T \mathbf{1})", "log(exp(x)^T 1)", {}),
    (r"\log\left(\exp\left(x\right)^{\top} \mathbf{1}\right)", "log(exp(x)^T 1)", {}),
    (r"\det(X)", "det(X)", {}),
    (r"\sigma(z)", "sigma(z)", {}),
    (r"\sigma z", "sigma z", {}),
    (r"\operatorname{softmax}(x)", "softmax(x)", {}),
    (r"\frac{a}{b}", "a / b", {"a": "scalar", "b": "scalar"}),
    (r"\frac{x}{\|x\|_2}", "x / ||x||_2", {}),
    (r"\frac{1}{2}", "1/2", {}),
    (r"x^T (A + \lambda I) x", "x^T (A + lambda I) x", {}),
    (r"\lambda \|w\|_2^2", "lambda ||w||_2^2", {}),
    (r"a \odot b", "a ⊙ b", {}),
    (r"a \circ b", "a .* b", {}),
    (r"A \otimes B", "A ⊗ B", {}),
    (r"\alpha \cdot x", "alpha x", {}),
    (r"{x}^T {A} x", "x^T A x", {}),
    (r"\left( A + B \right) x", "(A + B) x", {}),
    (r"2A^T(Ax - b)", "2 A^T (A x - b)", {}),
    (r"x^TA^TAx", "x^T A^T A x", {}),
    (r"\log(1 + \exp(-y w^T x))", "log(1 + exp(-y w^T x))", {"y": "scalar"}),
    (r"-y^\top \log(\operatorname{softmax}(W^\top x))", "-y^T log(softmax(W^T x))", {}),
    (r"\operatorname{diag}(s) - s s^\top", "diag(s) - s s^T", {}),
    (r"\mathbf{x}^\top \mathbf{A} \mathbf{x}", "x^T A x", {}),
    (r"\|x\|_1", "||x||_1", {}),
    (r"\left| x \right|", "|x|", {}),
    (r"x^{\circ 2}", "x.^2", {}),
    (r"a \oslash b", "a ./ b", {}),
    (r"W_{2} h_{1}", "W2 h1", {}),
    (r"\theta_{1} x", "theta_1 x", {}),
    (r"\sigma_1(W_1 x)", "sigma_1 (W_1 x)", {}),
    (r"\hat{y}", "y_hat", {}),
    (r"QK^T", "Q K^T", {}),
    (r"\epsilon \, \operatorname{sign}(g)", "epsilon sign(g)", {}),
]


@pytest.mark.parametrize("latex,text,decls", PAIRS, ids=[p[0] for p in PAIRS])
def test_latex_equals_text(latex: str, text: str, decls: dict) -> None:
    assert matcalc.parse(latex, **decls) == matcalc.parse(text, **decls)


FORMULAS = [(p[1], p[2]) for p in PAIRS] + [(f, {}) for f in [
    "x (softmax(W^T x) - y)^T", "diag(s) - s s^T where s = softmax(x)",
    "2 W2^T (W2 h - y) ⊙ (1 - h.^2) x^T where h = tanh(W1 x)", "x / ||x||_2",
    "logdet(X) + tr(S^-1 X)", "kron(A, B) vec(X)", "sigma * (x + y)", "1/2 x^T A x",
    "alpha^2 + 3/4", "sum(|X|)", "relu(W x) ./ (1 + exp(-x))", "x^T y where x: vector(n)",
]]


@pytest.mark.parametrize("text,decls", FORMULAS, ids=[f[0] for f in FORMULAS])
def test_printed_latex_reads_back(text: str, decls: dict) -> None:
    e = matcalc.parse(text, **decls)
    assert matcalc.parse(e.latex(), **decls) == e


def test_spectral_latex_is_display_only() -> None:
    e = matcalc.parse("lambda_max(A)", A="symmetric")
    assert r"\lambda_{\max}" in e.latex()


def _conflicts(grammar: str) -> list[str]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    logger = logging.getLogger("lark")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        Lark(grammar, parser="lalr", lexer="basic", start=["formula", "decls"], debug=True,
             postlex=PostLexer(), maybe_placeholders=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return [line for line in buf.getvalue().splitlines() if "conflict" in line.lower()]


def test_grammar_has_no_lalr_conflicts() -> None:
    path = Path(__file__).resolve().parent.parent / "grammar" / "matcalc.lark"
    assert _conflicts(path.read_text(encoding="utf-8")) == []


def test_conflict_capture_sees_conflicts() -> None:
    # The capture above must be able to fail: a dangling product is a Shift/Reduce conflict.
    ambiguous = """
    formula: expr
    expr: expr expr | NAME
    decls: NAME
    NAME: /[a-z]/
    %declare DBAR BAR NORM_LEFT NORM_RIGHT ABS_LEFT ABS_RIGHT WHERE
    %ignore " "
    """
    assert any("Shift/Reduce" in line for line in _conflicts(ambiguous))
