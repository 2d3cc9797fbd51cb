"""Derivations as a textbook prints them: one chain of differentials, then the identification.

The chain is built from the engine's own rule applications: the function is written with
named intermediate values (``f = r^T r, r = A x - b``), its differential is taken by the
differential rules with the named values held fixed, then one named value's differential is
substituted per line, each line brought to the normal form by ``simplify``. Differentials of
constants are zero and never appear. The last lines bring the differential to the form of an
identification theorem (``df = g^T dx``, ``df = tr(G^T dX)``, ``dy = J dx``,
``d vec(F) = J d vec(X)``) and read off the derivative, which is printed exactly as the
result is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .calculus import Differentiator, canonicalize
from .errors import MatcalcError
from .expr import (
    Add,
    Call,
    Differential,
    Div,
    Expr,
    Identity,
    Mul,
    Neg,
    Number,
    Ones,
    Pow,
    Symbol,
    Transpose,
    Zero,
    distinct_preorder,
    kind_of,
    topological_order,
)
from .functions import FUNCTIONS
from .printing.bindings import bind_common
from .printing.source import source_parts
from .rewrite import Rule, Trace, has_differential, load_rules
from .simplify import Simplifier, prune_differentials, simplify

MAX_LINES = 5
"""A chain longer than this inlines the differentials of its innermost named values."""

FAMILIES = ("canonical", "differentials", "adjoint", "jacobian")


@dataclass(frozen=True)
class RuleUse:
    """A rule that justifies a line: its name, its identity and where it comes from."""

    name: str
    identity: str
    source: str

    def identity_latex(self) -> str:
        """The identity typeset as mathematics (the rule's own parsed sides)."""
        rule = rules_by_name().get(self.name)
        if rule is None or rule.rhs is None:
            return ""
        lhs = rule.lhs
        if rule.family == "differentials":
            lhs = Differential(lhs)  # type: ignore[arg-type]
        return f"{lhs.latex()} = {rule.rhs.latex()}"


@dataclass(frozen=True)
class Theorem:
    """An identification theorem: the form of the differential and what it gives."""

    text: str
    latex: str
    source: str


@dataclass(frozen=True)
class Line:
    """One line of a derivation: ``lhs = rhs``, and why it holds.

    ``lhs`` is empty on a continuation line (``= 2 r^T A dx``). ``note`` is the
    sub-differential substituted on this line (``dr = A dx``) or the identification
    theorem; ``rules`` are the rules the engine applied to obtain the line.
    """

    role: str
    lhs: str
    lhs_latex: str
    rhs: str
    rhs_latex: str
    note: str = ""
    note_latex: str = ""
    rules: tuple[RuleUse, ...] = ()
    theorem: Theorem | None = None
    expr: Expr | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        """The line as ``lhs = rhs`` (continuation lines start with ``=``)."""
        return f"{self.lhs} = {self.rhs}" if self.lhs else f"= {self.rhs}"


@dataclass(frozen=True)
class Derivation:
    """A derivation: a title and its lines (see ``matcalc.printing.derivation`` for output)."""

    title: str
    title_latex: str
    lines: tuple[Line, ...]

    def text(self) -> str:
        """Plain text: the chain in two columns, rules and sources as numbered notes."""
        from .printing.derivation import derivation_text

        return derivation_text(self)

    def markdown(self) -> str:
        """Markdown: the chain as a display-math block, then the rules and their sources."""
        from .printing.derivation import derivation_markdown

        return derivation_markdown(self)

    def latex(self) -> str:
        """LaTeX: an ``align*`` block (long lines broken) followed by the numbered rules."""
        from .printing.derivation import derivation_latex

        return derivation_latex(self)

    def align(self) -> str:
        """Only the ``align*`` block (what KaTeX or MathJax typeset)."""
        from .printing.derivation import derivation_align

        return derivation_align(self)

    def as_dict(self) -> dict[str, Any]:
        """The derivation as JSON-ready data (for the web page and ``--format json``)."""
        return {
            "title": self.title,
            "lines": [{
                "role": line.role, "lhs": line.lhs, "lhs_latex": line.lhs_latex,
                "rhs": line.rhs, "rhs_latex": line.rhs_latex, "note": line.note,
                "note_latex": line.note_latex,
                "rules": [{"name": r.name, "identity": r.identity,
                           "identity_latex": r.identity_latex(), "source": r.source,
                           "source_parts": source_parts(r.source)}
                          for r in line.rules],
            } for line in self.lines],
            "latex": self.align(),
        }

    def __str__(self) -> str:
        return self.text()

    def __len__(self) -> int:
        return len(self.lines)

    def _repr_latex_(self) -> str:
        return self.align()


@cache
def rules_by_name() -> dict[str, Rule]:
    """Every rule of the rule files, by name."""
    return {r.name: r for family in FAMILIES for r in load_rules(family)}


def _uses(trace: Trace) -> tuple[RuleUse, ...]:
    seen: dict[str, RuleUse] = {}
    known = rules_by_name()
    for step in trace.steps:
        if step.rule not in seen:
            rule = known.get(step.rule)
            seen[step.rule] = RuleUse(step.rule, rule.text if rule else step.rule, step.source)
    return tuple(seen.values())


# ---------------------------------------------------------------------------- theorems

_MN = "Magnus & Neudecker (2019), Matrix Differential Calculus, 3rd ed."
THEOREMS = {
    "scalar": Theorem("df = g dx gives f' = g", r"\mathrm{d}f = g\,\mathrm{d}x"
                      r"\ \Rightarrow\ f' = g", f"{_MN}, ch. 5 (first identification theorem)"),
    "vector": Theorem("df = g^T dx gives grad f = g",
                      r"\mathrm{d}f = g^{\top} \mathrm{d}x \ \Rightarrow\ \nabla f = g",
                      f"{_MN}, ch. 5 (first identification theorem), table 9.2"),
    "matrix": Theorem("df = tr(G^T dX) gives grad f = G",
                      r"\mathrm{d}f = \operatorname{tr}(G^{\top} \mathrm{d}X)"
                      r" \ \Rightarrow\ \nabla f = G",
                      f"{_MN}, ch. 9, table 9.2 (first identification theorem)"),
    "jacobian": Theorem("dy = J dx gives the Jacobian J",
                        r"\mathrm{d}y = J\,\mathrm{d}x \ \Rightarrow\ \mathsf{D}y = J",
                        f"{_MN}, ch. 9 (first identification theorem)"),
    "vec": Theorem("d vec(F) = J d vec(X) gives the derivative J",
                   r"\operatorname{vec}(\mathrm{d}F) = J \operatorname{vec}(\mathrm{d}X)"
                   r" \ \Rightarrow\ \mathsf{D}F = J",
                   f"{_MN}, ch. 9 (first identification theorem)"),
    "hessian_vec": Theorem("d vec(grad f) = H d vec(X) gives the Hessian H",
                           r"\operatorname{vec}(\mathrm{d}\nabla f) = H \operatorname{vec}"
                           r"(\mathrm{d}X) \ \Rightarrow\ \nabla^2 f = H",
                           f"{_MN}, ch. 10 (second identification theorem)"),
    "hessian": Theorem("d(grad f) = H dx gives the Hessian H",
                       r"\mathrm{d}(\nabla f) = H\,\mathrm{d}x \ \Rightarrow\ \nabla^2 f = H",
                       f"{_MN}, ch. 10 (second identification theorem)"),
    "cyclic": Theorem("tr(A B) = tr(B A), a scalar is its own trace",
                      r"\operatorname{tr}(AB) = \operatorname{tr}(BA),\ \alpha = "
                      r"\operatorname{tr}(\alpha)",
                      "Matrix Cookbook (2012) eq. 16 (cyclic property)"),
}


# ---------------------------------------------------------------------------- named values


def _trivial(e: Expr) -> bool:
    if isinstance(e, (Symbol, Number, Identity, Ones, Zero, Differential)):
        return True
    if isinstance(e, (Transpose, Neg)):
        return True  # name the operand instead
    # X^-1, X^2 print as compactly as a name
    return isinstance(e, Pow) and isinstance(e.base, Symbol)


class Names:
    """Named intermediate values: a name for each, and the fold / expand maps."""

    def __init__(self) -> None:
        self.definition: dict[Symbol, Expr] = {}  # name -> expanded definition
        self.by_value: dict[Expr, Symbol] = {}
        self._expand: dict[Expr, Expr] = {}

    def add(self, name: Symbol, value: Expr) -> None:
        self.definition[name] = value
        self.by_value[value] = name
        self._expand.clear()

    def expand(self, e: Expr) -> Expr:
        """``e`` with every name replaced by its definition (differentials kept)."""
        hit = self._expand.get(e)
        if hit is None:
            if isinstance(e, Symbol) and e in self.definition:
                hit = self.definition[e]
            elif isinstance(e, Differential) or not e.children:
                hit = e
            else:
                hit = e.map_children(self.expand)
            self._expand[e] = hit
        return hit

    def fold(self, e: Expr, keep: Expr | None = None) -> Expr:
        """``e`` with every named value written by its name (``keep`` itself excepted)."""
        memo: dict[Expr, Expr] = {}

        def walk(node: Expr, top: bool) -> Expr:
            if isinstance(node, Differential) or not node.children:
                return node
            full = self.expand(node)
            name = self.by_value.get(full)
            if name is not None and not (top and full == keep):
                return name
            hit = memo.get(node)
            if hit is None:
                hit = node.map_children(lambda c: walk(c, False))
                memo[node] = hit
            return hit

        return walk(e, True)

    def folded_definition(self, name: Symbol) -> Expr:
        value = self.definition[name]
        return self.fold(value, keep=value)


def _letter(e: Expr) -> str:
    if isinstance(e, Call):
        letter = FUNCTIONS[e.name].letter
    elif isinstance(e, Add):
        letter = "r"
    elif isinstance(e, Mul):
        letter = "z"
    else:
        letter = "u"
    return letter.upper() if kind_of(e.shape) == "matrix" else letter


_SPARE_LETTERS = "uvqpk"
"""Letters for a named value whose conventional letter is taken."""


def choose_names(f: Expr, wrt: Symbol, result: Expr | None, taken: set[str]) -> Names:
    """Names as in the result (its where clause), then one per repeated value that varies."""
    names = Names()
    if result is not None:
        _, named = bind_common(result)
        for name, definition in named:
            if name.name in taken:  # a name of the function's own: keep the value unnamed
                continue
            value = names.expand(definition)
            names.add(name, value)
            taken.add(name.name)
    # repeated sub-expressions of f that depend on wrt (counted as bind_common counts)
    order = topological_order(f)
    times: Counter[Expr] = Counter({f: 1})
    chosen: list[Expr] = []
    for node in order:
        n = times[node]
        if (n >= 2 and node is not f and not _trivial(node) and node.contains(wrt)
                and node not in names.by_value):
            chosen.append(node)
            n = 1
        for c in node.children:
            times[c] += n
    letters = [_letter(e) for e in chosen]
    total = Counter(letters)
    used: Counter[str] = Counter()
    for value, letter in zip(chosen, letters, strict=True):
        if total[letter] == 1 and letter in taken:  # another letter rather than z1 next to z
            spare = [c for c in _SPARE_LETTERS if c.lower() not in {t.lower() for t in taken}]
            if spare:
                letter = spare[0].upper() if letter.isupper() else spare[0]
        name = letter
        if total[letter] > 1 or name in taken:
            used[letter] += 1
            while f"{letter}{used[letter]}" in taken:
                used[letter] += 1
            name = f"{letter}{used[letter]}"
        taken.add(name)
        names.add(Symbol(name, value.shape), value)
    return names


# ---------------------------------------------------------------------------- the chain


class _Forward:
    """Forward differentials that stop at ``dx`` and at the differentials of stepped names."""

    def __init__(self, wrt: Symbol, names: Names, stepped: frozenset[Symbol]) -> None:
        self.wrt = wrt
        self.names = names
        self.stepped = stepped
        self._depends: dict[Expr, bool] = {}

    def depends(self, e: Expr) -> bool:
        hit = self._depends.get(e)
        if hit is None:
            hit = self.names.expand(e).contains(self.wrt)
            self._depends[e] = hit
        return hit

    def __call__(self, e: Expr, trace: Trace) -> Expr:
        engine = Differentiator(trace)
        memo: dict[Expr, Expr] = {}

        def d(node: Expr) -> Expr:
            if node == self.wrt:
                return Differential(self.wrt)
            if not self.depends(node):
                return Number(0) if node.is_scalar else Zero(node.shape)
            if isinstance(node, Symbol) and node in self.names.definition:
                if node in self.stepped:
                    return Differential(node)
                return d(self.names.folded_definition(node))
            hit = memo.get(node)
            if hit is None:
                hit = substitute(engine.differential(node), d)
                memo[node] = hit
            return hit

        return d(e)


def substitute(e: Expr, d: Callable[[Expr], Expr]) -> Expr:
    """``e`` with each differential ``dU`` replaced by ``d(U)``."""
    if isinstance(e, Differential):
        return d(e.var)
    if not e.children:
        return e
    return e.map_children(lambda c: substitute(c, d))


def differential_last(e: Expr) -> Expr:
    """The textbook orientation of a scalar differential: ``r^T dr`` rather than ``dr^T r``
    (a scalar is its own transpose) and ``g dα`` rather than ``dα g``, at every level."""
    if not has_differential(e) or isinstance(e, Differential):
        return e
    e = e.map_children(differential_last)
    if isinstance(e, Add):
        return Add(tuple(differential_last(t) for t in e.terms))
    if isinstance(e, Neg):
        return Neg(differential_last(e.arg))
    if isinstance(e, Call) and e.name == "tr" and has_differential(e):
        inner = e.args[0]
        terms = inner.terms if isinstance(inner, Add) else (inner,)
        turned = [Call("tr", (_transposed_if_first(t),)) for t in terms]
        return turned[0] if len(turned) == 1 else Add(tuple(turned))
    if not (isinstance(e, Mul) and has_differential(e)):
        return e
    factors = list(e.factors)
    scalars = [f for f in factors if f.is_scalar]
    arrays = [f for f in factors if not f.is_scalar]
    if e.is_scalar:
        arrays = _chain_transposed_if_first(arrays)
    moved = [f for f in scalars if isinstance(f, Differential)]
    kept = [f for f in scalars if not isinstance(f, Differential)]
    result = kept + arrays + moved
    return result[0] if len(result) == 1 else Mul(tuple(result))


def _chain_transposed_if_first(arrays: list[Expr]) -> list[Expr]:
    """A product whose first varying factor is transposed, written as its transpose."""
    first = next((f for f in arrays if has_differential(f)), None)
    if isinstance(first, Transpose):
        return [simplify(Transpose(f)) for f in reversed(arrays)]
    return arrays


def _transposed_if_first(term: Expr) -> Expr:
    """``dR^T R`` as ``R^T dR`` inside a trace (tr(M^T) = tr(M))."""
    if not isinstance(term, Mul) or any(f.is_scalar for f in term.factors):
        return term
    return Mul(tuple(_chain_transposed_if_first(list(term.factors))))


def _replace(e: Expr, old: Expr, new: Expr) -> Expr:
    if e == old:
        return new
    if not e.children or not e.contains(old):
        return e
    return e.map_children(lambda c: _replace(c, old, new))


def _differentials(e: Expr) -> list[Differential]:
    return [n for n in distinct_preorder(e) if isinstance(n, Differential)]


@dataclass
class ChainSpec:
    """What a chain differentiates and how its end is written."""

    function: Expr
    wrt: Symbol
    kind: str  # grad | jacobian | hessian
    result_text: str
    result_latex: str
    result: Expr
    transpose_result: bool = False


class ChainBuilder:
    """Builds the lines of one chain for a given set of stepped names."""

    def __init__(self, spec: ChainSpec, fname: str, dlhs: tuple[str, str], header: bool):
        self.spec = spec
        self.fname = fname
        self.dlhs = dlhs
        self.header = header
        self.simplifier = Simplifier()
        canon = Trace()
        self.function = canonicalize(spec.function, canon)
        self.canonical_rules = _uses(canon)
        taken = {s.name for s in self.function.free_symbols()} | {fname}
        self.names = choose_names(self.function, spec.wrt, spec.result, taken)
        self.order = [n for n in self._appearance() if n in self.names.definition]

    def _appearance(self) -> list[Expr]:
        """Names in the order a reader meets them in the function, outer first."""
        seen: list[Expr] = []
        stack = [self.names.fold(self.function)]
        visited: set[Expr] = set()
        while stack:
            node = stack.pop()
            if node in visited:
                continue
            visited.add(node)
            if isinstance(node, Symbol) and node in self.names.definition:
                seen.append(node)
                stack.append(self.names.folded_definition(node))
                continue
            stack.extend(reversed(node.children))
        return seen

    def varying(self) -> list[Symbol]:
        """Names whose differential may get a line of its own, outer first."""
        return [n for n in self.order if self.names.definition[n].contains(self.spec.wrt)
                and self.names.definition[n] != self.function]

    def clean(self, e: Expr) -> Expr:
        """A line in normal form, named values written by name, differentials on the right."""
        e = self.names.fold(self.simplifier(self.names.fold(e)))
        if not has_differential(e):
            return e
        turned = differential_last(e)
        if turned == e:
            return e
        return differential_last(self.names.fold(self.simplifier(turned)))

    def gradient_form(self, g: Expr, v: Symbol) -> Expr:
        """``g dα``, ``g^T dx`` or ``tr(G^T dX)``: the differential read as a gradient."""
        dv = Differential(v)
        shape = kind_of(v.shape)
        if shape == "scalar":
            return self.clean(Mul((g, dv)))
        if shape == "vector":
            return self.clean(Mul((Transpose(g), dv)))
        m = self.clean(Transpose(g))
        denominator = None
        if isinstance(m, Div) and m.den.is_scalar:  # tr(M dX) / alpha
            m, denominator = m.num, m.den
        factors = m.factors if isinstance(m, Mul) else (m,)
        scalars = [f for f in factors if f.is_scalar]  # a scalar factor stays outside
        arrays = [f for f in factors if not f.is_scalar]
        form: Expr = Call("tr", (Mul((*arrays, dv)),))
        if scalars:
            form = Mul((*scalars, form))
        return form if denominator is None else Div(form, denominator)

    def collect(self, e: Expr, trace: Trace) -> Expr:
        """A scalar differential in vector differentials, written ``g^T dv`` per ``dv`` when
        that is not longer (``(s - y)^T dz`` for ``-y^T (dz - s^T dz)``)."""
        diffs = _differentials(e)
        if not e.is_scalar or not diffs or any(kind_of(d.shape) == "matrix" for d in diffs):
            return e
        attempt = Trace()
        engine = Differentiator(attempt)
        terms = []
        for d in diffs:
            part = e if len(diffs) == 1 else prune_differentials(
                e, lambda x, d=d: x == d, self.simplifier)
            try:
                g = engine.identify(Number(1), part, d.var)
            except MatcalcError:  # no identification rule: the line stays as it is
                return e
            terms.append(self.gradient_form(g, d.var))
        collected = terms[0] if len(terms) == 1 else self.clean(Add(tuple(terms)))
        if len(str(collected)) > len(str(e)) or collected == e:
            return e
        trace.steps.extend(attempt.steps)
        return collected

    def build(self, steps: int) -> list[Line]:
        spec = self.spec
        stepped = frozenset(self.varying()[:steps])
        forward = _Forward(spec.wrt, self.names, stepped)
        lines: list[Line] = []
        body = self.names.fold(self.function)
        if self.header:
            lines.append(self._header(body))
        trace = Trace()
        current = self.collect(self.clean(forward(body, trace)), trace)
        lines.append(Line("differential", self.dlhs[0], self.dlhs[1], str(current),
                          current.latex(), rules=_uses(trace), expr=current))
        while True:
            pending = [d for d in _differentials(current) if d.var in stepped]
            if not pending:
                break
            name = min(pending, key=lambda d: self.order.index(d.var)).var
            trace = Trace()
            d_name = self.clean(forward(self.names.folded_definition(name), trace))
            current = self.collect(self.clean(_replace(current, Differential(name), d_name)),
                                   trace)
            note = Differential(name)
            lines.append(Line("substitution", "", "", str(current), current.latex(),
                              f"{note} = {d_name}", f"{note.latex()} = {d_name.latex()}",
                              _uses(trace), expr=current))
        lines.extend(self._identification(current, lines[-1]))
        return lines

    def _header(self, body: Expr) -> Line:
        used = self._names_used(body)
        text = ",  ".join([str(body)] + [f"{n} = {self.names.folded_definition(n)}"
                                         for n in used])
        latex = r",\quad ".join([body.latex()] + [
            f"{n.latex()} = {self.names.folded_definition(n).latex()}" for n in used])
        return Line("function", self.fname, Symbol(self.fname).latex(), text, latex,
                    rules=self.canonical_rules, expr=body)

    def _names_used(self, body: Expr) -> list[Symbol]:
        used: list[Symbol] = []
        stack = [body]
        while stack:
            node = stack.pop()
            if isinstance(node, Symbol) and node in self.names.definition:
                if node not in used:
                    used.append(node)
                    stack.append(self.names.folded_definition(node))
                continue
            stack.extend(reversed(node.children))
        return used

    def _identification(self, current: Expr, previous: Line) -> list[Line]:
        spec = self.spec
        wrt, dx = spec.wrt, Differential(spec.wrt)
        trace = Trace()
        out: list[Line] = []
        form: Expr | None = None
        vec = False
        if spec.kind == "grad":
            shape = kind_of(wrt.shape)
            if has_differential(current):
                form = self.gradient_form(
                    Differentiator(trace).identify(Number(1), current, wrt), wrt)
            theorem = THEOREMS[shape]
            name = Symbol(self.fname).latex()
            lhs, lhs_latex = f"grad {self.fname}", rf"\nabla_{{{wrt.latex()}}} {name}"
            if shape == "scalar":
                lhs = f"d{self.fname}/d{wrt}"
                lhs_latex = rf"\frac{{\mathrm{{d}}{name}}}{{\mathrm{{d}}{wrt.latex()}}}"
        else:
            from .jacobians import JacobianBuilder

            vec = kind_of(wrt.shape) == "matrix" or kind_of(self.function.shape) == "matrix"
            if has_differential(current):
                j = self.clean(JacobianBuilder(trace).read_off(current, self.function, wrt))
                factors = j.factors if isinstance(j, Mul) else (j,)
                form = Mul((*factors, Call("vec", (dx,)) if vec else dx))
            if spec.kind == "hessian":
                theorem = THEOREMS["hessian_vec" if vec else "hessian"]
            else:
                theorem = THEOREMS["vec" if vec else "jacobian"]
            if spec.kind == "hessian":
                lhs, lhs_latex = "H", "H"
            else:
                lhs, lhs_latex = ("J^T", "J^{\\top}") if spec.transpose_result else ("J", "J")
        if form is not None and str(form) != previous.rhs:
            rules = _uses(trace)
            if spec.kind == "grad" and kind_of(wrt.shape) == "matrix":
                note, note_latex = THEOREMS["cyclic"].text, THEOREMS["cyclic"].latex
                rules = (RuleUse("cyclic", THEOREMS["cyclic"].text, THEOREMS["cyclic"].source),
                         *rules)
            else:
                note = note_latex = ""
            vec = spec.kind != "grad" and vec
            lhs_text, lhs_tex = (f"vec({self.dlhs[0]})",
                                 rf"\operatorname{{vec}}({self.dlhs[1]})") if vec else ("", "")
            out.append(Line("collect", lhs_text, lhs_tex, str(form), form.latex(), note,
                            note_latex, rules, expr=form))
        out.append(Line("identification", lhs, lhs_latex, spec.result_text, spec.result_latex,
                        theorem.text, theorem.latex,
                        (RuleUse("identification", theorem.text, theorem.source),),
                        theorem, expr=spec.result))
        return out


def chain(spec: ChainSpec, fname: str, dlhs: tuple[str, str], header: bool = True
          ) -> list[Line]:
    """The shortest readable chain: as many named values stepped as fit in MAX_LINES."""
    builder = ChainBuilder(spec, fname, dlhs, header)
    best: list[Line] = []
    # a chain has at least a header, df, one line per stepped name and the identification
    most = min(len(builder.varying()), MAX_LINES - 2 - int(header))
    for steps in range(most, -1, -1):
        best = builder.build(steps)
        if len(best) <= MAX_LINES:
            break
    return best


def _function_name(e: Expr, taken: set[str]) -> str:
    kind = kind_of(e.shape)
    options = {"scalar": ("f", "g", "phi"), "vector": ("y", "v", "u")}.get(
        kind, ("F", "G", "Phi"))
    for name in options:
        if name not in taken:
            return name
    return options[0] + "0"


def _differential_lhs(name: str, shape: tuple) -> tuple[str, str]:
    d = Differential(Symbol(name, shape))
    return str(d), d.latex()


def derive(derivative: Any) -> Derivation:
    """The textbook derivation of a ``Derivative`` (gradient, Jacobian, Hessian, vec)."""
    f, wrt, mode = derivative.function, derivative.wrt, derivative.mode
    taken = {s.name for s in f.free_symbols()}
    fname = _function_name(f, taken)
    title = {"grad": "gradient", "hessian": "Hessian", "derivative": "derivative",
             "jacobian": "Jacobian", "jacobian_denominator": "Jacobian (denominator layout)"
             }.get(mode, mode)
    head = f"{title} of {fname} = {f} with respect to {wrt}"
    head_latex = (rf"\text{{{title} of }} {Symbol(fname).latex()} = {f.latex()}"
                  rf" \text{{ with respect to }} {wrt.latex()}")
    if mode == "hessian":
        g = type(derivative)(f, wrt, derivative.gradient, "grad")
        gspec = ChainSpec(f, wrt, "grad", str(g), g.latex(), g.expr)
        lines = chain(gspec, fname, _differential_lhs(fname, f.shape))
        hspec = ChainSpec(derivative.gradient, wrt, "hessian", str(derivative),
                          derivative.latex(), derivative.expr)
        grad_name = f"grad {fname}"
        dlhs = (f"d({grad_name})", rf"\mathrm{{d}}(\nabla {Symbol(fname).latex()})")
        lines += chain(hspec, fname, dlhs, header=False)
    elif mode == "grad":
        spec = ChainSpec(f, wrt, "grad", str(derivative), derivative.latex(), derivative.expr)
        lines = chain(spec, fname, _differential_lhs(fname, f.shape))
    elif mode in ("jacobian", "jacobian_denominator", "derivative"):
        spec = ChainSpec(f, wrt, "jacobian", str(derivative), derivative.latex(),
                         derivative.expr, transpose_result=mode == "jacobian_denominator")
        lines = chain(spec, fname, _differential_lhs(fname, f.shape))
    else:  # pragma: no cover - every mode is listed above
        raise MatcalcError(f"no derivation for mode {mode!r}")
    return Derivation(head, head_latex, tuple(lines))


__all__ = ["Derivation", "Line", "RuleUse", "Theorem", "derive"]
