"""Plain text in LaTeX text mode: the one escaper (rule names, sources, titles), pdflatex-safe."""

from __future__ import annotations

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "^": r"\^{}", "~": r"\~{}",
            "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}

_UNICODE = {"⊙": r"\ensuremath{\odot}", "⊗": r"\ensuremath{\otimes}",
            "⊘": r"\ensuremath{\oslash}", "ᵀ": r"\ensuremath{^{\top}}",
            "×": r"\ensuremath{\times}", "∘": r"\ensuremath{\circ}", "≥": r"\ensuremath{\geq}",
            "≤": r"\ensuremath{\leq}", "→": r"\ensuremath{\to}", "‖": r"\ensuremath{\|}",
            "λ": r"\ensuremath{\lambda}", "σ": r"\ensuremath{\sigma}",
            "α": r"\ensuremath{\alpha}", "ε": r"\ensuremath{\varepsilon}",
            "−": "-", "–": "--", "—": "---", "’": "'"}
"""Unicode that rule sources and notes use; any other non-ASCII character prints as ``?``."""


def tex_text(text: str) -> str:
    """Plain text for LaTeX text mode: specials escaped (a backslash is
    ``\\textbackslash{}``, never ``\\\\``, which is a line break), known Unicode symbols as
    math, other non-ASCII as ``?`` (pdflatex has no fonts for them)."""
    return "".join(_SPECIAL.get(ch) or (_UNICODE.get(ch, "?") if ord(ch) > 127 else ch)
                   for ch in text)


def tex_unicode(latex: str) -> str:
    """LaTeX whose only remaining problem is Unicode (rule sources inside a derivation)."""
    return "".join(_UNICODE.get(ch, "?") if ord(ch) > 127 else ch for ch in latex)


def tex_name(name: str) -> str:
    """A rule name in typewriter type whose underscores survive copy and ``pdftotext``."""
    return r"\texttt{" + name.replace("_", r"\char95{}") + "}"
