"""NumPy code generation: ``to_numpy_source`` and ``compile_numpy`` over the shared generator.

The generator lives in ``codegen.py`` (one generator for every target, the spellings in
``targets.py``); this module keeps the NumPy entry points. ``to_numpy_source`` returns the
function alone (the caller provides ``np``); ``codegen.to_source(expr, target="numpy")``
adds the import line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..expr import Expr, Symbol
from .codegen import compile_source, python_name, to_source

__all__ = ["compile_numpy", "python_name", "to_numpy_source"]


def to_numpy_source(expr: Expr, params: Sequence[Symbol] | None = None, name: str = "f") -> str:
    """Python source of ``def name(*, <params>)`` computing ``expr`` with NumPy (as ``np``)."""
    return to_source(expr, params, "numpy", name, imports=False)


def compile_numpy(expr: Expr, params: Sequence[Symbol] | None = None, name: str = "f"
                  ) -> Callable[..., Any]:
    """A Python function computing ``expr``, built by exec'ing only the generated source."""
    return compile_source(expr, params, "numpy", name)
