"""One work budget per derivation, growing with its input: a runaway ends with a RewriteError
(an UnsupportedError) naming the sub-expression at work (BENCHMARKS.md, "Stress": the
runaways of benchmarks/stress.py end after 0.2 to 0.35 s of CPU for small inputs, 0.3 to
0.5 s for 4 to 10 kB, and 0.5 to 0.55 s for the 10 kB network Hessians, which first derive
the network's legitimate gradient; parsing and Python's garbage collector included).

The budget counts steps, not time, so a derivation ends at the same point on any machine and
under any load. Work that process-wide memo tables of pure functions (the symmetry test,
shared traversal caches) remember from an earlier derivation is not done, so not counted,
again: a derivation repeated in one process never needs more steps than the first time.
Loading the rule files on first use is no part of any derivation (``unbudgeted``), nor is
the type check of a rule's instance, which finds again the nodes just built and counted.

A spent budget ends the derivation at the next step counted anywhere (a node built or
found, a node of a traversal, a rule tried, a simplifier visit), not only where a step
names its sub-formula: a rule that builds a sum of 10 000 terms, or a traversal of it, stops
there instead of running on tens of thousands of steps past the limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import RewriteError

if TYPE_CHECKING:
    from .expr import Expr

BASE_STEPS = 72_500
"""Steps any derivation may take, whatever its input. A step is a simplifier visit (a long
product or sum costs more), a pattern rule tried, a pattern comparison, a node built or
found, a node of a traversal: 250 000 to 500 000 of them run in a second of CPU. It covers
the legitimate derivations whose work is quadratic in a small input, the closest ones:
``tr(H150)`` of 150 nested tanh (a Hadamard product of i factors per level) needs 74 800 of
its 79 500, ``||A0 A1 ... A127 x||^2`` 68 500 of 78 600, a 21-layer tanh Hessian 69 700 of
75 500 (tests/test_stress.py; steps in a fresh process)."""

STEPS_PER_NODE = 23
"""Steps added per unit of the input's size (``input_size``), so that the work allowed is
linear in the input. A network gradient needs about 48 steps per unit (74 600 for 256
layers, 125 200 for 430), so with the base the gradient of a network of up to 10 kB of text
(430 layers: 125 200 steps of its 131 900) still derives, and a runaway on 10 kB of input
(2 300 to 3 000 units) ends after 126 000 to 141 000 steps."""


@dataclass
class Budget:
    """Steps allowed to and used by the derivation running in this context (thread or task)."""

    limit: int = BASE_STEPS
    used: int = 0
    fixed: bool = False  # a limit chosen by the caller does not grow with the input
    size: int = 0  # the largest input granted so far
    focus: Expr | None = None  # the sub-formula being differentiated, to locate an error

    @property
    def left(self) -> int:
        return self.limit - self.used


_CURRENT: ContextVar[Budget | None] = ContextVar("matcalc_budget", default=None)

running_budget = _CURRENT.get
"""The budget of the derivation running in this context, or None: for the hottest callers
(building a node), which count their steps inline instead of calling ``tally``."""


@contextmanager
def derivation_budget(steps: int | None = None) -> Iterator[Budget]:
    """Run a derivation with its own budget (nested calls share the outer one): BASE_STEPS
    plus STEPS_PER_NODE per unit of input once ``grant`` has seen it, or ``steps`` exactly."""
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    from .expr import trim_memo_tables

    trim_memo_tables()  # what a large derivation before this one left behind
    budget = Budget(BASE_STEPS) if steps is None else Budget(steps, fixed=True)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def input_size(e: Expr) -> int:
    """Distinct nodes of ``e`` plus their distinct links to children: the size of the DAG as
    written, a repeated operand like a shared binding counted once (a product of 100
    different factors counts 101, ``A A ... A`` 2: its normal form is ``A^100``, whose
    derivation is the same work as that of the 5 characters ``A^100``)."""
    from .expr import postorder

    return sum(1 + len({id(child) for child in node.children}) for node in postorder(e))


def grant(e: Expr) -> None:
    """Extend the running budget to what an input of ``e``'s size is allowed."""
    budget = _CURRENT.get()
    if budget is None or budget.fixed:
        return
    size = input_size(e)
    if size > budget.size:
        budget.size = size
        budget.limit = max(budget.limit, BASE_STEPS + STEPS_PER_NODE * size)


def working_on(node: Expr) -> None:
    """Note the sub-formula being differentiated: a spent budget's error points at it."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.focus = node


def tally(steps: int = 1) -> None:
    """Count work that has no place to name (building a node): a spent budget ends the
    derivation here too, naming the sub-formula being differentiated."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.used += steps
        if budget.used > budget.limit:
            raise spent(budget)


class unbudgeted:  # noqa: N801 - used as a function: `with unbudgeted():`
    """Run work that is no part of the derivation running (loading the rule files on first
    use, describing a spent budget, finding again the nodes of a rule's instance to check
    its type) outside its budget: it counts nothing and ends nothing, so a derivation needs
    the same steps whatever the process did before. (A class, not a generator: it runs once
    per rule applied.)"""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _CURRENT.set(None)

    def __exit__(self, *_exc: object) -> None:
        _CURRENT.reset(self._token)


def _whose(budget: Budget) -> str:
    return "the budget given" if budget.fixed else "the budget of an input of its size"


def charge(at: Expr, steps: int = 1) -> None:
    """Spend ``steps`` on work at ``at``; raises when the budget of the derivation is spent."""
    budget = _CURRENT.get()
    if budget is None:
        return
    budget.used += steps
    if budget.used > budget.limit:
        raise spent(budget, at)


def spent(budget: Budget, at: Expr | None = None) -> RewriteError:
    """The error that ends a derivation whose budget is spent, naming ``at`` (else the
    sub-formula being differentiated) and the focus; written outside the budget:
    describing them is not the derivation's work."""
    from .simplify import excerpt

    with unbudgeted():
        focus = budget.focus
        at = focus if at is None else at
        working = "" if at is None else f"; it was working on `{excerpt(at)}`"
        where = "" if focus is None else f" while differentiating `{excerpt(focus)}`"
        return RewriteError(
            f"the derivation needs more than {budget.limit:,} steps ({_whose(budget)})"
            f"{working}{where}",
            hint="the result would be too large to be useful; differentiate a smaller "
            "formula, name repeated parts with where-bindings, or allow more work with "
            "`with matcalc.derivation_budget(steps=N):` (command line: --max-steps N)",
            about=focus,
        )
