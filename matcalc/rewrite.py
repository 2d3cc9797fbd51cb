"""Rules as data: pattern matching with kinds and conditions, rule files, strategies, trace."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TypeVar

from .budget import charge, tally, unbudgeted
from .data import data_path
from .errors import MatcalcError, RewriteError, RuleError
from .expr import (
    ROW_KIND,
    Add,
    Call,
    Differential,
    Expr,
    Hadamard,
    Identity,
    Mul,
    Norm,
    Number,
    Ones,
    Symbol,
    Zero,
    fold_dag,
    kind_of,
    map_bottom_up,
    memo_table,
)
from .shapes import Dims, Inference

Bindings = dict[str, Expr]

# ---------------------------------------------------------------------------- conditions


_HAS_DIFFERENTIAL: dict[Expr, bool] = memo_table()


def has_differential(e: Expr) -> bool:
    """A differential occurs in ``e`` (memoised: shared sub-trees are looked at once;
    iterative: deep expressions need no deep recursion)."""
    return fold_dag(e, lambda node, inner: isinstance(node, Differential) or any(inner),
                    _HAS_DIFFERENTIAL)


def is_constant(e: Expr) -> bool:
    """No differential occurs in ``e``."""
    return not has_differential(e)


def differentials_in(e: Expr) -> list[Differential]:
    """The distinct differentials in ``e``, visiting only sub-trees that contain one."""
    found: list[Differential] = []
    stack, seen = [e], set()
    while stack:
        node = stack.pop()
        if node in seen or not has_differential(node):
            continue
        seen.add(node)
        if isinstance(node, Differential):
            found.append(node)
        else:
            stack.extend(reversed(node.children))
    return found


def is_symmetric(e: Expr) -> bool:
    """``e`` is known to be symmetric (declared, or built symmetrically)."""
    from .simplify import known_symmetric

    return known_symmetric(e)


def is_rank_deficient(e: Expr) -> bool:
    """``e`` is a square product through a vector (``u v^T``, ``A x y^T B``): its rank is at
    most one, so it is singular unless it is 1×1, and Jacobi's formula does not apply."""
    if not isinstance(e, Mul) or e.is_scalar:
        return False
    chain = [f for f in e.factors if not f.is_scalar]
    return any(f.shape[1] == 1 for f in chain[:-1])


CONDITIONS: dict[str, Callable[[Expr], bool]] = {
    "constant": is_constant,
    "linear": lambda e: not is_constant(e),
    "scalar": lambda e: e.is_scalar,
    "nonscalar": lambda e: not e.is_scalar,
    "vector": lambda e: kind_of(e.shape) == "vector",
    "row": lambda e: kind_of(e.shape) == ROW_KIND,
    "matrix": lambda e: kind_of(e.shape) == "matrix",
    "square": lambda e: e.shape[0] == e.shape[1] and not e.is_scalar,
    "symmetric": is_symmetric,
    "integer": lambda e: isinstance(e, Number) and e.value.denominator == 1,
    "number": lambda e: isinstance(e, Number),
    "probability": lambda e: isinstance(e, Symbol) and "probability" in e.props,
    "invertible": lambda e: not is_rank_deficient(e),
    "fullrank": lambda e: kind_of(e.shape) != "matrix" or not is_rank_deficient(e),
}
"""Named conditions a rule may place on its pattern variables."""

# ---------------------------------------------------------------------------- matching


Guard = Callable[[str, Expr], bool]
"""Whether a pattern variable may stand for a sub-expression (a rule's conditions on it)."""


def match(pattern: Expr, subject: Expr, variables: frozenset[str], bindings: Bindings,
          guard: Guard | None = None) -> Iterator[Bindings]:
    """Every way ``pattern`` matches ``subject`` extending ``bindings``; with a ``guard``,
    only bindings it accepts, each variable checked as it is bound (a binding that fails
    its condition is not extended over the rest of the pattern)."""
    tally()  # each comparison is work of the derivation's budget (matcalc.budget)
    if isinstance(pattern, Symbol) and pattern.name in variables:
        bound = bindings.get(pattern.name)
        if bound is None:
            if guard is None or guard(pattern.name, subject):
                yield {**bindings, pattern.name: subject}
        elif bound == subject:
            yield bindings
        return
    if isinstance(pattern, (Mul, Add, Hadamard)) and type(subject) is type(pattern):
        yield from _match_sequence(
            list(pattern.children), list(subject.children), variables, bindings, type(pattern),
            guard)
        return
    if type(pattern) is not type(subject):
        return
    if isinstance(pattern, (Identity, Ones, Zero)):
        yield bindings
        return
    if isinstance(pattern, Differential):
        yield from match(pattern.var, subject.var, variables, bindings, guard)  # type: ignore[attr-defined]
        return
    if isinstance(pattern, Call) and pattern.name != subject.name:  # type: ignore[attr-defined]
        return
    if isinstance(pattern, Norm) and pattern.p != subject.p:  # type: ignore[attr-defined]
        return
    if not pattern.children:
        if pattern == subject:
            yield bindings
        return
    yield from _match_children(list(pattern.children), list(subject.children), variables,
                               bindings, guard)


def _unmatchable(pattern: Expr, subject: Expr, variables: frozenset[str]) -> bool:
    """``pattern`` cannot match ``subject``, seen from their types alone: ``match`` would
    count its comparison and yield nothing, so its generator is not even made (the
    matcher's generators are most of the garbage collector's work in a long derivation)."""
    if type(pattern) is type(subject):
        return isinstance(pattern, Call) and pattern.name != subject.name  # type: ignore[attr-defined]
    return not (isinstance(pattern, Symbol) and pattern.name in variables)


def _match_children(ps: list[Expr], ss: list[Expr], variables, bindings, guard
                    ) -> Iterator[Bindings]:
    if len(ps) != len(ss):
        return
    if not ps:
        yield bindings
        return
    if _unmatchable(ps[0], ss[0], variables):
        tally()  # the comparison match would have counted
        return
    for b in match(ps[0], ss[0], variables, bindings, guard):
        yield from _match_children(ps[1:], ss[1:], variables, b, guard)


def _match_sequence(ps: list[Expr], ss: list[Expr], variables, bindings, node: type,
                    guard: Guard | None = None) -> Iterator[Bindings]:
    """Match an n-ary node: a pattern variable may stand for a run of consecutive items."""
    if not ps:
        if not ss:
            yield bindings
        return
    head, rest = ps[0], ps[1:]
    is_var = isinstance(head, Symbol) and head.name in variables
    max_take = len(ss) - len(rest) if is_var else 1
    # the last pattern item must take every remaining item (one try, not one per split)
    min_take = max_take if not rest else 1
    for take in range(min_take, max_take + 1):
        if take < 1 or take > len(ss):
            break
        piece = ss[0] if take == 1 else node(tuple(ss[:take]))
        if _unmatchable(head, piece, variables):
            tally()  # the comparison match would have counted
            continue
        for b in match(head, piece, variables, bindings, guard):
            yield from _match_sequence(rest, ss[take:], variables, b, node, guard)


# ---------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """A named identity ``lhs = rhs`` with conditions on its variables, and its source."""

    name: str
    family: str
    lhs: Expr
    rhs: Expr | None
    text: str
    source: str
    variables: frozenset[str]
    conditions: tuple[tuple[str, str], ...] = ()
    function: Callable[..., Expr | None] | None = None
    declarations: str = ""

    def declared_kinds(self) -> dict[str, str]:
        """The rule's ``where`` line: {pattern variable: kind}, e.g. {"a": "vector"}."""
        return _declarations(self.declarations)

    def matches(self, subject: Expr) -> Iterator[Bindings]:
        """Bindings under which the rule applies to ``subject`` (each variable's conditions
        checked as soon as it is bound: the same bindings as checking them at the end, found
        without matching the rest of the pattern for a binding that already failed)."""
        return match(self.lhs, subject, self.variables, {}, self._guard)

    @cached_property
    def _guard(self) -> Guard | None:
        checks: dict[str, list[Callable[[Expr], bool]]] = {}
        for v, c in self.conditions:
            checks.setdefault(v, []).append(CONDITIONS[c])
        if not checks:
            return None

        def guard(name: str, value: Expr) -> bool:
            return all(check(value) for check in checks.get(name, ()))

        return guard

    def apply(self, subject: Expr) -> Expr | None:
        """The rewritten expression, or None when the rule does not apply."""
        if self.function is not None:  # its work is charged by the nodes it builds
            return self.function(subject)
        # matching is work of the derivation's budget (a long product or sum costs more)
        charge(subject, 1 + len(subject.children) // 16)
        for b in self.matches(subject):
            return instantiate(self.rhs, b)  # type: ignore[arg-type]
        return None


def instantiate(template: Expr, bindings: Bindings) -> Expr:
    """Replace pattern variables by their bindings and resolve the template's own sizes."""
    dims = Dims()
    opaque: set[int] = set()
    filler = _filler(template)
    filled = filler(bindings, dims, opaque)
    if template not in _OWN_SIZES:
        # Without sizes of its own the instance is typed as built: its type check finds
        # again the nodes just built and counted (at most the template's size; the bound
        # values are not entered), which is no new work of the derivation's budget. A
        # failing check is run again, counted, for the error it reports.
        with unbudgeted():
            try:
                _TemplateCheck(Dims(), opaque).elaborate(filled)
                return filled
            except MatcalcError:
                pass
    inference = _TemplateInference(dims, opaque)
    try:
        typed = inference.elaborate(filled)
    except RewriteError:  # the derivation's budget is spent: not a property of the rule
        raise
    except MatcalcError as err:
        raise RuleError(f"a rule produced an ill-typed result: {err.message}") from None
    # Only the template's own I, 1 and 0 got fresh sizes; bound sub-expressions are typed.
    return inference.finish(typed, {}) if next(dims.counter) > 1 else typed


Filler = Callable[[Bindings, Dims, set[int]], Expr]
"""A template compiled: its instance for the bindings, with fresh sizes for its own I, 1
and 0 (numbered in the order of the template's text), the ids of bound values noted."""

_FILLERS: dict[Expr, Filler] = {}  # one per template of the rules loaded (never trimmed)
_OWN_SIZES: set[Expr] = set()  # the templates with an I, 1 or 0 of their own


def _filler(template: Expr) -> Filler:
    """The compiled form of ``template`` (the type tests of each node done once per rule,
    not once per application: rule templates are instantiated tens of thousands of times
    in a large derivation)."""
    filler = _FILLERS.get(template)
    if filler is None:
        if any(isinstance(n, (Identity, Ones, Zero)) for n in template.walk()):
            _OWN_SIZES.add(template)
        filler = _FILLERS[template] = _compile_template(template)
    return filler


def _compile_template(e: Expr) -> Filler:
    if isinstance(e, Symbol):
        name = e.name

        def variable(bindings: Bindings, _dims: Dims, opaque: set[int]) -> Expr:
            value = bindings.get(name)
            if value is None:  # not a pattern variable of this rule: a name of its own
                return e
            opaque.add(id(value))
            return value

        return variable
    if isinstance(e, Identity):
        return lambda _b, dims, _o: Identity(dims.fresh())
    if isinstance(e, Ones):
        return lambda _b, dims, _o: Ones(dims.fresh())
    if isinstance(e, Zero):
        if e.dims == (1, 1):
            return lambda _b, _d, _o: Zero((1, 1))
        return lambda _b, dims, _o: Zero((dims.fresh(), dims.fresh()))
    if isinstance(e, Differential):
        inner = _compile_template(e.var)
        return lambda b, d, o: Differential(inner(b, d, o))  # type: ignore[arg-type]
    if not e.children:
        return lambda _b, _d, _o: e
    parts = [_compile_template(c) for c in e.children]
    cls, fields = type(e), e.__match_args__  # type: ignore[attr-defined]
    if fields == e._children and len(fields) == 1 and isinstance(getattr(e, fields[0]), tuple):
        return lambda b, d, o: cls(tuple([p(b, d, o) for p in parts]))  # Add, Mul, ...
    if fields == e._children and not any(isinstance(getattr(e, f), tuple) for f in fields):
        return lambda b, d, o: cls(*[p(b, d, o) for p in parts])  # Transpose, Pow, Kron, ...
    return lambda b, d, o: e.rebuild(tuple([p(b, d, o) for p in parts]))


class _TemplateInference(Inference):
    """Shape inference that trusts bound sub-expressions (they are typed already)."""

    def __init__(self, dims: Dims, opaque: set[int]) -> None:
        super().__init__(dims, lambda _: None, None, set())
        self.opaque = opaque

    def elaborate(self, e: Expr) -> Expr:
        if id(e) in self.opaque:
            return e
        # a template has no text: no occurrence to track for an error's position (the
        # cursor of Inference.elaborate), one call per node fewer
        return getattr(self, "_elab_" + type(e).__name__)(e)

    def _ones_here(self, e: Expr) -> bool:
        return False  # templates spell the all-ones vector explicitly


class _TemplateCheck(_TemplateInference):
    """The type check of a template's instance alone: a failure's message is not written
    (it would print the bound values); ``instantiate`` asks the full inference for it."""

    def is_scalar(self, e: Expr) -> bool:
        # 1 is a class of its own (no inference variable joins it): a scalar shape needs
        # no look-up in the union-find
        return e.shape == (1, 1) or Inference.is_scalar(self, e)

    def _show(self, e: Expr) -> str:
        return ""

    def _shape_desc(self, e: Expr) -> str:
        return ""


PythonRule = TypeVar("PythonRule", bound=Callable[..., "Expr | None"])


def applies_to(*node_types: type[Expr]) -> Callable[[PythonRule], PythonRule]:
    """Declare the node types a Python rule can rewrite (the type of the part an index
    looks at: the node itself for simplification and differential rules), so that the
    index never calls it on other nodes; an undeclared Python rule is tried on every node."""
    def declare(function: PythonRule) -> PythonRule:
        function.node_types = frozenset(t.__name__ for t in node_types)  # type: ignore[attr-defined]
        return function

    return declare


def head(e: Expr) -> tuple[str, str | None]:
    """The kind of node at the top of ``e``: its type, and the name of a call."""
    return (type(e).__name__, e.name if isinstance(e, Call) else None)


def index_rules(rules: tuple[Rule, ...], focus: Callable[[Expr], Expr | None]
                ) -> Callable[[Expr], tuple[Rule, ...]]:
    """A lookup of the rules that may apply, by the head of the ``focus`` of the subject.

    ``focus`` picks the part of a pattern (and of a subject) that discriminates, e.g. the
    whole expression for differential rules, or L in tr(G^T L) for identification rules.
    A rule whose focus is a pattern variable, or a Python rule, may apply to anything.
    Order is preserved, so the first rule that applies is the same as without the index.
    """
    keyed: list[tuple[object, Rule]] = []
    for rule in rules:
        part = focus(rule.lhs) if rule.function is None else None
        wildcard = part is None or (isinstance(part, Symbol) and part.name in rule.variables)
        node_types = getattr(rule.function, "node_types", None)
        keyed.append((node_types if node_types is not None else None if wildcard else
                      head(part), rule))
    cache: dict[tuple[str, str | None] | None, tuple[Rule, ...]] = {}

    def applies(k: object, key: tuple[str, str | None] | None) -> bool:
        if k is None or key is None:
            return True
        return key[0] in k if isinstance(k, frozenset) else k == key

    def lookup(subject: Expr) -> tuple[Rule, ...]:
        part = focus(subject)
        key = head(part) if part is not None else None
        hit = cache.get(key)
        if hit is None:
            hit = tuple(r for k, r in keyed if applies(k, key))
            cache[key] = hit
        return hit

    return lookup


# ---------------------------------------------------------------------------- rule files

_HEADER = re.compile(r"^([a-z][a-z0-9_]*)\s*:\s*(.*)$")


@cache
def load_rules(family: str) -> tuple[Rule, ...]:
    """The rules of ``rules/<family>.rules``, in file order (read outside the budget of
    the derivation that first needs them: loading is no part of its work)."""
    with unbudgeted():
        return _read_rules(family)


def _read_rules(family: str) -> tuple[Rule, ...]:
    path = data_path("rules") / f"{family}.rules"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RuleError(f"cannot read rule file {path}: {err}") from None
    return tuple(parse_rules(text, family, str(path)))


def parse_rules(text: str, family: str, origin: str = "<rules>") -> Iterator[Rule]:
    """Read a rule file: blocks of ``name: lhs = rhs`` with ``where``, ``if`` and ``source`` lines.

    A block whose identity line is ``python module.function`` names a rule written in Python.
    """
    block: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw[0].isspace():
            if block:
                yield _rule_from_block(block, family, origin)
            block = []
        block.append((number, line.strip()))
    if block:
        yield _rule_from_block(block, family, origin)


def _rule_from_block(block: list[tuple[int, str]], family: str, origin: str) -> Rule:
    number, head = block[0]
    m = _HEADER.match(head)
    if not m:
        raise RuleError(f"{origin}:{number}: expected `name: identity`, got {head!r}")
    name, identity = m.group(1), m.group(2)
    where, conditions, source = "", [], ""
    for n, line in block[1:]:
        key, _, value = line.partition(" ")
        if key == "where":
            where = value
        elif key == "if":
            for cond in value.split(","):
                words = cond.split()
                if len(words) != 2 or words[1] not in CONDITIONS:
                    raise RuleError(f"{origin}:{n}: bad condition {cond.strip()!r}",
                                    hint="conditions: " + ", ".join(sorted(CONDITIONS)))
                conditions.append((words[0], words[1]))
        elif key == "source:":
            source = value
        else:
            raise RuleError(f"{origin}:{n}: expected where, if or source:, got {line!r}")
    if not source:
        raise RuleError(f"{origin}:{number}: rule {name} has no source")
    if identity.startswith("python "):
        function = _python_rule(identity.split()[1], origin, number)
        return Rule(name, family, Zero(), None, identity, source, frozenset(), tuple(conditions),
                    function, where)
    lhs, rhs, variables = _parse_identity(identity, where, origin, number)
    return Rule(name, family, lhs, rhs, identity, source, variables, tuple(conditions), None,
                where)


def _python_rule(dotted: str, origin: str, number: int) -> Callable[..., Expr | None]:
    module, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise RuleError(f"{origin}:{number}: cannot load Python rule {dotted}: {err}") from None


_D_CALL = re.compile(r"\bd\(([A-Za-z][A-Za-z0-9_]*)\)")


def _parse_identity(identity: str, where: str, origin: str, number: int):
    from .parse import parse

    if "=" not in identity:
        raise RuleError(f"{origin}:{number}: an identity needs `=`")
    left, right = identity.split("=", 1)
    outer = re.fullmatch(r"\s*d\((.*)\)\s*", left)
    if outer:  # `d(pattern) = differential`: the pattern is what the rule applies to
        left = outer.group(1)
    decls = _declarations(where)
    variables = set(decls)
    # `d(U)` in a rule is the differential of the pattern variable U.
    diffs = set(_D_CALL.findall(right)) | set(_D_CALL.findall(left))
    for v in diffs:
        decls.setdefault(v, _default_kind(v))
        decls[f"d_{v}"] = decls[v]
        variables.add(v)
    left, right = _D_CALL.sub(r"d_\1", left), _D_CALL.sub(r"d_\1", right)
    decl_text = ", ".join(f"{k}: {v}" for k, v in decls.items())
    try:
        lhs = parse(left.strip() + (f" where {decl_text}" if decl_text else ""))
        rhs = parse(right.strip() + (f" where {decl_text}" if decl_text else ""))
    except MatcalcError as err:
        raise RuleError(f"{origin}:{number}: {err}") from None
    lhs, rhs = _mark_differentials(lhs), _mark_differentials(rhs)
    # Every name in a rule is a pattern variable (I and 1 are constants, not names).
    variables = {s.name for s in lhs.free_symbols()} | {s.name for s in rhs.free_symbols()}
    return lhs, rhs, frozenset(variables)


def _declarations(where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    depth, current = 0, ""
    for ch in where + ",":
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            if current.strip():
                name, _, kind = current.partition(":")
                out[name.strip()] = kind.strip()
            current = ""
        else:
            current += ch
    return out


def _default_kind(name: str) -> str:
    from .names import is_greek

    if is_greek(name):
        return "scalar"
    return "matrix" if name[0].isupper() else "vector"


def _mark_differentials(e: Expr) -> Expr:
    if isinstance(e, Symbol) and e.name.startswith("d_"):
        return Differential(Symbol(e.name[2:], e.dims, e.props))
    if not e.children:
        return e
    return e.rebuild(tuple(_mark_differentials(c) for c in e.children))


# ---------------------------------------------------------------------------- strategies


@dataclass
class Step:
    """One rule application: which rule, from where, and the expressions around it."""

    rule: str
    source: str
    before: Expr
    after: Expr
    phase: str = ""


def step_lhs(step: Step) -> Expr:
    """What a step rewrote, as a reader expects it: ``d(A x)`` for a differential rule."""
    if step.phase == "differential":
        return Differential(step.before)  # type: ignore[arg-type]
    return step.before


@dataclass
class Trace:
    """Every rule application of a derivation, with a step budget."""

    budget: int = 100_000
    steps: list[Step] = field(default_factory=list)
    record: bool = True

    def add(self, rule: Rule, before: Expr, after: Expr, phase: str = "") -> None:
        self.budget -= 1
        if self.budget < 0:
            from .simplify import excerpt

            last = ", ".join(s.rule for s in self.steps[-5:])
            raise RewriteError(
                f"the rewrite step budget is exhausted at `{excerpt(before)}`",
                hint=f"the last rules applied were: {last}",
            )
        charge(before)
        if self.record:
            self.steps.append(Step(rule.name, rule.source, before, after, phase))


Strategy = Callable[[Expr], Expr]


def apply_first(rules: tuple[Rule, ...], subject: Expr, trace: Trace, phase: str
                ) -> Expr | None:
    """The result of the first rule that applies to ``subject`` (recorded in ``trace``).

    A rule whose result would be ill-typed for this subject (RuleError, ShapeError) does
    not apply; the next one is tried.
    """
    for rule in rules:
        try:
            new = rule.apply(subject)
        except RewriteError:  # the derivation's budget is spent: no other rule may try
            raise
        except MatcalcError:
            continue
        if new is not None:
            trace.add(rule, subject, new, phase)
            return new
    return None


def first_of(
    rules: tuple[Rule, ...] | Callable[[Expr], tuple[Rule, ...]],
    trace: Trace,
    phase: str = "",
) -> Strategy:
    """Apply the first rule that changes the expression (SymPy's ``do_one``).

    ``rules`` is a tuple, or a lookup from an expression to the rules that may apply to it
    (see ``index_rules``).
    """
    candidates = rules if callable(rules) else (lambda _e: rules)

    def step(e: Expr) -> Expr:
        for rule in candidates(e):
            new = rule.apply(e)
            if new is not None and new != e:
                trace.add(rule, e, new, phase)
                return new
        return e

    return step


def exhaust(strategy: Strategy) -> Strategy:
    """Apply until nothing changes (the trace's budget stops a rule set that loops)."""

    def run(e: Expr) -> Expr:
        while True:
            new = strategy(e)
            if new == e:
                return e
            e = new

    return run


def bottom_up(strategy: Strategy) -> Strategy:
    """Apply to every node, children first (once per distinct node of the DAG, iteratively)."""

    def run(e: Expr) -> Expr:
        return map_bottom_up(e, lambda _node, rebuilt: strategy(rebuilt))

    return run
