"""Rich display in Jupyter: a derivation that renders as typeset mathematics."""

from __future__ import annotations

from typing import Any

from .errors import MatcalcError
from .printing.source import source_markdown
from .rewrite import step_lhs

FORMATS = ("text", "markdown", "latex")


def _markdown_text(text: str) -> str:
    for ch in "\\`*_[]<>|$":
        text = text.replace(ch, "\\" + ch)
    return text


class Explanation(str):
    """A derivation as text in one format (``str()``), which Jupyter shows typeset.

    ``derivation`` is the structured chain (``.lines``), or None for the verbose
    rule-by-rule trace; ``derivative`` is the result it explains.
    """

    derivative: Any
    derivation: Any
    verbose: bool

    def __new__(cls, derivative: Any, format: str = "text", verbose: bool = False
                ) -> Explanation:
        if format not in FORMATS:
            raise MatcalcError(f"unknown format {format!r}", hint="text, markdown or latex")
        derivation = None if verbose else derivative.derivation()
        if verbose:
            text = (verbose_markdown(derivative) if format == "markdown"
                    else derivative.explain_text(format))
        else:
            text = {"text": derivation.text, "markdown": derivation.markdown,
                    "latex": derivation.latex}[format]()
        obj = super().__new__(cls, text)
        obj.derivative, obj.derivation, obj.verbose = derivative, derivation, verbose
        return obj

    @property
    def lines(self) -> tuple:
        """The lines of the derivation (empty for the verbose trace)."""
        return self.derivation.lines if self.derivation is not None else ()

    def latex(self) -> str:
        """The derivation as LaTeX (an ``align*`` block and the numbered rules)."""
        if self.derivation is None:
            return self.derivative.explain_text(format="latex")
        return self.derivation.latex()

    def markdown(self) -> str:
        """The derivation as Markdown with display maths."""
        if self.derivation is None:
            return verbose_markdown(self.derivative)
        return self.derivation.markdown()

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def verbose_markdown(d: Any) -> str:
    """The rule-by-rule trace as a Markdown numbered list with ``$...$`` math."""
    title = {"grad": "Gradient"}.get(d.mode, d.mode.replace("_", " ").capitalize())
    lines = [f"**{title}** of ${d.function.latex()}$ with respect to ${d.wrt.latex()}$", ""]
    for i, step in enumerate(d.steps, 1):
        where = f" *({_markdown_text(step.phase)})*" if step.phase else ""
        lines.append(
            f"{i}. `{step.rule}`{where}: ${step_lhs(step).latex()} = {step.after.latex()}$  \n"
            f"   source: {source_markdown(step.source)}"
        )
    lines += ["", f"**Result:** ${d.latex()}$"]
    return "\n".join(lines)


def explanation(derivative: Any, format: str = "text", verbose: bool = False) -> Explanation:
    """The derivation of ``derivative`` as an object that Jupyter renders as mathematics."""
    return Explanation(derivative, format, verbose)


__all__ = ["Explanation", "explanation"]
