"""Derivations printed as text (two columns and notes), Markdown and LaTeX (``align*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .source import source_latex, source_markdown
from .tex import tex_text

if TYPE_CHECKING:  # pragma: no cover
    from ..derivation import Derivation, Line, RuleUse

LATEX_WIDTH = 64
"""An expression printed wider than this (in text characters) is broken across rows."""


def _notes(derivation: Derivation) -> tuple[list[RuleUse], list[list[int]]]:
    """Distinct rules numbered in order of first use, and each line's note numbers."""
    numbered: list[RuleUse] = []
    marks: list[list[int]] = []
    for line in derivation.lines:
        mine = []
        for use in line.rules:
            if use not in numbered:
                numbered.append(use)
            mine.append(numbered.index(use) + 1)
        marks.append(mine)
    return numbered, marks


def _mark(numbers: list[int]) -> str:
    return "[" + ", ".join(map(str, numbers)) + "]" if numbers else ""


def _note(line: Line, latex: bool = False) -> str:
    """What stands beside a line: the substituted differential or the theorem, else the
    identity of the first rule the line applies (``d(U V) = d(U) V + U d(V)``)."""
    if line.note:
        return line.note_latex if latex else line.note
    for use in line.rules:
        if latex:
            math = use.identity_latex()
            if math:
                return math
        elif use.identity != use.name and not use.identity.startswith("python "):
            return use.identity
    return ""


def derivation_text(derivation: Derivation) -> str:
    """Two columns: the chain on the left, what justifies each line on the right."""
    numbered, marks = _notes(derivation)
    width = max((len(line.lhs) for line in derivation.lines), default=0)
    left = []
    for line in derivation.lines:
        lhs = line.lhs.rjust(width) if line.lhs else " " * width
        left.append(f"{lhs} = {line.rhs}")
    column = min(max(len(t) for t in left) + 4, 60)
    out = [derivation.title]
    for text, line, mine in zip(left, derivation.lines, marks, strict=True):
        right = " ".join(part for part in (_note(line), _mark(mine)) if part)
        if not right:
            out.append(text)
        elif len(text) < column - 2:
            out.append(text.ljust(column) + right)
        else:
            out.append(text)
            out.append(" " * column + right)
    out.append("")
    for i, use in enumerate(numbered, 1):
        identity = "" if use.identity == use.name else f" {use.identity}"
        out.append(f"[{i}] {use.name}:{identity}  ({use.source})")
    return "\n".join(out)


def _rows(line: Line, mark: str) -> list[str]:
    """The ``align*`` rows of one line: ``lhs &= rhs && note``, broken when long."""
    pieces = break_latex(line, LATEX_WIDTH)
    note = _note(line, latex=True)
    side = rf"&& {note}" if note else "&&"
    if mark:
        side += rf"\quad\text{{{mark}}}"
    rows = []
    for i, piece in enumerate(pieces):
        if i == 0:
            rows.append(f"{line.lhs_latex} &= {piece}")
        else:
            rows.append(rf"&\qquad {piece}")
    rows[0] += f" {side}" if len(pieces) == 1 else ""
    if len(pieces) > 1:
        rows[-1] += f" {side}"
    return rows


def break_latex(line: Line, width: int = LATEX_WIDTH) -> list[str]:
    """The right side of a line in pieces no wider than ``width`` where it can be broken:
    at the named values of a header, at a where clause, between the terms of a sum."""
    from ..expr import Add
    from .text import split_sign

    if len(line.rhs) <= width:
        return [line.rhs_latex]
    if line.role == "function" and r",\quad " in line.rhs_latex:
        parts = line.rhs_latex.split(r",\quad ")
        return [p + "," for p in parts[:-1]] + [parts[-1]]
    where = r" \quad\text{where}\quad "
    if where in line.rhs_latex:
        body, definitions = line.rhs_latex.split(where, 1)
        return [body, r"\text{where}\quad " + definitions]
    e = line.expr
    if not isinstance(e, Add):
        return [line.rhs_latex]
    pieces: list[str] = []
    current, current_width = "", 0
    for i, term in enumerate(e.terms):
        negative, magnitude = split_sign(term)
        sign = "-" if negative else ("+" if i else "")
        text = f"{sign} {magnitude}".strip()
        latex = f"{sign} {magnitude.latex()}".strip()
        if current and current_width + len(text) > width:
            pieces.append(current)
            current, current_width = "", 0
        current = f"{current} {latex}".strip()
        current_width += len(text) + 1
    pieces.append(current)
    return pieces


def derivation_align(derivation: Derivation) -> str:
    """The chain as a LaTeX ``align*`` environment (typesets in pdflatex, KaTeX, MathJax)."""
    _, marks = _notes(derivation)
    rows: list[str] = []
    for line, mine in zip(derivation.lines, marks, strict=True):
        rows.extend(_rows(line, _mark(mine)))
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def derivation_latex(derivation: Derivation) -> str:
    """The ``align*`` block, then the numbered rules with their identities and sources."""
    numbered, _ = _notes(derivation)
    out = [derivation_align(derivation)]
    if numbered:
        out.append(r"\begin{enumerate}\small")
        for use in numbered:
            math = use.identity_latex()
            identity = f": ${math}$" if math else ""
            out.append(rf"\item[{{[{numbered.index(use) + 1}]}}] "
                       rf"\texttt{{{tex_text(use.name)}}}{identity} ({source_latex(use.source)})")
        out.append(r"\end{enumerate}")
    return "\n".join(out)


def derivation_markdown(derivation: Derivation) -> str:
    """A display-math block (``$$\\begin{aligned}...``), then the rules as a numbered list."""
    numbered, _ = _notes(derivation)
    align = derivation_align(derivation)
    body = align.replace(r"\begin{align*}", r"\begin{aligned}").replace(
        r"\end{align*}", r"\end{aligned}")
    out = [f"**{derivation.title}**", "", "$$", body, "$$", ""]
    for i, use in enumerate(numbered, 1):
        math = use.identity_latex()
        identity = f": ${math}$" if math else ""
        out.append(f"{i}. `{use.name}`{identity} ({source_markdown(use.source)})")
    return "\n".join(out)
