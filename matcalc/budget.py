"""One work budget per derivation: a runaway ends with an UnsupportedError naming where."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from .errors import RewriteError
from .expr import Expr

MAX_STEPS = 150_000
"""Simplifier and rewrite steps one derivation may take: a few seconds of work on an idle
core. The largest derivations of the stress suite (tr(X^1000), the Hessian of an 8-layer
network) take 13 000 to 30 000."""


@dataclass
class Budget:
    """Steps left to the derivation running in this context (thread or task)."""

    left: int = MAX_STEPS
    used: int = 0


_CURRENT: ContextVar[Budget | None] = ContextVar("matcalc_budget", default=None)


@contextmanager
def derivation_budget(steps: int = MAX_STEPS) -> Iterator[Budget]:
    """Run a derivation with its own budget (nested calls share the outer one)."""
    if _CURRENT.get() is not None:
        yield _CURRENT.get()  # type: ignore[misc]
        return
    budget = Budget(steps)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def charge(at: Expr, steps: int = 1) -> None:
    """Spend ``steps`` on work at ``at``; raises when the budget of the derivation is spent."""
    budget = _CURRENT.get()
    if budget is None:
        return
    budget.left -= steps
    budget.used += steps
    if budget.left < 0:
        from .simplify import excerpt

        raise RewriteError(
            f"the derivation needs more than {budget.used - steps} steps; it was working on "
            f"`{excerpt(at)}`",
            hint="the result would be too large to be useful; differentiate a smaller "
            "formula, or name repeated parts with where-bindings",
        )
