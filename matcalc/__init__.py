"""matcalc: symbolic matrix calculus with textbook results, proved right."""

from .api import (
    Derivative,
    derivative,
    differential,
    grad,
    hessian,
    hvp,
    jacobian,
    jvp,
    vjp,
)
from .budget import derivation_budget
from .claims import ClaimReport, check_claim
from .errors import (
    DataError,
    DeclarationError,
    InfeasibleError,
    MatcalcError,
    ParseError,
    RewriteError,
    RuleError,
    ShapeError,
    UnsupportedError,
)
from .expr import Expr
from .optimize import MinimizeResult, minimize
from .parse import parse

__version__ = "0.1.0"

__all__ = [
    "ClaimReport",
    "DataError",
    "DeclarationError",
    "Derivative",
    "Expr",
    "InfeasibleError",
    "MatcalcError",
    "MinimizeResult",
    "ParseError",
    "RewriteError",
    "RuleError",
    "ShapeError",
    "UnsupportedError",
    "check_claim",
    "derivation_budget",
    "derivative",
    "differential",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "minimize",
    "parse",
    "vjp",
]
