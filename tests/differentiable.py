"""Random differentiable scalar expressions and the gradient-versus-finite-difference oracle.

``differentiable_scalars()`` is a hypothesis strategy for pairs ``(f, wrt)``: ``f`` a
well-typed scalar-valued expression over every operator and function matcalc supports
(sums with broadcasting, products, scalar and elementwise division, Hadamard and
Kronecker products, transposes, scalar, elementwise and matrix powers, inverses, norms,
trace, det, logdet, diag, sum, vec, softmax, logsumexp, the elementwise functions, the
spectral functions and Sylvester solves), nested several levels deep, over scalars,
vectors, probability vectors, matrices and symmetric matrices of the distinct dimensions
``n``, ``m``, ``p``;
``wrt`` one of its variables. Functions are kept where they are defined by construction:
log, sqrt, division and non-integer powers see positive arguments (``1 + e^2``,
``exp(e)``, ``2 + cos(e)``), inverses, det and logdet see well-conditioned matrices
(``I + E^T E``, ``tanh(E) + 10 I``, or a square variable, which random points make
diagonally dominant).

``check_gradient(f, wrt, seed)`` runs ``matcalc.grad`` and compares its compiled NumPy
function with central finite differences, and with a 60-digit reference
(``tests/high_precision.py``) where those cannot decide; it returns an ``Outcome``
(``check_jacobian``, ``check_derivative``, ``check_hessian`` likewise). Used by
``tests/test_differential.py``, ``tests/test_calculus_property.py`` and the soak command
``tests/soak.py``.
"""

from __future__ import annotations

import contextlib
import keyword
import random
from dataclasses import dataclass
from fractions import Fraction

import high_precision
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
from matcalc.evaluator import Evaluator
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
    Sylvester,
    Symbol,
    Transpose,
)
from matcalc.numeric import (
    NUMPY,
    as_column,
    evaluate,
    finite_difference,
    random_point,
    symbols_of,
)
from matcalc.verify import project_derivative

SIZES = {"n": 2, "m": 3, "p": 4}
"""Concrete sizes of the dimensions at random points: distinct, so transposition mistakes show."""

ONE = Number(Fraction(1))
TWO = Number(Fraction(2))
SMOOTH = ("exp", "sin", "cos", "tanh", "sigma", "softplus")
KINKED = ("relu", "abs", "sign")
BOUNDED = ("sin", "cos", "tanh", "sigma")

# ---------------------------------------------------------------------------- generation
#
# Expressions are built from a seeded ``random.Random`` rather than from hypothesis's own
# choices: hypothesis biases its choices toward the simplest branch, which made nearly
# every expression a chain of negations and transposes of one leaf (mean size 5 nodes).
# Hypothesis draws the seed, so runs are reproducible and derandomizable.

SCALAR_NAMES = GREEK_SCALARS + ("c", "t")


def _symmetric(d: str) -> Symbol:
    return Symbol(SYMMETRIC_NAMES[d], (d, d), frozenset({"symmetric"}))


class Generator:
    """Type-directed random expressions that are defined and smooth at random points."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options):
        return options[self.rng.randrange(len(options))]

    def number(self) -> Number:
        return Number(self.pick([Fraction(2), Fraction(3), Fraction(5), Fraction(1, 2),
                                 Fraction(3, 4)]))

    def leaf(self, shape) -> Expr:
        rows, cols = shape
        r = self.rng.random()
        if shape == SCALAR_SHAPE:
            if r < 0.3:
                return self.number()
            return Symbol(self.pick(SCALAR_NAMES), SCALAR_SHAPE)
        if cols == 1:
            if r < 0.2:
                return Symbol(PROBABILITY_NAMES[rows], (rows, 1), frozenset({"probability"}))
            return Symbol(self.pick(VECTOR_NAMES[rows]), (rows, 1))
        if rows == 1:
            return Transpose(self.leaf((cols, 1)))
        if rows == cols and r < 0.35:
            return _symmetric(rows)
        return Symbol(self.pick(MATRIX_NAMES[(rows, cols)]), (rows, cols))

    def expr(self, shape, budget: int) -> Expr:
        """A random expression of ``shape`` nested at most ``budget`` levels."""
        shape = tuple(shape)
        if budget <= 0 or self.rng.random() < 0.12:
            return self.leaf(shape)
        sub = budget - 1
        rows, cols = shape
        builders = [
            lambda: self.add(shape, sub), lambda: self.add(shape, sub),
            lambda: self.mul(shape, sub), lambda: self.mul(shape, sub),
            lambda: Neg(self.expr(shape, sub)),
            lambda: Div(self.expr(shape, sub), self.positive(SCALAR_SHAPE, sub)),
            lambda: Hadamard(tuple(self.expr(shape, sub)
                                   for _ in range(self.rng.randint(2, 3)))),
            lambda: ElemDiv(self.expr(shape, sub), self.positive(shape, sub)),
            lambda: Transpose(self.expr((cols, rows), sub)),
            lambda: self.power(shape, sub),
            lambda: Call(self.pick(SMOOTH), (self.expr(shape, sub),)),
            lambda: Call(self.pick(KINKED), (self.expr(shape, sub),)),
            lambda: Call(self.pick(("log", "sqrt")), (self.positive(shape, sub),)),
        ]
        if shape == SCALAR_SHAPE:
            builders += self.scalars(sub)
        elif cols == 1 and rows != 1:
            builders += self.vectors(rows, sub)
        elif rows == cols and rows != 1:
            builders += self.squares(rows, sub)
        if rows != 1 and cols != 1:  # the orthogonal polar factor of a square or oblong matrix
            builders.append(lambda: Call("polar", (self.full_rank(rows, cols, sub),)))
            # the solution of A W + W B = C, with coefficients whose eigenvalues have
            # positive real parts (no eigenvalue of A is minus one of B's)
            builders.append(lambda: Sylvester(self.well_conditioned(rows, sub),
                                              self.well_conditioned(cols, sub),
                                              self.expr(shape, sub)))
        return self.pick(builders)()

    # -- domains -----------------------------------------------------------------

    def positive(self, shape, sub: int) -> Expr:
        """An expression whose every entry is positive (and away from 0)."""
        e = self.expr(shape, sub)
        r = self.rng.random()
        if r < 0.4:
            return Add((ONE, Pow(e, TWO) if shape == SCALAR_SHAPE else ElemPow(e, TWO)))
        if r < 0.7:
            return Call("exp", (e,))
        return Add((TWO, Call("cos", (e,))))

    def well_conditioned(self, d: str, sub: int) -> Expr:
        """A square matrix far from singular, with a positive determinant."""
        r = self.rng.random()
        if r < 0.4:
            e = self.expr((self.pick(DIMS), d), sub)
            return Add((Identity(d), Mul((Transpose(e), e))))
        if r < 0.7:
            c = Number(Fraction(self.pick([10, 12])))
            return Add((Call("tanh", (self.expr((d, d), sub),)), Mul((c, Identity(d)))))
        return self.leaf((d, d))

    def full_rank(self, rows: str, cols: str, sub: int) -> Expr:
        """A matrix of full rank (almost surely): an unstructured variable (entries in
        [0.25, 1.25] of random signs; diagonally dominant when square) plus a bounded
        perturbation. Not symmetric: the polar factor of a symmetric positive definite
        matrix is I, whose rounding noise a kinked function of it would amplify."""
        bounded = Div(Call("tanh", (self.expr((rows, cols), sub),)), Number(Fraction(4)))
        return Add((Symbol(self.pick(MATRIX_NAMES[(rows, cols)]), (rows, cols)), bounded))

    def symmetric(self, d: str, sub: int) -> Expr:
        """A symmetric matrix with simple extreme eigenvalues (almost surely)."""
        r = self.rng.random()
        if r < 0.3:
            return _symmetric(d)
        if r < 0.65:
            e = self.expr((d, d), sub)
            return Add((e, Transpose(e)))
        e = self.expr((self.pick(DIMS), d), sub)
        return Add((_symmetric(d), Mul((Transpose(e), e))))

    # -- operators ---------------------------------------------------------------

    def power(self, shape, sub: int) -> Expr:
        """A scalar or elementwise power: any base for 2 and 3, a positive base otherwise."""
        node = Pow if shape == SCALAR_SHAPE else ElemPow
        if self.rng.random() < 0.5:
            return node(self.expr(shape, sub), Number(Fraction(self.pick([2, 3]))))
        r = self.rng.random()
        if r < 0.5:
            exponent: Expr = Number(self.pick([Fraction(1, 2), Fraction(-1), Fraction(-2),
                                               Fraction(3, 2)]))
        else:
            exponent = Symbol(self.pick(GREEK_SCALARS), SCALAR_SHAPE)
            if r < 0.75:
                exponent = Neg(exponent)
        return node(self.positive(shape, sub), exponent)

    def add(self, shape, sub: int) -> Expr:
        terms = [self.expr(shape, sub)]
        for _ in range(self.rng.randint(1, 2)):
            broadcast = shape != SCALAR_SHAPE and self.rng.random() < 0.2
            term = self.expr(SCALAR_SHAPE if broadcast else shape, sub)
            terms.append(Neg(term) if self.rng.random() < 0.4 else term)
        self.rng.shuffle(terms)
        return Add(tuple(terms))

    def mul(self, shape, sub: int) -> Expr:
        rows, cols = shape
        k = self.rng.randint(1, 3)
        chain = [rows, *(self.pick((*DIMS, 1)) for _ in range(k - 1)), cols]
        shapes = [(chain[i], chain[i + 1]) for i in range(k)]
        factors: list[Expr] = [self.expr(s, sub) for s in shapes]
        r = self.rng.random()
        squares = [i for i, s in enumerate(shapes) if s[0] == s[1] and s != SCALAR_SHAPE]
        if k == 1:  # a lone 1 or I would have a size no variable determines
            pass
        elif r < 0.1 and shapes[-1][1] == 1 and shapes[-1][0] != 1:
            factors[-1] = Ones(shapes[-1][0])
        elif r < 0.2 and shapes[0][0] == 1 and shapes[0][1] != 1:
            factors[0] = Transpose(Ones(shapes[0][1]))
        elif r < 0.3 and squares:
            i = self.pick(squares)
            factors[i] = Identity(shapes[i][0])
        if len(factors) < 2 or self.rng.random() < 0.3:
            scalar = self.expr(SCALAR_SHAPE, sub) if self.rng.random() < 0.5 else self.leaf(
                SCALAR_SHAPE)
            factors.insert(self.rng.randint(0, len(factors)), scalar)
        return Mul(tuple(factors))

    def scalars(self, sub: int) -> list:
        def dim():
            return self.pick(DIMS)

        return [
            lambda: Call("tr", (self.expr((d := dim(), d), sub),)),
            lambda: Call(self.pick(["det", "logdet"]), (self.well_conditioned(dim(), sub),)),
            lambda: Call(self.pick(["lambda_max", "lambda_min"]), (self.symmetric(dim(), sub),)),
            lambda: Call("logsumexp", (self.expr((dim(), 1), sub),)),
            lambda: Call("sum", (self.expr((dim(), dim()), sub),)),
            lambda: Call("sum", (self.expr(self.pick([(dim(), 1), (1, dim())]), sub),)),
            lambda: Norm(self.expr((dim(), 1), sub), self.pick([None, "1", "2", "inf"])),
            lambda: Call(self.pick(["max", "min"]), (self.expr((dim(), 1), sub),)),
            lambda: Call("mean", (self.expr(self.pick([(dim(), dim()), (dim(), 1), (1, dim())]),
                                            sub),)),
            lambda: Norm(self.expr((dim(), dim()), sub), self.pick(["F", "2"])),
            lambda: Norm(self.full_rank(dim(), dim(), sub), "*"),
            lambda: Mul((Transpose(self.expr((d := dim(), 1), sub)), self.expr((d, 1), sub))),
            lambda: Mul((Transpose(self.expr((d := dim(), 1), sub)),
                         self.expr((d, e := dim()), sub), self.expr((e, 1), sub))),
            # rarely: most gradients through kron and vec are not supported yet
            lambda: self.kron_scalar(sub) if self.rng.random() < 0.3 else self.expr(
                SCALAR_SHAPE, sub),
        ]

    def kron_scalar(self, sub: int) -> Expr:
        """A scalar through a Kronecker product or vec (composite dimensions such as n*m)."""
        a, b, c, d = (self.pick(DIMS) for _ in range(4))
        return self.pick([
            lambda: Call("sum", (Kron(self.expr((a, b), sub), self.expr((c, d), sub)),)),
            lambda: Call("tr", (Kron(self.expr((a, a), sub), self.expr((b, b), sub)),)),
            lambda: Mul((Transpose(Kron(self.expr((a, 1), sub), self.expr((b, 1), sub))),
                         Kron(self.expr((a, 1), sub), self.expr((b, 1), sub)))),
            lambda: Mul((Transpose(Call("vec", (self.expr((a, b), sub),))),
                         Call("vec", (self.expr((a, b), sub),)))),
        ])()

    def vectors(self, d: str, sub: int) -> list:
        def dim():
            return self.pick(DIMS)

        return [
            lambda: Call("softmax", (self.expr((d, 1), sub),)),
            lambda: Call("diag", (self.expr((d, d), sub),)),
            lambda: Call(self.pick(["eigvec_max", "eigvec_min"]), (self.symmetric(d, sub),)),
            lambda: Call("svec_left", (self.expr((d, dim()), sub),)),
            lambda: Call("svec_right", (self.expr((dim(), d), sub),)),
            lambda: Mul((self.expr((d, k := dim()), sub), self.expr((k, 1), sub))),
            lambda: Mul((Transpose(a := self.expr((dim(), d), sub)), Ones(a.shape[0]))),
        ]

    def squares(self, d: str, sub: int) -> list:
        return [
            lambda: Pow(self.expr((d, d), sub), Number(Fraction(self.pick([2, 3])))),
            lambda: Pow(self.well_conditioned(d, sub), Number(Fraction(self.pick([-1, -2])))),
            lambda: Call("diag", (self.expr((d, 1), sub),)),
            lambda: Mul((Transpose(a := self.expr((self.pick(DIMS), d), sub)), a)),
            lambda: Mul((self.expr((d, 1), sub), Transpose(self.expr((d, 1), sub)))),
        ]


def random_scalar(seed: int, max_depth: int = 4) -> tuple[Expr, Symbol]:
    """A random differentiable scalar expression and one of its variables, from a seed."""
    rng = random.Random(seed)
    f = Generator(rng).expr(SCALAR_SHAPE, rng.randint(2, max_depth))
    symbols = sorted(f.free_symbols(), key=lambda s: s.name)
    return f, (rng.choice(symbols) if symbols else Symbol("x", ("n", 1)))


def random_expression(seed: int, kind: str, max_depth: int = 4) -> tuple[Expr, Symbol]:
    """A random differentiable expression of ``kind`` (scalar, vector or matrix) and one of
    its variables, from a seed."""
    rng = random.Random(seed)
    d1, d2 = rng.choice(DIMS), rng.choice(DIMS)
    shape = {"scalar": SCALAR_SHAPE, "vector": (d1, 1), "matrix": (d1, d2)}[kind]
    f = Generator(rng).expr(shape, rng.randint(2, max_depth))
    symbols = sorted(f.free_symbols(), key=lambda s: s.name)
    return f, (rng.choice(symbols) if symbols else Symbol("x", ("n", 1)))


def differentiable_scalars(max_depth: int = 4) -> st.SearchStrategy[tuple[Expr, Symbol]]:
    """Hypothesis strategy for pairs (f, wrt): a random differentiable scalar expression and
    one of its variables."""
    return st.integers(0, 2**64 - 1).map(lambda seed: random_scalar(seed, max_depth))


# ---------------------------------------------------------------------------- the oracle


@dataclass
class Outcome:
    """What happened to one (f, wrt): ``checked``, ``unsupported``, ``skipped`` or ``wrong``."""

    status: str
    detail: str = ""
    result: matcalc.Derivative | None = None
    high_precision: int = 0
    """Points where float64 finite differences disagreed and the 60-digit reference agreed."""


def _python_names(point: dict) -> dict:
    return {k + "_" if keyword.iskeyword(k) else k: v for k, v in point.items()}


def _simple_spectrum(f: Expr, point: dict) -> bool:
    """Whether every eigenvalue / singular value function in ``f`` has a simple extreme value
    at ``point`` (relative gap 1e-6), every polar factor and nuclear norm a matrix of full
    rank (smallest singular value above 1e-6), and every unit vector a sign: where one does not, it
    has no derivative. The sign convention (the entry of largest magnitude is positive)
    jumps where two entries tie in magnitude, as the left singular vector of
    ``sign(y) y^T A`` always does."""
    for node in f.walk():
        if isinstance(node, Call) and node.name in ("lambda_max", "lambda_min", "eigvec_max",
                                                    "eigvec_min"):
            a = np.asarray(evaluate(node.args[0], point, SIZES), dtype=float)
            w, vectors = np.linalg.eigh((a + a.T) / 2)
            gaps = (w[1] - w[0], w[-1] - w[-2])
            unit = vectors[:, -1 if node.name.endswith("max") else 0]
        elif (isinstance(node, Call) and node.name in ("svec_left", "svec_right")) or (
                isinstance(node, Norm) and node.p == "2" and node.arg.shape[1] != 1
                and node.arg.shape[0] != 1):
            a = np.asarray(evaluate(node.args[0] if isinstance(node, Call) else node.arg,
                                    point, SIZES), dtype=float)
            u, w, _ = np.linalg.svd(a)
            gaps = (w[0] - w[1],) if w.size > 1 else (1.0,)
            unit = u[:, 0]  # its largest entry fixes the signs of both singular vectors
        elif (isinstance(node, Call) and node.name == "polar") or (
                isinstance(node, Norm) and node.p == "*"):
            a = np.asarray(evaluate(node.args[0] if isinstance(node, Call) else node.arg,
                                    point, SIZES), dtype=float)
            w = np.linalg.svd(a, compute_uv=False)
            gaps = (w[-1],)  # differentiable where no singular value is zero
        else:
            continue
        if min(gaps) <= 1e-6 * (1 + float(np.max(np.abs(w)))):
            return False
        if isinstance(node, Call) and node.name.startswith(("eigvec", "svec")):
            top = np.sort(np.abs(unit))[-2:]
            if top.size == 2 and top[1] - top[0] <= 1e-6 * top[1]:
                return False
    return True


def _on_structure(fd: np.ndarray, wrt: Symbol, mode: str) -> np.ndarray:
    """Finite differences (entries perturbed independently) projected on the declared
    structure of ``wrt``: the derivative on symmetric or diagonal matrices (section 6)."""
    if not ({"symmetric", "diagonal"} & wrt.props):
        return fd
    return project_derivative(fd, wrt, mode, SIZES[wrt.dims[0]], exact=False)


@dataclass(frozen=True)
class _Oracle:
    """How one derivative kind is compared with finite differences of f."""

    derive: str  # the matcalc function
    mode: str  # the finite_difference layout
    largest: float  # |f| beyond which a point is not used (overflow)
    steps: tuple[float | None, float]  # the step, and a coarser one that must agree
    agree: tuple[float, float]  # rtol, atol/scale for the two steps to agree
    tolerance: tuple[float, float]  # rtol, atol/scale for the result to match


_ORACLES = {
    "grad": _Oracle("grad", "grad", 1e8, (None, 1e-4), (1e-3, 1e-5), (1e-4, 1e-6)),
    # second differences are less accurate: looser agreement and tolerance
    "hessian": _Oracle("hessian", "hessian", 1e6, (1e-4, 1e-3), (1e-2, 1e-3), (1e-3, 1e-4)),
    "derivative": _Oracle("derivative", "derivative", 1e8, (None, 1e-4), (1e-3, 1e-5),
                          (1e-4, 1e-6)),
    "jacobian": _Oracle("jacobian", "derivative", 1e8, (None, 1e-4), (1e-3, 1e-5),
                        (1e-4, 1e-6)),
}


def _finite_differences(f: Expr, wrt: Symbol, point: dict, oracle: _Oracle,
                        eps: float | None) -> np.ndarray:
    fd = np.asarray(finite_difference(f, wrt, point, mode=oracle.mode, eps=eps), dtype=float)
    return _on_structure(fd if oracle.mode == "grad" else np.atleast_2d(fd), wrt, oracle.mode)


def _compare(kind: str, f: Expr, wrt: Symbol, seed: int, points: int) -> Outcome:
    """The compiled ``kind`` derivative of f against central finite differences of f.

    Where float64 finite differences are stable (two step sizes agree) and agree with the
    compiled result, the point is checked. Where they disagree with it, or cannot be used
    (|f| above ``largest``, or the two steps disagree: a kink within a step), the
    high-precision reference decides (``_at_high_precision``). ``wrong`` when it rejects
    the result, or the result is NaN or infinite where the derivative is finite and no
    value inside f overflows (``_overflows_on_the_way``); ``skipped`` when at no point f
    is finite with a derivative (a repeated extreme eigenvalue or singular value, f, a
    value inside it or its derivative beyond float64).
    """
    oracle = _ORACLES[kind]
    try:
        result = getattr(matcalc, oracle.derive)(f, wrt)
        compiled = result.to_numpy()
    except matcalc.UnsupportedError as err:  # e.g. a size no parameter determines
        return Outcome("unsupported", err.message)
    symbols = sorted(f.free_symbols() | result.expr.free_symbols() | {wrt},
                     key=lambda s: s.name)
    rng = np.random.default_rng(seed)
    compared = 0
    notes: list[str] = []  # points where only the high-precision reference decided
    skipped: list[str] = []  # why a point was not checkable, where the reason is not plain
    for _ in range(points):
        point = random_point(symbols, SIZES, rng)
        with np.errstate(all="ignore"):
            try:
                value = np.asarray(evaluate(f, point, SIZES), dtype=float)
            except np.linalg.LinAlgError:  # e.g. the SVD of an overflowed argument
                continue  # f has no float64 value here, so no derivative to compare
            if not np.all(np.isfinite(value)) or not _simple_spectrum(f, point):
                continue  # no derivative here (or f overflows float64)
            got = np.asarray(compiled(**_python_names(point)), dtype=float)
            if not np.all(np.isfinite(got)) and _overflows_on_the_way(f, point):
                skipped.append("f overflows float64 on the way to its value")
                continue
            fd = fd_coarse = None
            if np.max(np.abs(value)) <= oracle.largest:
                fd = _finite_differences(f, wrt, point, oracle, oracle.steps[0])
                fd_coarse = _finite_differences(f, wrt, point, oracle, oracle.steps[1])
        scale = 1.0 + float(np.max(np.abs(value))) + float(np.max(np.abs(fd), initial=0.0)) \
            if fd is not None else 0.0
        if fd is None or not (np.all(np.isfinite(fd)) and np.allclose(
                fd, fd_coarse, rtol=oracle.agree[0], atol=oracle.agree[1] * scale)):
            # f too large for float64 differences (|f| above ``largest``) or them unstable
            # (a kink within a step): the high-precision reference alone decides
            why = "f is too large" if fd is None else "the two steps disagree"
            verdict = _unusable_differences(f, wrt, result, point, oracle, got, seed)
            if verdict is None:
                continue  # the derivative overflows float64 too: not checkable
            right, figures = verdict
            if not right:
                return Outcome("wrong", f"at {point} (float64 finite differences unusable: "
                               f"{why}): {figures}", result)
            notes.append(f"float64 finite differences unusable ({why}); {figures}")
            compared += 1
            continue
        if got.size != fd.size:
            return Outcome("wrong", f"shape {got.shape}, finite differences {fd.shape}", result)
        got = got.reshape(fd.shape)
        bad = ~np.isclose(got, fd, rtol=oracle.tolerance[0], atol=oracle.tolerance[1] * scale)
        if bad.any():  # NaN or infinite where finite differences are finite is wrong too
            worst = np.unravel_index(np.argmax(bad), fd.shape)
            wrong = (f"at {point}: entry {worst}: {kind} {got[worst]}, finite differences "
                     f"{fd[worst]}")
            verdict = _at_high_precision(f, wrt, result, point, oracle, got, seed) if (
                np.all(np.isfinite(got))) else (False, "not finite")
            if verdict is None:
                continue  # on a jump of sign or step: not checkable
            right, figures = verdict
            if not right:
                return Outcome("wrong", f"{wrong}; {figures}", result)
            notes.append(f"{wrong}; {figures}")
        compared += 1
    if not compared:
        return Outcome("skipped", "; ".join(dict.fromkeys(skipped)) or
                       "no point where finite differences are reliable", result)
    return Outcome("checked", "\n  ".join(notes), result, len(notes))


def _unusable_differences(f: Expr, wrt: Symbol, result: matcalc.Derivative, point: dict,
                          oracle: _Oracle, got: np.ndarray, seed: int
                          ) -> tuple[bool, str] | None:
    """The high-precision verdict where float64 finite differences cannot be used; None
    when the derivative itself is beyond float64 (so a non-finite result is no error) or
    the point is on a jump of sign or step."""
    if np.all(np.isfinite(got)):
        return _at_high_precision(f, wrt, result, point, oracle, got, seed)
    try:
        size = max(error for error, _ in high_precision.directional_errors(
            f, wrt, point, SIZES, oracle.mode, np.zeros_like(got),
            np.random.default_rng(seed)))
    except Exception:
        return None
    if not size < 1e300:
        return None
    return False, f"nan or inf where the derivative is finite (about {size:.3g})"


def _relative(error: float, scale: float) -> float:
    """``error / scale``, 0 for an exact zero (a zero Hessian along a direction)."""
    return error / scale if scale else (0.0 if error == 0 else float("inf"))


def _at_high_precision(f: Expr, wrt: Symbol, result: matcalc.Derivative, point: dict,
                       oracle: _Oracle, got: np.ndarray, seed: int) -> tuple[bool, str] | None:
    """Where float64 finite differences and the result disagree, the verdict of a reference
    at high precision (``high_precision``: derivatives of f along random directions at 60
    digits): the formula, evaluated at 60 digits, must agree with it to 1e-8 and the float64
    result ``got`` to the oracle's relative tolerance, both relative to the size of the
    terms. (whether both do, the figures); None at a jump of sign or step, where f has no
    derivative to compare."""
    def errors(claimed: np.ndarray) -> list[tuple[float, float]]:
        return high_precision.directional_errors(
            f, wrt, point, SIZES, oracle.mode, claimed, np.random.default_rng(seed))

    try:
        exact = errors(high_precision.evaluate(result.expr, point, SIZES))
        computed = errors(got)
    except high_precision.AtAKink:
        return None
    except Exception as err:  # no reference: the float64 disagreement stands
        return False, f"no reference ({type(err).__name__}: {err})"
    formula = max(_relative(e, s) for e, s in exact)
    code = max(_relative(e, s) for e, s in computed)
    digits = high_precision.DIGITS
    if formula > 1e-8 or code > oracle.tolerance[0]:
        # before calling it wrong, the reference is computed again, finer: where f varies
        # on a scale of the step, the 60-digit reference is the one that is off; and a
        # reference that still moves between the two finer levels decides nothing
        previous = formula
        for level in (1, 2):
            try:
                with high_precision.finer(level):
                    digits = high_precision.DIGITS
                    exact = errors(high_precision.evaluate(result.expr, point, SIZES))
                    computed = errors(got)
            except high_precision.AtAKink:
                return None
            except Exception as err:
                return False, f"no reference ({type(err).__name__}: {err})"
            formula = max(_relative(e, s) for e, s in exact)
            code = max(_relative(e, s) for e, s in computed)
            if formula <= 1e-8:
                break
            if level == 2 and abs(formula - previous) > 1e-8:
                return None  # the reference has not converged: f varies too fast here
            previous = formula
        if formula <= 1e-8 < code and not _float64_evaluates(f, point):
            return None  # f itself is beyond float64 here (cos of 1e19): no code can be
    figures = (f"relative to the reference at {digits} digits, the formula is "
               f"off by {formula:.2g}, its float64 code by {code:.2g}")
    return formula <= 1e-8 and code <= oracle.tolerance[0], figures


def _overflows_on_the_way(f: Expr, point: dict) -> bool:
    """Whether an intermediate value of f is beyond float64 where f is not (``tanh(exp(e^10))``
    is 1, through exp(22026) = inf). The closed form of the derivative has that value as a
    factor, beside one that underflows to 0 (``1 - tanh(u)^2``): 0 * inf is NaN there in
    any float64 code of it, JAX's and PyTorch's included, so a NaN or infinite result at
    such a point is a limit of float64 and not a wrong formula. A finite result is still
    checked. (One evaluation of f: the interpreter keeps the value of every sub-expression.)"""
    evaluator = Evaluator(NUMPY, {s.name: as_column(point[s.name], s) for s in symbols_of([f])},
                          SIZES)
    # (a LinAlgError stops it: what was computed before still tells)
    with np.errstate(all="ignore"), contextlib.suppress(np.linalg.LinAlgError):
        evaluator.run(f)
    return not all(np.all(np.isfinite(value)) for value in evaluator.memo.values())


def _float64_evaluates(f: Expr, point: dict) -> bool:
    """Whether f's float64 value agrees with its value at high precision (to 1e-6 of its
    size): where it does not, f is too ill-conditioned for float64, and so is any code of
    its derivative."""
    with np.errstate(all="ignore"):
        plain = np.asarray(evaluate(f, point, SIZES), dtype=float)
    precise = high_precision.evaluate(f, point, SIZES)
    return bool(np.allclose(plain.reshape(precise.shape), precise, rtol=1e-6,
                            atol=1e-6 * float(np.max(np.abs(precise), initial=1.0))))


def check_gradient(f: Expr, wrt: Symbol, seed: int = 0, points: int = 2) -> Outcome:
    """Compare ``matcalc.grad(f, wrt).to_numpy()`` with central finite differences (see
    ``_compare``); a variable absent from f has a zero gradient of its shape."""
    if wrt in f.free_symbols():
        return _compare("grad", f, wrt, seed, points)
    try:
        result = matcalc.grad(f, wrt)
    except matcalc.UnsupportedError as err:
        return Outcome("unsupported", err.message)
    point = random_point(sorted(result.expr.free_symbols() | {wrt}, key=lambda s: s.name),
                         SIZES, np.random.default_rng(seed))
    got = np.asarray(evaluate(result.expr, point, SIZES), dtype=float)
    if got.shape != np.shape(point[wrt.name]) or np.any(got != 0):
        return Outcome("wrong", f"expected a zero of the shape of {wrt.name}", result)
    return Outcome("checked", "", result)


def check_hessian(f: Expr, wrt: Symbol, seed: int = 0, points: int = 2) -> Outcome:
    """Compare ``matcalc.hessian(f, wrt).to_numpy()`` with second differences of f."""
    return _compare("hessian", f, wrt, seed, points)


def check_jacobian(f: Expr, wrt: Symbol, seed: int = 0, points: int = 2) -> Outcome:
    """Compare ``matcalc.jacobian(f, wrt).to_numpy()`` (J_ij = df_i / dwrt_j; d vec(f) /
    d vec(wrt)^T for a matrix variable) with central finite differences."""
    return _compare("jacobian", f, wrt, seed, points)


def check_derivative(f: Expr, wrt: Symbol, seed: int = 0, points: int = 2) -> Outcome:
    """Compare ``matcalc.derivative(f, wrt).to_numpy()`` (d vec(f) / d vec(wrt)^T) with
    central finite differences."""
    return _compare("derivative", f, wrt, seed, points)
