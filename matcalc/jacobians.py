"""Jacobians by forward differentials: d vec(y) = J d vec(x), read off by rules/jacobian.rules."""

from __future__ import annotations

from functools import cache

from .calculus import Differentiator, canonicalize
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
    Symbol,
    Transpose,
    Zero,
    kind_of,
)
from .rewrite import Rule, Trace, apply_first, index_rules, is_constant, load_rules
from .simplify import is_zero, simplify


def jacobian_rules() -> tuple[Rule, ...]:
    """The rules of rules/jacobian.rules."""
    return load_rules("jacobian")


def _vectorized_part(e: Expr) -> Expr | None:
    """L in M vec(L)."""
    parts = _vec_subject(e)
    return parts[1] if parts else None


@cache
def jacobian_index():
    """Jacobian rules by the head of L in M vec(L)."""
    return index_rules(jacobian_rules(), _vectorized_part)


def _vec_subject(subject: Expr) -> tuple[Expr, Expr] | None:
    """M vec(L) -> (M, L)."""
    if isinstance(subject, Mul) and len(subject.factors) == 2:
        m, v = subject.factors
        if isinstance(v, Call) and v.name == "vec":
            return m, v.args[0]
    return None


def _split_linear(product: Expr) -> tuple[list[Expr], Expr, list[Expr]] | None:
    """A product as (constant factors, the one linear factor, constant factors)."""
    if not isinstance(product, Mul):
        return None
    factors = list(product.factors)
    linear = [i for i, f in enumerate(factors) if not is_constant(f)]
    if len(linear) != 1:
        return None
    j = linear[0]
    return factors[:j], factors[j], factors[j + 1:]


def _product(factors: list[Expr]) -> Expr:
    return factors[0] if len(factors) == 1 else Mul(tuple(factors))


def left_matrix_factor(subject: Expr) -> Expr | None:
    """M vec(A L) = M (I ⊗ A) vec(L) for a matrix L (Matrix Cookbook eq. 520)."""
    parts = _vec_subject(subject)
    if parts is None:
        return None
    m, lin = parts
    split = _split_linear(lin)
    if split is None or not split[0]:
        return None
    left, factor, right = split
    rest = _product([factor, *right])
    if kind_of(rest.shape) != "matrix" or any(f.is_scalar for f in left):
        return None
    a = _product(left)
    return Mul((Mul((m, Kron(Identity(rest.shape[1]), a))), Call("vec", (rest,))))


def right_factor(subject: Expr) -> Expr | None:
    """M vec(L B) = M (B^T ⊗ I) vec(L) (Matrix Cookbook eq. 520)."""
    parts = _vec_subject(subject)
    if parts is None:
        return None
    m, lin = parts
    split = _split_linear(lin)
    if split is None or split[0] or not split[2]:
        return None
    _, factor, right = split
    if factor.is_scalar or any(f.is_scalar for f in right):
        return None
    b = _product(right)
    return Mul((Mul((m, Kron(Transpose(b), Identity(factor.shape[0])))), Call("vec", (factor,))))


class JacobianBuilder:
    """Forward differentials over the DAG, then the Jacobian read off rule by rule."""

    def __init__(self, trace: Trace | None = None) -> None:
        self.trace = trace or Trace()
        self.engine = Differentiator(self.trace)
        self.memo: dict[Expr, Expr] = {}

    def forward(self, e: Expr, wrt: Symbol) -> Expr:
        """d(e), linear in d(wrt), every other differential zero."""
        if e == wrt:
            return Differential(wrt)
        if not self.engine.depends(e, wrt):
            return Zero(e.shape) if not e.is_scalar else Number(0)
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        d_node = self.engine.differential(e)

        def substitute(x: Expr) -> Expr:
            if isinstance(x, Differential):
                return self.forward(x.var, wrt)
            if not x.children:
                return x
            return x.map_children(substitute)

        result = simplify(substitute(d_node))
        self.memo[e] = result
        return result

    def jacobian(self, y: Expr, wrt: Symbol) -> Expr:
        """J with d vec(y) = J d vec(wrt) (numerator layout; m×n for vectors)."""
        y = canonicalize(y, self.trace)
        return self.read_off(self.forward(y, wrt), y, wrt)

    def read_off(self, dy: Expr, y: Expr, wrt: Symbol) -> Expr:
        """J from d vec(y) = J d vec(wrt), given ``dy`` linear in d(wrt)."""
        rows = 1 if y.is_scalar else _numel(y)
        cols = 1 if wrt.is_scalar else _numel(wrt)
        if is_zero(dy):
            return Number(0) if rows == cols == 1 else Zero((rows, cols))
        target = Differential(wrt)
        start: Expr = Number(1) if y.is_scalar else Identity(rows)
        pending = [(start, dy)]
        found: list[Expr] = []
        while pending:
            m, lin = pending.pop()
            if lin == target:
                found.append(m)
                continue
            subject = Mul((m, Call("vec", (lin,))))
            new = self._apply(subject, lin)
            for term in new.terms if isinstance(new, Add) else (new,):
                parts = _vec_subject(term)
                assert parts is not None
                pending.append((parts[0], simplify(parts[1])))
        return simplify(Add(tuple(found)) if len(found) > 1 else found[0])

    def _apply(self, subject: Expr, lin: Expr) -> Expr:
        new = apply_first(jacobian_index()(subject), subject, self.trace, "identification")
        if new is not None:
            return new
        raise UnsupportedError(
            f"cannot bring `{lin}` to the form J d vec(x)",
            hint="this operator has no Jacobian identification rule yet (for example a "
            "transpose of a matrix, which needs a commutation matrix)",
        )


def _numel(e: Expr):
    from .expr import mul_dims

    return mul_dims(e.shape[0], e.shape[1])
