"""Constraints written in the matcalc language: ``w >= 0``, ``0 <= w <= 1``, ``1^T w = 1``.

A constraint is split at its comparison operators (outside brackets and before any
``where`` clause); each comparison ``lhs OP rhs`` becomes one function ``g`` with
``g >= 0`` (``rhs - lhs`` for ``<=``, ``lhs - rhs`` for ``>=``) or ``g = 0``, read by
``matcalc.parse`` as the single formula ``(lhs) - (rhs)`` so that the two sides share
their dimensions. Errors of the parser are reported at the position in the constraint
as the user wrote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MatcalcError, ParseError
from ..expr import Expr, Symbol
from ..parse import parse

# longest spellings first, so that `<=` is not read as `<`
_OPERATORS = (
    (r"\leq", "<="), (r"\geq", ">="), (r"\le", "<="), (r"\ge", ">="),
    ("<=", "<="), (">=", ">="), ("==", "="), ("≤", "<="), ("≥", ">="),
    ("<", "<"), (">", ">"), ("=", "="),
)
_WHERE = re.compile(r"(?<![A-Za-z0-9_\\])where(?![A-Za-z0-9_])")
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class Comparison:
    """One comparison of a constraint: ``expr >= 0`` (kind ``ineq``) or ``expr = 0`` (``eq``).

    ``lower`` and ``upper`` are the two sides read alone, ordered so that the constraint
    says ``lower <= upper`` (or ``lower = upper``); they tell a bound from a general
    constraint.
    """

    kind: str
    expr: Expr
    lower: Expr
    upper: Expr
    text: str

    def bound_of(self, variables: set[str]) -> tuple[Symbol, Expr, str] | None:
        """``(variable, constant, "lower"|"upper")`` when this is a bound on one variable."""
        if self.kind != "ineq":
            return None
        for side, other, which in ((self.upper, self.lower, "lower"),
                                   (self.lower, self.upper, "upper")):
            constant = not any(s.name in variables for s in other.free_symbols())
            if isinstance(side, Symbol) and side.name in variables and constant:
                return side, other, which
        return None


def _split_where(text: str) -> tuple[str, str]:
    m = _WHERE.search(text)
    return (text, "") if m is None else (text[: m.start()], text[m.start():])


def _operators(body: str) -> list[tuple[int, int, str]]:
    """(start, end, normalized operator) of each comparison outside brackets."""
    found = []
    depth, i = 0, 0
    while i < len(body):
        ch = body[i]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0:
            for spelling, op in _OPERATORS:
                if body.startswith(spelling, i):
                    if spelling.startswith("\\") and body[i + len(spelling):i + len(spelling) + 1
                                                          ].isalpha():
                        continue  # \lest is not \le
                    found.append((i, i + len(spelling), op))
                    i += len(spelling) - 1
                    break
        i += 1
    return found


def parse_constraint(text: str, decls: dict[str, str] | None = None) -> list[Comparison]:
    """The comparisons of one constraint such as ``0 <= w <= 1`` or ``A w <= b``."""
    if not isinstance(text, str):
        raise ParseError(f"a constraint must be a string, got {type(text).__name__}")
    decls = decls or {}
    body, where = _split_where(text)
    ops = _operators(body)
    if not ops:
        raise ParseError(
            "a constraint needs a comparison: <=, >= or =", text=text, pos=len(body.rstrip()),
            hint="for example: w >= 0, 0 <= w <= 1, 1^T w = 1, A w <= b")
    for start, _, op in ops:
        if op in ("<", ">"):
            raise ParseError(f"strict inequality {op!r} is not supported", text=text, pos=start,
                             hint=f"write {op}= : the solution of a minimization lies on the "
                                  "boundary of an open set, which a strict inequality excludes")
    kinds = {op for _, _, op in ops}
    if len(ops) > 1 and (kinds == {"<=", ">="} or "=" in kinds):
        raise ParseError("a chain of comparisons must go one way: a <= b <= c or a >= b >= c",
                         text=text, pos=ops[1][0])
    cuts = [0] + [p for start, end, _ in ops for p in (start, end)] + [len(body)]
    sides = [(cuts[2 * k], cuts[2 * k + 1]) for k in range(len(ops) + 1)]
    for a, b in sides:
        if not body[a:b].strip():
            raise ParseError("a side of the comparison is empty", text=text, pos=a)
    out = []
    for k, (_, _, op) in enumerate(ops):
        left, right = sides[k], sides[k + 1]
        if op == "<=":
            low, high = left, right
        else:
            low, high = right, left
        kind = "eq" if op == "=" else "ineq"
        lower = _read_side(text, where, low, decls)
        upper = _read_side(text, where, high, decls)
        expr = _read(text, where, high, low, ops[k][0], decls)
        part = text if len(ops) == 1 else body[left[0]:right[1]].strip()
        out.append(Comparison(kind, expr, lower, upper, part))
    return out


def _read(text: str, where: str, plus: tuple[int, int], minus: tuple[int, int], op_pos: int,
          decls: dict[str, str]) -> Expr:
    """``(plus) - (minus)`` parsed as one formula; errors located in ``text``."""
    a, b = plus
    c, d = minus
    first, second = text[a:b], text[c:d]
    combined = f"({first}) - ({second})"
    offsets = [(1, 1 + len(first), a), (len(first) + 6, len(first) + 6 + len(second), c)]
    return _parse_located(combined + (" " + where if where else ""), text, offsets, op_pos,
                          len(combined) + 1, len(text) - len(where), decls)


def _read_side(text: str, where: str, side: tuple[int, int], decls: dict[str, str]) -> Expr:
    a, b = side
    piece = text[a:b]
    return _parse_located(piece + (" " + where if where else ""), text, [(0, len(piece), a)],
                          a, len(piece) + 1, len(text) - len(where), decls)


def _parse_located(source: str, text: str, offsets: list[tuple[int, int, int]], fallback: int,
                   where_at: int, where_in_text: int, decls: dict[str, str]) -> Expr:
    try:
        return parse(source, **decls)
    except MatcalcError as err:
        pos = fallback
        if err.pos is not None:
            if err.pos >= where_at:
                pos = where_in_text + (err.pos - where_at)
            for lo, hi, origin in offsets:
                if lo <= err.pos <= hi:
                    pos = origin + (err.pos - lo)
        raise type(err)(err.message, text=text, pos=min(pos, len(text)), hint=err.hint) from None
