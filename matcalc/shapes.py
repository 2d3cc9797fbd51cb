"""Kinds and shapes: declarations, dimension unification and shape errors."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .dims import DimUnion, Product, dim_factors, dim_names, map_dim
from .errors import ShapeError, UnsupportedError
from .expr import (
    SCALAR,
    Add,
    Call,
    Dim,
    Div,
    ElemDiv,
    ElemPow,
    Expr,
    Hadamard,
    Kron,
    Mul,
    Neg,
    Norm,
    Number,
    Ones,
    Pow,
    Shape,
    Sylvester,
    Symbol,
    Transpose,
    kind_of,
    leaf_dims,
    substitute_dims,
)
from .functions import FUNCTIONS, check_argument

MAX_MATRIX_POWER = 10_000
"""Largest |k| of a matrix power X^k: its differential is a sum of k terms."""
WRITTEN_ONES = "?ones"
"""The size of a parsed bold `\\mathbf{1}` / `𝟏`: the ones vector, sized by elaboration."""

KINDS = ("scalar", "vector", "matrix")
PROPERTIES = ("symmetric", "diagonal", "probability")
DIM_NAMES = ("n", "m", "p", "q", "r", "k", "l", "s", "t", "u", "v")


@dataclass(frozen=True)
class Decl:
    """A declared kind: ``symmetric matrix(n, n)``, ``vector(n)``, ``scalar``."""

    kind: str
    dims: tuple[Dim, ...] = ()
    props: frozenset[str] = field(default_factory=frozenset)

    def __str__(self) -> str:
        words = [*sorted(self.props), self.kind]
        text = " ".join(words)
        if self.dims:
            text += "(" + ", ".join(str(d) for d in self.dims) + ")"
        return text


def declaration_of(symbol: Symbol) -> Decl | None:
    """The declaration a where-clause would write for a variable (``symmetric matrix(n, n)``);
    None for a row vector, which no declaration makes."""
    rows, cols = symbol.shape
    kind = kind_of(symbol.shape)
    if kind == "scalar":
        return Decl("scalar", (), symbol.props)
    if kind == "vector":
        return Decl("vector", (rows,), symbol.props)
    if kind == "matrix":
        return Decl("matrix", (rows, cols), symbol.props)
    return None


def make_decl(props: list[str], kind: str | None, dims: list[Dim]) -> Decl:
    """Check and build a declaration from its parts (raises DeclarationError)."""
    from .errors import DeclarationError

    props_set = frozenset(props)
    if "positive definite" in props_set:  # symmetric, and Cholesky-factorisable
        props_set |= {"symmetric"}
    if kind is None:
        if "symmetric" in props_set or "diagonal" in props_set:
            kind = "matrix"
        elif "probability" in props_set:
            kind = "vector"
        else:
            raise DeclarationError("a declaration needs a kind", hint="scalar, vector or matrix")
    for square in ("symmetric", "diagonal"):
        if square in props_set and kind != "matrix":
            raise DeclarationError(f"only a matrix can be {square}, not a {kind}")
    if "probability" in props_set and kind != "vector":
        raise DeclarationError(f"only a vector can be a probability vector, not a {kind}")
    expected = {"scalar": (0,), "vector": (0, 1), "matrix": (0, 1, 2)}[kind]
    if len(dims) not in expected:
        raise DeclarationError(
            f"{kind} takes {' or '.join(str(e) for e in expected)} dimensions, got {len(dims)}",
            hint="for example vector(n) or matrix(m, n)",
        )
    if any(d == 1 for d in dims):
        raise DeclarationError(
            "a dimension of 1 is not a vector or matrix", hint="declare it as a scalar or vector"
        )
    if kind == "matrix" and len(dims) == 1:
        dims = [dims[0], dims[0]]
    for square in ("symmetric", "diagonal"):
        if square in props_set and len(dims) == 2 and dims[0] != dims[1]:
            raise DeclarationError(
                f"a {square} matrix is square, got matrix({dims[0]}, {dims[1]})")
    return Decl(kind, tuple(dims), props_set)


class Dims(DimUnion):
    """Shape inference's union-find: inference variables ``?k`` join any class but 1's;
    declared names and numbers are fixed; two products of as many factors unify factor
    by factor (``vec(A)^T vec(B)``: A and B alike)."""

    def __init__(self) -> None:
        super().__init__(lambda root, other: self.is_var(root) and other != 1)
        self.counter = itertools.count(1)

    def fresh(self) -> str:
        return f"?{next(self.counter)}"

    @staticmethod
    def is_var(d: Dim) -> bool:
        return isinstance(d, str) and d.startswith("?")

    def shape(self, s: Shape) -> Shape:
        return (self.find(s[0]), self.find(s[1]))

    def unify(self, a: Dim, b: Dim) -> bool:
        """Make a and b equal; False when they are different known sizes."""
        if self.union(a, b):
            return True
        fa, fb = dim_factors(self.find(a)), dim_factors(self.find(b))
        if len(fa) > 1 and len(fa) == len(fb):
            return all(self.unify(x, y) for x, y in zip(fa, fb, strict=True))
        return False


def describe(shape: Shape) -> str:
    """``vector (n)``, ``matrix (m×n)``, ``scalar``."""
    kind = kind_of(shape)
    if kind == "scalar":
        return "scalar"
    if kind == "vector":
        return f"vector ({shape[0]})"
    if kind == "row vector":
        return f"row vector (1×{shape[1]})"
    return f"matrix ({shape[0]}×{shape[1]})"


class Inference:
    """Elaborates a parsed expression: resolves ``1``, checks and unifies every shape."""

    def __init__(
        self,
        dims: Dims,
        locate: Callable[[Expr], int | None],
        text: str | None,
        reserved_dims: set[str],
    ) -> None:
        self.dims = dims
        self.locate = locate
        self.text = text
        self.reserved = reserved_dims
        self.opaque: set[int] = set()  # ids of sub-expressions typed already (where-bindings)
        # The occurrence being elaborated and how many of its children were visited: an
        # error points at the occurrence (equal sub-expressions are one hash-consed node).
        self._cursor: list[list] = []
        self._root: Any = None

    # -- errors ----------------------------------------------------------------
    def _for_message(self, e: Expr) -> Expr:
        # One naming for every sub-expression a message shows, so dimensions compare.
        if not hasattr(self, "_message_names"):
            self._message_names: dict[Dim, Dim] = {}
        self._message_names.update(
            {k: v for k, v in self.names(e, avoid=set(self._message_names.values())).items()
             if k not in self._message_names}
        )
        return self.finish(e, self._message_names)

    def _show(self, e: Expr) -> str:
        return str(self._for_message(e))

    def _shape_desc(self, e: Expr) -> str:
        return describe(self._for_message(e).shape)

    def fail(self, message: str, at: Expr | int, hint: str | None = None, cls=ShapeError):
        """Raise at ``at``: the node being elaborated, or the index of one of its children."""
        raise cls(message, text=self.text, pos=self.position(at), hint=hint)

    def position(self, at: Expr | int) -> int | None:
        """Where the occurrence ``at`` was written (an int: that child of the current node)."""
        here = self._cursor[-1][0] if self._cursor else None
        if isinstance(at, int):
            if here is not None and at < len(here.children):
                return here.children[at].start
            return None
        if here is not None and here.expr is at:
            return here.start
        return self.locate(at)

    def mismatch(self, what: str, a: Expr, b: Expr, at: Expr | int, hint: str | None = None):
        self.fail(
            f"shape mismatch in {what}: `{self._show(a)}` is a {self._shape_desc(a)} "
            f"but `{self._show(b)}` is a {self._shape_desc(b)}",
            at,
            hint,
        )

    # -- helpers ---------------------------------------------------------------
    def is_scalar(self, e: Expr) -> bool:
        return self.dims.shape(e.shape) == SCALAR

    def unify_shapes(self, a: Expr, b: Expr, what: str, at: Expr | int,
                     hint: str | None = None):
        sa, sb = a.shape, b.shape
        ok = self.dims.unify(sa[0], sb[0]) and self.dims.unify(sa[1], sb[1])
        if not ok:
            self.mismatch(what, a, b, at, hint)

    def square(self, e: Expr, what: str, at: Expr) -> None:
        rows, cols = e.shape
        if isinstance(e, Kron) and all(
            self.dims.unify(*side.shape) for side in (e.left, e.right)
        ):  # tr(A ⊗ X) reads as square factors, as a reader expects
            return
        if kind_of(self.dims.shape(e.shape)) in ("vector", "row vector") or not self.dims.unify(
            rows, cols
        ):
            self.fail(
                f"{what} needs a square matrix, but `{self._show(e)}` is a {self._shape_desc(e)}",
                at,
            )

    # -- elaboration -----------------------------------------------------------
    def elaborate_at(self, where: Any) -> Expr:
        """Elaborate a located expression (``parse.Located``: ``expr``, ``start``, ``children``
        aligned with the node's children), so that errors point at the right occurrence."""
        self._root = where
        return self.elaborate(where.expr)

    def elaborate(self, e: Expr) -> Expr:
        if id(e) in self.opaque:
            return e
        # Every _elab_ method elaborates the children of its node in order, once each.
        if self._cursor:
            parent = self._cursor[-1]
            i = parent[1]
            parent[1] += 1
            here = parent[0]
            here = here.children[i] if here is not None and i < len(here.children) else None
        else:
            here, self._root = self._root, None
        self._cursor.append([here, 0])
        try:
            method = getattr(self, "_elab_" + type(e).__name__)
            return method(e)
        finally:
            self._cursor.pop()

    def _elab_Symbol(self, e: Symbol) -> Expr:
        return e

    _elab_Identity = _elab_Zero = _elab_Number = _elab_Differential = _elab_Symbol
    _elab_Commutation = _elab_Symbol

    def _elab_Ones(self, e: Ones) -> Expr:
        return Ones(self.dims.fresh()) if e.n == WRITTEN_ONES else e

    def _ones_here(self, e: Expr) -> bool:
        """A written `1` that may be the ones vector (the number, or a bold `\\mathbf{1}`)."""
        return (isinstance(e, Number) and e.value == 1) or (
            isinstance(e, Ones) and e.n == WRITTEN_ONES)

    def _elab_Add(self, e: Add) -> Expr:
        terms = [self.elaborate(t) for t in e.terms]
        self._broadcast(terms, "sum", e, e.terms)
        return Add(tuple(terms))

    def _broadcast(self, items: list[Expr], what: str, at: Expr, raw=None) -> None:
        first = next((t for t in items if not self.is_scalar(t)), None)
        if first is None:
            return
        for i, t in enumerate(items):
            if t is not first and not self.is_scalar(t):
                where = i if raw is not None and self.position(i) is not None else at
                self.unify_shapes(first, t, what, where)

    def _elab_Neg(self, e: Neg) -> Expr:
        return Neg(self.elaborate(e.arg))

    def _elab_Mul(self, e: Mul) -> Expr:
        factors: list[Expr] = []
        current: Expr | None = None  # the product so far, for shape checks
        raw = e.factors
        for i, f in enumerate(raw):
            if self._ones_here(f):
                prev_wide = current is not None and self.dims.find(current.shape[1]) != 1
                nxt = raw[i + 1] if i + 1 < len(raw) else None
                next_row = (
                    (current is None or self.is_scalar(current))
                    and nxt is not None
                    and isinstance(nxt, Transpose)
                )
                # after another factor (`(1 / (1^T 1)) 1`, `2 (1^T x) 1`) a `1` is never the
                # number, which would change nothing; a bold `\\mathbf{1}` never is
                if prev_wide or next_row or i > 0 or isinstance(f, Ones):
                    f = Ones(self.dims.fresh())
            f = self.elaborate(f)
            factors.append(f)
            if current is None or self.is_scalar(current) or self.is_scalar(f):
                current = f if current is None or self.is_scalar(current) else current
                continue
            if not self.dims.unify(current.shape[1], f.shape[0]):
                left = Mul(tuple(factors[:-1])) if len(factors) > 2 else factors[0]
                hint = None
                why = "the inner dimensions differ"
                if kind_of(self.dims.shape(left.shape)) == "vector" and kind_of(
                    self.dims.shape(f.shape)
                ) == "vector":
                    why = "a vector times a vector is not defined"
                    hint = (
                        f"for an inner product write `{self._show(left)}^T {self._show(f)}`, "
                        f"for an outer product `{self._show(left)} {self._show(f)}^T`"
                    )
                at = i if self.position(i) is not None else e
                self.fail(
                    f"cannot multiply `{self._show(left)}`, a {self._shape_desc(left)}, "
                    f"by `{self._show(f)}`, a {self._shape_desc(f)}: {why}",
                    at,
                    hint,
                )
            current = Mul((current, f))
        return Mul(tuple(factors))

    def _elab_Div(self, e: Div) -> Expr:
        num, den = self.elaborate(e.num), self.elaborate(e.den)
        if not self.is_scalar(den):
            self.fail(
                f"division by `{self._show(den)}`, a {self._shape_desc(den)}: `/` divides by "
                "a scalar",
                e,
                hint="use ./ for elementwise division, or multiply by an inverse",
            )
        return Div(num, den)

    def _elab_Hadamard(self, e: Hadamard) -> Expr:
        factors = [self.elaborate(f) for f in e.factors]
        self._broadcast(factors, "elementwise product", e)
        return Hadamard(tuple(factors))

    def _elab_ElemDiv(self, e: ElemDiv) -> Expr:
        num, den = self.elaborate(e.num), self.elaborate(e.den)
        self._broadcast([num, den], "elementwise division", e)
        return ElemDiv(num, den)

    def _elab_Kron(self, e: Kron) -> Expr:
        # `1 ⊗ x` stacks copies of x: a `1` there is the ones vector (the number would
        # make the product pointless)
        left, right = (Ones(self.dims.fresh()) if self._ones_here(f) else f
                       for f in (e.left, e.right))
        return Kron(self.elaborate(left), self.elaborate(right))

    def _elab_Sylvester(self, e: Sylvester) -> Expr:
        a, b, c = (self.elaborate(x) for x in (e.a, e.b, e.c))
        self.square(a, "the A of sylvester(A, B, C)", e)
        self.square(b, "the B of sylvester(A, B, C)", e)
        if not (self.dims.unify(a.shape[0], c.shape[0])
                and self.dims.unify(b.shape[1], c.shape[1])):
            self.fail(
                f"sylvester(A, B, C) solves A W + W B = C, so C has as many rows as A and "
                f"as many columns as B; `{self._show(c)}` is a {self._shape_desc(c)}, "
                f"`{self._show(a)}` a {self._shape_desc(a)} and `{self._show(b)}` a "
                f"{self._shape_desc(b)}", e)
        return Sylvester(a, b, c)

    def _elab_Transpose(self, e: Transpose) -> Expr:
        if self._ones_here(e.arg):
            return Transpose(Ones(self.dims.fresh()))
        return Transpose(self.elaborate(e.arg))

    def _elab_Pow(self, e: Pow) -> Expr:
        base, exponent = self.elaborate(e.base), self.elaborate(e.exponent)
        if not self.is_scalar(exponent):
            self.fail(f"the exponent `{self._show(exponent)}` must be a scalar", e)
        kind = kind_of(self.dims.shape(base.shape))
        if kind in ("vector", "row vector"):
            b = self._show(base)
            self.fail(
                f"`{b}` is a {kind}: it has no power `^`",
                e,
                hint=f"write `{b}.^{self._show(exponent)}` for the elementwise power"
                + (f" or `{b}^T {b}` for the squared length" if str(exponent) == "2" else ""),
            )
        if kind == "matrix":
            self.square(base, "a matrix power", e)
            if not (isinstance(exponent, Number) and exponent.value.denominator == 1):
                self.fail(
                    f"a matrix power needs an integer exponent, not `{self._show(exponent)}`",
                    e,
                    hint="use .^ for an elementwise power",
                    cls=UnsupportedError,
                )
            if abs(exponent.value) > MAX_MATRIX_POWER:
                self.fail(
                    f"the matrix power `^{exponent}` is too large to differentiate "
                    f"(at most {MAX_MATRIX_POWER})",
                    e,
                    hint="d(X^k) is a sum of k terms; use an elementwise power .^ or a "
                    "smaller exponent",
                    cls=UnsupportedError,
                )
        return Pow(base, exponent)

    def _elab_ElemPow(self, e: ElemPow) -> Expr:
        base, exponent = self.elaborate(e.base), self.elaborate(e.exponent)
        if not self.is_scalar(exponent):
            self.fail(f"the exponent `{self._show(exponent)}` must be a scalar", e)
        return ElemPow(base, exponent)

    def _elab_Norm(self, e: Norm) -> Expr:
        arg = self.elaborate(e.arg)
        kind = kind_of(self.dims.shape(arg.shape))
        if kind == "matrix" and e.p is None:
            a = self._show(arg)
            self.fail(
                f"`||{a}||` of a matrix is ambiguous",
                e,
                hint=f"write ||{a}||_F for the Frobenius norm or ||{a}||_2 for the spectral norm",
            )
        if kind == "matrix" and e.p == "1":
            self.fail(
                "the matrix 1-norm is not supported",
                e,
                hint=f"sum(|{self._show(arg)}|) is the entrywise 1-norm",
                cls=UnsupportedError,
            )
        return Norm(arg, e.p)

    def _elab_Call(self, e: Call) -> Expr:
        fn = FUNCTIONS[e.name]
        if len(e.args) != fn.arity:
            self.fail(f"{e.name} takes {fn.arity} argument(s), got {len(e.args)}", e)
        args = tuple(self.elaborate(a) for a in e.args)
        shape = self.dims.shape(args[0].shape)
        problem = check_argument(fn, shape)
        if problem:
            self.fail(f"{problem}: `{self._show(args[0])}`", e)
        is_matrix = kind_of(shape) == "matrix"
        if fn.accepts == "square" or (fn.accepts == "vector or square" and is_matrix):
            self.square(args[0], fn.name, e)
        return Call(e.name, args)

    # -- final naming ----------------------------------------------------------
    def names(self, e: Expr, avoid: set[Dim] | None = None) -> dict[Dim, Dim]:
        """Readable names for the remaining variables, in order of appearance."""
        mapping: dict[Dim, Dim] = {}
        taken = self.reserved | (avoid or set())
        pool = (d for d in itertools.chain(DIM_NAMES, (f"n{i}" for i in itertools.count(1)))
                if d not in taken)
        for node in e.walk():
            for d in leaf_dims(node):
                for name in dim_names(self.dims.find(d)):  # each variable of a product too
                    root = self.dims.find(name)
                    if root not in mapping and self.dims.is_var(root):
                        mapping[root] = next(pool)
        return mapping

    def finish(self, e: Expr, mapping: dict[Dim, Dim] | None = None) -> Expr:
        """Rebuild with every dimension resolved and named."""
        if mapping is None:
            mapping = self.names(e)

        def dim(d: Dim) -> Dim:
            root = self.dims.find(d)
            if isinstance(root, Product):  # a product's factors are names: resolve each
                return map_dim(root, dim)
            return mapping.get(root, root)

        return substitute_dims(e, dim)
