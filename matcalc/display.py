"""Rich display in Jupyter: a derivation that renders as a numbered list with LaTeX math."""

from __future__ import annotations

from typing import Any

from .rewrite import step_lhs


def _markdown_text(text: str) -> str:
    for ch in "\\`*_[]<>|$":
        text = text.replace(ch, "\\" + ch)
    return text


class Explanation(str):
    """A derivation: its ``str()`` is the text of ``Derivative.explain()``; Jupyter shows it
    as a numbered list, one rule (name, source, LaTeX step) per item."""

    derivative: Any

    def __new__(cls, derivative: Any) -> Explanation:
        obj = super().__new__(cls, derivative.explain_text())
        obj.derivative = derivative
        return obj

    def latex(self) -> str:
        """The derivation as a LaTeX ``enumerate`` list (``explain(format="latex")``)."""
        return self.derivative.explain_text(format="latex")

    def markdown(self) -> str:
        """The derivation as a Markdown numbered list with ``$...$`` math."""
        d = self.derivative
        title = {"grad": "Gradient"}.get(d.mode, d.mode.replace("_", " ").capitalize())
        lines = [f"**{title}** of ${d.function.latex()}$ with respect to ${d.wrt.latex()}$", ""]
        for i, step in enumerate(d.steps, 1):
            where = f" *({_markdown_text(step.phase)})*" if step.phase else ""
            lines.append(
                f"{i}. `{step.rule}`{where}: ${step_lhs(step).latex()} = {step.after.latex()}$  \n"
                f"   source: {_markdown_text(step.source)}"
            )
        lines += ["", f"**Result:** ${d.latex()}$"]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def explanation(derivative: Any) -> Explanation:
    """The derivation of ``derivative`` as an object that Jupyter renders as a numbered list."""
    return Explanation(derivative)


__all__ = ["Explanation", "explanation"]
