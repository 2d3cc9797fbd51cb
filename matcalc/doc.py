"""The LaTeX cheat sheet: rule table and worked examples, compiled to PDF when TeX is there."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import matcalc

from .errors import MatcalcError
from .printing.derivation import source_latex
from .ruletable import FAMILY_TITLES, families, rule_table

WIDTH = 100
"""No line of the LaTeX source is wider than this, where a space allows a break."""


@dataclass(frozen=True)
class Example:
    """A worked example: what to differentiate, how, and what the notes say about it."""

    title: str
    formula: str
    wrt: str
    kind: str = "grad"  # grad, jacobian, hessian, derivative
    decls: dict[str, str] = field(default_factory=dict)
    note: str = ""


WORKED_EXAMPLES: tuple[Example, ...] = (
    Example("Linear function", "a^T x", "x", note="Common derivatives: a^T x gives a."),
    Example("Quadratic form, symmetric A", "x^T A x", "x", decls={"A": "symmetric"},
            note="Since A is symmetric, the gradient is 2 A x."),
    Example("Quadratic form, general A", "x^T A x", "x"),
    Example("Squared Euclidean norm", "x^T x", "x"),
    Example("Euclidean norm", "||x||_2", "x"),
    Example("Affine function, squared norm", "||A x - b||_2^2", "x",
            note="Used in linear regression, f(w) = ||X w - y||^2."),
    Example("Linear regression", "||X w - y||_2^2", "w"),
    Example("Frobenius norm squared", "||X||_F^2", "X"),
    Example("Trace", "tr(X)", "X"),
    Example("Trace of a product", "tr(A X)", "X", note="The special case tr(A X) gives A^T."),
    Example("Composition with a linear map", "||A x||^2", "x",
            note="y = A x, z = ||y||^2. Verify directly: z = x^T A^T A x, so the gradient"
            " is 2 A^T A x."),
    Example("Log-sum-exp", "log(exp(x)^T 1)", "x", note="The gradient is softmax(x)."),
    Example("Softmax Jacobian", "softmax(x)", "x", kind="jacobian",
            note="diag(s) - s s^T with s = softmax(x) (numerator layout: m x n)."),
    Example("Logistic loss", "log(1 + exp(-y w^T x))", "w", decls={"y": "scalar"},
            note="y in {-1, 1} is the label; sigma is the logistic sigmoid."),
    Example("Cross-entropy with softmax", "-y^T log(softmax(W^T x))", "W",
            decls={"y": "probability vector"}, note="y is one-hot; z = W^T x."),
    Example("Ridge regression", "||X w - y||_2^2 + lambda ||w||_2^2", "w",
            note="The L2 penalty contributes 2 lambda w."),
    Example("Lasso regression", "||X w - y||_2^2 + lambda ||w||_1", "w",
            note="The L1 penalty contributes lambda sign(w) (a subgradient)."),
    Example("Backpropagation, two layers", "||W2 tanh(W1 x) - y||_2^2", "W1",
            note="The gradient reuses the forward value tanh(W1 x), as backpropagation does."),
    Example("Attention scores", "v^T softmax(K q)", "q",
            note="Gradient through the softmax of the scores K q."),
    Example("Adversarial direction (FGSM)", "log(1 + exp(-y w^T x))", "x",
            decls={"y": "scalar"}, note="delta = epsilon sign(grad_x L)."),
    Example("Reparameterisation", "||m + s .* e - y||_2^2", "s",
            note="z = m + s * e with noise e: the gradient flows to the scale s."),
    Example("Jacobian regularisation", "lambda ||W||_F^2", "W",
            note="The Jacobian of W x is W; penalising ||W||_F^2 contributes 2 lambda W."),
    Example("Hessian of a quadratic form", "x^T A x", "x", kind="hessian"),
    Example("Hessian of the logistic loss", "log(1 + exp(-y w^T x))", "w", kind="hessian",
            decls={"y": "scalar"}, note="Positive semidefinite: Newton's method uses it."),
    Example("Eigenvalue gradient", "lambda_max(A)", "A", decls={"A": "symmetric"},
            note="For a simple largest eigenvalue, v v^T with its unit eigenvector v."),
    Example("Log-determinant", "logdet(X)", "X", decls={"X": "symmetric"}),
)
"""The worked examples of the seed notes (copied here: matcalc never reads the notes)."""

_SYMBOLS = {"⊙": r"$\odot$", "⊗": r"$\otimes$", "⊘": r"$\oslash$", "ᵀ": r"$^{\top}$",
            "×": r"$\times$", "∘": r"$\circ$", "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\to$",
            "−": "-", "–": "--", "—": "---", "’": "'", "‖": r"$\|$", "λ": r"$\lambda$",
            "σ": r"$\sigma$", "α": r"$\alpha$", "ε": r"$\varepsilon$"}


def tex_text(text: str) -> str:
    """Plain text made safe for LaTeX (specials escaped, known Unicode symbols as math)."""
    out = []
    for ch in text:
        if ch in "\\":
            out.append(r"\textbackslash{}")
        elif ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "^":
            out.append(r"\^{}")
        elif ch == "~":
            out.append(r"\~{}")
        elif ch in "<>|":
            out.append({"<": r"$<$", ">": r"$>$", "|": r"$|$"}[ch])
        elif ord(ch) > 127:
            out.append(_SYMBOLS.get(ch, "?"))
        else:
            out.append(ch)
    return "".join(out)


def tex_name(name: str) -> str:
    """A rule name in typewriter type whose underscores survive copy and ``pdftotext``."""
    return r"\texttt{" + name.replace("_", r"\char95{}") + "}"


def _tt_underscores(latex: str) -> str:
    return re.sub(r"\\texttt\{([^{}]*)\}", lambda m: tex_name(m.group(1).replace(r"\_", "_")),
                  latex)


def _tex_unicode(latex: str) -> str:
    """Unicode left in text mode (e.g. in rule sources inside a derivation) as LaTeX."""
    return "".join(_SYMBOLS.get(ch, "?") if ord(ch) > 127 else ch for ch in latex)


_PREAMBLE = r"""\documentclass[10pt,a4paper]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{longtable}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{4pt}
\title{matcalc: matrix calculus cheat sheet}
\author{generated by \texttt{matcalc doc} %s}
\date{}
\begin{document}
\maketitle
"""


def _derive(example: Example) -> matcalc.Derivative:
    fn = getattr(matcalc, example.kind)
    return fn(example.formula, example.wrt, **example.decls)


def _rules_section() -> list[str]:
    lines = [
        r"\section{The rule table}",
        "Every identity matcalc uses, in the order the engine applies them, numbered as in a "
        "cookbook. Each rule has its name (as \\texttt{matcalc rules} and "
        "\\texttt{explain()} show it) and its source. Differentials are written with "
        r"$\mathrm{d}$; in adjoint rules $G$ is the incoming gradient and $L$ the part "
        r"linear in $\mathrm{d}X$, so $\operatorname{tr}(H^{\top}\mathrm{d}X)$ reads off "
        r"the gradient $H$.",
    ]
    table = rule_table(verify=False)
    for family in families():
        title = FAMILY_TITLES.get(family, f"Rules: {family}")
        lines.append(rf"\subsection{{{tex_text(title)}}}")
        for entry in (e for e in table if e.family == family):
            lines.append(rf"{tex_name(entry.name)}\hfill{{\footnotesize "
                         rf"{source_latex(entry.source)}}}\nopagebreak")
            if entry.latex is None:
                lines.append(r"\begin{equation}\text{(Python rule: "
                             + tex_name(entry.identity.removeprefix("python ").strip())
                             + r")}\end{equation}")
            else:
                lines.append(r"\begin{equation}" + entry.latex + r"\end{equation}")
    return lines


def _gradient_table(examples: tuple[Example, ...]) -> list[str]:
    lines = [
        r"\section{Derivatives at a glance}",
        r"In the manner of The Matrix Cookbook's derivative section: each line is computed by "
        r"matcalc. Gradients have the shape of the variable (entry $(i,j)$ is "
        r"$\partial f/\partial X_{ij}$); a Jacobian of $y\in\mathbb{R}^m$ with respect to "
        r"$x\in\mathbb{R}^n$ is $m\times n$ (entry $(i,j)$ is $\partial y_i/\partial x_j$).",
        r"\begin{align}",
    ]
    rows = []
    for ex in examples:
        d = _derive(ex)
        f, x = d.function.latex(), d.wrt.latex()
        if ex.kind == "hessian":
            lhs = rf"\frac{{\partial^2}}{{\partial {x}\,\partial {x}^{{\top}}}} \left({f}\right)"
        else:
            lhs = rf"\frac{{\partial}}{{\partial {x}}} \left({f}\right)"
        rows.append(rf"{lhs} &= {d.latex()}" + _assumptions(ex))
    lines.append(" \\\\\n".join(rows))
    lines.append(r"\end{align}")
    return lines


def _assumptions(example: Example) -> str:
    """The declarations a row of the table depends on (``2 A x`` only for a symmetric A)."""
    if not example.decls:
        return ""
    said = ", ".join(rf"${matcalc.parse(name).latex()}$ {tex_text(kind)}"
                     for name, kind in example.decls.items())
    return rf" \qquad \text{{({said})}}"


def _examples_section(examples: tuple[Example, ...]) -> list[str]:
    lines = [
        r"\section{Worked examples}",
        "The examples of the notes, each with matcalc's derivation: one rule and its source "
        "per step (the output of \\texttt{explain(format=\"latex\")}).",
    ]
    for ex in examples:
        d = _derive(ex)
        decls = ", ".join(f"{k}: {v}" for k, v in ex.decls.items())
        lines.append(rf"\subsection{{{tex_text(ex.title)}}}")
        what = {"grad": "gradient", "jacobian": "Jacobian", "hessian": "Hessian",
                "derivative": "derivative"}[ex.kind]
        lines.append(
            rf"The {what} of ${d.function.latex()}$ with respect to ${d.wrt.latex()}$"
            + (rf" (where {tex_text(decls)})" if decls else "")
            + (rf". {source_latex(ex.note)}" if ex.note else ".")
        )
        lines.append(r"\[" + d.latex() + r"\]")
        explanation = _tex_unicode(_tt_underscores(d.explain(format="latex")))
        lines.append(r"{\small" + "\n" + explanation + "\n}")
    return lines


def build_document(examples: tuple[Example, ...] = WORKED_EXAMPLES) -> str:
    """The complete LaTeX source: rule table, derivative table and worked examples."""
    parts = [_PREAMBLE % tex_text(matcalc.__version__)]
    parts += _gradient_table(examples)
    parts += _rules_section()
    parts += _examples_section(examples)
    parts.append(r"\end{document}")
    return wrap_source("\n".join(parts)) + "\n"


def wrap_source(latex: str, width: int = WIDTH) -> str:
    """LaTeX source with no line wider than ``width`` where a space allows a break (a line
    break is a space to TeX); never right after ``\\``, where ``[`` or ``*`` would change
    its meaning, nor in a comment."""
    out = []
    for line in latex.split("\n"):
        while len(line) > width and "%" not in line:
            cut = line.rfind(" ", 0, width)
            while cut > 0 and (line[:cut].rstrip().endswith("\\\\")
                               or line[cut + 1:cut + 2] in "[*"):
                cut = line.rfind(" ", 0, cut)
            if cut <= 0:
                break
            out.append(line[:cut])
            line = line[cut + 1:]
        out.append(line)
    return "\n".join(out)


def tex_engine() -> str | None:
    """The TeX engine used to compile: ``latexmk`` or ``pdflatex``, or None when neither."""
    for name in ("latexmk", "pdflatex"):
        if shutil.which(name) and (name != "latexmk" or shutil.which("pdflatex")):
            return name
    return None


def compile_pdf(source: str, pdf: Path, timeout: float = 300) -> Path:
    """Compile LaTeX ``source`` to ``pdf`` with latexmk or pdflatex; raises when it fails."""
    engine = tex_engine()
    if engine is None:
        raise MatcalcError("no TeX engine found (pdflatex or latexmk)",
                           hint="install one, e.g. apt-get install texlive-latex-base "
                                "texlive-latex-recommended, or write .tex with -o FILE.tex")
    with tempfile.TemporaryDirectory(prefix="matcalc-doc-") as tmp:
        tex = Path(tmp) / "matcalc.tex"
        tex.write_text(source, encoding="utf-8")
        if engine == "latexmk":
            commands = [["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error",
                         "matcalc.tex"]]
        else:
            run = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "matcalc.tex"]
            commands = [run, run]  # twice: equation numbers and references settle
        for command in commands:
            proc = subprocess.run(command, cwd=tmp, capture_output=True, text=True,
                                  errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                log = (Path(tmp) / "matcalc.log")
                text = log.read_text(errors="replace") if log.exists() else proc.stdout
                errors = [line for line in text.splitlines() if line.startswith("!")]
                raise MatcalcError(f"{command[0]} failed: " + ("; ".join(errors[:3]) or
                                                               text[-500:]))
        pdf.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "matcalc.pdf", pdf)
    return pdf


__all__ = ["Example", "WORKED_EXAMPLES", "build_document", "compile_pdf", "tex_engine",
           "tex_name", "tex_text"]
