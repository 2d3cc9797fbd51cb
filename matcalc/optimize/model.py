"""The symbolic side of a minimization: the objective made smooth, its derivatives, constraints.

``build_model`` reads the objective and the constraints, rewrites ``c ||w||_1`` terms
exactly (``w = w_plus - w_minus`` with ``w_plus, w_minus >= 0``, so that
``||w||_1 = 1^T (w_plus + w_minus)`` at every solution when ``c >= 0``; likewise the
weighted ``c sum(abs(D ⊙ W))`` with ``D >= 0`` entrywise, as in the graphical lasso,
which leaves the diagonal unpenalized), rewrites a term ``c ||E||_1`` (also
``c sum(abs(E))``), ``c 1^T relu(E)`` or ``c max(E)`` of any smooth formula ``E`` of the
variables through a new variable ``t`` bounding it (``t >= E``, ``t >= -E``; ``t >= E``,
``t >= 0``; ``t 1 >= E``), exact at every solution when ``c >= 0`` (an epigraph: least
absolute deviations, hinge losses, minimax), refuses every other non-differentiable
term, and derives with matcalc: the gradient of the objective for each variable, the
Hessian's blocks (dense Newton) or Hessian-vector products (the forward differential of
the gradient in a direction) for the Newton-type methods, and the Jacobian of each
general constraint, and collects the symmetric arguments of ``logdet`` that the solver
keeps positive definite (``positive_definite_arguments``). Nothing here depends on the data; the
numeric side is ``problem.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from ..api import differential, grad, jacobian
from ..budget import derivation_budget
from ..calculus import replace_symbol
from ..errors import MatcalcError, UnsupportedError
from ..expr import (
    ONE,
    SCALAR,
    ZERO,
    Add,
    Call,
    Differential,
    Div,
    Expr,
    Hadamard,
    Mul,
    Neg,
    Norm,
    Ones,
    Symbol,
    Transpose,
    Zero,
)
from ..functions import FUNCTIONS
from ..names import normalize
from ..parse import parse
from ..simplify import known_symmetric, simplify
from .constraints import Comparison, parse_constraint
from .cost import flops

HESSIAN_STEPS = 20_000
"""Steps (matcalc.budget) for the dense Hessian's blocks (the logistic regression's take
about 2,500; a whole derivation may take matcalc.budget's BASE_STEPS plus STEPS_PER_NODE
per unit of its input's size)."""


@dataclass(frozen=True)
class L1Term:
    """``coefficient * ||weight ⊙ variable||_1`` in the objective, rewritten through a split
    (``weight`` is ``None`` when there is none; it must be entrywise nonnegative)."""

    coefficient: Expr
    weight: Expr | None
    variable: Symbol
    plus: Symbol
    minus: Symbol
    text: str


@dataclass(frozen=True)
class EpigraphTerm:
    """``coefficient * g(inner)`` for ``g`` one of ``||.||_1`` (also ``sum(abs(.))``),
    ``1^T relu(.)`` and ``max(.)`` of a formula of the variables: minimized exactly through
    a new variable ``bound`` (``t``) with ``t >= inner`` and ``t >= -inner`` (kind
    ``absolute``), ``t >= inner`` and ``t >= 0`` (``positive part``), or ``t 1 >= inner``
    (``largest``, a scalar ``t``); the term becomes ``coefficient 1^T t``
    (``coefficient t``)."""

    coefficient: Expr
    kind: str
    inner: Expr
    bound: Symbol
    text: str


@dataclass(frozen=True)
class GeneralConstraint:
    """``expr >= 0`` (``ineq``) or ``expr = 0`` (``eq``) with its Jacobian per variable."""

    kind: str
    expr: Expr
    jacobians: dict[str, Expr]
    linear: bool
    text: str


@dataclass(frozen=True)
class Bound:
    """``variable >= constant`` (``lower``) or ``variable <= constant`` (``upper``)."""

    variable: Symbol
    constant: Expr
    which: str
    text: str


@dataclass
class Model:
    """An objective ready to minimize: smooth, with derivatives and classified constraints."""

    objective: Expr
    smooth: Expr
    variables: list[Symbol]
    user_variables: list[Symbol]
    gradients: dict[str, Expr]
    l1_terms: list[L1Term] = field(default_factory=list)
    epigraph_terms: list[EpigraphTerm] = field(default_factory=list)
    bounds: list[Bound] = field(default_factory=list)
    general: list[GeneralConstraint] = field(default_factory=list)
    decls: dict[str, str] = field(default_factory=dict)
    positive_definite: list[Expr] = field(default_factory=list)
    """The symmetric arguments of ``logdet`` (objective and constraints, in the
    variables minimized over) that minimize keeps positive definite: see
    ``positive_definite_arguments``."""
    _hvp: tuple[dict[str, Symbol], dict[str, Expr]] | None = None
    _hessian: dict[tuple[str, str], Expr] | MatcalcError | None = None
    _simplified: Expr | None = None
    _costs: dict[tuple, tuple[float, float]] = field(default_factory=dict)
    _formulas: tuple[tuple[bool, bool], dict[str, str]] | None = None

    def hessian_vector_products(self) -> tuple[dict[str, Symbol], dict[str, Expr]]:
        """Directions ``P_b`` (one per variable, shaped like it) and, per variable ``a``, the
        Hessian applied to them: ``sum_b d(grad_a)[P_b]``, the forward differential of the
        gradient with ``d b`` replaced by ``P_b``. The Hessian itself is never formed."""
        if self._hvp is None:
            taken = {s.name for s in self.smooth.free_symbols()}
            directions = {v.name: Symbol(_fresh(f"P_{v.name}", taken), v.dims)
                          for v in self.variables}
            products = {}
            for a in self.variables:
                g = self.gradients[a.name]
                terms = []
                for b in self.variables:
                    here = next((s for s in g.free_symbols() if s.name == b.name), None)
                    if here is None:
                        continue
                    d = differential(g, here)
                    terms.append(replace_symbol(d, Differential(here), directions[b.name]))
                products[a.name] = simplify(Add(tuple(terms)) if len(terms) > 1
                                            else terms[0]) if terms else Zero(a.dims)
            self._hvp = (directions, products)
        return self._hvp

    @property
    def smooth_simplified(self) -> Expr:
        """The smooth objective in the simplifier's normal form, as the code is generated
        from it: the gradients are in that form too, so that their common sub-expressions
        (``X w + beta`` in the value and in the gradient) are computed once."""
        if self._simplified is None:
            self._simplified = simplify(self.smooth)
        return self._simplified

    @property
    def rewritten(self) -> bool:
        """Whether the smooth objective differs from the objective as written."""
        return bool(self.l1_terms or self.epigraph_terms)

    def hessian_blocks(self) -> dict[tuple[str, str], Expr]:
        """The exact Hessian by blocks, for the dense Newton method: ``(a, b)`` maps to the
        Jacobian of the gradient for ``a`` with respect to ``b`` (size of ``a`` × size of
        ``b``, column-major vec for matrices), for ``a`` up to ``b`` in the order of the
        variables (the blocks below are their transposes; a block missing from the
        dictionary is zero). A MatcalcError when matcalc cannot derive one within
        ``HESSIAN_STEPS`` rewrite steps (a fraction of a derivation's usual budget: ``auto``
        derives it on every unconstrained problem to weigh Newton against L-BFGS-B, and
        should not spend seconds on a Hessian it will not use); the failure is
        remembered."""
        if isinstance(self._hessian, MatcalcError):
            raise self._hessian
        if self._hessian is None:
            try:
                with derivation_budget(HESSIAN_STEPS):
                    self._hessian = self._derive_hessian_blocks()
            except MatcalcError as err:  # remembered: auto asks on every call
                self._hessian = err
                raise
        return self._hessian

    def _derive_hessian_blocks(self) -> dict[tuple[str, str], Expr]:
        blocks = {}
        for i, a in enumerate(self.variables):
            g = self.gradients[a.name]
            for b in self.variables[i:]:
                here = next((s for s in g.free_symbols() if s.name == b.name), None)
                if here is not None:  # else the block is zero
                    blocks[(a.name, b.name)] = jacobian(g, here).expr
        return blocks

    def evaluation_costs(self, sizes: dict) -> tuple[float, float]:
        """Estimated operations of one value-and-gradient evaluation and of one dense
        Hessian at the dimension ``sizes`` (cached per sizes: a method is chosen on every
        call)."""
        key = tuple(sorted(sizes.items(), key=str))
        if key not in self._costs:
            gradient = flops((self.smooth, *self.gradients.values()), sizes)
            self._costs[key] = (gradient, flops(tuple(self.hessian_blocks().values()), sizes))
        return self._costs[key]

    def hvp_cost(self, sizes: dict) -> float:
        """Estimated operations of one Hessian-vector product at the dimension ``sizes``."""
        key = ("hvp", *sorted(sizes.items(), key=str))
        if key not in self._costs:
            products = tuple(self.hessian_vector_products()[1].values())
            self._costs[key] = (flops(products, sizes), 0.0)
        return self._costs[key][0]

    def formulas(self) -> dict[str, str]:
        """The derived formulas, as text: what the solver evaluates (printed once)."""
        key = (self._hvp is not None, isinstance(self._hessian, dict))
        if self._formulas is None or self._formulas[0] != key:
            self._formulas = (key, self._print_formulas())
        return dict(self._formulas[1])

    def _print_formulas(self) -> dict[str, str]:
        out = {"objective": str(self.objective)}
        if self.smooth != self.objective:
            out["smooth objective"] = str(self.smooth)
        for name, g in self.gradients.items():
            out[f"gradient wrt {name}"] = str(g)
        for term in self.epigraph_terms:
            out[f"epigraph of {term.text}"] = _EPIGRAPH_TEXT[term.kind].format(
                t=term.bound.name, e=term.inner)
        for term in self.l1_terms:
            out[f"split of {term.variable.name}"] = (
                f"{term.variable.name} = {term.plus.name} - {term.minus.name}, "
                f"{term.plus.name} >= 0, {term.minus.name} >= 0")
        for c in self.general:
            rel = ">= 0" if c.kind == "ineq" else "= 0"
            out[f"constraint {c.text}"] = f"{c.expr} {rel}"
            for name, j in c.jacobians.items():
                out[f"jacobian of {c.text} wrt {name}"] = str(j)
        if self._hvp:
            directions, products = self._hvp
            for name, h in products.items():
                out[f"hessian of {name} applied to {', '.join(p.name for p in directions.values())}"
                    ] = str(h)
        for (a, b), h in (self._hessian if isinstance(self._hessian, dict) else {}).items():
            out[f"hessian block {a}, {b}"] = str(h)
        return out


def _wrt_names(wrt: str | list[str] | tuple[str, ...]) -> list[str]:
    items = [wrt] if isinstance(wrt, str) else list(wrt)
    if not items or not all(isinstance(w, str) and w.strip() for w in items):
        raise MatcalcError("wrt must name the variables to minimize over",
                           hint='for example wrt="w" or wrt=["w", "beta"]')
    names = [normalize(w.strip()) for w in items]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MatcalcError(f"wrt names {', '.join(twice)} more than once",
                           hint="list each variable once")
    return names


def _is_variable(e: Expr, names: set[str]) -> bool:
    return isinstance(e, Symbol) and e.name in names


def _constant(e: Expr, names: set[str]) -> bool:
    return not any(s.name in names for s in e.free_symbols())


def _weighted(e: Expr, names: set[str]) -> tuple[Expr | None, Symbol] | None:
    """``(None, w)`` for a variable ``w``; ``(D, w)`` for ``D ⊙ w`` with constant ``D``."""
    if _is_variable(e, names):
        return None, e
    if isinstance(e, Hadamard):
        hits = [f for f in e.factors if _is_variable(f, names)]
        rest = [f for f in e.factors if not _is_variable(f, names)]
        if len(hits) == 1 and all(_constant(f, names) and f.shape == e.shape for f in rest):
            return (rest[0] if len(rest) == 1 else Hadamard(tuple(rest))), hits[0]
    return None


def l1_term(term: Expr, names: set[str]) -> tuple[Expr, Expr | None, Symbol] | None:
    """``(c, D, w)`` when ``term`` is ``c ||D ⊙ w||_1`` (also ``sum(abs(D ⊙ W))`` and
    ``1^T abs(D ⊙ w)``); ``D`` is ``None`` when there is no weight."""
    inner = None
    if isinstance(term, Norm) and term.p == "1" and term.arg.kind == "vector":
        inner = term.arg
    elif isinstance(term, Call) and term.name == "sum" and isinstance(term.args[0], Call) \
            and term.args[0].name == "abs":
        inner = term.args[0].args[0]
    elif isinstance(term, Mul) and len(term.factors) == 2 \
            and isinstance(term.factors[0], Transpose) \
            and isinstance(term.factors[0].arg, Ones) and isinstance(term.factors[1], Call) \
            and term.factors[1].name == "abs" and term.factors[1].shape[1] == 1:
        inner = term.factors[1].args[0]
    if inner is not None:
        hit = _weighted(inner, names)
        return None if hit is None else (ONE, hit[0], hit[1])
    if isinstance(term, Mul):
        f = term.factors
        hits = [(i, l1_term(x, names)) for i, x in enumerate(f)]
        hits = [(i, h) for i, h in hits if h is not None]
        rest = [x for i, x in enumerate(f) if not hits or i != hits[0][0]]
        if len(hits) == 1 and all(x.is_scalar and _constant(x, names) for x in rest):
            coef, weight, var = hits[0][1]
            factors = ([] if coef == ONE else [coef]) + rest
            return (factors[0] if len(factors) == 1 else Mul(tuple(factors))), weight, var
    if isinstance(term, Div) and _constant(term.den, names):
        hit = l1_term(term.num, names)
        if hit is not None:
            return Div(hit[0], term.den), hit[1], hit[2]
    return None


_EPIGRAPH_TEXT = {
    "absolute": "{t} >= {e} and {t} >= -({e}): 1^T {t} = ||{e}||_1 at a solution",
    "positive part": "{t} >= {e} and {t} >= 0: 1^T {t} = 1^T relu({e}) at a solution",
    "largest": "{t} 1 >= {e}, {t} a scalar: {t} = max({e}) at a solution"}
"""The three rewrites by kind: the absolute values, positive parts or largest entry of E."""


def _core(term: Expr, names: set[str]) -> tuple[Expr, Expr]:
    """``(c, core)`` with ``term = c core`` for constant scalar factors ``c`` (ONE if none)."""
    if isinstance(term, Mul):
        scalars = [f for f in term.factors if f.is_scalar and _constant(f, names)]
        others = [f for f in term.factors if not (f.is_scalar and _constant(f, names))]
        if scalars and others:
            return ((scalars[0] if len(scalars) == 1 else Mul(tuple(scalars))),
                    others[0] if len(others) == 1 else Mul(tuple(others)))
    if isinstance(term, Div) and _constant(term.den, names):
        c, core = _core(term.num, names)
        return Div(c, term.den), core
    return ONE, term


def epigraph_term(term: Expr, names: set[str]) -> tuple[Expr, str, Expr] | None:
    """``(c, kind, E)`` when ``term`` is ``c ||E||_1`` (or ``c sum(abs(E))``,
    ``c 1^T abs(E)``: kind ``absolute``), ``c 1^T relu(E)`` (or ``sum``: ``positive
    part``) or ``c max(E)`` (``largest``), with ``E`` depending on the variables."""
    c, core = _core(term, names)
    inner, kind = None, None
    if isinstance(core, Norm) and core.p == "1" and core.arg.kind == "vector":
        inner, kind = core.arg, "absolute"
    elif isinstance(core, Call) and core.name == "max" and core.args[0].shape[1] == 1:
        inner, kind = core.args[0], "largest"
    else:
        summed = None
        if isinstance(core, Call) and core.name == "sum":
            summed = core.args[0]
        elif isinstance(core, Mul) and len(core.factors) == 2 \
                and isinstance(core.factors[0], Transpose) \
                and isinstance(core.factors[0].arg, Ones) and core.factors[1].shape[1] == 1:
            summed = core.factors[1]
        if isinstance(summed, Call) and summed.name in ("abs", "relu"):
            inner = summed.args[0]
            kind = "absolute" if summed.name == "abs" else "positive part"
    if inner is None or _constant(inner, names):
        return None
    return c, kind, inner


def nonsmooth_node(e: Expr, names: set[str]) -> tuple[Expr, str] | None:
    """A sub-expression of ``e`` that depends on a variable and is not differentiable."""
    for node in e.walk():
        if _constant(node, names):
            continue
        if isinstance(node, Call) and FUNCTIONS[node.name].nonsmooth is not None:
            return node, FUNCTIONS[node.name].nonsmooth
        if isinstance(node, Norm):
            matrix = node.arg.kind == "matrix"
            if node.p not in (None, "2", "F") or (matrix and node.p in (None, "2")):
                return node, f"||.||_{node.p} is not differentiable everywhere"
    return None


def positive_definite_arguments(e: Expr, names: set[str]) -> list[Expr]:
    """The arguments ``A`` of each ``logdet(A)`` in ``e`` that depend on a variable and
    that matcalc knows symmetric: minimize takes the domain of such a term to be ``A``
    positive definite, as the graphical lasso and every use of log det in optimization
    mean it (Boyd and Vandenberghe, Convex Optimization, §3.1.5: ``f(X) = log det X``
    with ``dom f = S^n_{++}``), not ``det(A) > 0``, where an even number of negative
    eigenvalues can make an objective decrease without bound."""
    found = []
    for node in e.walk():
        if isinstance(node, Call) and node.name == "logdet" and not _constant(node, names) \
                and known_symmetric(node.args[0]):
            found.append(node.args[0])
    return found


def _fresh(base: str, taken: set[str]) -> str:
    name, k = base, 2
    while name in taken:
        name, k = f"{base}{k}", k + 1
    taken.add(name)
    return name


@lru_cache(maxsize=64)
def _build(f: str | Expr, wrt: tuple[str, ...], constraints: tuple[str, ...],
           decl_items: tuple[tuple[str, str], ...]) -> Model:
    decls = dict(decl_items)
    objective = parse(f, **decls) if isinstance(f, str) else f
    if not objective.is_scalar:
        raise UnsupportedError(
            f"the objective `{objective}` is a {objective.kind}; minimize needs a scalar",
            hint="sum the entries (1^T v, sum(V)) or take a norm")
    names = set(wrt)
    symbols = {s.name: s for s in objective.free_symbols()}
    missing = [w for w in wrt if w not in symbols]
    if missing:
        raise MatcalcError(
            f"{', '.join(missing)} does not occur in the objective `{objective}`",
            hint="wrt names the variables of the formula to minimize over; the others are data")
    user_variables = [symbols[w] for w in wrt]

    terms = objective.terms if isinstance(objective, Add) else (objective,)
    smooth_terms, l1_terms = [], []
    taken = set(symbols)
    epigraphs = []
    for term in terms:
        hit = l1_term(term, names)
        if hit is None:
            found = epigraph_term(term, names)
            if found is None:
                smooth_terms.append(term)
            else:
                epigraphs.append((term, *found))
            continue
        coef, weight, var = hit
        split = next((t for t in l1_terms if t.variable.name == var.name), None)
        if split is None:
            # the halves keep the variable's structure (max(S, 0) of a symmetric S is
            # symmetric): general halves of a symmetric S would let the iterates drift off
            # the symmetric matrices, where logdet is unbounded below
            plus = Symbol(_fresh(f"{var.name}_plus", taken), var.dims, var.props)
            minus = Symbol(_fresh(f"{var.name}_minus", taken), var.dims, var.props)
        else:
            plus, minus = split.plus, split.minus
        l1_terms.append(L1Term(coef, weight, var, plus, minus, str(term)))
    substitution = {}
    for t in l1_terms:
        substitution[t.variable.name] = (t.plus, t.minus)

    def substitute(e: Expr) -> Expr:
        for s in e.free_symbols():
            if s.name in substitution:
                plus, minus = substitution[s.name]
                e = replace_symbol(e, s, Add((Symbol(plus.name, s.dims, plus.props),
                                              Neg(Symbol(minus.name, s.dims, minus.props)))))
        return e

    for term in smooth_terms:
        bad = nonsmooth_node(term, names)
        if bad is not None:
            node, why = bad
            raise UnsupportedError(
                f"`{node}` in the term `{term}` is not differentiable ({why}); minimize "
                "uses gradients and never smooths a term silently",
                hint="matcalc rewrites exactly only terms c ||E||_1, c sum(abs(E)), "
                     "c 1^T relu(E) and c max(E) (c >= 0, E smooth) of the objective's sum; "
                     "for anything else write a smooth objective or an explicit constraint")
    epigraph_terms = []
    for term, coef, kind, inner in epigraphs:
        bad = nonsmooth_node(inner, names)
        if bad is not None:
            raise UnsupportedError(
                f"`{bad[0]}` in the term `{term}` is not differentiable ({bad[1]})",
                hint="the exact rewrite of ||E||_1, 1^T relu(E) and max(E) needs a smooth E")
        dims = SCALAR if kind == "largest" else inner.shape
        bound = Symbol(_fresh("t", taken), dims)
        epigraph_terms.append(EpigraphTerm(coef, kind, substitute(inner), bound, str(term)))
    pieces = [substitute(t) for t in smooth_terms]
    for t in epigraph_terms:
        pieces.append(_scaled(t.coefficient, t.bound if t.kind == "largest"
                              else Call("sum", (t.bound,))))
    for t in l1_terms:
        both = Add((t.plus, t.minus))
        if t.weight is not None:
            both = Hadamard((t.weight, both))
        pieces.append(_scaled(t.coefficient, Call("sum", (both,))))
    smooth = pieces[0] if len(pieces) == 1 else Add(tuple(pieces))

    variables = []
    for v in user_variables:
        if v.name in substitution:
            variables.extend(substitution[v.name])
        else:
            variables.append(v)
    variables.extend(t.bound for t in epigraph_terms)
    var_names = {v.name for v in variables}
    gradients = {}
    for v in variables:
        if any(s.name == v.name for s in smooth.free_symbols()):
            gradients[v.name] = grad(smooth, v).expr
        else:  # only inside an epigraph's constraints
            gradients[v.name] = Zero(v.dims)

    model = Model(objective, smooth, variables, user_variables, gradients, l1_terms,
                  epigraph_terms, decls=decls)
    model.positive_definite.extend(
        substitute(a) for a in positive_definite_arguments(objective, names))
    for t in epigraph_terms:
        above = Add((t.bound if t.kind != "largest" else Mul((t.bound, Ones(t.inner.shape[0]))),
                     Neg(t.inner)))
        side = f"{t.bound.name} 1" if t.kind == "largest" else t.bound.name
        model.general.append(_general("ineq", above, f"{side} >= {t.inner}", var_names))
        if t.kind == "absolute":
            model.general.append(_general("ineq", Add((t.bound, t.inner)),
                                          f"{side} >= -({t.inner})", var_names))
        if t.kind == "positive part":
            model.bounds.append(Bound(t.bound, ZERO, "lower", f"{t.bound.name} >= 0"))
    for text in constraints:
        for comp in parse_constraint(text, decls):
            _add_constraint(model, comp, names, var_names, substitute)
    split = {s.name: s for t in l1_terms for s in (t.plus, t.minus)}
    for s in split.values():
        model.bounds.append(Bound(s, ZERO, "lower", f"{s.name} >= 0"))
    return model


def _scaled(coef: Expr, e: Expr) -> Expr:
    return e if coef == ONE else Mul((coef, e))


def _add_constraint(model: Model, comp: Comparison, user_names: set[str],
                    var_names: set[str], substitute) -> None:
    bound = comp.bound_of(var_names)
    if bound is not None:
        variable, constant, which = bound
        model.bounds.append(Bound(variable, constant, which, comp.text))
        return
    g = substitute(comp.expr)
    model.positive_definite.extend(
        substitute(a) for a in positive_definite_arguments(comp.expr, user_names)
        if substitute(a) not in model.positive_definite)
    if _constant(g, var_names):
        raise MatcalcError(f"the constraint `{comp.text}` does not involve any variable of wrt",
                           hint=f"it must depend on {', '.join(sorted(user_names))}")
    bad = nonsmooth_node(g, var_names)
    if bad is not None:
        raise UnsupportedError(
            f"`{bad[0]}` in the constraint `{comp.text}` is not differentiable ({bad[1]})",
            hint="write the constraint with smooth functions, e.g. -t <= w <= t for |w| <= t")
    model.general.append(_general(comp.kind, g, comp.text, var_names))


def _general(kind: str, g: Expr, text: str, var_names: set[str]) -> GeneralConstraint:
    """``g >= 0`` (``ineq``) or ``g = 0`` (``eq``) with its Jacobian for each variable."""
    jacobians, linear = {}, True
    for s in sorted(g.free_symbols(), key=lambda s: s.name):
        if s.name in var_names:
            j = jacobian(g, s).expr
            jacobians[s.name] = j
            linear = linear and _constant(j, var_names)
    return GeneralConstraint(kind, g, jacobians, linear, text)


def build_model(f: str | Expr, wrt: str | list[str] | tuple[str, ...],
                constraints: str | list[str] | tuple[str, ...] = (),
                decls: dict[str, str] | None = None) -> Model:
    """The smooth model of ``min f over wrt subject to constraints`` (cached per formula)."""
    if isinstance(constraints, str):
        constraints = (constraints,)
    if not isinstance(f, (str, Expr)):
        raise MatcalcError(f"the objective must be a formula, got {type(f).__name__}")
    items = tuple(sorted((decls or {}).items()))
    return _build(f, tuple(_wrt_names(wrt)), tuple(constraints), items)
