"""Hypothesis strategies for random well-typed expressions in parser normal form.

"Parser normal form" means exactly the trees ``matcalc.parse`` can produce: ``Neg``
instead of negative numbers (negative numbers only as folded exponents such as
``A^-1``), no ``Number / Number`` division (the parser folds it into one exact
number), ``Mul`` and ``Hadamard`` chains with at least two factors, no ``Number(1)``
as a factor of a product (the parser may read it as the all-ones vector), the
all-ones vector only as ``1^T`` opening a product or as the last factor after a
factor with several columns, ``I`` only inside a product with another matrix or
vector factor, and every symbol consistently typed (one name, one shape).

Every dimension is one of ``DIMS`` and every non-scalar symbol is declared, so
``parse(str(e), **declarations(e)) == e`` holds exactly. Reuse::

    from strategies import declarations, well_typed_exprs

    @given(well_typed_exprs(kind="scalar"))
    def test_something(e): ...
"""

from __future__ import annotations

from collections.abc import Collection
from fractions import Fraction

from hypothesis import strategies as st

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

DIMS = ("n", "m", "p")
"""The dimension names random expressions use."""

SCALAR_SHAPE = (1, 1)

# One name, one shape: names are chosen by shape so an expression never uses a name
# with two different kinds.
GREEK_SCALARS = ("alpha", "beta", "lambda", "mu", "sigma", "theta_1", "Gamma")
DECLARED_SCALARS = ("c", "t", "loss")  # lowercase (or multi-letter) names declared scalar
VECTOR_NAMES = {"n": ("x", "y", "x_i"), "m": ("a", "b", "w1"), "p": ("u", "v", "h_j")}
PROBABILITY_NAMES = {"n": "q", "m": "r", "p": "k"}
SYMMETRIC_NAMES = {"n": "S", "m": "P", "p": "Q"}
MATRIX_NAMES = {
    ("n", "m"): ("A", "W1"),
    ("m", "n"): ("B", "W_k"),
    ("n", "p"): ("C",),
    ("p", "n"): ("D",),
    ("m", "p"): ("E",),
    ("p", "m"): ("M",),
    ("n", "n"): ("G", "K"),
    ("m", "m"): ("H",),
    ("p", "p"): ("J",),
}

ELEMENTWISE = ("exp", "log", "sqrt", "sin", "cos", "tanh", "sigma", "relu", "softplus",
               "abs", "sign")
SQUARE_TO_SCALAR = ("tr", "det", "logdet")
SPECTRAL = ("lambda_max", "lambda_min", "eigvec_max", "eigvec_min", "svec_left", "svec_right")
ALL_FUNCTIONS = frozenset(ELEMENTWISE + SQUARE_TO_SCALAR + SPECTRAL
                          + ("sum", "logsumexp", "softmax", "diag", "vec"))
"""Every function the strategies may generate."""


def declarations(e: Expr) -> dict[str, str]:
    """Keyword declarations (``parse(text, **decls)``) that type every symbol of ``e``."""
    out: dict[str, str] = {}
    for s in e.free_symbols():
        rows, cols = s.dims
        if (rows, cols) == SCALAR_SHAPE:
            if s.name not in GREEK_SCALARS:  # Greek names are scalars by default; a
                out[s.name] = "scalar"  # declared `sigma` would no longer be a function

        elif cols == 1:
            prefix = "probability " if "probability" in s.props else ""
            out[s.name] = f"{prefix}vector({rows})"
        else:
            prefix = "symmetric " if "symmetric" in s.props else ""
            out[s.name] = f"{prefix}matrix({rows}, {cols})"
    return out


def where_clause(e: Expr) -> str:
    """The declarations of ``e`` as a ``where`` clause (empty when nothing to declare)."""
    decls = declarations(e)
    if not decls:
        return ""
    return " where " + ", ".join(f"{k}: {v}" for k, v in sorted(decls.items()))


# ---------------------------------------------------------------------------- leaves

_numbers = st.one_of(
    st.integers(min_value=2, max_value=12).map(lambda v: Number(Fraction(v))),
    st.just(Number(Fraction(0))),
    st.sampled_from([Fraction(1, 2), Fraction(3, 4), Fraction(5, 2)]).map(Number),
)
"""Non-negative numbers other than 1 (a product factor 1 may be read as all-ones)."""


def _scalar_leaf() -> st.SearchStrategy[Expr]:
    return st.one_of(
        _numbers,
        st.sampled_from(GREEK_SCALARS).map(lambda n: Symbol(n, SCALAR_SHAPE)),
        st.sampled_from(DECLARED_SCALARS).map(lambda n: Symbol(n, SCALAR_SHAPE)),
    )


def _leaf(shape) -> st.SearchStrategy[Expr]:
    rows, cols = shape
    if shape == SCALAR_SHAPE:
        return _scalar_leaf()
    if cols == 1:
        plain = st.sampled_from(VECTOR_NAMES[rows]).map(lambda n: Symbol(n, (rows, 1)))
        prob = st.just(Symbol(PROBABILITY_NAMES[rows], (rows, 1), frozenset({"probability"})))
        return st.one_of(plain, plain, prob)
    if rows == 1:
        return _leaf((cols, 1)).map(Transpose)
    plain = st.sampled_from(MATRIX_NAMES[(rows, cols)]).map(lambda n: Symbol(n, (rows, cols)))
    if rows == cols:
        sym = st.just(Symbol(SYMMETRIC_NAMES[rows], (rows, rows), frozenset({"symmetric"})))
        return st.one_of(plain, sym)
    return plain


# ---------------------------------------------------------------------------- composites


class _Gen:
    """Type-directed generation: ``expr(shape, budget)`` is a strategy for that shape."""

    def __init__(self, functions: frozenset[str], max_terms: int) -> None:
        self.functions = functions
        self.max_terms = max_terms
        self._cache: dict[tuple, st.SearchStrategy[Expr]] = {}

    def fn(self, *names: str) -> list[str]:
        return [n for n in names if n in self.functions]

    def expr(self, shape, budget: int) -> st.SearchStrategy[Expr]:
        key = (tuple(shape), budget)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._expr(tuple(shape), budget))
        return self._cache[key]

    def _expr(self, shape, budget: int) -> st.SearchStrategy[Expr]:
        if budget <= 0:
            return _leaf(shape)
        sub = budget - 1
        options = [_leaf(shape), self.add(shape, sub), self.mul(shape, sub),
                   self.expr(shape, sub).map(Neg),
                   self.div(shape, sub), self.hadamard(shape, sub), self.elemdiv(shape, sub),
                   self.expr((shape[1], shape[0]), sub).map(Transpose),
                   self.elempow(shape, sub)]
        elementwise = self.fn(*ELEMENTWISE)
        if elementwise:
            options.append(st.builds(lambda f, a: Call(f, (a,)), st.sampled_from(elementwise),
                                     self.expr(shape, sub)))
        options.extend(self.by_shape(shape, sub))
        return st.one_of(*options)

    def by_shape(self, shape, sub: int) -> list[st.SearchStrategy[Expr]]:
        rows, cols = shape
        dims = st.sampled_from(DIMS)
        out: list[st.SearchStrategy[Expr]] = []
        if shape == SCALAR_SHAPE:
            out.append(st.builds(Pow, self.expr(shape, sub), self.exponent()))
            sq = self.fn(*SQUARE_TO_SCALAR)
            if sq:
                out.append(dims.flatmap(lambda d: st.builds(
                    lambda f, a: Call(f, (a,)), st.sampled_from(sq), self.expr((d, d), sub))))
            spectral = self.fn("lambda_max", "lambda_min")
            if spectral:
                out.append(st.builds(lambda f, d: Call(f, (Symbol(SYMMETRIC_NAMES[d], (d, d),
                                                                  frozenset({"symmetric"})),)),
                                     st.sampled_from(spectral), dims))
            if "logsumexp" in self.functions:
                out.append(dims.flatmap(lambda d: self.expr((d, 1), sub)).map(
                    lambda a: Call("logsumexp", (a,))))
            if "sum" in self.functions:
                out.append(self.any_shape(sub).map(lambda a: Call("sum", (a,))))
            out.append(dims.flatmap(lambda d: st.builds(
                Norm, self.expr((d, 1), sub), st.sampled_from([None, "1", "2"]))))
            out.append(st.tuples(dims, dims).flatmap(lambda s: st.builds(
                Norm, self.expr(s, sub), st.sampled_from(["F", "2"]))))
        elif cols == 1 and rows != 1:
            if "softmax" in self.functions:
                out.append(self.expr(shape, sub).map(lambda a: Call("softmax", (a,))))
            if "diag" in self.functions:
                out.append(self.expr((rows, rows), sub).map(lambda a: Call("diag", (a,))))
            vecs = self.fn("eigvec_max", "eigvec_min")
            if vecs:
                out.append(st.builds(lambda f, a: Call(f, (a,)), st.sampled_from(vecs),
                                     self.expr((rows, rows), sub)))
            if "svec_left" in self.functions:
                out.append(dims.flatmap(lambda d: self.expr((rows, d), sub)).map(
                    lambda a: Call("svec_left", (a,))))
        elif rows == cols and rows != 1:
            out.append(st.builds(Pow, self.expr(shape, sub),
                                 st.sampled_from([-1, 2, 3]).map(lambda v: Number(Fraction(v)))))
            if "diag" in self.functions:
                out.append(self.expr((rows, 1), sub).map(lambda a: Call("diag", (a,))))
        if rows != 1 and cols != 1:  # the solution of A W + W B = C
            out.append(st.builds(Sylvester, self.expr((rows, rows), sub),
                                 self.expr((cols, cols), sub), self.expr(shape, sub)))
        return out

    def exponent(self, negative: bool = False) -> st.SearchStrategy[Expr]:
        """Exponents as the parser reads them: ``-1`` is a folded Number, ``-alpha`` a Neg."""
        # Scalar powers with negative exponents are left out: the text printer shows
        # `a^-1` as `1 / a` (textbook form), which reads back as a division.
        return st.one_of(
            st.sampled_from([2, 3, -1, -2] if negative else [2, 3]).map(
                lambda v: Number(Fraction(v))),
            st.just(Number(Fraction(1, 2))),
            st.sampled_from(GREEK_SCALARS).map(lambda n: Symbol(n, SCALAR_SHAPE)),
            st.sampled_from(GREEK_SCALARS).map(lambda n: Neg(Symbol(n, SCALAR_SHAPE))),
        )

    def any_shape(self, sub: int) -> st.SearchStrategy[Expr]:
        """Any shape, including the composite dimensions of ``kron`` and ``vec``."""
        shapes = st.sampled_from([SCALAR_SHAPE, *((d, 1) for d in DIMS),
                                  *MATRIX_NAMES.keys()])
        plain = shapes.flatmap(lambda s: self.expr(s, sub))
        kron = st.builds(Kron, plain, plain)
        options = [plain, kron]
        if "vec" in self.functions:
            options.append(st.tuples(st.sampled_from(DIMS), st.sampled_from(DIMS)).flatmap(
                lambda s: self.expr(s, sub)).map(lambda a: Call("vec", (a,))))
        return st.one_of(*options)

    def add(self, shape, sub: int) -> st.SearchStrategy[Expr]:
        @st.composite
        def build(draw):
            n = draw(st.integers(2, self.max_terms))
            terms = []
            for _ in range(n):
                broadcast = shape != SCALAR_SHAPE and draw(st.integers(0, 4)) == 0
                if broadcast:
                    term = draw(st.one_of(st.just(Number(Fraction(1))), _scalar_leaf()))
                else:
                    term = draw(self.expr(shape, sub))
                if draw(st.booleans()):
                    term = Neg(term)
                terms.append(term)
            if all(t.shape == SCALAR_SHAPE for t in terms) and shape != SCALAR_SHAPE:
                terms[0] = draw(self.expr(shape, sub))
            return Add(tuple(terms))

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
            nonscalar = [i for i, s in enumerate(shapes) if s != SCALAR_SHAPE]
            # At most one unanchored factor (I, 1, 1^T), next to an anchored one.
            if len(nonscalar) >= 2:
                choice = draw(st.integers(0, 5))
                squares = [i for i in nonscalar if shapes[i][0] == shapes[i][1]]
                last, first = nonscalar[-1], nonscalar[0]
                if choice == 0 and squares:
                    i = draw(st.sampled_from(squares))
                    factors[i] = Identity(shapes[i][0])
                elif choice == 1 and shapes[last][1] == 1 and last == k - 1:
                    factors[last] = Ones(shapes[last][0])
                elif choice == 2 and shapes[first][0] == 1 and first == 0:
                    factors[first] = Transpose(Ones(shapes[first][1]))
            scalars = draw(st.lists(_scalar_leaf(), max_size=2))
            for s in scalars:
                pos = draw(st.integers(0, len(factors)))
                if isinstance(s, Number) and pos != 0:
                    pos = 0  # numbers lead, as coefficients
                factors.insert(pos, s)
            if len(factors) < 2:
                factors.insert(0, draw(st.sampled_from(GREEK_SCALARS).map(
                    lambda n: Symbol(n, SCALAR_SHAPE))))
            return Mul(tuple(factors))

        return build()

    def div(self, shape, sub: int) -> st.SearchStrategy[Expr]:
        def make(num: Expr, den: Expr) -> Expr:
            if isinstance(num, Number) and isinstance(den, Number):
                den = Symbol("beta", SCALAR_SHAPE)
            return Div(num, den)

        return st.builds(make, self.expr(shape, sub), self.expr(SCALAR_SHAPE, sub))

    def hadamard(self, shape, sub: int) -> st.SearchStrategy[Expr]:
        return st.lists(self.expr(shape, sub), min_size=2, max_size=3).map(
            lambda fs: Hadamard(tuple(fs)))

    def elemdiv(self, shape, sub: int) -> st.SearchStrategy[Expr]:
        return st.builds(ElemDiv, self.expr(shape, sub), self.expr(shape, sub))

    def elempow(self, shape, sub: int) -> st.SearchStrategy[Expr]:
        return st.builds(ElemPow, self.expr(shape, sub), self.exponent(negative=True))


_KIND_SHAPES = {
    "scalar": [SCALAR_SHAPE],
    "vector": [(d, 1) for d in DIMS],
    "row vector": [(1, d) for d in DIMS],
    "matrix": list(MATRIX_NAMES),
}


def well_typed_exprs(
    kind: str | None = None,
    *,
    max_depth: int = 3,
    functions: Collection[str] | None = None,
    spectral: bool = True,
    max_terms: int = 3,
) -> st.SearchStrategy[Expr]:
    """Random well-typed expressions of a kind (``"scalar"``, ``"vector"``, ``"row vector"``,
    ``"matrix"``, or None for any), in parser normal form.

    ``functions`` restricts the function names used (default: all); ``spectral=False``
    leaves out the spectral functions (whose LaTeX is display-only).
    """
    allowed = frozenset(ALL_FUNCTIONS if functions is None else functions)
    if not spectral:
        allowed -= frozenset(SPECTRAL)
    unknown = allowed - ALL_FUNCTIONS
    if unknown:
        raise ValueError(f"unknown functions: {sorted(unknown)}")
    gen = _generator(allowed, max_terms)
    kinds = list(_KIND_SHAPES) if kind is None else [kind]
    shapes = [s for k in kinds for s in _KIND_SHAPES[k]]
    return st.integers(0, max_depth).flatmap(
        lambda depth: st.sampled_from(shapes).flatmap(lambda s: gen.expr(s, depth)))


def well_typed_with_shape(shape: tuple, *, max_depth: int = 3) -> st.SearchStrategy[Expr]:
    """Random well-typed expressions of exactly ``shape`` (dimensions from ``DIMS`` or 1)."""
    return st.integers(0, max_depth).flatmap(
        lambda depth: _generator(ALL_FUNCTIONS, 3).expr(tuple(shape), depth))


_GENERATORS: dict[tuple, _Gen] = {}


def _generator(functions: frozenset[str], max_terms: int) -> _Gen:
    key = (functions, max_terms)
    if key not in _GENERATORS:
        _GENERATORS[key] = _Gen(functions, max_terms)
    return _GENERATORS[key]


def mutated(formula: str, data: st.DataObject, alphabet: list[str]) -> str:
    """``formula`` with one to four random edits: insert, delete, replace, swap, duplicate."""
    chars = list(formula)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["insert", "delete", "replace", "swap", "duplicate"]))
        i = data.draw(st.integers(0, max(len(chars) - 1, 0)))
        if op == "insert":
            chars.insert(i, data.draw(st.sampled_from(alphabet)))
        elif chars and op == "delete":
            del chars[i]
        elif chars and op == "replace":
            chars[i] = data.draw(st.sampled_from(alphabet))
        elif chars and op == "duplicate":
            j = data.draw(st.integers(i, len(chars)))
            chars[i:i] = chars[i:j]
        elif len(chars) > 1:
            j = data.draw(st.integers(0, len(chars) - 1))
            chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)
