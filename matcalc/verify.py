"""Entrywise verification of derivatives: explicit SymPy matrices, sympy.diff, comparison.

How a check works (``check_derivative``):

1. Every symbolic dimension gets a distinct small size (2, 3, 4, ...; dimensions of
   inverted or determinant-taken matrices first, so they stay small and SymPy stays fast).
2. At several random rational points the derivative of ``f`` is taken entrywise with
   ``sympy.diff`` (the ``wrt`` variable symbolic with independent entries, the other
   variables exact rationals) and compared with the closed form at 30 significant digits.
   Points satisfy the declared constraints: symmetric matrices are symmetric (the
   derivative is taken treating entries as independent, then evaluated on symmetric
   values, as LANGUAGE.md section 6 says), probability vectors are positive and sum to
   one, square matrices are diagonally dominant (well conditioned, positive determinant).
   A point where either side is not a finite real number (log of a negative number, ...)
   is replaced, preferring positive entries.
3. When the points agree, an exact proof is attempted within a time budget: everything
   symbolic (probability vectors with their last entry replaced by one minus the sum of
   the others), and the difference normalised by ``expand``/``cancel``. Success makes the
   method ``"exact"``; otherwise it stays ``"numeric"``.
4. Spectral functions (eigenvalues, singular vectors) have no SymPy form: those checks use
   NumPy finite differences (method ``"numeric"``, detail ``"finite differences"``).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from . import numeric
from .errors import DeclarationError, MatcalcError, ShapeError, UnsupportedError
from .expr import (
    SCALAR,
    Add,
    Call,
    Commutation,
    Differential,
    Dim,
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
    Zero,
    dim_factors,
    map_dim,
    mul_dims,
)
from .functions import FUNCTIONS
from .functions.matrix import sympy_det, vec_entries
from .numeric import MODES, dim_value, shape_value, symbols_of

_DIGITS = 30
_RTOL = 1e-12

# ---------------------------------------------------------------------------- sizes


class _DimUnion:
    """Union-find over dimensions; never merges a symbolic dimension with a number."""

    def __init__(self) -> None:
        self.parent: dict[Dim, Dim] = {}
        self.order: list[Dim] = []

    def add(self, d: Dim) -> None:
        if d not in self.parent:
            self.parent[d] = d
            self.order.append(d)

    def find(self, d: Dim) -> Dim:
        self.add(d)
        while self.parent[d] != d:
            self.parent[d] = self.parent[self.parent[d]]
            d = self.parent[d]
        return d

    def union(self, a: Dim, b: Dim) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb or isinstance(ra, int) or isinstance(rb, int):
            return  # numbers are fixed; a mismatch shows when evaluating
        self.parent[rb] = ra

    def classes(self) -> dict[Dim, list[Dim]]:
        out: dict[Dim, list[Dim]] = {}
        for d in self.order:
            out.setdefault(self.find(d), []).append(d)
        return out


def _leaf_dims(node: Expr) -> tuple[Dim, ...]:
    if isinstance(node, (Symbol, Zero)):
        return tuple(node.dims)
    if isinstance(node, (Identity, Ones)):
        return (node.n,)
    if isinstance(node, Commutation):
        return tuple(p for d in (node.m, node.n) for p in dim_factors(d))
    return ()


def _structural_pairs(e: Expr) -> Iterator[tuple[Dim, Dim]]:
    """Dimension equalities an expression's operators imply."""
    if isinstance(e, Mul):
        mats = [f for f in e.factors if f.shape != SCALAR]
        for left, right in zip(mats, mats[1:], strict=False):
            yield left.shape[1], right.shape[0]
    elif isinstance(e, (Add, Hadamard, ElemDiv)):
        items = [t for t in e.children if t.shape != SCALAR]
        for other in items[1:]:
            yield items[0].shape[0], other.shape[0]
            yield items[0].shape[1], other.shape[1]
    elif (isinstance(e, Pow) and e.base.shape != SCALAR) or (
        isinstance(e, Call) and FUNCTIONS[e.name].accepts == "square"
    ):
        yield e.children[0].shape[0], e.children[0].shape[1]


def _is_composite(d: Dim) -> bool:
    return isinstance(d, str) and "*" in d


def _parts(d: str) -> list[Dim]:
    return [int(p) if p.isdigit() else p for p in d.split("*")]


def _square_dims(exprs: Sequence[Expr]) -> list[Dim]:
    """Dimensions of matrices that are inverted or whose determinant is taken."""
    out: list[Dim] = []
    for e in exprs:
        for node in e.walk():
            if (isinstance(node, Pow) and node.base.shape != SCALAR) or (
                isinstance(node, Call) and FUNCTIONS[node.name].small_sizes
            ):
                out.append(node.children[0].shape[0])
    return out


def _build_union(exprs: Sequence[Expr]) -> _DimUnion:
    union = _DimUnion()
    by_name: dict[str, Symbol] = {}
    for e in exprs:
        for node in e.walk():
            for d in _leaf_dims(node):
                union.add(d)
            for a, b in _structural_pairs(node):
                union.union(a, b)
            if isinstance(node, Symbol):
                first = by_name.setdefault(node.name, node)
                union.union(first.dims[0], node.dims[0])
                union.union(first.dims[1], node.dims[1])
    return union


def _assign(union: _DimUnion, priority: Sequence[Dim]) -> dict[Dim, int]:
    """Distinct sizes 2, 3, ... per class; classes equal to a product get the product."""
    classes = union.classes()
    value: dict[Dim, int] = {}
    for root, members in classes.items():
        fixed = [m for m in members if isinstance(m, int)]
        if fixed:
            value[root] = fixed[0]
    free = [r for r, ms in classes.items() if r not in value and not any(map(_is_composite, ms))]
    ranked = [union.find(d) for d in priority if union.find(d) in free]
    ordered = list(dict.fromkeys([*ranked, *free]))
    for size, root in enumerate(ordered, start=2):
        value[root] = size
    _resolve_products(union, classes, value)
    out: dict[Dim, int] = {}
    for d in union.order:
        if not isinstance(d, str):
            continue
        root = union.find(d)
        if root not in value:  # only ever seen inside products: give it a size of its own
            value[root] = max(value.values(), default=1) + 1
        out[d] = value[root]
    return out


def _resolve_products(union: _DimUnion, classes: dict[Dim, list[Dim]],
                      value: dict[Dim, int]) -> None:
    pending = [r for r in classes if r not in value]
    next_size = max(value.values(), default=1) + 1
    while pending:
        progress = False
        for root in list(pending):
            for m in classes[root]:
                if not _is_composite(m):
                    continue
                parts = [p if isinstance(p, int) else value.get(union.find(p)) for p in _parts(m)]
                if all(p is not None for p in parts):
                    value[root] = int(np.prod(parts))
                    pending.remove(root)
                    progress = True
                    break
        if not progress:  # a product of unknown factors only: fix one factor and retry
            root = pending[0]
            comp = next(m for m in classes[root] if _is_composite(m))
            unknown = next(union.find(p) for p in _parts(comp)
                           if not isinstance(p, int) and union.find(p) not in value)
            value[unknown] = next_size
            next_size += 1
            if unknown in pending:
                pending.remove(unknown)


def concrete_sizes(exprs: Iterable[Expr], equal: Iterable[tuple[Dim, Dim]] = ()
                   ) -> dict[Dim, int]:
    """Distinct sizes 2, 3, 4, ... for the symbolic dimensions of some expressions.

    Same-named variables in different expressions get the same sizes; products such as
    ``"n*m"`` get the product; ``equal`` lists further dimensions known to be equal.
    """
    exprs = list(exprs)
    union = _build_union(exprs)
    for a, b in equal:
        union.union(a, b)
    return _assign(union, _square_dims(exprs))


# ---------------------------------------------------------------------------- instantiation


def _entry_name(sym: Symbol, i: int, j: int) -> str:
    rows, cols = sym.dims
    if cols == 1:
        return f"{sym.name}[{i}]"
    if rows == 1:
        return f"{sym.name}[{j}]"
    return f"{sym.name}[{i},{j}]"


def symbolic_matrix(sym: Symbol, sizes: Mapping[Dim, int], independent: bool = False
                    ) -> sympy.Matrix:
    """One variable as a matrix of fresh real symbols (shared across the diagonal when
    symmetric, unless ``independent``)."""
    if sym.dims == SCALAR:
        return sympy.Matrix([[sympy.Symbol(sym.name, real=True)]])
    rows, cols = shape_value(sym.dims, sizes)
    shared = "symmetric" in sym.props and not independent
    diagonal = "diagonal" in sym.props and not independent

    def entry(i: int, j: int) -> sympy.Expr:
        if diagonal and i != j:
            return sympy.Integer(0)
        if shared and i > j:
            i, j = j, i
        return sympy.Symbol(_entry_name(sym, i, j), real=True)

    return sympy.Matrix(rows, cols, entry)


def instantiate(symbols: Iterable[Symbol], sizes: Mapping[Dim, int]) -> dict[str, sympy.Matrix]:
    """Each variable as an explicit SymPy matrix of fresh symbols (``A[0,1]``, ``x[2]``).

    Symmetric matrices share their symbols across the diagonal; scalars are 1x1. A
    probability vector gets plain symbols: ``constraints`` gives the substitution of its
    last entry by one minus the sum of the others, to apply after differentiating.
    """
    return {s.name: symbolic_matrix(s, sizes) for s in symbols}


def constraints(symbols: Iterable[Symbol], sizes: Mapping[Dim, int]) -> dict[Any, Any]:
    """Substitutions imposing declared structure on independent entries: ``A[1,0] -> A[0,1]``
    for symmetric matrices, ``y[n-1] -> 1 - y[0] - ... - y[n-2]`` for probability vectors."""
    out: dict[Any, Any] = {}
    for sym in symbols:
        free = symbolic_matrix(sym, sizes, independent=True)
        if "symmetric" in sym.props:
            for i in range(free.rows):
                for j in range(i):
                    out[free[i, j]] = free[j, i]
        if "diagonal" in sym.props:
            for i in range(free.rows):
                for j in range(free.cols):
                    if i != j:
                        out[free[i, j]] = 0
        if "probability" in sym.props:
            entries = list(free)
            out[entries[-1]] = 1 - sum(entries[:-1])
    return out


def structure_projector(sym: Symbol, size: int) -> np.ndarray | None:
    """P with P vec(E) the orthogonal projection of a direction E onto the declared
    structure of ``sym`` (LANGUAGE.md section 6): N = (I + K)/2 for a symmetric matrix,
    diag(vec(I)) for a diagonal one; None when the entries are independent."""
    from .commutation import permutation

    if "symmetric" in sym.props:
        k = np.eye(size * size)[permutation(size, size)]
        return (np.eye(size * size) + k) / 2
    if "diagonal" in sym.props:
        return np.diag(np.eye(size).reshape(-1, order="F"))
    return None


def project_derivative(d: Any, sym: Symbol, mode: str, size: int, exact: bool) -> Any:
    """The derivative on the declared structure from the independent-entries one ``d``:
    sym(G) or I ⊙ G for a gradient, J P for a derivative, P H P for a Hessian."""
    p = structure_projector(sym, size)
    if p is None:
        return d
    if exact:
        p = sympy.Matrix(p.shape[0], p.shape[1],
                         lambda i, j: sympy.Rational(int(round(2 * p[i, j])), 2))
    if mode == "grad" and exact:
        out = p @ sympy.Matrix(vec_entries(d))
        return sympy.Matrix(size, size, lambda i, j: out[i + size * j])
    if mode == "grad":
        out = p @ np.asarray(d).reshape(-1, 1, order="F")
        return out.reshape((size, size), order="F")
    if mode == "hessian":
        return p @ d @ p
    return d @ p


# ---------------------------------------------------------------------------- AST -> SymPy


def to_sympy(expr: Expr, env: Mapping[str, sympy.Matrix], sizes: Mapping[Dim, int]
             ) -> sympy.Matrix:
    """Evaluate an expression on explicit SymPy matrices (scalars are 1x1 matrices)."""
    return _SympyEvaluator(env, sizes).run(expr)


def _inverse(m: sympy.Matrix) -> sympy.Matrix:
    """Inverse by adjugate and Berkowitz determinants (fast on small symbolic matrices)."""
    if not m.free_symbols:
        return m.inv()
    n = m.rows
    adj = sympy.Matrix(n, n, lambda i, j: (-1) ** (i + j)
                       * sympy_det(sympy, m.minor_submatrix(j, i)))
    return adj / sympy_det(sympy, m)


def _scalar(value: sympy.Expr) -> sympy.Matrix:
    return sympy.Matrix([[value]])


def _kron(a: sympy.Matrix, b: sympy.Matrix) -> sympy.Matrix:
    return sympy.Matrix(
        a.rows * b.rows, a.cols * b.cols,
        lambda i, j: a[i // b.rows, j // b.cols] * b[i % b.rows, j % b.cols],
    )


class _SympyEvaluator:
    """Post-order interpreter to SymPy matrices; equal sub-trees are evaluated once."""

    def __init__(self, env: Mapping[str, sympy.Matrix], sizes: Mapping[Dim, int]) -> None:
        self.env = env
        self.sizes = sizes
        self.memo: dict[Expr, sympy.Matrix] = {}

    def run(self, e: Expr) -> sympy.Matrix:
        if e not in self.memo:
            method = getattr(self, "_" + type(e).__name__, None)
            if method is None:
                raise UnsupportedError(f"cannot evaluate {type(e).__name__} with SymPy")
            self.memo[e] = method(e)
        return self.memo[e]

    def _broadcast(self, value: sympy.Matrix, like: tuple[int, int]) -> sympy.Matrix:
        if value.shape == (1, 1) and like != (1, 1):
            return sympy.ones(*like) * value[0, 0]
        return value

    def _Symbol(self, e: Symbol) -> sympy.Matrix:
        if e.name not in self.env:
            raise DeclarationError(f"no value for the variable {e.name}")
        return self.env[e.name]

    def _Number(self, e: Number) -> sympy.Matrix:
        return _scalar(sympy.Rational(e.value.numerator, e.value.denominator))

    def _Identity(self, e: Identity) -> sympy.Matrix:
        return sympy.eye(dim_value(e.n, self.sizes))

    def _Commutation(self, e) -> sympy.Matrix:
        from .commutation import permutation

        m, n = dim_value(e.m, self.sizes), dim_value(e.n, self.sizes)
        rows = permutation(m, n)
        return sympy.Matrix(m * n, m * n, lambda i, j: 1 if j == rows[i] else 0)

    def _Ones(self, e: Ones) -> sympy.Matrix:
        return sympy.ones(dim_value(e.n, self.sizes), 1)

    def _Zero(self, e: Zero) -> sympy.Matrix:
        return sympy.zeros(*shape_value(e.dims, self.sizes))

    def _Differential(self, e: Differential) -> sympy.Matrix:
        raise UnsupportedError(f"cannot evaluate the differential d{e.var.name}")

    def _elementwise_all(self, items: Sequence[Expr]) -> list[sympy.Matrix]:
        values = [self.run(t) for t in items]
        like = next((v.shape for v in values if v.shape != (1, 1)), (1, 1))
        values = [self._broadcast(v, like) for v in values]
        if any(v.shape != like for v in values):
            raise ShapeError(f"entrywise operation on shapes {[v.shape for v in values]}")
        return values

    def _Add(self, e: Add) -> sympy.Matrix:
        values = self._elementwise_all(e.terms)
        out = values[0]
        for v in values[1:]:
            out = out + v
        return out

    def _Neg(self, e: Neg) -> sympy.Matrix:
        return -self.run(e.arg)

    def _Mul(self, e: Mul) -> sympy.Matrix:
        scale: sympy.Expr = sympy.Integer(1)
        product = None
        for f in e.factors:
            value = self.run(f)
            if f.shape == SCALAR:
                scale = scale * value[0, 0]
            elif product is None:
                product = value
            elif product.cols != value.rows:
                raise ShapeError(f"cannot multiply {product.shape} by {value.shape}")
            else:
                product = product * value
        return _scalar(scale) if product is None else product * scale

    def _Div(self, e: Div) -> sympy.Matrix:
        return self.run(e.num) / self.run(e.den)[0, 0]

    def _Hadamard(self, e: Hadamard) -> sympy.Matrix:
        values = self._elementwise_all(e.factors)
        out = values[0]
        for v in values[1:]:
            out = out.multiply_elementwise(v)
        return out

    def _ElemDiv(self, e: ElemDiv) -> sympy.Matrix:
        num, den = self._elementwise_all([e.num, e.den])
        return sympy.Matrix(num.rows, num.cols, lambda i, j: num[i, j] / den[i, j])

    def _Kron(self, e: Kron) -> sympy.Matrix:
        return _kron(self.run(e.left), self.run(e.right))

    def _Transpose(self, e: Transpose) -> sympy.Matrix:
        return self.run(e.arg).T

    def _Pow(self, e: Pow) -> sympy.Matrix:
        base, exponent = self.run(e.base), self.run(e.exponent)[0, 0]
        if e.base.shape == SCALAR:
            return _scalar(base[0, 0] ** exponent)
        if not exponent.is_integer:
            raise UnsupportedError("a matrix power needs an integer exponent")
        k = int(exponent)
        if k < 0:
            base, k = _inverse(base), -k
        out = sympy.eye(base.rows)
        for _ in range(k):
            out = out * base
        return out

    def _ElemPow(self, e: ElemPow) -> sympy.Matrix:
        exponent = self.run(e.exponent)[0, 0]
        return self.run(e.base).applyfunc(lambda v: v**exponent)

    def _Norm(self, e: Norm) -> sympy.Matrix:
        x = self.run(e.arg)
        if e.arg.kind == "matrix" and e.p != "F":
            raise UnsupportedError(f"the matrix norm ||.||_{e.p} has no SymPy form here")
        if e.p == "1":
            return _scalar(sum(x.applyfunc(sympy.Abs)))
        return _scalar(sympy.sqrt(sum(v**2 for v in x)))

    def _Call(self, e: Call) -> sympy.Matrix:
        fn = FUNCTIONS[e.name]
        if fn.sympy is None:
            raise UnsupportedError(f"{e.name} has no SymPy form; it is checked numerically")
        return fn.sympy_matrix(sympy, *(self.run(a) for a in e.args))


# ---------------------------------------------------------------------------- reports


@dataclass
class CheckReport:
    """The outcome of a derivative check; truthy iff it passed."""

    passed: bool
    method: str  # "exact" or "numeric"
    sizes: dict[Dim, int] = field(default_factory=dict)
    index: tuple[int, int] | None = None
    expected: Any = None
    got: Any = None
    detail: str = ""
    points: int = 0

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        shown = {d: n for d, n in self.sizes.items() if not str(d).endswith("'")}
        sizes = ", ".join(f"{d}={n}" for d, n in shown.items()) or "none"
        how = self.method + (f" at {self.points} points" if self.method == "numeric" else "")
        if self.detail and self.method == "numeric":
            how += f", {self.detail}"
        head = f"{'passed' if self.passed else 'FAILED'} ({how}; sizes {sizes})"
        if self.passed:
            return head
        lines = [head]
        if self.index is not None:
            lines.append(
                f"  entry {self.index}: expected {self.expected}, got {self.got}"
            )
        if self.detail and (self.index is None or self.method != "numeric"):
            lines.append(f"  {self.detail}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- derivatives


def derivative_matrix(value: sympy.Matrix, wrt: sympy.Matrix, mode: str) -> sympy.Matrix:
    """Entrywise sympy.diff of ``value`` by the entries of ``wrt``, laid out per ``mode``."""
    xs = vec_entries(wrt)
    if mode == "hessian":
        grad = [sympy.diff(value[0, 0], x) for x in xs]
        return sympy.Matrix(len(xs), len(xs), lambda i, j: sympy.diff(grad[i], xs[j]))
    ys = vec_entries(value)
    d = sympy.Matrix(len(ys), len(xs), lambda i, j: sympy.diff(ys[i], xs[j]))
    if mode == "grad":
        return sympy.Matrix(wrt.rows, wrt.cols, lambda i, j: d[0, i + j * wrt.rows])
    return d


def _expected_shape(f: Expr, wrt: Symbol, mode: str) -> tuple[Dim, Dim]:
    size_f = mul_dims(*f.shape)
    size_x = mul_dims(*wrt.dims)
    if mode == "grad":
        return wrt.dims
    if mode == "hessian":
        return size_x, size_x
    return size_f, size_x


def _validate(f: Expr, wrt: Symbol, mode: str) -> None:
    if mode not in MODES:
        raise UnsupportedError(f"unknown derivative mode {mode!r}; use one of {', '.join(MODES)}")
    if mode in ("grad", "hessian") and f.shape != SCALAR:
        raise ShapeError(f"{mode} needs a scalar-valued function, got shape {f.shape}")
    if mode == "jacobian" and (f.shape[1] != 1 or wrt.dims[1] != 1):
        raise ShapeError("jacobian relates a vector or scalar to a vector or scalar")


def _find_wrt(wrt: Symbol | str, f: Expr, result: Expr, mode: str) -> Symbol:
    if isinstance(wrt, Symbol):
        return wrt
    for sym in symbols_of([f, result]):
        if sym.name == wrt:
            return sym
    rows, cols = result.shape  # absent variable: its shape follows from the result's
    dims = {"grad": (rows, cols), "hessian": (rows, 1)}.get(mode, (cols, 1))
    return Symbol(wrt, dims)


def _sizes_for(f: Expr, wrt: Symbol, result: Expr, mode: str) -> dict[Dim, int]:
    union = _build_union([f, wrt, result])
    anchored = {union.find(d) for e in (f, wrt) for n in e.walk() for d in _leaf_dims(n)}
    for want, have in zip(_expected_shape(f, wrt, mode), result.shape, strict=True):
        # Only dimensions of the result that f does not fix follow the expected shape,
        # so a transposed result still shows up as a shape mismatch.
        if isinstance(have, str) and union.find(have) not in anchored:
            union.union(want, have)
    return _assign(union, _square_dims([f, result]))


def check_derivative(
    f: Expr | str,
    wrt: Symbol | str,
    result: Expr | str,
    mode: str = "grad",
    *,
    points: int = 3,
    exact: bool = True,
    budget: float = 1.0,
    seed: int = 0,
    **decls: str,
) -> CheckReport:
    """Check that ``result`` is the ``mode`` derivative of ``f`` with respect to ``wrt``.

    Modes (LANGUAGE.md section 6): ``grad`` (f scalar; shape of wrt), ``jacobian``
    (m x n, J_ij = dy_i/dx_j), ``hessian`` (n x n), ``derivative`` (d vec(f) / d vec(wrt)^T,
    column-major). Strings are parsed with ``decls`` as declarations.
    """
    f_expr = _as_expr(f, decls)
    # Separately parsed texts name their dimensions independently: keep them apart and
    # let variable names and the expected shape link them.
    result_expr = _as_expr(result, decls)
    if isinstance(result, str):  # parsed on its own: its dimension names are its own
        result_expr = rename_dims(result_expr, _prime)
    wrt_sym = _find_wrt(wrt, f_expr, result_expr, mode)
    _validate(f_expr, wrt_sym, mode)
    sizes = _sizes_for(f_expr, wrt_sym, result_expr, mode)
    want = shape_value(_expected_shape(f_expr, wrt_sym, mode), sizes)
    have = shape_value(result_expr.shape, sizes)
    if want != have:
        return CheckReport(False, "exact", sizes, detail=(
            f"the result has shape {have}, a {mode} here has shape {want}"))
    case = _Case(f_expr, wrt_sym, result_expr, mode, sizes)
    try:
        report = _check_points(case, points, random.Random(seed))
    except UnsupportedError:
        return _check_finite_differences(case, points, np.random.default_rng(seed))
    if report and exact:
        proved = _check_exact(case, budget)
        if proved is not None:
            return proved
    return report


def _prime(d: Dim) -> Dim:
    if isinstance(d, int):
        return d
    return "*".join(p if p.isdigit() else p + "'" for p in d.split("*"))


def rename_dims(e: Expr, fn: Callable[[Dim], Dim]) -> Expr:
    """The same expression with every dimension renamed by ``fn``."""
    if isinstance(e, Symbol):
        return Symbol(e.name, (fn(e.dims[0]), fn(e.dims[1])), e.props)
    if isinstance(e, Zero):
        return Zero((fn(e.dims[0]), fn(e.dims[1])))
    if isinstance(e, (Identity, Ones)):
        return type(e)(fn(e.n))
    if isinstance(e, Commutation):
        return Commutation(map_dim(e.m, fn), map_dim(e.n, fn))
    if isinstance(e, Differential):
        return Differential(rename_dims(e.var, fn))  # type: ignore[arg-type]
    return e.map_children(lambda c: rename_dims(c, fn))


def _as_expr(e: Expr | str, decls: Mapping[str, str]) -> Expr:
    if isinstance(e, Expr):
        return e
    from .parse import parse

    return parse(e, **decls)


@dataclass
class _Case:
    f: Expr
    wrt: Symbol
    result: Expr
    mode: str
    sizes: dict[Dim, int]

    @property
    def symbols(self) -> list[Symbol]:
        names = {s.name for s in symbols_of([self.f, self.result])}
        others = [] if self.wrt.name in names else [self.wrt]
        return [*symbols_of([self.f, self.result]), *others]


# ---------------------------------------------------------------------------- numeric


def _rational_entry(rng: random.Random, positive: bool) -> sympy.Rational:
    value = sympy.Rational(rng.randint(2, 10), 8)
    return value if positive or rng.random() < 0.5 else -value


def _symmetrize(m: sympy.Matrix) -> sympy.Matrix:
    return sympy.Matrix(m.rows, m.cols, lambda i, j: m[min(i, j), max(i, j)])


def rational_point(symbols: Iterable[Symbol], sizes: Mapping[Dim, int], rng: random.Random,
                   positive: bool = False) -> dict[str, sympy.Matrix]:
    """Random exact values respecting the declarations (as ``numeric.random_value`` does)."""
    out = {}
    for sym in symbols:
        rows, cols = shape_value(sym.dims, sizes)
        m = sympy.Matrix(rows, cols, lambda i, j: _rational_entry(rng, positive))
        if "probability" in sym.props:
            m = m.applyfunc(abs)
            m = m / sum(m)
        if "symmetric" in sym.props:
            m = _symmetrize(m)
        if "diagonal" in sym.props:
            m = sympy.diag(*[m[i, i] for i in range(rows)])
        if rows == cols and rows > 1:
            m = m + sympy.Rational(3, 2) * rows * sympy.eye(rows)  # diagonally dominant
        out[sym.name] = m
    return out


def _number(value: sympy.Expr) -> complex | None:
    """A finite complex value at high precision, or None."""
    try:
        z = complex(sympy.N(value, _DIGITS))
    except (TypeError, ValueError):
        return None
    return z if np.isfinite(z.real) and np.isfinite(z.imag) else None


def _real(value: sympy.Expr) -> bool:
    z = _number(value)
    return z is not None and abs(z.imag) <= 1e-20 * (1 + abs(z.real))


def _compare(expected: sympy.Matrix, got: sympy.Matrix
             ) -> tuple[tuple[int, int], Any, Any] | None:
    """The first entry where two evaluated matrices differ, or None."""
    for i in range(expected.rows):
        for j in range(expected.cols):
            e, g = expected[i, j], got[i, j]
            scale = _number(e)
            diff = _number(e - g)
            if scale is None or diff is None or abs(diff) > _RTOL * (1 + abs(scale)):
                return (i, j), _show(e), _show(g)
    return None


def _show(value: sympy.Expr) -> str:
    z = _number(value)
    if z is None:
        return str(value)
    if abs(z.imag) <= 1e-20 * (1 + abs(z.real)):
        return f"{z.real:.10g}"
    return f"{z:.10g}"


def _evaluate_at(case: _Case, point: dict[str, sympy.Matrix]
                 ) -> tuple[sympy.Matrix, sympy.Matrix, sympy.Matrix]:
    """(f value, derivative by sympy.diff, result) at a point."""
    # 30-digit floats keep the expressions small: only wrt stays symbolic.
    floats = {name: m.evalf(_DIGITS) for name, m in point.items()}
    wrt = symbolic_matrix(case.wrt, case.sizes, independent=True)
    value = to_sympy(case.f, {**floats, case.wrt.name: wrt}, case.sizes)
    values = dict(zip(vec_entries(wrt), vec_entries(floats[case.wrt.name]), strict=True))
    deriv = derivative_matrix(value, wrt, case.mode).xreplace(values)
    deriv = project_derivative(deriv, case.wrt, case.mode, wrt.rows, exact=True)
    got = to_sympy(case.result, floats, case.sizes)
    return value.xreplace(values), deriv, got


def _check_points(case: _Case, points: int, rng: random.Random) -> CheckReport:
    done = attempts = 0
    while done < points and attempts < 4 * points:
        positive = attempts % 2 == 1 or attempts >= 2 * points
        attempts += 1
        point = rational_point(case.symbols, case.sizes, rng, positive)
        value, deriv, got = _evaluate_at(case, point)
        if got.shape != deriv.shape:
            return CheckReport(False, "exact", case.sizes, detail=(
                f"the result has shape {got.shape}, expected {deriv.shape}"))
        if not all(_real(v) for v in [*value, *deriv]):
            continue  # outside the domain (log of a negative number, ...)
        mismatch = _compare(deriv, got)
        done += 1
        if mismatch is not None:
            index, expected, have = mismatch
            return CheckReport(False, "numeric", case.sizes, index, expected, have,
                               detail=f"at {_describe_point(point)}", points=done)
    if done == 0:
        return CheckReport(False, "numeric", case.sizes,
                           detail="no point found where the function is defined and real")
    return CheckReport(True, "numeric", case.sizes, points=done)


def _describe_point(point: Mapping[str, sympy.Matrix]) -> str:
    parts = []
    for name, m in point.items():
        shown = m[0, 0] if m.shape == (1, 1) else m.tolist()
        parts.append(f"{name} = {shown}")
    text = "; ".join(parts)
    return text if len(text) < 400 else text[:400] + " ..."


def _check_finite_differences(case: _Case, points: int, rng: np.random.Generator
                              ) -> CheckReport:
    """Spectral functions: compare with NumPy central differences (relative 1e-5)."""
    done = 0
    for attempt in range(3 * points):
        values = numeric.random_point(case.symbols, case.sizes, rng, positive=attempt % 2 == 1)
        try:
            fd = numeric.finite_difference(case.f, case.wrt, values, case.mode)
            got = numeric.evaluate(case.result, values, case.sizes)
        except MatcalcError as err:
            return CheckReport(False, "numeric", case.sizes, detail=str(err))
        fd2 = np.asarray(fd, dtype=float).reshape(shape_value(_shape_of(case), case.sizes))
        fd2 = project_derivative(fd2, case.wrt, case.mode,
                                 shape_value(case.wrt.dims, case.sizes)[0], exact=False)
        got2 = np.asarray(got, dtype=float).reshape(fd2.shape)
        if not np.all(np.isfinite(fd2)):
            continue
        done += 1
        bad = np.abs(fd2 - got2) > 1e-5 * (1 + np.abs(fd2))
        if bad.any() or not np.all(np.isfinite(got2)):
            i, j = map(int, np.argwhere(bad | ~np.isfinite(got2))[0])
            return CheckReport(False, "numeric", case.sizes, (i, j), f"{fd2[i, j]:.8g}",
                               f"{got2[i, j]:.8g}", detail="finite differences", points=done)
        if done >= points:
            break
    if done == 0:
        return CheckReport(False, "numeric", case.sizes, detail="no point where f is finite")
    return CheckReport(True, "numeric", case.sizes, detail="finite differences", points=done)


def _shape_of(case: _Case) -> tuple[Dim, Dim]:
    return _expected_shape(case.f, case.wrt, case.mode)


# ---------------------------------------------------------------------------- exact


class _OutOfTime(Exception):
    pass


@contextmanager
def _time_limit(seconds: float) -> Iterator[bool]:
    """Interrupt the block after ``seconds`` (main thread on POSIX); yields whether it can."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield False
        return

    def expire(signum, frame):
        raise _OutOfTime

    if signal.getitimer(signal.ITIMER_REAL)[0] > 0:  # someone else's timer (pytest-timeout)
        yield False
        return
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _cheap(case: _Case) -> bool:
    """Without a timer, only polynomial-looking problems are tried exactly."""
    heavy = (Pow, Call, Norm, ElemDiv, Div)
    return not any(isinstance(n, heavy) for e in (case.f, case.result) for n in e.walk())


def _check_exact(case: _Case, budget: float) -> CheckReport | None:
    """A proof that the difference is zero (or an exact counterexample), or None if undecided."""
    start = time.monotonic()
    try:
        with _time_limit(budget) as limited:
            if not limited and not _cheap(case):
                return None
            return _prove(case, start + budget)
    except (_OutOfTime, RecursionError):
        return None


def _prove(case: _Case, deadline: float) -> CheckReport | None:
    env = instantiate(case.symbols, case.sizes)
    wrt = symbolic_matrix(case.wrt, case.sizes, independent=True)
    env_free = {**env, case.wrt.name: wrt}
    subs = constraints(case.symbols, case.sizes)
    deriv = derivative_matrix(to_sympy(case.f, env_free, case.sizes), wrt, case.mode)
    deriv = project_derivative(deriv, case.wrt, case.mode, wrt.rows, exact=True)
    got = to_sympy(case.result, env_free, case.sizes)
    undecided = False
    for i in range(deriv.rows):
        for j in range(deriv.cols):
            if time.monotonic() > deadline:
                return None
            verdict = _zero(sympy.sympify(deriv[i, j] - got[i, j]).xreplace(subs))
            if verdict is False:
                return CheckReport(False, "exact", case.sizes, (i, j),
                                   str(deriv[i, j].xreplace(subs)), str(got[i, j].xreplace(subs)))
            undecided = undecided or verdict is None
    return None if undecided else CheckReport(True, "exact", case.sizes)


def _zero(d: sympy.Expr) -> bool | None:
    """True if ``d`` is zero, False if provably not, None if undecided."""
    d = sympy.expand(d)
    if d == 0:
        return True
    d = sympy.cancel(d)
    if d == 0:
        return True
    has_functions = bool(d.atoms(sympy.Function)) or bool(d.atoms(sympy.Pow) and any(
        not p.exp.is_Integer for p in d.atoms(sympy.Pow)))
    return None if has_functions else False
