"""The exact phase of a check: a symbolic proof that the difference is zero.

Everything is symbolic (probability vectors with their last entry replaced by one minus
the sum of the others, symmetric matrices with shared entries), the derivative is taken
entrywise with ``sympy.diff``, and each entry of the difference is normalised by
``expand`` and ``cancel``. The cost is bounded by the size of the problem, not by a
clock: a proof is attempted only when the variables have at most ``MAX_ENTRIES``
entries in all, the SymPy forms of ``f`` and of the result have at most
``MAX_OPERATIONS`` operations, and the derivative and the result are rational functions
of the entries (no exp, log, ..., whose normal forms SymPy finds slowly or not at all),
for which ``expand`` and ``cancel`` decide zero; otherwise the check stays numeric.
"""

from __future__ import annotations

import sympy

from ..evaluator import Evaluator
from ..expr import Expr
from ..numeric import shape_value
from .case import Case
from .report import CheckReport
from .structure import project_derivative
from .translate import (
    SympyAlgebra,
    constraints,
    derivative_matrix,
    instantiate,
    symbolic_matrix,
)

MAX_ENTRIES = 16
"""The most symbolic entries (all variables together) a proof is attempted with."""
MAX_OPERATIONS = 400
"""The most SymPy operations in the values of ``f`` and the result a proof is attempted with."""


def entries(case: Case) -> int:
    """The number of symbolic entries of all the variables at the case's sizes."""
    total = 0
    for sym in case.symbols:
        rows, cols = shape_value(sym.dims, case.sizes)
        total += rows * cols
    return total


def prove(case: Case) -> CheckReport | None:
    """A proof that the result is right (or an exact counterexample), or None when the
    problem is too large or not rational."""
    if entries(case) > MAX_ENTRIES:
        return None
    env = instantiate(case.symbols, case.sizes)
    wrt = symbolic_matrix(case.wrt, case.sizes, independent=True)
    env_free = {**env, case.wrt.name: wrt}
    try:
        value = _bounded_sympy(case.f, env_free, case)
        if _operations(value) > MAX_OPERATIONS:
            return None
        got = _bounded_sympy(case.result, env_free, case)
    except _TooLarge:
        return None
    if not _rational(got) or _operations(got) > MAX_OPERATIONS:
        return None
    deriv = project_derivative(derivative_matrix(value, wrt, case.mode), case.wrt, case.mode,
                               wrt.rows, exact=True)
    if not _rational(deriv):
        return None
    subs = constraints(case.symbols, case.sizes)
    for i in range(deriv.rows):
        for j in range(deriv.cols):
            if not _zero(sympy.sympify(deriv[i, j] - got[i, j]).xreplace(subs)):
                return CheckReport(False, "exact", case.sizes, (i, j),
                                   str(deriv[i, j].xreplace(subs)), str(got[i, j].xreplace(subs)))
    return CheckReport(True, "exact", case.sizes)


class _TooLarge(Exception):
    """A symbolic value outgrew the proof's bound while it was being built."""


class _BoundedAlgebra(SympyAlgebra):
    """The SymPy algebra, stopping as soon as an entry of a node's value has more than
    ``NODE_LIMIT`` nodes as a tree: entries of nested softmax or exp double or more per
    level, and SymPy's own work on them (assumptions, count_ops) walks the tree, so
    building such a value before measuring it took time exponential in the depth."""

    def __init__(self) -> None:
        self.sizes: dict[sympy.Basic, int] = {}

    def finish(self, value: sympy.Matrix) -> sympy.Matrix:
        if any(self.tree_size(v) > NODE_LIMIT for v in value):
            raise _TooLarge
        return value

    def tree_size(self, e: sympy.Basic) -> int:
        """Nodes of ``e`` as a tree, memoised over the shared sub-expressions (its DAG)."""
        stack = [e]
        while stack:
            node = stack[-1]
            pending = [a for a in node.args if a not in self.sizes]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self.sizes[node] = 1 + sum(self.sizes[a] for a in node.args)
        return self.sizes[e]


NODE_LIMIT = 8 * MAX_OPERATIONS
"""Tree nodes of one entry of any intermediate value beyond which no proof is attempted
(generous: a value with at most MAX_OPERATIONS operations has about twice as many nodes)."""


def _bounded_sympy(e: Expr, env: dict, case: Case) -> sympy.Matrix:
    return Evaluator(_BoundedAlgebra(), env, case.sizes).run(e)


def _operations(m: sympy.Matrix) -> int:
    return sum(sympy.count_ops(v) for v in m)


def _rational(m: sympy.Matrix) -> bool:
    """Whether every entry is a rational function of the symbols (no exp, log, roots)."""
    return not any(v.atoms(sympy.Function) or any(not p.exp.is_Integer
                                                  for p in v.atoms(sympy.Pow)) for v in m)


def _zero(d: sympy.Expr) -> bool:
    """Whether a rational function of the symbols is zero (its normal form is 0)."""
    return sympy.cancel(sympy.expand(d)) == 0
