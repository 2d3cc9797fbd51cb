"""The outcome of a derivative check, printable and truthy iff it passed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..dims import Dim


@dataclass
class CheckReport:
    """The outcome of a derivative check; truthy iff it passed (``ok``, the key of the
    check in the JSON of the command line and the web API)."""

    ok: bool
    method: str  # "exact" or "numeric"
    sizes: dict[Dim, int] = field(default_factory=dict)
    index: tuple[int, int] | None = None
    expected: Any = None
    got: Any = None
    detail: str = ""
    points: int = 0

    def __bool__(self) -> bool:
        return self.ok

    @property
    def passed(self) -> bool:
        """The verdict under its former name (an alias of ``ok``, kept for compatibility)."""
        return self.ok

    def __str__(self) -> str:
        shown = {d: n for d, n in self.sizes.items() if not str(d).endswith("'")}
        sizes = ", ".join(f"{d}={n}" for d, n in shown.items()) or "none"
        how = self.method + (f" at {self.points} points" if self.method == "numeric" else "")
        if self.detail and self.method == "numeric":
            how += f", {self.detail}"
        head = f"{'passed' if self.ok else 'FAILED'} ({how}; sizes {sizes})"
        if self.ok:
            return head
        lines = [head]
        if self.index is not None:
            lines.append(f"  entry {self.index}: expected {self.expected}, got {self.got}")
        if self.detail and (self.index is None or self.method != "numeric"):
            lines.append(f"  {self.detail}")
        return "\n".join(lines)
