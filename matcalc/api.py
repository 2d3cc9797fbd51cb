"""The public pipeline: parse, differentiate, simplify; results that check and explain."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .budget import derivation_budget, grant
from .calculus import Differentiator
from .errors import MatcalcError, ShapeError, UnsupportedError
from .expr import Expr, Symbol, Transpose, kind_of
from .locate import located
from .parse import parse
from .printing.bindings import with_where
from .printing.source import source_latex
from .printing.tex import tex_name
from .rewrite import Step, Trace, step_lhs
from .simplify import as_the_formula_writes, simplify

if TYPE_CHECKING:  # pragma: no cover
    from .derivation import Derivation

@dataclass
class Derivative:
    """A derivative in closed form, with the function it came from and its derivation."""

    function: Expr
    wrt: Symbol
    expr: Expr
    mode: str = "grad"
    steps: list[Step] = field(default_factory=list, repr=False)
    gradient: Expr | None = field(default=None, repr=False)
    _derivation: Any = field(default=None, repr=False, compare=False)
    direction: Symbol | None = None
    """The direction v of an ``hvp`` or ``jvp``, the cotangent u of a ``vjp``."""

    def __str__(self) -> str:
        return self.text()

    def text(self, bindings: bool = True) -> str:
        """The result in matcalc notation; repeated sub-expressions named in a where clause."""
        if not bindings:
            return str(self.expr)
        return with_where(self.expr, str, " where ", ", ")

    def latex(self, bindings: bool = True) -> str:
        """The result as LaTeX math (with a where clause for repeated sub-expressions)."""
        if not bindings:
            return self.expr.latex()
        return with_where(self.expr, Expr.latex, r" \quad\text{where}\quad ", r",\; ")

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    @property
    def shape(self):
        """Shape of the result (the shape of ``wrt`` for a gradient)."""
        return self.expr.shape

    def check(self, **options: Any):
        """Verify the result entry by entry with SymPy on small concrete sizes."""
        from .verify import check_derivative

        if self.mode in ("hvp", "jvp"):
            return self._check_linear_map(**options)
        if self.mode == "vjp":  # the gradient of <u, f>, built from the original f
            paired = _paired(self.direction, self.function)
            return check_derivative(paired, self.wrt, self.expr, "grad", **options)
        mode = self.mode
        if mode.startswith("jacobian") and (self.function.shape[1] != 1 or self.wrt.shape[1] != 1):
            mode = "derivative"  # a matrix argument or value: d vec(y) / d vec(x)^T
        if self.mode == "jacobian_denominator":
            return check_derivative(self.function, self.wrt, simplify(Transpose(self.expr)),
                                    mode.replace("jacobian_denominator", "jacobian"), **options)
        return check_derivative(self.function, self.wrt, self.expr, mode, **options)

    def _check_linear_map(self, **options: Any):
        """An hvp or jvp is M v, linear in its direction v: the checker verifies that
        d vec(result) / d vec(v)^T is M and that M is the Hessian (hvp) or the derivative
        (jvp) of the original function, and the result vanishes at v = 0."""
        from .expr import Zero
        from .simplify import is_zero
        from .verify import CheckReport, check_derivative

        v = self.direction
        if not is_zero(simplify(_substitute(self.expr, v, Zero(v.shape)))):
            return CheckReport(False, "exact", detail=f"the result is not linear in {v}")
        linear = derivative(self.expr, v).expr
        of_result = check_derivative(self.expr, v, linear, "derivative", **options)
        if not of_result:
            return of_result
        mode = "hessian" if self.mode == "hvp" else "derivative"
        return check_derivative(self.function, self.wrt, linear, mode, **options)

    def to_sympy(self) -> Any:
        """The result as a SymPy matrix expression built on ``MatrixSymbol``."""
        from .interop import to_sympy_matrix_expr

        return to_sympy_matrix_expr(self.expr)

    def params(self) -> list[Symbol]:
        """The parameters of generated code: every variable, sorted by name."""
        extra = {self.direction} if self.direction is not None else set()
        return sorted(self.function.free_symbols() | self.expr.free_symbols() | {self.wrt}
                      | extra, key=lambda s: s.name)

    def to_numpy(self) -> Callable[..., Any]:
        """A plain Python function of keyword arrays computing the result with NumPy."""
        return self.to_function("numpy")

    def to_source(self, target: str = "numpy", name: str = "f", *, with_value: bool = False,
                  sizes: dict[str, int] | None = None, scipy: bool = True) -> str:
        """Source of ``def name(*, <params>)`` computing the result: numpy, jax or torch.

        ``with_value=True`` returns ``(f, result)`` from one function that computes their
        shared parts once (a value and its gradient). ``sizes`` (dimension -> typical size)
        guides the order of matrix products; ``scipy=False`` keeps NumPy code SciPy-free.
        """
        from .printing.codegen import to_source

        exprs = (self.function, self.expr) if with_value else self.expr
        doc = self.text()
        if with_value:
            doc = f"({self.function}, {doc})"
        return to_source(exprs, self.params(), target=target, name=name, sizes=sizes,
                         scipy=scipy, doc=doc)

    def to_function(self, target: str = "numpy", *, with_value: bool = False,
                    sizes: dict[str, int] | None = None, scipy: bool = True
                    ) -> Callable[..., Any]:
        """The compiled ``to_source`` (keyword arguments; its source in ``__matcalc_source__``)."""
        source = self.to_source(target, "f", with_value=with_value, sizes=sizes, scipy=scipy)
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<matcalc {target}>", "exec"), namespace)  # noqa: S102
        fn = namespace["f"]
        fn.__matcalc_source__ = source
        return fn

    def explain(self, format: str = "text", verbose: bool = False) -> str:
        """The derivation as a textbook prints it, in ``text``, ``markdown`` or ``latex``.

        One chain of differentials with each line's rules and sources, ending in the
        identification that gives the result. ``verbose=True`` gives instead every rule
        application of the engine, one per step. The returned ``str`` carries the
        structured ``.derivation`` and renders as typeset mathematics in Jupyter.
        """
        from .display import Explanation

        return Explanation(self, format, verbose)

    def derivation(self) -> Derivation:
        """The derivation as data: ``.lines``, each with its text, LaTeX, rules and sources."""
        from .derivation import derive

        if self._derivation is None:
            self._derivation = derive(self)
        return self._derivation

    def explain_text(self, format: str = "text") -> str:
        """The rule-by-rule trace as plain text or as a LaTeX ``enumerate`` list."""
        if format not in ("text", "latex"):
            raise MatcalcError(f"unknown format {format!r}", hint="text or latex")
        latex = format == "latex"
        show = (lambda e: e.latex()) if latex else str
        lines = []
        title = {"grad": "gradient"}.get(self.mode, self.mode)
        head = f"{title} of {show(self.function)} with respect to {show(self.wrt)}"
        if latex:
            lines.append(r"\begin{enumerate}")
        else:
            lines.append(head)
        for i, step in enumerate(self.steps, 1):
            if latex:
                lines.append(
                    rf"\item {tex_name(step.rule)} ({source_latex(step.source)}): "
                    rf"${show(step_lhs(step))} = {show(step.after)}$"
                )
            else:
                lines.append(
                    f"{i:>3}. [{step.phase}] {step.rule}: {step_lhs(step)}  =  {step.after}"
                )
                lines.append(f"       source: {step.source}")
        if latex:
            lines.append(rf"\item result: ${show(self.expr)}$")
            lines.append(r"\end{enumerate}")
        else:
            lines.append(f"result: {self.expr}")
        return "\n".join(lines)

    def rules_used(self) -> list[tuple[str, str]]:
        """Distinct (rule name, source) pairs, in order of first use."""
        seen: dict[str, str] = {}
        for s in self.steps:
            seen.setdefault(s.rule, s.source)
        return list(seen.items())


def _prepare(f: str | Expr, wrt: str | Symbol, decls: dict[str, str]) -> tuple[Expr, Symbol]:
    expr = parse(f, **decls) if isinstance(f, str) else f
    grant(expr)  # the derivation's budget grows with its input
    if isinstance(wrt, Symbol):
        return expr, wrt
    if not isinstance(wrt, str):
        raise MatcalcError(f"wrt must be a variable name, got {type(wrt).__name__}")
    for s in expr.free_symbols():
        if s.name == wrt:
            return expr, s
    variable = parse(wrt, **decls)
    if not isinstance(variable, Symbol):
        raise MatcalcError(f"wrt must be a single variable name, got {wrt!r}")
    if wrt not in decls:  # its sizes are its own, not the formula's (LANGUAGE.md section 6)
        variable = _own_dimensions(variable, expr)
    return expr, variable


def _own_dimensions(variable: Symbol, expr: Expr) -> Symbol:
    """A variable absent from ``expr`` with symbolic sizes that ``expr`` does not use."""
    from .dims import dim_names
    from .shapes import DIM_NAMES

    used = {name for n in expr.walk() for d in n.shape for name in dim_names(d)}
    fresh = iter([n for n in DIM_NAMES if n not in used] + [f"n{i}" for i in range(1, 99)])
    mapping: dict = {}
    dims = tuple(d if not isinstance(d, str) else mapping.setdefault(d, next(fresh))
                 for d in variable.dims)
    return Symbol(variable.name, dims, variable.props)


def _budgeted(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a derivation with one work budget (matcalc.budget), shared by nested calls."""

    options = {name for name, p in inspect.signature(fn).parameters.items() if p.kind in (
        p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}  # layout=...; the other keywords declare

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            with derivation_budget():
                return fn(*args, **kwargs)
        except UnsupportedError as err:  # point at the sub-formula it is about
            decls = {k: v for k, v in kwargs.items() if k not in options}
            raise located(err, args[0] if args else None, decls) from None

    return run


@_budgeted
def grad(f: str | Expr, wrt: str | Symbol, /, **decls: str) -> Derivative:
    """The gradient of a scalar function: same shape as ``wrt``, entry (i, j) = df/dwrt_ij."""
    expr, variable = _prepare(f, wrt, decls)
    if not expr.is_scalar:
        raise ShapeError(
            f"grad needs a scalar-valued function; `{expr}` is a {kind_of(expr.shape)}",
            hint="use jacobian for vector-valued functions",
        )
    trace = Trace()
    engine = Differentiator(trace)
    # the engine's simplifier already holds the result's canonical form: asking it again
    # is a memo hit (a fresh simplifier walked the whole result again, an eighth of the
    # steps of a deep network's gradient)
    result = simplify(engine.gradient(expr, variable), engine.simplifier)
    result = as_the_formula_writes(result, expr)
    return Derivative(expr, variable, result, "grad", trace.steps)


@_budgeted
def jacobian(
    y: str | Expr, wrt: str | Symbol, /, layout: str = "numerator", **decls: str
) -> Derivative:
    """The Jacobian of a vector or scalar function: m×n with J_ij = dy_i/dx_j.

    ``layout="denominator"`` gives the transpose (n×m). For a matrix argument or value the
    Jacobian is d vec(y) / d vec(x)^T with column-major vec.
    """
    from .jacobians import JacobianBuilder

    if layout not in ("numerator", "denominator"):
        raise MatcalcError(f"unknown layout {layout!r}", hint="numerator or denominator")
    expr, variable = _prepare(y, wrt, decls)
    trace = Trace()
    result = JacobianBuilder(trace).jacobian(expr, variable)
    mode = "jacobian"
    if layout == "denominator":
        result = simplify(Transpose(result))
        mode = "jacobian_denominator"
    return Derivative(expr, variable, result, mode, trace.steps)


@_budgeted
def hessian(f: str | Expr, wrt: str | Symbol, /, **decls: str) -> Derivative:
    """The Hessian of a scalar function: entry (i, j) = d2f / dx_i dx_j."""
    from .jacobians import JacobianBuilder

    g = grad(f, wrt, **decls)
    trace = Trace()
    result = JacobianBuilder(trace).hessian(g.function, g.wrt)
    return Derivative(g.function, g.wrt, result, "hessian", g.steps + trace.steps, g.expr)


def derivative(F: str | Expr, wrt: str | Symbol, /, **decls: str) -> Derivative:
    """d vec(F) / d vec(X)^T for vector- or matrix-valued F (column-major vec, Kronecker form)."""
    d = jacobian(F, wrt, **decls)
    d.mode = "derivative"
    return d


@_budgeted
def differential(f: str | Expr, wrt: str | Symbol, /, **decls: str) -> Expr:
    """The differential, linear in d(wrt): ``x^T (A + A^T) dx`` for a scalar function, and the
    forward differential (``d(X^-1) = -X^-1 dX X^-1``) for vector- and matrix-valued ones."""
    from .expr import Call, Differential, Mul
    from .jacobians import JacobianBuilder

    expr, variable = _prepare(f, wrt, decls)
    dx = Differential(variable)
    if not expr.is_scalar:
        return JacobianBuilder().forward(expr, variable)
    g = grad(expr, variable)
    if variable.is_scalar:
        return simplify(Mul((g.expr, dx)))
    if kind_of(variable.shape) == "vector":
        return simplify(Mul((Transpose(g.expr), dx)))
    return Call("tr", (Mul((simplify(Transpose(g.expr)), dx)),))


def _direction(name: str, like: Symbol, taken: set[Symbol]) -> Symbol:
    """A fresh variable of the shape of ``like`` (``v``, else ``v1``, ``v2``, ...)."""
    names = {s.name for s in taken}
    if name in names:
        k = 1
        while f"{name}{k}" in names:
            k += 1
        name = f"{name}{k}"
    return Symbol(name, like.dims)


def _substitute(expr: Expr, old: Expr, new: Expr) -> Expr:
    from .expr import map_bottom_up

    return map_bottom_up(expr, lambda node, rebuilt: new if node == old else rebuilt)


def hvp(f: str | Expr, wrt: str | Symbol, /, direction: str = "v", **decls: str) -> Derivative:
    """The Hessian-vector product H v as an expression in a direction ``v`` (same shape as
    ``wrt``): the directional derivative of the gradient, so the Hessian is never formed.
    For a matrix X it is the mn x mn Hessian applied to vec(V), as an m x n matrix."""
    from .expr import Differential

    g = grad(f, wrt, **decls)
    if g.wrt.kind == "matrix":
        direction = direction.upper()
    v = _direction(direction, g.wrt, g.function.free_symbols())
    d = differential(g.expr, g.wrt)
    result = simplify(_substitute(d, Differential(g.wrt), v))
    return Derivative(g.function, g.wrt, result, "hvp", g.steps, g.expr, direction=v)


def jvp(f: str | Expr, wrt: str | Symbol, /, direction: str = "v", **decls: str) -> Derivative:
    """The Jacobian-vector product J v (forward mode) as an expression in ``v``: the
    differential of f with d(wrt) replaced by v; the Jacobian is never formed."""
    from .expr import Differential

    expr, variable = _prepare(f, wrt, decls)
    if variable.kind == "matrix":
        direction = direction.upper()
    v = _direction(direction, variable, expr.free_symbols())
    result = simplify(_substitute(differential(expr, variable), Differential(variable), v))
    return Derivative(expr, variable, result, "jvp", direction=v)


def vjp(f: str | Expr, wrt: str | Symbol, /, cotangent: str = "u", **decls: str) -> Derivative:
    """The vector-Jacobian product (reverse mode) for a cotangent ``u`` shaped like f:
    the gradient of u^T f (tr(U^T F) for a matrix F), shaped like ``wrt``."""
    expr, variable = _prepare(f, wrt, decls)
    name = cotangent.upper() if expr.kind == "matrix" else cotangent
    u = _direction(name, Symbol("_", expr.shape), expr.free_symbols() | {variable})
    g = grad(_paired(u, expr), variable)
    return Derivative(expr, variable, g.expr, "vjp", g.steps, direction=u)


def _paired(u: Expr, f: Expr) -> Expr:
    """The scalar <u, f>: ``u f``, ``u^T f``, ``f u^T`` for a row, ``tr(U^T F)``."""
    from .expr import Call, Mul

    if f.kind == "matrix":
        return Call("tr", (Mul((Transpose(u), f)),))
    if f.is_scalar:
        return Mul((u, f))
    return Mul((Transpose(u), f)) if f.shape[1] == 1 else Mul((f, Transpose(u)))
