"""Differentiation: differential rules per operator, identification of gradients, backprop order."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import replace
from fractions import Fraction
from functools import cache, lru_cache

from .budget import working_on
from .dims import Dim
from .errors import UnsupportedError
from .expr import (
    Add,
    Call,
    Differential,
    Expr,
    Identity,
    Kron,
    Mul,
    Number,
    Ones,
    Pow,
    Symbol,
    Transpose,
    Zero,
    fold_dag,
    map_bottom_up,
)
from .rewrite import (
    Rule,
    Step,
    Trace,
    apply_first,
    bottom_up,
    differentials_in,
    exhaust,
    first_of,
    index_rules,
    is_constant,
    is_rank_deficient,
    load_rules,
)
from .shapes import MAX_MATRIX_POWER
from .simplify import Simplifier, is_zero, ones_of, prune_differentials, simplify
from .structured import project_gradient, unconstrained

ONE = Number(Fraction(1))


def differential_rules() -> tuple[Rule, ...]:
    """The rules of rules/differentials.rules."""
    return load_rules("differentials")


def adjoint_rules() -> tuple[Rule, ...]:
    """The rules of rules/adjoint.rules."""
    return load_rules("adjoint")


@cache
def differential_index():
    """Differential rules by the head of the node they differentiate."""
    return index_rules(differential_rules(), lambda e: e)


def _linear_part(e: Expr) -> Expr | None:
    """L in tr(G^T L)."""
    if isinstance(e, Call) and e.name == "tr" and isinstance(e.args[0], Mul):
        factors = e.args[0].factors
        if len(factors) == 2:
            return factors[1]
    return None


@cache
def adjoint_index():
    """Identification rules by the head of L in tr(G^T L)."""
    return index_rules(adjoint_rules(), _linear_part)


@cache
def canonical_rules() -> tuple[Rule, ...]:
    """The rules of rules/canonical.rules and rules/kronecker.rules, patterns in canonical form."""
    return tuple(
        replace(r, lhs=simplify(r.lhs), rhs=simplify(r.rhs)) if r.rhs is not None else r
        for r in load_rules("canonical") + load_rules("kronecker")
    )


@cache
def kronecker_index():
    """The rules of rules/kronecker.rules (commutation matrix identities) by head."""
    return index_rules(tuple(
        replace(r, lhs=simplify(r.lhs), rhs=simplify(r.rhs)) if r.rhs is not None else r
        for r in load_rules("kronecker")), lambda e: e)


def tidy_kronecker(e: Expr, trace: Trace, simplifier: Simplifier | None = None) -> Expr:
    """A simplified result with the commutation matrix identities applied (K moved right,
    K K^-1 cancelled, K^T = K_{n,m}), to a fixed point (``simplifier``'s memo reused)."""
    strategy = bottom_up(exhaust(first_of(kronecker_index(), trace, "kronecker")))
    for _ in range(8):
        new = simplify(strategy(e), simplifier)
        if new == e:
            break
        e = new
    return e


@cache
def canonical_index():
    """Canonical rules by the head of the expression they rewrite."""
    return index_rules(canonical_rules(), lambda e: e)


def canonicalize(e: Expr, trace: Trace) -> Expr:
    """Canonical form of a formula: simplified, with the canonical identities applied (the
    rules it took are replayed into ``trace``)."""
    result, steps = _canonical_form(e)
    trace.budget -= len(steps)
    if trace.record:
        trace.steps.extend(replace(step) for step in steps)
    return result


@lru_cache(maxsize=256)  # formulas, not sub-expressions: a few hundred is plenty
def _canonical_form(e: Expr) -> tuple[Expr, tuple[Step, ...]]:
    """The canonical form of ``e`` and the rule applications that reach it, remembered per
    (hash-consed) formula: deriving one formula for several variables, or again, does not
    canonicalise it again (a third of a warm gradient's time)."""
    trace = Trace()
    simplifier = Simplifier()  # one memo for both passes: what the rules left is not redone
    e = simplifier(e)
    e = bottom_up(exhaust(first_of(canonical_index(), trace, "canonical form")))(e)
    return simplifier(e), tuple(trace.steps)


# ---------------------------------------------------------------------------- python rules


def differential_of_matrix_power(node: Expr) -> Expr | None:
    """d(U^k) = sum_i U^i dU U^(k-1-i) for an integer k >= 2; U^-k = (U^-1)^k."""
    if not (isinstance(node, Pow) and not node.base.is_scalar):
        return None
    k = node.exponent
    if not (isinstance(k, Number) and k.value.denominator == 1) or k.value in (1, -1, 0):
        return None
    power = int(k.value)
    if abs(power) > MAX_MATRIX_POWER:
        raise UnsupportedError(f"the matrix power `{node}` is too large to differentiate "
                               f"(at most {MAX_MATRIX_POWER})",
                               hint="d(X^k) is a sum of k terms")
    base = node.base if power > 0 else Pow(node.base, Number(Fraction(-1)))
    power = abs(power)
    d_base = Differential(base)  # type: ignore[arg-type]

    def power_of(i: int) -> list[Expr]:  # U^i as one factor (never i copies of U)
        return [] if i == 0 else [base] if i == 1 else [Pow(base, Number(Fraction(i)))]

    terms = []
    for i in range(power):
        factors = [*power_of(i), d_base, *power_of(power - 1 - i)]
        terms.append(factors[0] if len(factors) == 1 else Mul(tuple(factors)))
    return Add(tuple(terms))


def differential_of_trace_power(node: Expr) -> Expr | None:
    """d(tr(U^k)) = k tr(U^(k-1) dU) for an integer k: one term, not the k of d(U^k)."""
    if not (isinstance(node, Call) and node.name == "tr" and isinstance(node.args[0], Pow)):
        return None
    power = node.args[0]
    k = power.exponent
    if power.base.is_scalar or not (isinstance(k, Number) and k.value.denominator == 1):
        return None
    factors = [Differential(power.base)]  # type: ignore[arg-type]
    if k.value != 1:
        factors.insert(0, Pow(power.base, Number(k.value - 1)))
    return Mul((k, Call("tr", (Mul(tuple(factors)) if len(factors) > 1 else factors[0],))))


def adjoint_of_sum(subject: Expr) -> Expr | None:
    """tr(G^T (L1 + ... + Ln)) = tr(G^T L1) + ... + tr(G^T Ln) when no term is broadcast.

    One step for all n terms: splitting one term at a time would rebuild the remaining sum
    n times (quadratic), and the broadcast rules would try every split of it (cubic).
    """
    parts = trace_pair(subject)
    if parts is None or not isinstance(parts[1], Add):
        return None
    lin = parts[1]
    if any(t.shape != lin.shape for t in lin.terms):
        return None
    head = subject.args[0].factors[0]  # type: ignore[attr-defined]
    return Add(tuple(Call("tr", (Mul((head, t)),)) for t in lin.terms))


def trace_pair(subject: Expr) -> tuple[Expr, Expr] | None:
    """(G, L) for tr(G^T L), the form the adjoint rules work on; None for anything else."""
    if not (isinstance(subject, Call) and subject.name == "tr"):
        return None
    inner = subject.args[0]
    if not (isinstance(inner, Mul) and len(inner.factors) == 2):
        return None
    head, lin = inner.factors
    return (head.arg, lin) if isinstance(head, Transpose) else None


def adjoint_of_broadcast(subject: Expr) -> Expr | None:
    """tr(G^T l) for an array G and a scalar l broadcast to G's shape: tr((1^T G 1)^T l)."""
    parts = trace_pair(subject)
    if parts is None or not (parts[1].is_scalar and not parts[0].is_scalar):
        return None
    g, lin = parts
    total: Expr = Mul((Transpose(Ones(g.shape[0])), g))
    if g.shape[1] != 1:
        total = Mul((Transpose(Ones(g.shape[0])), g, Ones(g.shape[1])))
    return Call("tr", (Mul((Transpose(total), lin)),))


def adjoint_of_kronecker(subject: Expr) -> Expr | None:
    """tr(G^T (A ⊗ L)) and tr(G^T (L ⊗ B)) as tr(H^T L) for a constant factor and a linear one.

    Vectors: a ⊗ l = (a ⊗ I) l and l ⊗ b = (I ⊗ b) l. Matrices (A m×n, B p×q, G read as
    m×n blocks G_ij of size p×q): the gradient through the left factor has entries
    tr(G_ij^T B), (I_m ⊗ vec(I_p)^T)(G ⊗ I_p)(I_n ⊗ vec(B)); through the right factor it is
    sum_ij A_ij G_ij, (vec(A)^T ⊗ I_p)(I_n ⊗ G)(vec(I_n) ⊗ I_q)."""
    parts = trace_pair(subject)
    if parts is None or not isinstance(parts[1], Kron):
        return None
    g, lin = parts
    left, right = lin.left, lin.right
    if is_constant(left) == is_constant(right):
        return None
    if left.shape[1] == 1 and right.shape[1] == 1:
        if is_constant(left):
            spread, target = Kron(Transpose(left), Identity(right.shape[0])), right
        else:
            spread, target = Kron(Identity(left.shape[0]), Transpose(right)), left
        return Call("tr", (Mul((Transpose(Mul((spread, g))), target)),))
    (m, n), (p, q) = left.shape, right.shape
    if is_constant(right):
        factors = (_kron(Identity(m), Transpose(_vec_of_identity(p))),
                   _kron(g, Identity(p)),
                   _kron(Identity(n), Call("vec", (right,))))
        target = left
    else:
        factors = (_kron(Transpose(Call("vec", (left,))), Identity(p)),
                   _kron(Identity(n), g),
                   _kron(_vec_of_identity(n), Identity(q)))
        target = right
    kept = tuple(f for f in factors if not _is_unit(f))
    gathered = kept[0] if len(kept) == 1 else Mul(kept)
    return Call("tr", (Mul((Transpose(gathered), target)),))


def _kron(left: Expr, right: Expr) -> Expr:
    """left ⊗ right, without a 1×1 identity factor (I_1 ⊗ X = X ⊗ I_1 = X)."""
    if _is_unit(left):
        return right
    return left if _is_unit(right) else Kron(left, right)


def _is_unit(e: Expr) -> bool:
    """Whether e is the 1×1 identity I_1 or its transpose."""
    return (e.arg if isinstance(e, Transpose) else e) == Identity(1)


def _vec_of_identity(n: Dim) -> Expr:
    """vec(I_n), which is I_1 (the number 1) when n is 1."""
    return Identity(1) if n == 1 else Call("vec", (Identity(n),))


def adjoint_of_mean(subject: Expr) -> Expr | None:
    """tr(g mean(L)) = tr(H^T L) with H = g 1 1^T / (m n) for an m×n L; the number of
    entries is written with all-ones vectors, 1^T 1 = n."""
    if not (isinstance(subject, Call) and subject.name == "tr"):
        return None
    inner = subject.args[0]
    if not (isinstance(inner, Mul) and len(inner.factors) == 2):
        return None
    head, lin = inner.factors
    if not (isinstance(head, Transpose) and isinstance(lin, Call) and lin.name == "mean"):
        return None
    arg = lin.args[0]
    if arg.is_scalar:
        return Call("tr", (Mul((head, arg)),))
    rows, cols = arg.shape
    sizes = [Mul((Transpose(Ones(d)), Ones(d))) for d in (rows, cols) if d != 1]
    count = sizes[0] if len(sizes) == 1 else Mul(tuple(sizes))
    spread = Mul((head.arg, Pow(count, Number(Fraction(-1))), ones_of(arg.shape)))
    return Call("tr", (Mul((Transpose(spread), arg)),))


def adjoint_of_vec(subject: Expr) -> Expr | None:
    """tr(G^T vec(L)) = tr(H^T L) with H = unvec(G) = (vec(I_n)^T ⊗ I_m)(I_n ⊗ G) for an
    m×n matrix L (Magnus & Neudecker (2019) ch. 2: the inverse of vec as a product)."""
    parts = trace_pair(subject)
    if parts is None or not (isinstance(parts[1], Call) and parts[1].name == "vec"):
        return None
    g, lin = parts
    rows, cols = lin.args[0].shape
    unvec = Mul((Kron(Transpose(Call("vec", (Identity(cols),))), Identity(rows)),
                 Kron(Identity(cols), g)))
    return Call("tr", (Mul((Transpose(unvec), lin.args[0])),))


# ---------------------------------------------------------------------------- the engine


class Differentiator:
    """Reverse-mode differentiation over the expression DAG, every step a recorded rule."""

    def __init__(self, trace: Trace | None = None) -> None:
        self.trace = trace or Trace()
        self.simplifier = Simplifier()
        self._depends: dict[Expr, bool] = {}
        self._size: dict[Expr, int] = {}

    def depends(self, e: Expr, wrt: Expr) -> bool:
        """Whether ``e`` contains ``wrt`` (memoised over the DAG, iteratively)."""
        return fold_dag(e, lambda node, inner: node == wrt or any(inner), self._depends)

    def size(self, e: Expr) -> int:
        """Nodes of the tree of ``e`` (memoised over the DAG, iteratively)."""
        return fold_dag(e, lambda _node, inner: 1 + sum(inner), self._size)

    def gradient(self, f: Expr, wrt: Symbol) -> Expr:
        """The gradient of scalar ``f`` with respect to ``wrt`` (shape of ``wrt``)."""
        if wrt.props:
            # LANGUAGE.md section 6: differentiate with respect to an unconstrained twin, so
            # that S^T = S or 1^T q = 1 cannot change the result, evaluate the result where
            # wrt satisfies its declaration, and project it on the declared structure.
            plain = unconstrained(wrt)
            result = self.gradient(replace_symbol(f, wrt, plain), plain)
            return self.simplifier(project_gradient(replace_symbol(result, plain, wrt), wrt))
        f = canonicalize(f, self.trace)
        self._depends.clear()
        if not self.depends(f, wrt):
            return Zero(wrt.shape) if not wrt.is_scalar else Number(Fraction(0))
        cotangents: dict[Expr, list[Expr]] = {f: [ONE]}
        order = itertools.count()
        heap: list[tuple[int, int, Expr]] = [(-self.size(f), next(order), f)]
        result: Expr | None = None
        while heap:
            _, _, node = heapq.heappop(heap)
            working_on(node)
            g = self.simplifier(Add(tuple(cotangents.pop(node))))
            if node == wrt:
                result = g
                continue
            if is_zero(g) or not node.children:
                continue
            for child, h in self.backpropagate(node, g, wrt):
                if child not in cotangents:
                    cotangents[child] = []
                    heapq.heappush(heap, (-self.size(child), next(order), child))
                cotangents[child].append(h)
        if result is None:
            return Zero(wrt.shape) if not wrt.is_scalar else Number(Fraction(0))
        return self.simplifier(result)

    def differential(self, node: Expr) -> Expr:
        """d(node) by the first differential rule that applies, children as ``d(child)``."""
        new = apply_first(differential_index()(node), node, self.trace, "differential")
        if new is not None:
            return new
        singular = next((c for c in node.children if is_rank_deficient(c)), None)
        if singular is not None:
            det = isinstance(node, Call) and node.name == "det"
            zero = f"; `{node}` is 0 for every size above 1, and so is its derivative"
            square = singular.shape[0] == singular.shape[1]
            need, lacks = ("an invertible matrix", "singular") if square else (
                "a matrix of full rank", "rank-deficient")
            raise UnsupportedError(
                f"`{node}` needs {need}, but `{singular}` has rank one (a product through a "
                f"vector), so it is {lacks} for every size above 1{zero if det else ''}",
                hint="declare the size (for example `where u: vector(3)`): the determinant of "
                "a rank-one matrix of a known size above 1 simplifies to 0 (rules/simplify.rules"
                ": simplify_det_rank_deficient)" if det else
                "the function is not defined at a singular matrix; check the formula" if square
                else f"`{node}` has no derivative where its argument loses rank; check the "
                "formula",
                about=node)
        raise UnsupportedError(f"no differential rule applies to `{node}`",
                               hint="this operator cannot be differentiated by matcalc yet",
                               about=node)

    def backpropagate(self, node: Expr, g: Expr, wrt: Expr):
        """Pairs (child, gradient contribution) from the gradient ``g`` of ``node``."""
        d_node = self.differential(node)
        children: list[Expr] = []
        for n in differentials_in(d_node):
            if n.var not in children and self.depends(n.var, wrt):
                children.append(n.var)
        for child in children:
            linear = prune_differentials(
                d_node, lambda d, c=child: d.var == c, self.simplifier
            )
            if is_zero(linear):
                continue
            yield child, self.identify(g, linear, child)

    def identify(self, g: Expr, linear: Expr, child: Expr) -> Expr:
        """H such that tr(g^T linear) = tr(H^T d(child)), by the adjoint rules."""
        target = Differential(child)  # type: ignore[arg-type]
        pending = [(g, linear)]
        found: list[Expr] = []
        rules_for = adjoint_index()
        while pending:
            cot, lin = pending.pop()
            # a scalar differential broadcast into an array is not yet the gradient
            if lin == target and cot.shape == target.shape:
                found.append(cot)
                continue
            subject = Call("tr", (Mul((Transpose(cot), lin)),))
            new = apply_first(rules_for(subject), subject, self.trace, "identification")
            if new is None:
                raise UnsupportedError(
                    f"cannot bring tr(G^T {lin}) to the form tr(H^T d{child}): "
                    f"no identification rule for `{lin}`",
                    hint="the gradient through this operator is not supported yet",
                )
            for term in new.terms if isinstance(new, Add) else (new,):
                pending.append(_split_trace(term))
        return self.simplifier(Add(tuple(found))) if len(found) > 1 else self.simplifier(found[0])


def replace_symbol(e: Expr, old: Symbol, new: Expr) -> Expr:
    """``e`` with every occurrence of the variable ``old`` replaced by ``new``."""
    return map_bottom_up(e, lambda node, rebuilt: new if node == old else rebuilt)


def _split_trace(term: Expr) -> tuple[Expr, Expr]:
    """tr(G^T L) -> (G, L)."""
    parts = trace_pair(term)
    assert parts is not None
    return parts
