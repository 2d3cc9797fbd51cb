"""The functions of the language: one ``Function`` record each, the single home of what
matcalc knows about a function (spellings, argument kind, shape rule, printing, NumPy /
SymPy / generated-code implementations, and the names of its rules).

Adding a function means adding one record to a family module (``elementwise``, ``matrix``,
``vector``, ``spectral``) and its rules in ``rules/differentials.rules`` (and
``rules/adjoint.rules`` when it is linear); ``tests/test_functions.py`` checks that every
record is complete and consistent. Every other module reads these records.
"""

from __future__ import annotations

from . import elementwise, matrix, spectral, vector
from .record import ACCEPTS, FAMILIES, CodeEmitter, Function, check_argument

RECORDS: tuple[Function, ...] = (
    *elementwise.RECORDS, *matrix.RECORDS, *vector.RECORDS, *spectral.RECORDS,
)

FUNCTIONS: dict[str, Function] = {f.name: f for f in RECORDS}
"""Every function matcalc knows, by canonical name."""

ALIASES: dict[str, str] = {s: f.name for f in RECORDS for s in f.spellings}
"""Other spellings of function names (the printers use the canonical name)."""

SPECIAL_CALLS = ("inv", "kron", "commutation", "sylvester")
"""Spellings that are operators in the AST: ``inv(A)`` is ``A^-1``, ``kron(a, b)`` is ``a ⊗ b``,
``commutation(m, n)`` is the commutation matrix K_{m,n} (its arguments are dimensions),
``sylvester(A, B, C)`` the solution W of ``A W + W B = C`` (``expr.Sylvester``)."""


def canonical_function(name: str) -> str | None:
    """The canonical function name for a spelling, or None if unknown."""
    name = ALIASES.get(name, name)
    return name if name in FUNCTIONS or name in SPECIAL_CALLS else None


def known_function_names() -> list[str]:
    """Sorted list of the accepted function spellings written in lowercase letters, for
    error messages."""
    spellings = {s for s in ALIASES if s.isascii() and s.islower()}
    return sorted(set(FUNCTIONS) | set(SPECIAL_CALLS) | spellings)


__all__ = ["ACCEPTS", "ALIASES", "FAMILIES", "FUNCTIONS", "RECORDS", "SPECIAL_CALLS",
           "CodeEmitter", "Function", "canonical_function", "check_argument",
           "known_function_names"]
