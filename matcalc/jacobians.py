"""Jacobians by forward differentials: d vec(y) = J d vec(x), read off by rules/jacobian.rules."""

from __future__ import annotations

from functools import cache

from .budget import working_on
from .calculus import Differentiator, canonicalize, replace_symbol, tidy_kronecker
from .commutation import commutation, kron, product
from .errors import RewriteError, UnsupportedError
from .expr import (
    Add,
    Call,
    Differential,
    Expr,
    Hadamard,
    Identity,
    Kron,
    Mul,
    Number,
    Ones,
    Pow,
    Sylvester,
    Symbol,
    Transpose,
    Zero,
    fold_dag,
    mul_dims,
    postorder,
)
from .rewrite import (
    Rule,
    Trace,
    apply_first,
    has_differential,
    index_rules,
    is_constant,
    load_rules,
)
from .simplify import Simplifier, is_zero
from .structured import project_jacobian, projector, unconstrained


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


def jacobian_of_sum(subject: Expr) -> Expr | None:
    """M vec(L1 + ... + Ln) = M vec(L1) + ... + M vec(Ln) when no term is broadcast (one step)."""
    parts = _vec_subject(subject)
    if parts is None or not isinstance(parts[1], Add):
        return None
    m, lin = parts
    if any(t.shape != lin.shape for t in lin.terms):
        return None
    return Add(tuple(Mul((m, Call("vec", (t,)))) for t in lin.terms))


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
    if rest.is_scalar or any(f.is_scalar for f in left):
        return None
    a = _product(left)
    return Mul((product(m, kron(Identity(rest.shape[1]), a)), Call("vec", (rest,))))


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
    return Mul((product(m, kron(Transpose(b), Identity(factor.shape[0]))),
                Call("vec", (factor,))))


def transpose_factor(subject: Expr) -> Expr | None:
    """M vec(L^T) = M K_{m,n} vec(L) for L m×n (the definition of K)."""
    parts = _vec_subject(subject)
    if parts is None or not isinstance(parts[1], Transpose):
        return None
    m, lin = parts
    rows, cols = lin.arg.shape
    return Mul((product(m, commutation(rows, cols)), Call("vec", (lin.arg,))))


def sylvester_factor(subject: Expr) -> Expr | None:
    """M vec(sylvester(A, B, L)) = M (I_n ⊗ A + B^T ⊗ I_m)^-1 vec(L) for L m×n (the
    Kronecker sum of the equation A W + W B = L)."""
    parts = _vec_subject(subject)
    if parts is None or not isinstance(parts[1], Sylvester):
        return None
    m, lin = parts
    if not (is_constant(lin.a) and is_constant(lin.b)):
        return None
    rows, cols = lin.shape
    kronecker_sum = Add((kron(Identity(cols), lin.a), kron(Transpose(lin.b), Identity(rows))))
    return Mul((product(m, Pow(kronecker_sum, Number(-1))), Call("vec", (lin.c,))))


def kronecker_factor(subject: Expr) -> Expr | None:
    """M vec(A ⊗ B) with one side linear, by vec(A ⊗ B) = (I_n ⊗ K_{q,m} ⊗ I_p)(vec A ⊗ vec B)
    for A m×n, B p×q (Magnus & Neudecker, Theorem 3.10; Matrix Cookbook eq. 39 for d)."""
    parts = _vec_subject(subject)
    if parts is None or not isinstance(parts[1], Kron):
        return None
    m, lin = parts
    a, b = lin.left, lin.right
    if a.is_scalar or b.is_scalar:  # a Kronecker product with a scalar is a scaling
        return Mul((m, Call("vec", (Mul((a, b)),))))
    (rows_a, cols_a), (rows_b, cols_b) = a.shape, b.shape
    shuffle = kron(kron(Identity(cols_a), commutation(cols_b, rows_a)), Identity(rows_b))
    if is_constant(a):
        spread = kron(Call("vec", (a,)), Identity(mul_dims(rows_b, cols_b)))
        return Mul((product(m, shuffle, spread), Call("vec", (b,))))
    if is_constant(b):
        spread = kron(Identity(mul_dims(rows_a, cols_a)), Call("vec", (b,)))
        return Mul((product(m, shuffle, spread), Call("vec", (a,))))
    return None


def broadcast_sum(subject: Expr) -> Expr | None:
    """M vec(L + s) = M vec(L) + M 1 s for a scalar s added to every entry of an array."""
    parts = _vec_subject(subject)
    if parts is None or not isinstance(parts[1], Add) or parts[1].is_scalar:
        return None
    m, lin = parts
    scalars = [t for t in lin.terms if t.is_scalar]
    arrays = [t for t in lin.terms if not t.is_scalar]
    if not scalars:
        return None
    spread = Mul((m, Ones(_numel(lin))))
    terms = [Mul((spread, Call("vec", (s,)))) for s in scalars]
    if arrays:
        rest = arrays[0] if len(arrays) == 1 else Add(tuple(arrays))
        terms.insert(0, Mul((m, Call("vec", (rest,)))))
    return terms[0] if len(terms) == 1 else Add(tuple(terms))


def _vec_of_call(subject: Expr, name: str) -> tuple[Expr, Expr] | None:
    """(M, L) for M vec(name(L)): a function of the linear argument L."""
    parts = _vec_subject(subject)
    if parts is None or not (isinstance(parts[1], Call) and parts[1].name == name):
        return None
    return parts[0], parts[1].args[0]


def trace_factor(subject: Expr) -> Expr | None:
    """M vec(tr(L)) = M vec(I)^T vec(L) (Matrix Cookbook eq. 521: tr(A^T B) = vec(A)^T vec(B))."""
    parts = _vec_of_call(subject, "tr")
    if parts is None:
        return None
    m, inner = parts
    if inner.is_scalar:
        return Mul((m, Call("vec", (inner,))))
    row = Transpose(Call("vec", (Identity(inner.shape[0]),)))
    return Mul((product(m, row), Call("vec", (inner,))))


def sum_factor(subject: Expr) -> Expr | None:
    """M vec(sum(L)) = M 1^T vec(L): the sum of all entries."""
    parts = _vec_of_call(subject, "sum")
    if parts is None:
        return None
    m, inner = parts
    row = Transpose(Ones(_numel(inner)))
    return Mul((m if inner.is_scalar else Mul((m, row)), Call("vec", (inner,))))


def diagonal_selector(n) -> Expr:
    """W with vec(diag(v)) = W v for a vector v of size n: (I_n ⊗ 1_n) ⊙ (1_n ⊗ I_n)."""
    return Hadamard((Kron(Identity(n), Ones(n)), Kron(Ones(n), Identity(n))))


def diag_factor(subject: Expr) -> Expr | None:
    """M vec(diag(v)) = M W vec(v), and M vec(diag(L)) = M W^T vec(L) for a square L,
    with W = (I ⊗ 1) ⊙ (1 ⊗ I) the n²×n matrix whose column i is e_i ⊗ e_i."""
    parts = _vec_of_call(subject, "diag")
    if parts is None:
        return None
    m, inner = parts
    if inner.is_scalar:
        return Mul((m, Call("vec", (inner,))))
    n = inner.shape[0]
    w = diagonal_selector(n)
    selector = w if inner.shape[1] == 1 else Transpose(w)
    return Mul((Mul((m, selector)), Call("vec", (inner,))))


class JacobianBuilder:
    """Forward differentials over the DAG, then the Jacobian read off rule by rule."""

    def __init__(self, trace: Trace | None = None) -> None:
        self.trace = trace or Trace()
        self.engine = Differentiator(self.trace)
        self.memo: dict[Expr, Expr] = {}
        self.simplifier = Simplifier()  # one memo: shared sub-differentials simplified once
        self._warm = False

    def forward(self, e: Expr, wrt: Symbol) -> Expr:
        """d(e), linear in d(wrt), every other differential zero."""
        if e == wrt:
            return Differential(wrt)
        if not self.engine.depends(e, wrt):
            return Zero(e.shape) if not e.is_scalar else Number(0)
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        if not self._warm:  # children first, so that the recursion below stays shallow
            self._warm = True
            for node in postorder(e)[:-1]:
                self.forward(node, wrt)
        working_on(e)
        d_node = self.engine.differential(e)

        def substitute(x: Expr) -> Expr:
            if isinstance(x, Differential):
                return self.forward(x.var, wrt)
            if not has_differential(x):  # a constant operand: not visited
                return x
            return x.map_children(substitute)

        result = self.simplifier(substitute(d_node))
        self.memo[e] = result
        return result

    def jacobian(self, y: Expr, wrt: Symbol) -> Expr:
        """J with d vec(y) = J d vec(wrt) (numerator layout; m×n for vectors).

        With respect to a structured variable (LANGUAGE.md section 6) this is J P, J taken
        with independent entries where wrt has its structure, P the projector on it.
        """
        if wrt.props:
            plain = unconstrained(wrt)
            j = self.jacobian(replace_symbol(y, wrt, plain), plain)
            return tidy_kronecker(project_jacobian(replace_symbol(j, plain, wrt), wrt),
                                  self.trace, self.simplifier)
        y = canonicalize(y, self.trace)
        return self.read_off(self.forward(y, wrt), y, wrt)

    def read_off(self, dy: Expr, y: Expr, wrt: Symbol) -> Expr:
        """J from d vec(y) = J d vec(wrt), given ``dy`` linear in d(wrt)."""
        rows = 1 if y.is_scalar else _numel(y)
        cols = 1 if wrt.is_scalar else _numel(wrt)
        if is_zero(dy):
            return Number(0) if rows == cols == 1 else Zero((rows, cols))
        shared = {d for d in self.memo.values() if has_differential(d)}
        return tidy_kronecker(self._read_off_shared(dy, wrt, shared), self.trace, self.simplifier)

    def _read_off_shared(self, lin: Expr, wrt: Symbol, shared: set[Expr]) -> Expr:
        """J of one linear form; a shared sub-differential S met on the way is read off once
        and enters as (sum of the factors that reach S) J_S, one product per S, so that
        nested compositions (softmax of softmax ...) give a chain of factors, not 2^n paths.
        Inner forms first from an explicit stack (no recursion, whatever the depth)."""
        known: dict[Expr, Expr] = {}
        holds_shared: dict[Expr, bool] = {}  # memo of _peel: has a node in shared
        walks: dict[Expr, tuple[list[Expr], dict[Expr, list[Expr]]]] = {}
        waiting: set[Expr] = set()
        stack = [lin]
        while stack:
            current = stack[-1]
            if current in known:
                stack.pop()
                continue
            if current not in walks:
                walks[current] = self._peel(current, wrt, shared, holds_shared)
            found, reaching = walks[current]
            missing = [sub for sub in reaching if sub not in known]
            if missing:
                if current in waiting:  # pushed again by one of its own sub-differentials
                    raise UnsupportedError(f"the differential `{current}` contains itself",
                                           hint="report this formula as a bug")
                waiting.add(current)
                stack.extend(missing)
                continue
            stack.pop()
            terms = list(found)
            for sub, factors in reaching.items():
                outer = Add(tuple(factors)) if len(factors) > 1 else factors[0]
                terms.append(Mul((self.simplifier(outer), known[sub])))
            known[current] = Add(tuple(terms)) if len(terms) > 1 else terms[0]
        return known[lin]

    def _peel(self, lin: Expr, wrt: Symbol, shared: set[Expr], holds_shared: dict[Expr, bool]
              ) -> tuple[list[Expr], dict[Expr, list[Expr]]]:
        """Rule by rule, lin = sum(found) d vec(wrt) + sum_S (sum reaching[S]) d vec(S)."""
        target = Differential(wrt)
        start: Expr = Number(1) if lin.is_scalar else Identity(_numel(lin))
        pending = [(start, lin)]
        found: list[Expr] = []
        reaching: dict[Expr, list[Expr]] = {}
        while pending:
            m, sub = pending.pop()
            if sub == target:
                found.append(m)
                continue
            if sub != lin and sub in shared:
                reaching.setdefault(sub, []).append(m)
                continue
            subject = Mul((m, Call("vec", (sub,))))
            new = None
            if sub.is_scalar:
                # a scalar form over a shared sub-differential (s^T dS) is peeled by the rules
                # so that dS stays shared; otherwise (or if no rule applies) the adjoint rules
                # read it as one gradient row
                if any(fold_dag(c, lambda node, inner: node in shared or any(inner),
                                holds_shared) for c in sub.children):
                    new = apply_first(jacobian_index()(subject), subject, self.trace,
                                      "identification")
                if new is None:
                    row = self._gradient_row(sub, wrt)
                    if row is not None:
                        found.append(Mul((m, row)))
                        continue
            if new is None:
                new = self._apply(subject, sub)
            for term in new.terms if isinstance(new, Add) else (new,):
                parts = _vec_subject(term)
                assert parts is not None
                pending.append((parts[0], self.simplifier(parts[1])))
        return found, reaching

    def hessian(self, f: Expr, wrt: Symbol) -> Expr:
        """d vec(grad f) / d vec(wrt)^T; P H P for a structured variable (LANGUAGE.md
        section 6), H the Hessian with independent entries (never the derivative of a
        gradient already simplified with the structure, which is wrong off it)."""
        plain = unconstrained(wrt)
        g = self.engine.gradient(replace_symbol(f, wrt, plain), plain)
        h = replace_symbol(self.jacobian(g, plain), plain, wrt)
        p = projector(wrt)
        return tidy_kronecker(h if p is None else Mul((p, h, p)), self.trace, self.simplifier)

    def _gradient_row(self, lin: Expr, wrt: Symbol) -> Expr | None:
        """g^T with l = g^T vec(dx) for a scalar linear form l, read off by the adjoint rules
        (the gradient's textbook traces, tr(A B) rather than vec(I)^T (A ⊗ I) vec(B))."""
        try:
            g = self.engine.identify(Number(1), lin, wrt)
        except RewriteError:  # the budget is spent: no other way may be tried
            raise
        except UnsupportedError:
            return None
        return Transpose(g if g.shape[1] == 1 else Call("vec", (g,)))

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
