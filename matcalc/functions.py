"""The table of known functions: arity, argument kinds, result shape and spellings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .expr import SCALAR, Shape, kind_of, mul_dims


@dataclass(frozen=True)
class Function:
    """What matcalc knows about one function name."""

    name: str
    family: str  # "elementwise", "matrix", "vector", "spectral"
    arity: int
    accepts: str  # "any", "square", "vector", "vector or square", "matrix"
    shape: Callable[..., Shape]
    latex: str
    description: str


def _same(s: Shape) -> Shape:
    return s


def _scalar(*_: Shape) -> Shape:
    return SCALAR


def _diag(s: Shape) -> Shape:
    rows, cols = s
    if cols == 1 and rows != 1:
        return (rows, rows)
    return (rows, 1)


def _vec(s: Shape) -> Shape:
    return (mul_dims(s[0], s[1]), 1)


def _rows(s: Shape) -> Shape:
    return (s[0], 1)


def _cols(s: Shape) -> Shape:
    return (s[1], 1)


def _elementwise(name: str, latex: str, description: str) -> Function:
    return Function(name, "elementwise", 1, "any", _same, latex, description)


_TABLE = [
    _elementwise("exp", r"\exp", "exponential"),
    _elementwise("log", r"\log", "natural logarithm"),
    _elementwise("sqrt", r"\sqrt", "square root"),
    _elementwise("sin", r"\sin", "sine"),
    _elementwise("cos", r"\cos", "cosine"),
    _elementwise("tanh", r"\tanh", "hyperbolic tangent"),
    _elementwise("sigma", r"\sigma", "logistic sigmoid 1 / (1 + exp(-z))"),
    _elementwise("relu", r"\operatorname{relu}", "rectifier max(z, 0)"),
    _elementwise("softplus", r"\operatorname{softplus}", "log(1 + exp(z))"),
    _elementwise("abs", r"\operatorname{abs}", "absolute value"),
    _elementwise("sign", r"\operatorname{sign}", "sign (-1, 0 or 1)"),
    _elementwise("step", r"\operatorname{step}", "Heaviside step: 1 where positive, else 0"),
    Function("tr", "matrix", 1, "square", _scalar, r"\operatorname{tr}", "trace"),
    Function("det", "matrix", 1, "square", _scalar, r"\det", "determinant"),
    Function("logdet", "matrix", 1, "square", _scalar, r"\log\det", "log of the determinant"),
    Function("diag", "matrix", 1, "vector or square", _diag, r"\operatorname{diag}",
             "vector to diagonal matrix, or matrix to its diagonal"),
    Function("sum", "matrix", 1, "any", _scalar, r"\operatorname{sum}", "sum of all entries"),
    Function("vec", "matrix", 1, "any", _vec, r"\operatorname{vec}",
             "columns stacked into one vector (column-major)"),
    Function("softmax", "vector", 1, "vector", _same, r"\operatorname{softmax}",
             "exp(x) / (1^T exp(x))"),
    Function("logsumexp", "vector", 1, "vector", _scalar, r"\operatorname{logsumexp}",
             "log(1^T exp(x))"),
    Function("lambda_max", "spectral", 1, "square", _scalar, r"\lambda_{\max}",
             "largest eigenvalue of a symmetric matrix"),
    Function("lambda_min", "spectral", 1, "square", _scalar, r"\lambda_{\min}",
             "smallest eigenvalue of a symmetric matrix"),
    Function("eigvec_max", "spectral", 1, "square", _rows, r"v_{\max}",
             "unit eigenvector of the largest eigenvalue"),
    Function("eigvec_min", "spectral", 1, "square", _rows, r"v_{\min}",
             "unit eigenvector of the smallest eigenvalue"),
    Function("svec_left", "spectral", 1, "matrix", _rows, r"u_{1}",
             "left singular vector of the largest singular value"),
    Function("svec_right", "spectral", 1, "matrix", _cols, r"v_{1}",
             "right singular vector of the largest singular value"),
]

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}
"""Every function matcalc knows, by canonical name."""

ALIASES: dict[str, str] = {
    "sigmoid": "sigma",
    "σ": "sigma",
    "lse": "logsumexp",
    "ln": "log",
    "trace": "tr",
    "Tr": "tr",
}
"""Other spellings of function names (the printers use the canonical name)."""

SPECIAL_CALLS = ("inv", "kron", "commutation")
"""Spellings that are operators in the AST: ``inv(A)`` is ``A^-1``, ``kron(a, b)`` is ``a ⊗ b``,
``commutation(m, n)`` is the commutation matrix K_{m,n} (its arguments are dimensions)."""


def canonical_function(name: str) -> str | None:
    """The canonical function name for a spelling, or None if unknown."""
    name = ALIASES.get(name, name)
    return name if name in FUNCTIONS or name in SPECIAL_CALLS else None


def check_argument(fn: Function, shape: Shape) -> str | None:
    """Why ``shape`` is not a valid argument of ``fn`` (None when it is)."""
    kind = kind_of(shape)
    if fn.accepts == "vector" and kind != "vector":
        return f"{fn.name} takes a column vector, got a {kind}"
    if fn.accepts == "vector or square" and kind in ("row vector", "scalar"):
        return f"{fn.name} takes a vector or a square matrix, got a {kind}"
    if fn.accepts == "matrix" and kind == "scalar":
        return f"{fn.name} takes a matrix, got a scalar"
    return None


def known_function_names() -> list[str]:
    """Sorted list of every accepted function spelling, for error messages."""
    return sorted(set(FUNCTIONS) | set(SPECIAL_CALLS) | {"lse", "sigmoid"})
