"""Entrywise verification of derivatives on small concrete sizes (``Derivative.check()``).

How a check works (``check_derivative``, in ``check.py``):

1. ``sizes.py``: every dimension name gets a distinct small size (2, 3, 4, ...;
   dimensions of inverted or determinant-taken matrices first, so SymPy stays fast).
2. ``points.py``: at several random exact points satisfying the declarations (symmetric
   matrices symmetric, probability vectors positive and summing to one, square matrices
   diagonally dominant) the derivative of ``f`` is computed by central differences of its
   SymPy value at 40 digits and compared with the claimed derivative entry by entry. The
   derivative treats entries as independent and is evaluated at structured points, as
   LANGUAGE.md section 6 says.
3. ``exact.py``: when the points agree and the problem is small enough, a symbolic
   proof with ``sympy.diff``: success makes the method ``"exact"``; otherwise it stays
   ``"numeric"``.
4. Functions without a SymPy form (eigenvalues, singular vectors) are compared with NumPy
   finite differences (method ``"numeric"``, detail ``"finite differences"``).

``structure.py`` projects derivatives on a declared structure (symmetric, diagonal:
LANGUAGE.md section 6). ``translate.py`` holds the SymPy side: variables as explicit
matrices and expressions evaluated on them by the shared evaluator. No phase uses a clock
or a signal: the cost is bounded by the sizes, and a check runs in any thread.
"""

from __future__ import annotations

from .check import check_derivative
from .report import CheckReport
from .sizes import concrete_sizes
from .structure import project_derivative
from .translate import (
    constraints,
    derivative_matrix,
    instantiate,
    rational_point,
    symbolic_matrix,
    to_sympy,
)

__all__ = ["CheckReport", "check_derivative", "concrete_sizes", "constraints",
           "derivative_matrix", "instantiate", "project_derivative", "rational_point",
           "symbolic_matrix", "to_sympy"]
