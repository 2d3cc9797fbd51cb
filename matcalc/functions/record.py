"""The record of one function of the language: everything matcalc knows about it, in one place."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..expr import SCALAR, Shape, kind_of, mul_dims

ACCEPTS = ("any", "square", "vector", "vector or square", "matrix")
"""The argument kinds a function may require (checked by ``check_argument``)."""

FAMILIES = ("elementwise", "matrix", "vector", "spectral")


class CodeEmitter(Protocol):
    """What a multi-line code generator of a record may ask of the code generator."""

    def emit(self, code: str) -> str: ...  # assign ``code`` to a fresh temporary, return its name
    def fresh(self) -> str: ...  # a fresh temporary name
    def line(self, code: str) -> None: ...  # emit a raw line (tuple unpacking)
    def op(self, key: str, *args: object) -> str: ...  # a target primitive (targets.BASE)
    def call(self, name: str, *args: object) -> str: ...  # another function's one-line code


CodeGenerator = Callable[[CodeEmitter, str], str]


@dataclass(frozen=True)
class Function:
    """One function of the language (JAX-primitive style): spelling, typing, meaning, rules.

    The implementations receive their module first (``numpy`` or ``sympy``), so that
    defining the records imports neither; NumPy ones work on 2-D arrays (vectors are
    columns, scalars 1x1). An elementwise function's ``sympy`` is its scalar form, applied
    entry by entry; the others map an explicit ``sympy.Matrix`` to a ``sympy.Matrix``.
    """

    name: str
    """The canonical name: how the text printer, the rules and the AST (``Call``) spell it."""
    description: str
    family: str
    """``elementwise``, ``matrix``, ``vector`` or ``spectral`` (eigen- and singular values)."""
    accepts: str
    """The argument kind, one of ``ACCEPTS``."""
    shape: Callable[[Shape], Shape]
    """The result shape from the argument shape."""
    latex: str
    """The LaTeX operator, printed ``operator(arg)`` (``\\left( \\right)`` around tall
    arguments) unless ``latex_around``."""
    numpy: Callable[[Any, Any], Any]
    """``(numpy, 2-D array) -> 2-D array``."""
    sympy: Callable[[Any, Any], Any] | None
    """The SymPy implementation used by the checker; None: no closed form (checked by finite
    differences)."""
    code: str | CodeGenerator
    """Generated code (NumPy, JAX, torch): a ``str.format`` template over ``{xp}`` (the
    array module alias) and ``{0}`` (the argument), or a generator writing several lines."""
    differential: str | None
    """The name of its rule in ``rules/differentials.rules`` (None: not differentiable yet;
    differentiating it raises ``UnsupportedError``)."""
    adjoint: str | None = None
    """The name of its rule in ``rules/adjoint.rules``: a linear function (one whose
    differential applies the function to ``d(U)``) needs one to read off a gradient."""
    spellings: tuple[str, ...] = ()
    """Other accepted names (``sigmoid`` and ``σ`` for ``sigma``)."""
    arity: int = 1
    latex_around: tuple[str, str] | None = None
    """LaTeX written around the argument instead of the operator (``\\left|``, ``\\right|``)."""
    latex_bare: bool = False
    """Typeset without parentheses around a name, as textbooks do: ``\\det X``, ``\\log x``."""
    code_overrides: Mapping[str, str] = field(default_factory=dict)
    """Templates for targets that spell the function differently (``{"torch": ...}``)."""
    sympy_expr: Callable[[Any, Any], Any] | None = None
    """``(sympy, argument) -> value`` on SymPy matrix expressions (``MatrixSymbol``); the
    argument is a scalar when 1x1. Elementwise functions derive it from ``sympy``."""
    letter: str = "u"
    """The letter for a where-binding of its value (``h = tanh(W x)``)."""
    nonsmooth: str | None = None
    """Where it is not differentiable (``"|x| has a kink at 0"``); None: smooth wherever it
    is defined. The solver refuses non-smooth objectives with this reason."""
    small_sizes: bool = False
    """Its SymPy form grows fast with the size (determinants): the checker gives its argument
    the smallest sizes."""

    @property
    def elementwise(self) -> bool:
        return self.family == "elementwise"

    def sympy_matrix(self, sp: Any, m: Any) -> Any:
        """The value on an explicit SymPy matrix (a ``sympy.Matrix``, scalars 1x1)."""
        if self.sympy is None:
            raise ValueError(f"{self.name} has no SymPy form")
        if self.elementwise:
            return m.applyfunc(lambda z: self.sympy(sp, z))
        return self.sympy(sp, m)

    def code_template(self, target: str) -> str | CodeGenerator:
        """The code of this function for a code-generation target."""
        return self.code_overrides.get(target, self.code)


# ---------------------------------------------------------------------------- shape rules


def same_shape(s: Shape) -> Shape:
    """Elementwise functions and maps of a vector to a vector."""
    return s


def to_scalar(s: Shape) -> Shape:
    """Reductions: trace, determinant, sum, eigenvalues."""
    return SCALAR


def diag_shape(s: Shape) -> Shape:
    """diag of a vector is a square matrix; diag of a square matrix its diagonal."""
    rows, cols = s
    if cols == 1 and rows != 1:
        return (rows, rows)
    return (rows, 1)


def vec_shape(s: Shape) -> Shape:
    """The columns stacked: one column of rows * cols entries."""
    return (mul_dims(s[0], s[1]), 1)


def rows_vector(s: Shape) -> Shape:
    """A column vector as long as the argument has rows."""
    return (s[0], 1)


def cols_vector(s: Shape) -> Shape:
    """A column vector as long as the argument has columns."""
    return (s[1], 1)


def check_argument(fn: Function, shape: Shape) -> str | None:
    """Why ``shape`` is not a valid argument of ``fn`` (None when it is; squareness of a
    matrix is unified by shape inference)."""
    kind = kind_of(shape)
    if fn.accepts == "vector" and kind != "vector":
        return f"{fn.name} takes a column vector, got a {kind}"
    if fn.accepts == "vector or square" and kind in ("row vector", "scalar"):
        return f"{fn.name} takes a vector or a square matrix, got a {kind}"
    if fn.accepts == "matrix" and kind == "scalar":
        return f"{fn.name} takes a matrix, got a scalar"
    return None


def scalar_matrix(sp: Any, value: Any) -> Any:
    """A SymPy scalar as a 1x1 ``sympy.Matrix`` (reductions return these)."""
    return sp.Matrix([[value]])


def as_scalar(sp: Any, value: Any) -> Any:
    """A 1x1 matrix expression as the scalar it stands for (its trace, which stays readable)."""
    return sp.Trace(value) if isinstance(value, sp.MatrixExpr) else value
