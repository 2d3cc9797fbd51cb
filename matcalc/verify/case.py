"""What one check is about: the function, the variable, the claimed derivative, sizes."""

from __future__ import annotations

from dataclasses import dataclass

from ..dims import Dim
from ..expr import Expr, Symbol
from ..numeric import symbols_of


@dataclass(frozen=True)
class Case:
    """Check that ``result`` is the ``mode`` derivative of ``f`` w.r.t. ``wrt`` at ``sizes``."""

    f: Expr
    wrt: Symbol
    result: Expr
    mode: str
    sizes: dict[Dim, int]

    @property
    def symbols(self) -> list[Symbol]:
        """Every variable, ``wrt`` included even when ``f`` does not depend on it."""
        found = symbols_of([self.f, self.result])
        others = [] if any(s.name == self.wrt.name for s in found) else [self.wrt]
        return [*found, *others]
