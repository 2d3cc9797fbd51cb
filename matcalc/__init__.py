"""matcalc: symbolic matrix calculus with textbook results, proved right."""

from .api import Derivative, derivative, differential, grad, hessian, jacobian
from .errors import (
    DeclarationError,
    MatcalcError,
    ParseError,
    RewriteError,
    RuleError,
    ShapeError,
    UnsupportedError,
)
from .expr import Expr
from .parse import parse

__version__ = "0.1.0"

__all__ = [
    "DeclarationError",
    "Derivative",
    "Expr",
    "MatcalcError",
    "ParseError",
    "RewriteError",
    "RuleError",
    "ShapeError",
    "UnsupportedError",
    "derivative",
    "differential",
    "grad",
    "hessian",
    "jacobian",
    "parse",
]
