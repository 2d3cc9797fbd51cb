"""Random differentiable scalar expressions and the gradient-versus-finite-difference oracle.

``differentiable_scalars()`` is a hypothesis strategy for pairs ``(f, wrt)``: ``f`` a
well-typed scalar-valued expression over every operator and function matcalc supports
(sums with broadcasting, products, scalar and elementwise division, Hadamard and
Kronecker products, transposes, scalar, elementwise and matrix powers, inverses, norms,
trace, det, logdet, diag, sum, vec, softmax, logsumexp, the elementwise functions and
the spectral functions), nested several levels deep, over scalars, vectors, probability
vectors, matrices and symmetric matrices of the distinct dimensions ``n``, ``m``, ``p``;
``wrt`` one of its variables. Functions are kept where they are defined by construction:
log, sqrt, division and non-integer powers see positive arguments (``1 + e^2``,
``exp(e)``, ``2 + cos(e)``), inverses, det and logdet see well-conditioned matrices
(``I + E^T E``, ``tanh(E) + 10 I``, or a square variable, which random points make
diagonally dominant).

``check_gradient(f, wrt, seed)`` runs ``matcalc.grad`` and compares its compiled NumPy
function with central finite differences; it returns an ``Outcome``. Used by
``tests/test_differential.py`` and the soak command ``tests/soak.py``.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st
from strategies import (
    DIMS,
    GREEK_SCALARS,
    MATRIX_NAMES,
    PROBABILITY_NAMES,
    SCALAR_SHAPE,
    SYMMETRIC_NAMES,
    VECTOR_NAMES,
)

import matcalc
from matcalc.expr import (
    Add,
    Call,
    Div,
    ElemDiv,
    ElemPow,
    Expr,
    Hadamard,
    Identity,
    Kron,
    Mul,
    Neg,
    Norm,
    Number,
    Ones,
    Pow,
    Symbol,
    Transpose,
)
from matcalc.numeric import evaluate, finite_difference, random_point

SIZES = {"n": 2, "m": 3, "p": 4}
"""Concrete sizes of the dimensions at random points: distinct, so transposition mistakes show."""

ONE = Number(Fraction(1))
TWO = Number(Fraction(2))
SMOOTH = ("exp", "sin", "cos", "tanh", "sigma", "softplus")
KINKED = ("relu", "abs", "sign")
BOUNDED = ("sin", "cos", "tanh", "sigma")

# ---------------------------------------------------------------------------- leaves


def _scalar_leaf() -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.sampled_from([2, 3, 5]).map(lambda v: Number(Fraction(v))),
        st.sampled_from([Fraction(1, 2), Fraction(3, 4)]).map(Number),
        st.sampled_from(GREEK_SCALARS + ("c", "t")).map(lambda n: Symbol(n, SCALAR_SHAPE)),
    )


def _vector_leaf(d: str) -> st.SearchStrategy[Expr]:
    plain = st.sampled_from(VECTOR_NAMES[d]).map(lambda n: Symbol(n, (d, 1)))
    prob = st.just(Symbol(PROBABILITY_NAMES[d], (d, 1), frozenset({"probability"})))
    return st.one_of(plain, plain, plain, prob)


def _symmetric(d: str) -> Symbol:
    return Symbol(SYMMETRIC_NAMES[d], (d, d), frozenset({"symmetric"}))


def _leaf(shape) -> st.SearchStrategy[Expr]:
    rows, cols = shape
    if shape == SCALAR_SHAPE:
        return _scalar_leaf()
    if cols == 1:
        return _vector_leaf(rows)
    if rows == 1:
        return _vector_leaf(cols).map(Transpose)
    plain = st.sampled_from(MATRIX_NAMES[(rows, cols)]).map(lambda n: Symbol(n, (rows, cols)))
    if rows == cols:
        return st.one_of(plain, st.just(_symmetric(rows)))
    return plain


# ---------------------------------------------------------------------------- composites


class _Gen:
    """Type-directed generation of expressions that are defined and smooth at random points."""

    def __init__(self) -> None:
        self._cache: dict[tuple, st.SearchStrategy[Expr]] = {}

    def expr(self, shape, budget: int) -> st.SearchStrategy[Expr]:
        key = (tuple(shape), budget)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._expr(tuple(shape), budget))
        return self._cache[key]

    def _expr(self, shape, budget: int) -> st.SearchStrategy[Expr]:
        if budget <= 0:
            return _leaf(shape)
        sub = budget - 1
        rows, cols = shape
        options = [
            _leaf(shape),
            self.add(shape, sub),
            self.mul(shape, sub),
            self.expr(shape, sub).map(Neg),
            st.builds(Div, self.expr(shape, sub), self.positive(SCALAR_SHAPE, sub)),
            st.lists(self.expr(shape, sub), min_size=2, max_size=3).map(
                lambda fs: Hadamard(tuple(fs))),
            st.builds(ElemDiv, self.expr(shape, sub), self.positive(shape, sub)),
            self.expr((cols, rows), sub).map(Transpose),
            self.power(shape, sub),
            st.builds(lambda f, a: Call(f, (a,)), st.sampled_from(SMOOTH + KINKED),
                      self.expr(shape, sub)),
            st.builds(lambda f, a: Call(f, (a,)), st.sampled_from(("log", "sqrt")),
                      self.positive(shape, sub)),
        ]
        if shape == SCALAR_SHAPE:
            options.extend(self.scalars(sub))
        elif cols == 1 and rows != 1:
            options.extend(self.vectors(rows, sub))
        elif rows == cols and rows != 1:
            options.extend(self.squares(rows, sub))
        return st.one_of(*options)

    # -- domains -----------------------------------------------------------------

    def positive(self, shape, sub: int) -> st.SearchStrategy[Expr]:
        """Expressions whose every entry is positive (and away from 0)."""
        inner = self.expr(shape, sub)
        if shape == SCALAR_SHAPE:
            square = inner.map(lambda e: Add((ONE, Pow(e, TWO))))
        else:
            square = inner.map(lambda e: Add((ONE, ElemPow(e, TWO))))
        return st.one_of(
            square,
            inner.map(lambda e: Call("exp", (e,))),
            inner.map(lambda e: Add((TWO, Call("cos", (e,))))),
        )

    def well_conditioned(self, d: str, sub: int) -> st.SearchStrategy[Expr]:
        """Square matrices far from singular, with a positive determinant."""
        gram = st.sampled_from(DIMS).flatmap(lambda k: self.expr((k, d), sub)).map(
            lambda e: Add((Identity(d), Mul((Transpose(e), e)))))
        shifted = st.builds(
            lambda e, c: Add((Call("tanh", (e,)), Mul((Number(Fraction(c)), Identity(d))))),
            self.expr((d, d), sub), st.sampled_from([10, 12]))
        leaf = st.one_of(st.sampled_from(MATRIX_NAMES[(d, d)]).map(lambda n: Symbol(n, (d, d))),
                         st.just(_symmetric(d)))
        return st.one_of(gram, shifted, leaf)

    def symmetric(self, d: str, sub: int) -> st.SearchStrategy[Expr]:
        """Symmetric matrices with simple extreme eigenvalues (almost surely)."""
        sym = _symmetric(d)
        return st.one_of(
            st.just(sym),
            self.expr((d, d), sub).map(lambda e: Add((e, Transpose(e)))),
            st.sampled_from(DIMS).flatmap(lambda k: self.expr((k, d), sub)).map(
                lambda e: Add((sym, Mul((Transpose(e), e))))),
        )

    # -- operators ---------------------------------------------------------------

    def power(self, shape, sub: int) -> st.SearchStrategy[Expr]:
        """Scalar or elementwise powers: any base for 2 and 3, a positive base otherwise."""
        node = Pow if shape == SCALAR_SHAPE else ElemPow
        integer = st.builds(node, self.expr(shape, sub),
                            st.sampled_from([2, 3]).map(lambda v: Number(Fraction(v))))
        other = st.one_of(
            st.sampled_from([Fraction(1, 2), Fraction(-1), Fraction(-2), Fraction(3, 2)]).map(
                Number),
            st.sampled_from(GREEK_SCALARS).map(lambda n: Symbol(n, SCALAR_SHAPE)),
            st.sampled_from(GREEK_SCALARS).map(lambda n: Neg(Symbol(n, SCALAR_SHAPE))),
        )
        return st.one_of(integer, st.builds(node, self.positive(shape, sub), other))

    def add(self, shape, sub: int) -> st.SearchStrategy[Expr]:
        @st.composite
        def build(draw):
            n = draw(st.integers(2, 3))
            terms = [draw(self.expr(shape, sub))]
            for _ in range(n - 1):
                if shape != SCALAR_SHAPE and draw(st.integers(0, 4)) == 0:
                    term = draw(self.expr(SCALAR_SHAPE, sub))  # broadcast
                else:
                    term = draw(self.expr(shape, sub))
                terms.append(Neg(term) if draw(st.booleans()) else term)
            order = draw(st.permutations(range(n)))
            return Add(tuple(terms[i] for i in order))

        return build()

    def mul(self, shape, sub: int) -> st.SearchStrategy[Expr]:
        rows, cols = shape

        @st.composite
        def build(draw):
            k = draw(st.integers(1, 3))
            inner = [draw(st.sampled_from((*DIMS, 1))) for _ in range(k - 1)]
            chain = [rows, *inner, cols]
            shapes = [(chain[i], chain[i + 1]) for i in range(k)]
            factors: list[Expr] = [draw(self.expr(s, sub)) for s in shapes]
            choice = draw(st.integers(0, 5))
            if choice == 0 and shapes[-1][1] == 1 and shapes[-1][0] != 1:
                factors[-1] = Ones(shapes[-1][0])
            elif choice == 1 and shapes[0][0] == 1 and shapes[0][1] != 1:
                factors[0] = Transpose(Ones(shapes[0][1]))
            elif choice == 2:
                squares = [i for i, s in enumerate(shapes) if s[0] == s[1] and s != SCALAR_SHAPE]
                if squares:
                    i = draw(st.sampled_from(squares))
                    factors[i] = Identity(shapes[i][0])
            for s in draw(st.lists(self.expr(SCALAR_SHAPE, sub), max_size=1)):
                factors.insert(draw(st.integers(0, len(factors))), s)
            if len(factors) < 2:
                factors.insert(0, draw(_scalar_leaf()))
            return Mul(tuple(factors))

        return build()

    def scalars(self, sub: int) -> list[st.SearchStrategy[Expr]]:
        dims = st.sampled_from(DIMS)
        pairs = st.tuples(dims, dims)
        square = dims.flatmap(lambda d: self.expr((d, d), sub))
        return [
            square.map(lambda a: Call("tr", (a,))),
            dims.flatmap(lambda d: self.well_conditioned(d, sub)).flatmap(
                lambda a: st.sampled_from([Call("det", (a,)), Call("logdet", (a,))])),
            dims.flatmap(lambda d: self.symmetric(d, sub)).flatmap(
                lambda a: st.sampled_from([Call("lambda_max", (a,)), Call("lambda_min", (a,))])),
            dims.flatmap(lambda d: self.expr((d, 1), sub)).map(lambda a: Call("logsumexp", (a,))),
            pairs.flatmap(lambda s: self.expr(s, sub)).map(lambda a: Call("sum", (a,))),
            st.builds(Norm, dims.flatmap(lambda d: self.expr((d, 1), sub)),
                      st.sampled_from([None, "1", "2"])),
            st.builds(Norm, pairs.flatmap(lambda s: self.expr(s, sub)),
                      st.sampled_from(["F", "2"])),
            # rarely: most gradients through kron and vec are not supported yet
            st.integers(0, 3).flatmap(lambda i: self.kron_scalar(sub) if i == 0
                                      else self.expr(SCALAR_SHAPE, sub)),
        ]

    def kron_scalar(self, sub: int) -> st.SearchStrategy[Expr]:
        """Scalars through Kronecker products and vec (composite dimensions such as n*m)."""
        dims = st.sampled_from(DIMS)
        pairs = st.tuples(dims, dims)
        any_matrix = pairs.flatmap(lambda s: self.expr(s, sub))
        vec_pair = pairs.flatmap(lambda s: st.tuples(self.expr((s[0], 1), sub),
                                                     self.expr((s[1], 1), sub),
                                                     self.expr((s[0], 1), sub),
                                                     self.expr((s[1], 1), sub)))
        return st.one_of(
            st.builds(Kron, any_matrix, any_matrix).map(lambda k: Call("sum", (k,))),
            st.tuples(dims, dims).flatmap(lambda s: st.builds(
                Kron, self.expr((s[0], s[0]), sub), self.expr((s[1], s[1]), sub))).map(
                lambda k: Call("tr", (k,))),
            vec_pair.map(lambda v: Mul((Transpose(Kron(v[0], v[1])), Kron(v[2], v[3])))),
            pairs.flatmap(lambda s: st.tuples(self.expr(s, sub), self.expr(s, sub))).map(
                lambda ab: Mul((Transpose(Call("vec", (ab[0],))), Call("vec", (ab[1],))))),
        )

    def vectors(self, d: str, sub: int) -> list[st.SearchStrategy[Expr]]:
        dims = st.sampled_from(DIMS)
        return [
            self.expr((d, 1), sub).map(lambda a: Call("softmax", (a,))),
            self.expr((d, d), sub).map(lambda a: Call("diag", (a,))),
            self.symmetric(d, sub).flatmap(lambda a: st.sampled_from(
                [Call("eigvec_max", (a,)), Call("eigvec_min", (a,))])),
            dims.flatmap(lambda k: self.expr((d, k), sub)).map(lambda a: Call("svec_left", (a,))),
            dims.flatmap(lambda k: self.expr((k, d), sub)).map(
                lambda a: Call("svec_right", (a,))),
            dims.flatmap(lambda k: self.expr((k, d), sub)).map(
                lambda a: Mul((Transpose(a), Ones(a.shape[0])))),
        ]

    def squares(self, d: str, sub: int) -> list[st.SearchStrategy[Expr]]:
        return [
            st.builds(Pow, self.expr((d, d), sub),
                      st.sampled_from([2, 3]).map(lambda v: Number(Fraction(v)))),
            st.builds(Pow, self.well_conditioned(d, sub),
                      st.sampled_from([-1, -2]).map(lambda v: Number(Fraction(v)))),
            self.expr((d, 1), sub).map(lambda a: Call("diag", (a,))),
            st.sampled_from(DIMS).flatmap(lambda k: self.expr((k, d), sub)).map(
                lambda a: Mul((Transpose(a), a))),
        ]


_GEN = _Gen()


@st.composite
def differentiable_scalars(draw, max_depth: int = 4) -> tuple[Expr, Symbol]:
    """Pairs (f, wrt): a random differentiable scalar expression and one of its variables."""
    depth = draw(st.integers(1, max_depth))
    f = draw(_GEN.expr(SCALAR_SHAPE, depth))
    symbols = sorted(f.free_symbols(), key=lambda s: s.name)
    if not symbols:
        return f, Symbol("x", ("n", 1))
    return f, draw(st.sampled_from(symbols))


# ---------------------------------------------------------------------------- the oracle


@dataclass
class Outcome:
    """What happened to one (f, wrt): ``checked``, ``unsupported``, ``skipped`` or ``wrong``."""

    status: str
    detail: str = ""
    result: matcalc.Derivative | None = None


def _python_names(point: dict) -> dict:
    return {k + "_" if keyword.iskeyword(k) else k: v for k, v in point.items()}


def check_gradient(f: Expr, wrt: Symbol, seed: int = 0, points: int = 2) -> Outcome:
    """Compare ``matcalc.grad(f, wrt).to_numpy()`` with central finite differences.

    ``wrong`` when the finite differences are stable (two step sizes agree) and the
    compiled gradient disagrees with them; ``skipped`` when the function is not finite or
    not smooth enough at the random points for finite differences to be trusted (a kink
    of abs, relu, sign or ||.||_1 within a step, or overflow).
    """
    try:
        result = matcalc.grad(f, wrt)
    except matcalc.UnsupportedError as err:
        return Outcome("unsupported", err.message)
    compiled = result.to_numpy()
    if wrt not in f.free_symbols():
        point = random_point(sorted(result.expr.free_symbols() | {wrt}, key=lambda s: s.name),
                             SIZES, np.random.default_rng(seed))
        got = np.asarray(evaluate(result.expr, point, SIZES), dtype=float)
        if got.shape != np.shape(point[wrt.name]) or np.any(got != 0):
            return Outcome("wrong", f"expected a zero of the shape of {wrt.name}", result)
        return Outcome("checked", "", result)
    symbols = sorted(f.free_symbols() | result.expr.free_symbols() | {wrt},
                     key=lambda s: s.name)
    rng = np.random.default_rng(seed)
    compared = 0
    for _ in range(points):
        point = random_point(symbols, SIZES, rng)
        with np.errstate(all="ignore"):
            value = evaluate(f, point, SIZES)
            if not np.isfinite(value) or abs(value) > 1e8:
                continue
            fd = np.asarray(finite_difference(f, wrt, point), dtype=float)
            fd_coarse = np.asarray(finite_difference(f, wrt, point, eps=1e-4), dtype=float)
            got = np.asarray(compiled(**_python_names(point)), dtype=float)
        scale = 1.0 + abs(value) + float(np.max(np.abs(fd), initial=0.0))
        if not (np.all(np.isfinite(fd)) and np.allclose(fd, fd_coarse, rtol=1e-3,
                                                        atol=1e-5 * scale)):
            continue  # not smooth at this point: finite differences say nothing
        if got.size != fd.size:
            return Outcome("wrong", f"shape {got.shape}, finite differences {fd.shape}", result)
        got = got.reshape(fd.shape)
        if not np.allclose(got, fd, rtol=1e-4, atol=1e-6 * scale):
            worst = np.unravel_index(np.argmax(np.abs(got - fd)), fd.shape)
            return Outcome("wrong", f"at {point}: entry {worst}: gradient {got[worst]}, "
                           f"finite differences {fd[worst]}", result)
        compared += 1
    if not compared:
        return Outcome("skipped", "no point where finite differences are reliable", result)
    return Outcome("checked", "", result)
