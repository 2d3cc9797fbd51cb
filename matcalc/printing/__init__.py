"""Printers: matcalc text, LaTeX, NumPy source."""

from .latex import to_latex
from .text import to_text

__all__ = ["to_latex", "to_text"]
