"""The matcalc error hierarchy: every failure a user can cause is one of these."""

from __future__ import annotations

from typing import Any


class MatcalcError(Exception):
    """Base class of every error matcalc raises on bad input or unsupported requests."""

    def __init__(
        self,
        message: str,
        *,
        text: str | None = None,
        pos: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.text = text
        self.pos = pos
        self.hint = hint
        super().__init__(self._render())

    @property
    def line(self) -> int | None:
        """1-based line of the error position, if known."""
        if self.text is None or self.pos is None:
            return None
        return self.text.count("\n", 0, self.pos) + 1

    @property
    def column(self) -> int | None:
        """1-based column of the error position, if known."""
        if self.text is None or self.pos is None:
            return None
        return self.pos - (self.text.rfind("\n", 0, self.pos) + 1) + 1

    def _render(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"{self.message} (line {self.line}, column {self.column})")
            parts.append(self._caret_display())
        else:
            parts.append(self.message)
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)

    def _caret_display(self) -> str:
        assert self.text is not None and self.pos is not None
        start = self.text.rfind("\n", 0, self.pos) + 1
        end = self.text.find("\n", self.pos)
        line = self.text[start : end if end != -1 else len(self.text)]
        offset = self.pos - start
        # Keep very long lines readable: show a window around the position.
        if len(line) > 100:
            lo = max(0, offset - 50)
            line = ("..." if lo else "") + line[lo : lo + 100] + "..."
            offset = offset - lo + (3 if lo else 0)
        return f"  {line}\n  {' ' * offset}^"


class ParseError(MatcalcError):
    """The text is not a formula of the matcalc language."""


class ShapeError(MatcalcError):
    """Sub-expressions have incompatible kinds or dimensions."""


class DeclarationError(MatcalcError):
    """A declaration (``where`` clause or keyword argument) is malformed or contradictory."""


class UnsupportedError(MatcalcError):
    """matcalc cannot (yet) derive or evaluate this expression; it never guesses."""

    def __init__(self, message: str, *, about: object = None, **where: Any) -> None:
        self.about = about
        """The sub-expression (``Expr``) matcalc could not handle, to locate it in the text."""
        super().__init__(message, **where)


class RewriteError(UnsupportedError):
    """A derivation ran out of its step budget (a runaway, or a rule set that loops)."""


class RuleError(MatcalcError):
    """A rule file is malformed."""


class DataError(MatcalcError):
    """Data bound to a formula's names is missing, not numeric, or not finite."""


class InfeasibleError(MatcalcError):
    """Constraints that no point satisfies."""
