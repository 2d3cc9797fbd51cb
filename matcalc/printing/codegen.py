"""Code generation for NumPy, JAX and PyTorch: straight-line functions written as an expert would.

``to_source(expr, params, target)`` writes ``def f(*, A, b, x): ...`` where

- single-use sub-expressions stay inline (``2.0 * (A.T @ (A @ x - b))`` reads as written),
  shared ones get one line, named after the result's where-bindings (``h``, ``s``) or after
  what they are (``r`` for a residual, ``S_inv``); subtraction is ``-``, ``1^T y`` is
  ``y.sum()``, identity factors vanish, vectors are 1-D arrays;
- matrix chains are ordered by cost at generation time (declared sizes, the ``sizes``
  argument, or every symbolic dimension assumed large and vectors 1 wide);
- ``diag(v) M`` is row scaling ``v[:, None] * M``, a sum with a diagonal adds to the
  diagonal in place, Kronecker products are applied through reshapes (never formed);
- a chain that equals its own transpose (``X^T diag(w) X`` with ``w >= 0``, ``A^T A``) is
  one symmetric product ``Z.T @ Z``; a sum of diagonal and low-rank terms inside a chain is
  distributed (``A^T (diag(s) - s s^T) A`` is ``Z.T @ Z - np.outer(g, g)``);
- every matrix that is inverted, solved with or whose determinant is taken is factorised
  once: one LU (Cholesky for a ``positive definite`` declaration) shared by all its solves,
  determinants and log-determinants; the explicit inverse only where the result needs it.

The target (``numpy``, ``jax``, ``torch``; see ``targets.py``) only changes how each
operation is spelled; JAX and PyTorch are imported by the generated code, never here.
"""

from __future__ import annotations

import keyword
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..dims import Product, dim_factors, dim_size
from ..errors import DeclarationError, UnsupportedError
from ..expr import (
    SCALAR,
    Add,
    Call,
    Commutation,
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
    Shape,
    Sylvester,
    Symbol,
    Transpose,
    Zero,
    kind_of,
    map_bottom_up,
    postorder,
)
from ..functions import FUNCTIONS
from ..simplify import known_symmetric
from .targets import SOLVE_NEEDS_MATRIX, Target, get_target

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_LARGE = 1000  # assumed size of a symbolic dimension when ordering a chain
_RESERVED = {"np", "jnp", "jax", "torch", "scipy", "float", "abs"}
_MAX_LINE = 76  # longer inline expressions get a line of their own

# Python precedences (higher binds tighter); unary minus gets parentheses around any
# product it negates, so ``-X.T @ v`` (which negates all of X first) is never written.
ATOM, POW, MUL, NEG, ADD, CMP = 100, 90, 70, 65, 60, 50



# ---------------------------------------------------------------------------- code strings


@dataclass(frozen=True)
class _Code:
    """A Python expression, its precedence and its operator (for parenthesisation)."""

    text: str
    prec: int = ATOM
    op: str = ""

    @property
    def atomic(self) -> bool:
        return self.prec >= ATOM and bool(re.fullmatch(r"[\w.]+|\(-?[\d.e+-]+\)", self.text))


def _left(c: _Code, prec: int, op: str) -> str:
    ok = c.prec > prec or (c.prec == prec and (
        prec != MUL or c.op == op or {c.op, op} <= {"*", "/"}))
    return c.text if ok else f"({c.text})"


def _right(c: _Code, prec: int) -> str:
    return c.text if c.prec > prec else f"({c.text})"


def _binary(a: _Code, op: str, b: _Code) -> _Code:
    prec = {"+": ADD, "-": ADD, "*": MUL, "/": MUL, "@": MUL, "**": POW}[op]
    if op == "**":
        return _Code(f"{_right(a, POW)} ** {_left(b, POW, op)}", POW, op)
    return _Code(f"{_left(a, prec, op)} {op} {_right(b, prec)}", prec, op)


def _neg(c: _Code) -> _Code:
    if c.prec == NEG and c.text.startswith("-"):
        inner = c.text[1:]
        return _Code(inner[1:-1] if inner.startswith("(") and _balanced(inner[1:-1])
                     else inner, ATOM if re.fullmatch(r"[\w.]+", inner) else MUL)
    return _Code("-" + _right(c, MUL), NEG, "-")


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _call(text: str) -> _Code:
    return _Code(text, ATOM)


def _number(value: Fraction | float) -> _Code:
    text = repr(float(value))
    return _Code(text, ATOM) if not text.startswith("-") else _Code(text, NEG, "-")


def _exponent(value: Fraction) -> _Code:
    if value.denominator == 1:
        text = str(int(value))
        return _Code(text, ATOM) if value >= 0 else _Code(f"({text})", ATOM)
    return _Code(f"({float(value)!r})", ATOM)


def _symmetric_kronecker_sum(e: Expr) -> tuple[Expr, Expr] | None:
    """(A, B) when ``e`` is the Kronecker sum I ⊗ A + B ⊗ I (either order) of matrices known
    to be symmetric (the vec form of a Sylvester equation, rules/jacobian.rules)."""
    if not (isinstance(e, Add) and len(e.terms) == 2
            and all(isinstance(t, Kron) for t in e.terms)):
        return None
    for first, second in (e.terms, e.terms[::-1]):
        if (isinstance(first.left, Identity) and isinstance(second.right, Identity)
                and not first.right.is_scalar and not second.left.is_scalar
                and known_symmetric(first.right) and known_symmetric(second.left)):
            return first.right, second.left
    return None


def _transposed(c: _Code) -> _Code:
    if c.text.endswith(".T") and re.fullmatch(r"[\w.]+", c.text):
        return _Code(c.text[:-2], ATOM)
    return _Code(_right(c, POW) + ".T", ATOM)


def _is_vector(shape: Shape) -> bool:
    return kind_of(shape) in ("vector", "row vector")


def _is_matrix(shape: Shape) -> bool:
    return kind_of(shape) == "matrix"


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True)
class _Val:
    """A computed value: ``dense`` (an array or number), or a lazy form that is never built:
    ``diag`` (code: the diagonal, a vector or a scalar times I), ``ones`` (size: its
    length), ``inv`` (the inverse of a factorised matrix, maybe transposed), ``kron``."""

    kind: str
    code: _Code = _Code("")
    size: str = ""
    factor: _Factor | None = None
    trans: bool = False
    parts: tuple = ()
    flat: bool = False
    """A diagonal given by one scalar (c I) rather than a vector."""


@dataclass
class _Factor:
    """How one matrix is factorised: ``plain`` (one NumPy call per use: it is used once),
    ``inv`` (its explicit inverse, computed once), ``lu`` or ``cho`` (one factorisation)."""

    matrix: _Code
    kind: str
    size: str
    stem: str
    name: str = ""
    inverse: str = ""
    logdet: str = ""
    sign: str = ""


def python_name(name: str) -> str:
    """The Python identifier used for a variable name (keywords get a trailing ``_``)."""
    if not _IDENT.match(name):
        raise DeclarationError(f"{name!r} cannot be a parameter name of generated code")
    if name in _RESERVED:
        return name + "_"
    return name + "_" if keyword.iskeyword(name) else name


# ---------------------------------------------------------------------------- the generator


class _Generator:
    """Emits the lines of one function; ``value(e)`` gives the code of a sub-expression."""

    def __init__(self, params: Sequence[Symbol], target: Target, sizes: dict[str, int],
                 scipy: bool) -> None:
        self.t = target
        self.sizes = sizes
        self.scipy = scipy and target.name == "numpy" or target.name != "numpy"
        self.pyname = {p.name: python_name(p.name) for p in params}
        self.taken = set(self.pyname.values()) | _RESERVED
        self.lines: list[str] = []
        self.memo: dict[Expr, _Val] = {}
        self.uses: Counter[Expr] = Counter()
        self.parents: dict[Expr, list[Expr]] = {}
        self.preferred: dict[Expr, str] = {}
        self.factors: dict[Expr, _Factor] = {}
        self.plans: dict[Expr, str] = {}
        self.shared_runs: set[tuple[Expr, ...]] = set()
        self.computing: set[Expr] = set()
        self.roots: set[Expr] = set()
        self.stem = "w"  # the name stem of temporaries a function record's code emits
        self.solved: dict[tuple[str, str, str], _Code] = {}
        self.used_factor_imports = False
        self.dims: dict[str, str] = {}
        arrays = [p for p in params if p.dims != SCALAR]
        for p in arrays:
            name = self.pyname[p.name]
            axes = [d for d in p.dims if d != 1] if _is_vector(p.dims) else list(p.dims)
            for axis, d in enumerate(axes):
                if isinstance(d, str):
                    self.dims.setdefault(d, f"{name}.shape[{axis}]")
        self.dev = ""
        if target.name == "torch":
            self.dev = ", dtype=torch.float64" + (
                f", device={self.pyname[arrays[0].name]}.device" if arrays else "")

    # -- plumbing ----------------------------------------------------------------
    def op(self, key: str, *args: object) -> str:
        return self.t.op(key, *(a.text if isinstance(a, _Code) else a for a in args),
                         dev=self.dev)

    def new_name(self, stem: str) -> str:
        stem = re.sub(r"\W", "_", stem) or "t"
        if not stem[0].isalpha():
            stem = "t" + stem
        name, k = stem, 1
        while name in self.taken or keyword.iskeyword(name):
            k += 1
            name = f"{stem}{k}"
        self.taken.add(name)
        return name

    def assign(self, code: _Code, stem: str) -> _Code:
        if code.atomic:
            return code
        name = self.new_name(stem)
        self.lines.append(f"{name} = {code.text}")
        return _Code(name)

    def dim(self, d: Dim) -> str:
        if isinstance(d, int):
            return str(d)
        if d in self.dims:
            return self.dims[d]
        if isinstance(d, Product):
            return " * ".join(self.dim(p) for p in dim_factors(d))
        raise UnsupportedError(f"the size {d} cannot be read off any parameter",
                               hint="pass a parameter that has this dimension")

    def estimate(self, d: Dim) -> int:
        """The size of ``d`` (names sized by ``sizes``, others assumed large)."""
        return dim_size(d, self.sizes, default=_LARGE)  # type: ignore[return-value]

    def prepare(self, roots: Sequence[Expr]) -> None:
        """Count uses, remember parents and plan one factorisation per inverted matrix."""
        seen: dict[Expr, None] = {}  # insertion-ordered: generated code is deterministic
        stack = list(roots)
        self.roots = set(roots)
        for r in roots:
            self.uses[r] += 1
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen[node] = None
            for child in node.children:
                self.uses[child] += 1
                self.parents.setdefault(child, []).append(node)
                stack.append(child)
        self._plan_factors(list(seen))
        self._count_subchains(list(seen))

    def _count_subchains(self, nodes: list[Expr]) -> None:
        """Products that occur inside several chains (A x in 2 A x and A x - b) are
        computed once: each such run of factors becomes a shared node."""
        runs: Counter[tuple[Expr, ...]] = Counter()
        for node in nodes:
            if isinstance(node, Mul):
                mats = tuple(f for f in _flat_factors(node) if f.shape != SCALAR)
                found = dict.fromkeys(mats[i:j] for i in range(len(mats))
                                      for j in range(i + 2, len(mats) + 1))
                for run in found:
                    runs[run] += self.uses[node]
        for run, n in runs.items():
            if n >= 2 and not any(isinstance(f, Identity) for f in run) and self._shrinks(run):
                node = Mul(run)
                self.shared_runs.add(run)
                self.uses[node] = max(self.uses[node], n)

    # -- values ------------------------------------------------------------------
    def value(self, e: Expr) -> _Val:
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            raise UnsupportedError(f"cannot generate code for {type(e).__name__}")
        self.computing.add(e)
        try:
            v = method(e)
        finally:
            self.computing.discard(e)
        v = self._maybe_named(e, v)
        self.memo[e] = v
        return v

    def _maybe_named(self, e: Expr, v: _Val) -> _Val:
        if v.kind not in ("dense", "diag") or v.code.atomic or isinstance(e, Number):
            return v
        named = e in self.preferred or self.uses[e] >= 2 or (
            len(v.code.text) > _MAX_LINE and e not in self.roots)
        if not named:
            return v
        stem = self.preferred.get(e) or (("d" if v.kind == "diag" else "") + _stem(e))
        return _Val(v.kind, self.assign(v.code, stem), v.size, flat=v.flat)

    def code(self, e: Expr) -> _Code:
        """Dense code for ``e``."""
        return self.dense(self.value(e), e.shape)

    def dense(self, v: _Val, shape: Shape) -> _Code:
        if v.kind == "dense":
            return v.code
        if v.kind == "ones":
            if shape == SCALAR:
                return _Code("1.0")
            if _is_vector(shape):
                return _call(self.op("ones", v.size))
            rows, cols = (self.dim(d) for d in shape)
            return _call(self.op("ones2", rows, cols))
        if v.kind == "diag":
            n = self.dim(shape[0])
            name = self.new_name("D")
            self.lines.append(f"{name} = {self.op('zeros2', n, n)}")
            return self._add_diagonal(_Code(name), v.code, fresh=True)
        if v.kind == "inv":
            return self.inverse(v.factor, v.trans)
        if v.kind == "comm":  # row a n + b of K_{m,n} is the unit row e_{a + m b}
            m, n = v.parts
            eye = self.op("eye", f"{_paren(m)} * {_paren(n)}")
            return _call(f"{eye}.reshape({n}, {m}, -1).swapaxes(0, 1)"
                         f".reshape({_paren(m)} * {_paren(n)}, -1)")
        if v.kind == "kron":
            (a, sa), (b, sb) = v.parts
            ca, cb = self.dense(a, sa), self.dense(b, sb)
            ca = ca if _is_matrix(sa) else _call(self._as_2d(ca, sa))
            cb = cb if _is_matrix(sb) else _call(self._as_2d(cb, sb))
            rows = self.dim(shape[0]) if shape[0] != 1 else "1"
            cols = self.dim(shape[1]) if shape[1] != 1 else "1"
            text = self.op("einsum", "ia,jb->ijab", f"{ca.text}, {cb.text}")
            reshaped = f"{text}.reshape({rows}, {cols})" if _is_matrix(shape) else \
                f"{text}.reshape(-1)"
            return _call(reshaped)
        raise AssertionError(v.kind)

    def _as_2d(self, c: _Code, shape: Shape) -> str:
        if shape == SCALAR:
            return f"{c.text}.reshape(1, 1)"
        return f"{_right(c, POW)}.reshape({'-1, 1' if shape[1] == 1 else '1, -1'})"

    def _add_diagonal(self, m: _Code, diagonal: _Code, fresh: bool = False) -> _Code:
        """``m`` plus a diagonal (a vector or a scalar times I), updated in place
        (``fresh``: ``m`` names a new array that nothing else uses)."""
        if self.t.functional:
            if not m.atomic:
                m = self.assign(m, "M")
            return _call(self.op("add_diagonal", m.text, diagonal.text))
        if not fresh:
            base = self.op("copy", m.text) if m.atomic else m.text
            name = self.new_name("M")
            self.lines.append(f"{name} = {base}")
            m = _Code(name)
        self.lines.append(self.op("add_diagonal", m.text, diagonal.text))
        return m

    # -- leaves ------------------------------------------------------------------
    def _Symbol(self, e: Symbol) -> _Val:
        if e.name not in self.pyname:
            raise DeclarationError(f"{e.name} occurs in the expression but is not a parameter")
        return _Val("dense", _Code(self.pyname[e.name]))

    def _Number(self, e: Number) -> _Val:
        return _Val("dense", _number(e.value))

    def _Identity(self, e: Identity) -> _Val:
        return _Val("diag", _Code("1.0"), self.dim(e.n), flat=True)

    def _Commutation(self, e: Commutation) -> _Val:
        # applied through reshapes; formed only when the result is the matrix itself
        return _Val("comm", parts=(self.dim(e.m), self.dim(e.n)))

    def _Ones(self, e: Ones) -> _Val:
        return _Val("ones", size=self.dim(e.n))

    def _Zero(self, e: Zero) -> _Val:
        if e.dims == SCALAR:
            return _Val("dense", _Code("0.0"))
        if _is_vector(e.dims):
            n = e.dims[0] if e.dims[1] == 1 else e.dims[1]
            return _Val("dense", _call(self.op("zeros", self.dim(n))))
        rows, cols = (self.dim(d) for d in e.dims)
        return _Val("dense", _call(self.op("zeros2", rows, cols)))

    # -- sums --------------------------------------------------------------------
    def _Add(self, e: Add) -> _Val:
        terms = [_signed(t) for t in e.terms]
        terms.sort(key=lambda st: st[1])  # a positive term first: b - a, not -a + b
        dense_shape = e.shape
        # c 1 beside an array is the scalar c, broadcast (no vector of ones is formed)
        scaled = {t: f for t, _ in terms if self.uses[t] <= 1
                  and (f := _scalars_of_scaled_ones(t)) is not None}
        values = [(t, negated, None if t in scaled else self.value(t))
                  for t, negated in terms if not isinstance(t, Zero)]
        has_array = any(t.shape != SCALAR and v is not None and v.kind not in ("ones", "diag")
                        for t, _, v in values)
        values = [(t, negated, self.value(t) if v is None and not has_array else v)
                  for t, negated, v in values]
        total: _Code | None = None
        diagonal: _Code | None = None
        flat = True
        for t, negated, v in values:
            if v is None:
                c = self.code(scaled[t][0])
                for f in scaled[t][1:]:
                    c = _binary(c, "*", self.code(f))
            elif v.kind == "ones" and has_array:
                c = _Code("1.0")
            elif v.kind == "diag" and e.shape != SCALAR:
                diagonal = _accumulate(diagonal, v.code, negated)
                flat = flat and v.flat
                continue
            else:
                c = self.dense(v, t.shape)
            total = _accumulate(total, c, negated)
        if diagonal is None:
            return _Val("dense", total if total is not None else _Code("0.0"))
        if total is None:
            return _Val("diag", diagonal, self.dim(dense_shape[0]), flat=flat)
        # a sum with a diagonal: add to the diagonal in place, never a dense diagonal matrix
        diagonal = self.assign(diagonal, "d") if len(diagonal.text) > 30 else diagonal
        if not has_array:  # c + diag(a): the scalar fills every entry
            rows, cols = (self.dim(d) for d in e.shape)
            full = self.assign(_call(self.op("full2", rows, cols, total.text)), "M")
            return _Val("dense", self._add_diagonal(full, diagonal, fresh=True))
        return _Val("dense", self._add_diagonal(total, diagonal))

    def _Neg(self, e: Neg) -> _Val:
        if isinstance(e.arg, Mul) and e.arg.shape != SCALAR and self.uses[e.arg] <= 1:
            return self._Mul(e.arg, negate=True)
        v = self.value(e.arg)
        if v.kind == "diag":
            return _Val("diag", _neg(v.code), v.size, flat=v.flat)
        return _Val("dense", _neg(self.dense(v, e.arg.shape)))

    # -- elementwise ---------------------------------------------------------------
    def _Div(self, e: Div) -> _Val:
        v = self.value(e.num)
        den = self.code(e.den)
        if v.kind == "diag":
            return _Val("diag", _binary(v.code, "/", den), v.size, flat=v.flat)
        return _Val("dense", _binary(self.dense(v, e.num.shape), "/", den))

    def _Hadamard(self, e: Hadamard) -> _Val:
        codes = [self.code(f) for f in e.factors if not isinstance(f, Ones)]
        if not codes:
            return self.value(e.factors[0])
        out = codes[0]
        for c in codes[1:]:
            out = _binary(out, "*", c)
        return _Val("dense", out)

    def _ElemDiv(self, e: ElemDiv) -> _Val:
        return _Val("dense", _binary(self.code(e.num), "/", self.code(e.den)))

    def _ElemPow(self, e: ElemPow) -> _Val:
        exponent = (_exponent(e.exponent.value) if isinstance(e.exponent, Number)
                    else self.code(e.exponent))
        return _Val("dense", _binary(self.code(e.base), "**", exponent))

    def _Kron(self, e: Kron) -> _Val:
        if e.left.shape == SCALAR or e.right.shape == SCALAR:  # a scalar factor only scales
            return _Val("dense", _binary(self.code(e.left), "*", self.code(e.right)))
        return _Val("kron", parts=((self.value(e.left), e.left.shape),
                                   (self.value(e.right), e.right.shape)))

    def _Transpose(self, e: Transpose) -> _Val:
        v = self.value(e.arg)
        if e.arg.shape == SCALAR or v.kind in ("diag", "ones"):
            return v
        if v.kind == "inv":
            return _Val("inv", factor=v.factor, trans=not v.trans)
        if v.kind == "comm":  # K_{m,n}^T = K_{n,m}
            return _Val("comm", parts=v.parts[::-1])
        if v.kind == "kron":
            (a, sa), (b, sb) = v.parts
            return _Val("kron", parts=((self._transpose_val(a, sa), (sa[1], sa[0])),
                                       (self._transpose_val(b, sb), (sb[1], sb[0]))))
        if _is_vector(e.arg.shape):
            return v
        return _Val("dense", _transposed(v.code))

    def _transpose_val(self, v: _Val, shape: Shape) -> _Val:
        if v.kind == "dense" and _is_matrix(shape):
            return _Val("dense", _transposed(v.code))
        if v.kind == "inv":
            return _Val("inv", factor=v.factor, trans=not v.trans)
        return v

    def _Pow(self, e: Pow) -> _Val:
        if e.base.shape == SCALAR:
            base = self.code(e.base)
            if not isinstance(e.exponent, Number):
                return _Val("dense", _binary(base, "**", self.code(e.exponent)))
            k = e.exponent.value
            if isinstance(e.base, Norm) and k < 0:
                # 1/||x|| at x = 0: the subgradient convention of LANGUAGE.md (x / ||x|| is 0)
                n = self.assign(base, "norm")
                power = _binary(_Code(f"({n.text} + ({n.text} == 0))"), "**", _exponent(k))
                return _Val("dense", _binary(_Code(f"({n.text} != 0)"), "*", power))
            if k == -1:
                return _Val("dense", _binary(_Code("1.0"), "/", base))
            if k == 2 and isinstance(e.base, Norm) and _squares_summed(e.base):
                # ||x||^2 as a sum of squares: no square root, no norm() call overhead
                x = self.code(e.base.arg)
                x = self.assign(x, "t") if not x.atomic else x
                if _is_matrix(e.base.arg.shape):
                    return _Val("dense", _call(f"({x.text} * {x.text}).sum()"))
                return _Val("dense", _binary(x, "@", x))
            if k == Fraction(1, 2):
                return _Val("dense", _call(self.call("sqrt", base.text)))
            return _Val("dense", _binary(base, "**", _exponent(k)))
        if not isinstance(e.exponent, Number) or e.exponent.value.denominator != 1:
            raise UnsupportedError("a matrix power needs an integer exponent")
        k = int(e.exponent.value)
        if k == -1 and (pair := _symmetric_kronecker_sum(e.base)) is not None:
            return self._kronecker_sum_inverse(*pair)
        if k == -1:
            base, trans = _strip_transpose(e.base)
            return _Val("inv", factor=self.factor_of(base), trans=trans)
        if k == 2:
            b = self.code(e.base)
            b = self.assign(b, "t") if not b.atomic else b
            return _Val("dense", _binary(b, "@", b))
        return _Val("dense", _call(self.op("matrix_power", self.code(e.base).text, k)))

    def _Norm(self, e: Norm) -> _Val:
        x = self.code(e.arg)
        if e.arg.shape == SCALAR:
            return _Val("dense", _call(self.call("abs", x.text)))
        matrix = _is_matrix(e.arg.shape)
        if matrix and e.p == "2":
            return _Val("dense", _call(self.op("norm_spectral", x.text)))
        if matrix and e.p in ("*", "nuc"):
            return _Val("dense", _call(self.op("norm_nuclear", x.text)))
        if e.p == "1" and not matrix:
            return _Val("dense", _call(self.op("sum_all", self.call("abs", x.text))))
        if e.p in ("inf", "∞") and not matrix:
            return _Val("dense", _call(self.op("max", self.call("abs", x.text))))
        if e.p not in (None, "2", "F") or (matrix and e.p == "1"):
            raise UnsupportedError(f"the norm ||.||_{e.p} has no translation")
        return _Val("dense", _call(self.op("norm", x.text)))

    def _kronecker_sum_inverse(self, a: Expr, b: Expr) -> _Val:
        """(I ⊗ A + B ⊗ I)^-1 for symmetric A = U diag(alpha) U^T, B = V diag(beta) V^T:
        (V ⊗ U) diag(1 ./ (alpha_i + beta_j)) (V ⊗ U)^T, NaN where a sum is within rounding
        of zero (the equation is singular: the nuclear norm at a matrix of lower rank)."""
        alpha, u, beta, v = (self.new_name(n) for n in ("alpha", "U", "beta", "V"))
        self.lines.append(f"{alpha}, {u} = {self.op('eigh', self.assign(self.code(a), 'A').text)}")
        self.lines.append(f"{beta}, {v} = {self.op('eigh', self.assign(self.code(b), 'B').text)}")
        den = self._regular_sums(f"{beta}[:, None] + {alpha}[None, :]")
        basis = self.assign(_call(self.op("kron", v, u)), "P")
        return _Val("dense", _Code(f"({basis.text} / {den}.reshape(-1)) @ {basis.text}.T",
                                   MUL, "@"))

    def _regular_sums(self, sums: str) -> str:
        """The name of the eigenvalue sums ``sums`` with NaN where one is within rounding of
        zero: a singular equation gives NaN, not large meaningless numbers."""
        den = self.new_name("den")
        self.lines.append(f"{den} = {sums}")
        size = f"{self.t.xp}.abs({den})"
        regular = f"{size} > 1e-13 * {self.op('max', size)}"
        self.lines.append(f"{den} = {self.op('where', regular, den, self.op('nan'))}")
        return den

    def _Sylvester(self, e: Sylvester) -> _Val:
        """The W with A W + W B = C: a solve when A or B is a scalar; by the
        eigendecompositions A = U diag(alpha) U^T, B = V diag(beta) V^T when both are known
        symmetric, W = U ((U^T C V) ./ (alpha_i + beta_j)) V^T (NaN where the equation is
        singular: a sum within rounding of zero); otherwise SciPy's (JAX's)
        solve_sylvester, or the Kronecker-sum system where neither is available."""
        a, b, c = (self.code(x) for x in (e.a, e.b, e.c))
        rows, cols = e.c.shape
        if e.a.is_scalar and e.b.is_scalar:
            return _Val("dense", _binary(c, "/", _call(f"({a.text} + {b.text})")))
        if e.b.is_scalar:  # (A + b I) W = C
            shifted = f"{a.text} + {b.text} * {self.op('eye', self.dim(rows))}"
            return _Val("dense", _call(self.op("solve", shifted, c.text)))
        if e.a.is_scalar:  # (B^T + a I) W^T = C^T; a row vector is 1-D here
            shifted = f"{_transposed(b).text} + {a.text} * {self.op('eye', self.dim(cols))}"
            solved = _call(self.op("solve", shifted, _transposed(c).text if _is_matrix(
                e.c.shape) else c.text))
            return _Val("dense", _transposed(solved) if _is_matrix(e.c.shape) else solved)
        a, b, c = (self.assign(x, stem) for x, stem in ((a, "A"), (b, "B"), (c, "C")))
        if known_symmetric(e.a) and known_symmetric(e.b):
            alpha, u, beta, v = (self.new_name(n) for n in ("alpha", "U", "beta", "V"))
            self.lines.append(f"{alpha}, {u} = {self.op('eigh', a.text)}")
            self.lines.append(f"{beta}, {v} = {self.op('eigh', b.text)}")
            den = self._regular_sums(f"{alpha}[:, None] + {beta}[None, :]")
            return _Val("dense", _Code(f"{u} @ (({u}.T @ {c.text} @ {v}) / {den}) @ {v}.T",
                                       MUL, "@"))
        if self.t.name == "jax":
            return _Val("dense", _call(f"jax.scipy.linalg.solve_sylvester({a.text}, {b.text}, "
                                       f"{c.text})"))
        if self.t.name == "numpy" and self.scipy:
            self.used_factor_imports = True
            return _Val("dense", _call(f"scipy.linalg.solve_sylvester({a.text}, {b.text}, "
                                       f"{c.text})"))
        # (I ⊗ A + B^T ⊗ I) vec(W) = vec(C): the Kronecker sum, formed (no SciPy)
        m, n = self.dim(rows), self.dim(cols)
        system = (f"{self.op('kron', self.op('eye', n), a.text)} + "
                  f"{self.op('kron', _transposed(b).text, self.op('eye', m))}")
        flat = self.op("solve", system, f"{c.text}.T.reshape(-1)")
        return _Val("dense", _call(self.op("unvec", flat, m, n)))

    def _Call(self, e: Call) -> _Val:
        """A function: structural ones here (diag stays lazy, det and logdet share their
        matrix's factorisation, tr of a product is a sum), the others from their records."""
        arg = e.args[0]
        name = e.name
        if name == "diag" and _is_vector(arg.shape):
            return _Val("diag", self.code(arg), self.dim(arg.shape[0]))
        if name in ("det", "logdet"):
            base, _ = _strip_transpose(arg)
            f = self.factor_of(base)
            return _Val("dense", self.determinant(f, log=name == "logdet"))
        if name == "tr":
            return _Val("dense", self._trace(arg))
        if name == "sum":
            v = self.value(arg)
            if v.kind == "ones":
                return _Val("dense", _Code(f"float({v.size})"))
            return _Val("dense", _call(self.op("sum_all", _right(self.dense(v, arg.shape), POW))))
        if name == "vec" and _is_vector(arg.shape):
            return self.value(arg)
        if name not in FUNCTIONS:
            raise UnsupportedError(f"{name} has no translation to {self.t.name}")
        return _Val("dense", self.apply(name, self.code(arg)))

    def apply(self, name: str, arg: _Code) -> _Code:
        """The code of function ``name`` (its record's template or multi-line generator)."""
        fn = FUNCTIONS[name]
        template = fn.code_template(self.t.name)
        if isinstance(template, str):
            if template.count("{0}") > 1:  # the argument is used twice: compute it once
                arg = self.assign(arg, "z")
            elif template.startswith("{0}"):  # a method of the argument: {0}.T.reshape(-1)
                arg = _Code(_right(arg, POW))
            elif not re.search(r"\(\{0\}[,)]", template):  # inside arithmetic: 0.5 * {0}
                arg = _Code(_right(arg, MUL))
            return _template_code(self.t.call(fn, arg.text))
        self.stem = "w"  # the record's intermediate values; its result is named by its use
        before = len(self.lines)
        result = template(self, self.assign(arg, "z").text)
        if len(self.lines) > before and self.lines[-1].startswith(f"{result} = "):
            # the last temporary is the value: give it back inline, to be named by its use
            text = self.lines.pop()[len(result) + 3:]
            self.taken.discard(result)
            return _template_code(text)
        return _Code(result)

    # -- the emitter interface of the function records (matcalc/functions/record.py) --
    def emit(self, code: str) -> str:
        name = self.new_name(self.stem)
        self.lines.append(f"{name} = {code}")
        return name

    def fresh(self) -> str:
        return self.new_name(self.stem)

    def line(self, code: str) -> None:
        self.lines.append(code)

    def call(self, name: str, *args: object) -> str:
        return self.t.call(FUNCTIONS[name], *args)

    def _trace(self, arg: Expr) -> _Code:
        """tr(P Q) as sum(P ⊙ Q^T): never the product's off-diagonal entries."""
        if isinstance(arg, Mul) and self.uses[arg] <= 1:
            flat = self._flatten(arg)
            factors = [f for f in flat if f.shape != SCALAR]
            if len(factors) >= 2:
                dims = [factors[0].shape[0]] + [f.shape[1] for f in factors]
                sizes = [self.estimate(d) for d in dims]
                split = min(range(1, len(factors)), key=lambda k: _order_cost(sizes[:k + 1])
                            + _order_cost(sizes[k:]) + sizes[0] * sizes[k])
                p = self.dense(self._chain(factors[:split]), (dims[0], dims[split]))
                q = self.dense(self._chain(factors[split:]), (dims[split], dims[0]))
                if dims[split] == 1:  # a column times a row: tr(p q^T) = q^T p
                    out = _binary(q, "@", p)
                else:
                    out = _call(self.op("sum_all", f"({_binary(p, '*', _transposed(q)).text})"))
                for f in flat:
                    if f.shape == SCALAR:
                        out = _binary(self.code(f), "*", out)
                return out
        return _call(self.call("tr", self.code(arg).text))

    # -- products ----------------------------------------------------------------
    def _flatten(self, e: Mul) -> list[Expr]:
        out: list[Expr] = []
        for f in e.factors:
            inline = (isinstance(f, Mul) and f.shape != SCALAR and self.uses[f] <= 1
                      and f not in self.memo)
            if inline and f not in self.preferred:
                out.extend(self._flatten(f))
            else:
                out.append(f)
        return out

    def _Mul(self, e: Mul, negate: bool = False) -> _Val:
        factors = self._flatten(e)
        scalars: list[_Code] = []
        for f in factors:
            if isinstance(f, Number) and f.value < 0:  # -2 A x: a subtraction or a minus
                negate = not negate
                if f.value != -1:
                    scalars.append(_number(-f.value))
            elif f.shape == SCALAR:
                scalars.append(self.code(f))
        mats = [f for f in factors if f.shape != SCALAR]
        scale: _Code | None = None
        for c in scalars:
            scale = c if scale is None else _binary(scale, "*", c)
        if negate:
            scale = _neg(scale) if scale is not None else _Code("-", NEG, "-")
        if not mats:
            out = scale if scale is not None else _Code("1.0")
            return _Val("dense", out if out.text != "-" else _Code("-1.0", NEG, "-"))
        result = self._chain(mats, scale)
        return result

    def _chain(self, mats: list[Expr], scale: _Code | None = None) -> _Val:
        """The product of the matrix factors ``mats`` (at least one), times ``scale``."""
        mats = self._share_runs(self._drop_identities(mats))
        distributed = self._distribute(mats)
        if distributed is not None:
            return self._scaled_val(distributed, scale, _chain_shape(mats))
        symmetric = self._symmetric(mats)
        if symmetric is not None:
            return self._scaled_val(symmetric, scale, _chain_shape(mats))
        values = [self.value(f) for f in mats]
        dims = [mats[0].shape[0]] + [f.shape[1] for f in mats]
        if len(mats) == 1:
            return self._scaled_val(values[0], scale, mats[0].shape)
        sizes = [self.estimate(d) for d in dims]
        diag = [v.kind in ("diag", "ones") for v in values]
        order = _best_order(sizes, diag)[1]
        return self._apply(order, values, dims, scale)

    def _shrinks(self, run: tuple[Expr, ...]) -> bool:
        """A run worth sharing is no larger than its largest factor (A x, not x y^T)."""
        size = self.estimate(run[0].shape[0]) * self.estimate(run[-1].shape[1])
        return size <= max(self.estimate(f.shape[0]) * self.estimate(f.shape[1]) for f in run)

    def _share_runs(self, mats: list[Expr]) -> list[Expr]:
        """Replace the longest run of factors that other chains share by its node."""
        if not self.shared_runs or len(mats) < 2:
            return mats
        for length in range(len(mats), 1, -1):
            for i in range(len(mats) - length + 1):
                run = tuple(mats[i:i + length])
                node = Mul(run)
                if run in self.shared_runs and node not in self.computing:
                    return self._share_runs(mats[:i] + [node] + mats[i + length:])
        return mats

    def _drop_identities(self, mats: list[Expr]) -> list[Expr]:
        kept = [f for f in mats if not isinstance(f, Identity)]
        return kept or mats[:1]

    def _scaled_val(self, v: _Val, scale: _Code | None, shape: Shape) -> _Val:
        if scale is None:
            return v
        if v.kind == "diag":
            return _Val("diag", _scale(scale, v.code), v.size, flat=v.flat)
        return _Val("dense", _scale(scale, self.dense(v, shape)))

    def _apply(self, order: Any, values: list[_Val], dims: list[Dim],
               scale: _Code | None) -> _Val:
        if isinstance(order, int):
            return self._scaled_val(values[order], scale, (dims[order], dims[order + 1]))
        i, j = _first(order), _last(order)
        k = _last(order[0])
        size = self.estimate(dims[i]) * self.estimate(dims[j + 1])
        left_size = self._push_size(order[0], values, dims)
        right_size = self._push_size(order[1], values, dims)
        to_left = to_right = None
        if scale is not None and min(left_size, right_size) < size:
            if left_size <= right_size:
                to_left = scale
            else:
                to_right = scale
            scale = None
        a = self._apply(order[0], values, dims, to_left)
        b = self._apply(order[1], values, dims, to_right)
        out = self._product(a, (dims[i], dims[k + 1]), b, (dims[k + 1], dims[j + 1]))
        return self._scaled_val(out, scale, (dims[i], dims[j + 1]))

    def _push_size(self, order: Any, values: list[_Val], dims: list[Dim]) -> float:
        """Entries a scale pushed into this operand would multiply (lazy leaves: never)."""
        if isinstance(order, int) and values[order].kind in ("ones", "inv", "kron", "comm"):
            return math.inf
        i, j = _first(order), _last(order)
        return self.estimate(dims[i]) * self.estimate(dims[j + 1])

    def _product(self, a: _Val, sa: Shape, b: _Val, sb: Shape) -> _Val:
        out_shape = (sa[0], sb[1])
        if sa == SCALAR or sb == SCALAR:  # a 1 x 1 product (1^T x) scales the other factor
            return _Val("dense", _binary(self.dense(a, sa), "*", self.dense(b, sb)))
        if a.kind == "ones":
            return self._ones_times(a, sa, b, sb)
        if b.kind == "ones":
            return self._times_ones(a, sa, b, sb)
        if a.kind == "diag" and b.kind == "diag":
            return _Val("diag", _binary(a.code, "*", b.code), a.size, flat=a.flat and b.flat)
        if a.kind == "diag":
            bc = self.dense(b, sb)
            if a.code.text == "1.0":
                return _Val("dense", bc)
            if _is_matrix(sb) and not a.flat:
                return _Val("dense", _binary(_call(self.op("column", _right(a.code, POW))),
                                             "*", bc))
            return _Val("dense", _binary(a.code, "*", bc))
        if b.kind == "diag":
            ac = self.dense(a, sa)
            if b.code.text == "1.0":
                return _Val("dense", ac)
            return _Val("dense", _binary(ac, "*", b.code))
        if a.kind == "inv" and b.kind != "inv":
            return _Val("dense", self.solve(a.factor, a.trans, self.dense(b, sb), sb))
        if b.kind == "inv" and a.kind != "inv":
            ac = self.dense(a, sa)
            if _is_vector(sa):
                return _Val("dense", self.solve(b.factor, not b.trans, ac, sa))
            solved = self.solve(b.factor, not b.trans, _transposed(ac), (sa[1], sa[0]))
            return _Val("dense", _transposed(solved))
        if a.kind == "comm" and b.kind != "comm":
            return _Val("dense", self._commute(a.parts, self.dense(b, sb), sb))
        if b.kind == "comm" and a.kind != "comm":  # A K_{m,n} = (K_{n,m} A^T)^T
            ac = self.dense(a, sa)
            if _is_vector(sa):
                return _Val("dense", self._commute(b.parts[::-1], ac, (sa[1], 1)))
            return _Val("dense", _transposed(self._commute(
                b.parts[::-1], _transposed(ac), (sa[1], sa[0]))))
        if a.kind == "kron" and b.kind == "dense":
            return _Val("dense", self._kron_times(a, b.code, sb, out_shape))
        if a.kind == "dense" and b.kind == "kron":
            return _Val("dense", self._times_kron(a.code, sa, b, out_shape))
        ac, bc = self.dense(a, sa), self.dense(b, sb)
        if sa[1] == 1:  # an outer product (inner dimension 1): no matrix multiply
            if _is_vector(sa) and _is_vector(sb):
                return _Val("dense", _call(self.op("outer", ac.text, bc.text)))
            return _Val("dense", _binary(ac, "*", bc))
        if (self.t.name == "jax" and _is_vector(sb) and ac.text.endswith(".T")
                and re.fullmatch(r"\w+\.T", ac.text)):
            # A^T r as r @ A: XLA would otherwise copy the transpose of a large A
            return _Val("dense", _binary(bc, "@", _Code(ac.text[:-2])))
        return _Val("dense", _binary(ac, "@", bc))

    def _ones_times(self, a: _Val, sa: Shape, b: _Val, sb: Shape) -> _Val:
        """1^T M (column sums), 1^T v (a sum) or 1 r^T (an outer product with ones)."""
        if sa[1] == 1:  # a column of ones times a row
            if b.kind == "ones":
                return _Val("dense", _call(self.op("ones2", a.size, b.size)))
            return _Val("dense", _call(self.op("outer", self.op("ones", a.size),
                                               self.dense(b, sb).text)))
        if b.kind == "diag":
            return _Val("dense", b.code if not b.flat
                        else _scale(b.code, self.dense(a, sa)))
        if b.kind == "ones":  # 1^T 1
            return _Val("dense", _Code(f"float({a.size})"))
        bc = self.dense(b, sb)
        if _is_matrix(sb):
            return _Val("dense", _call(self.op("sum_axis", _right(bc, POW), 0)))
        return _Val("dense", _call(self.op("sum_all", _right(bc, POW))))

    def _times_ones(self, a: _Val, sa: Shape, b: _Val, sb: Shape) -> _Val:
        if sa[1] == 1:  # a column times a row of ones
            return _Val("dense", _call(self.op("outer", self.dense(a, sa).text,
                                               self.op("ones", b.size))))
        if a.kind == "diag":
            return _Val("dense", a.code if not a.flat
                        else _scale(a.code, self.dense(b, sb)))
        ac = self.dense(a, sa)
        if _is_matrix(sa):
            return _Val("dense", _call(self.op("sum_axis", _right(ac, POW), 1)))
        return _Val("dense", _call(self.op("sum_all", _right(ac, POW))))

    def _commute(self, mn: tuple[str, str], b: _Code, shape: Shape) -> _Code:
        """K_{m,n} B: the rows of B reordered (vec(X) -> vec(X^T)), never K itself."""
        m, n = mn
        if _is_vector(shape):
            return _call(f"{_right(b, POW)}.reshape({n}, {m}).T.reshape(-1)")
        return _call(f"{_right(b, POW)}.reshape({n}, {m}, -1).swapaxes(0, 1)"
                     f".reshape({_paren(m)} * {_paren(n)}, -1)")

    def _kron_times(self, k: _Val, m: _Code, sm: Shape, out_shape: Shape) -> _Code:
        """(L ⊗ R) M through a reshape of M (never forms the Kronecker product)."""
        (lv, sl), (rv, sr) = k.parts
        left, right = self._matrix_code(lv, sl), self._matrix_code(rv, sr)
        operands = (f"{left.text}, {right.text}, {_right(m, POW)}.reshape("
                    f"{self.dim(sl[1])}, {self.dim(sr[1])}, -1)")
        text = self.op("einsum", "ia,jb,abk->ijk", operands)
        shape = f"{self.dim(sl[0])} * {self.dim(sr[0])}, -1" if _is_matrix(out_shape) else "-1"
        return _call(f"{text}.reshape({shape})")

    def _times_kron(self, m: _Code, sm: Shape, k: _Val, out_shape: Shape) -> _Code:
        """M (L ⊗ R) through a reshape of M."""
        (lv, sl), (rv, sr) = k.parts
        left, right = self._matrix_code(lv, sl), self._matrix_code(rv, sr)
        operands = (f"{_right(m, POW)}.reshape(-1, {self.dim(sl[0])}, {self.dim(sr[0])}), "
                    f"{left.text}, {right.text}")
        text = self.op("einsum", "kij,ia,jb->kab", operands)
        shape = f"-1, {self.dim(sl[1])} * {self.dim(sr[1])}" if _is_matrix(out_shape) else "-1"
        return _call(f"{text}.reshape({shape})")

    def _matrix_code(self, v: _Val, shape: Shape) -> _Code:
        c = self.dense(v, shape)
        if _is_matrix(shape):
            return c
        return _call(self._as_2d(c, shape))

    # -- structure: symmetric products and distribution ------------------------------
    def _symmetric(self, mats: list[Expr]) -> _Val | None:
        """A chain equal to its own transpose, Q^T Q: one symmetric product (syrk)."""
        n = len(mats)
        if n < 2 or any(not _transposes(mats[i], mats[n - 1 - i]) for i in range(n // 2)):
            return None
        half = mats[n - n // 2:]
        if any(self.value(f).kind != "dense" for f in half):
            return None
        if n % 2:
            middle = mats[n // 2]
            if not (isinstance(middle, Call) and middle.name == "diag"
                    and _is_vector(middle.args[0].shape)):
                return None
            weights = middle.args[0]
            if _bounds(weights)[0] < 0:
                return None  # no real square root: X^T (w ⊙ X) is the general product
            root = self.assign(_call(self.call("sqrt", self.code(weights).text)), "sw")
            dims = [middle.shape[0], middle.shape[1]] + [f.shape[1] for f in half]
            q = self._apply_chain([_Val("diag", root, self.dim(middle.shape[0]))]
                                  + [self.value(f) for f in half], dims)
        else:
            dims = [half[0].shape[0]] + [f.shape[1] for f in half]
            q = self._apply_chain([self.value(f) for f in half], dims)
        qshape = (dims[0], dims[-1])
        qc = self.dense(q, qshape)
        if isinstance(q, _Val) and q.kind == "dense" and not qc.atomic:
            qc = self.assign(qc, "Z" if _is_matrix(qshape) else "g")
        if kind_of(qshape) == "scalar":  # (y^T x)^T (y^T x): a square of plain numbers
            return _Val("dense", _binary(qc, "**", _Code("2")))
        if _is_vector(qshape):
            if qshape[1] == 1:  # q^T q with q a column: a dot product
                return _Val("dense", _binary(qc, "@", qc))
            return _Val("dense", _call(self.op("outer", qc.text, qc.text)))
        return _Val("dense", _binary(_transposed(qc), "@", qc))

    def _apply_chain(self, values: list[_Val], dims: list[Dim]) -> _Val:
        if len(values) == 1:
            return values[0]
        sizes = [self.estimate(d) for d in dims]
        order = _best_order(sizes, [v.kind in ("diag", "ones") for v in values])[1]
        return self._apply(order, values, dims, None)

    def _distribute(self, mats: list[Expr]) -> _Val | None:
        """A chain of matrices through a sum of diagonal and rank-one terms is the sum of
        chains: A^T (diag(s) - s s^T) A = A^T diag(s) A - (A^T s)(A^T s)^T, never the m x m
        sum; a sum of matrices times a vector is the sum of the products ((A + A^T) v is
        A v + A^T v: no n x n array)."""
        if len(mats) < 2:
            return None
        for i, f in enumerate(mats):
            if not (isinstance(f, Add) and _is_matrix(f.shape) and self.uses[f] <= 1
                    and f not in self.memo):
                continue
            if all(_is_matrix(g.shape) for g in mats) and all(_cheap_term(t) for t in f.terms):
                total: _Code | None = None
                for t in f.terms:
                    inner, negated = _signed(t)
                    chain = Mul((*mats[:i], inner, *mats[i + 1:]))
                    total = _accumulate(total, self.dense(self._Mul(chain), chain.shape),
                                        negated)
                return _Val("dense", total)
            if i < len(mats) - 1 and mats[-1].shape[1] == 1 and not any(
                    isinstance(t, Add) or t.shape == SCALAR for t in f.terms):
                right = self._placeholder(self._chain(mats[i + 1:]), mats[i + 1:])
                total = None
                for t in f.terms:
                    inner, negated = _signed(t)
                    term = Mul((inner, right))
                    total = _accumulate(total, self.dense(self._Mul(term), term.shape), negated)
                applied = Symbol(f"_applied{len(self.memo)}", (f.shape[0], right.shape[1]))
                self.memo[applied] = _Val("dense", total)
                return self._chain([*mats[:i], applied]) if i else self.memo[applied]
        return None

    def _placeholder(self, v: _Val, mats: list[Expr]) -> Symbol:
        """A stand-in variable for a computed value (so it can enter new chains)."""
        shape = _chain_shape(mats)
        code = self.dense(v, shape)
        if not code.atomic:
            code = self.assign(code, "u" if _is_vector(shape) else "T")
        sym = Symbol(f"_value{len(self.memo)}", shape)
        self.memo[sym] = _Val("dense", code)
        return sym

    # -- factorisations ------------------------------------------------------------
    def _plan_factors(self, nodes: list[Expr]) -> None:
        """Per inverted or determinant matrix: how many uses, and whether the inverse
        itself is needed (then it is computed once and multiplied with)."""
        uses: Counter[Expr] = Counter()
        explicit: set[Expr] = set()
        dets: set[Expr] = set()
        for node in nodes:
            if isinstance(node, Pow) and node.base.shape != SCALAR:
                base, _ = _strip_transpose(node.base)
                for parent in self._effective_parents(node):
                    uses[base] += 1
                    if not (isinstance(parent, Mul)
                            and sum(f.shape != SCALAR for f in parent.factors) >= 2):
                        explicit.add(base)
            elif isinstance(node, Call) and node.name in ("det", "logdet"):
                base, _ = _strip_transpose(node.args[0])
                uses[base] += self.uses[node]
                dets.add(base)
        for base, n in uses.items():
            cholesky = isinstance(base, Symbol) and "positive definite" in base.props
            if not self.scipy:
                kind = "inv" if base in explicit and n > 1 else "plain"
            elif cholesky:
                kind = "cho"
            elif n <= 1:
                kind = "plain"
            elif base in explicit and base not in dets:
                kind = "inv"
            else:
                kind = "lu"
            self.plans[base] = kind

    def _effective_parents(self, node: Expr) -> list[Expr | None]:
        """The parents through transposes (None: the node is a result)."""
        out: list[Expr | None] = []
        for p in self.parents.get(node) or [None]:
            if isinstance(p, Transpose):
                out.extend(self._effective_parents(p))
            else:
                out.append(p)
        return out

    def factor_of(self, base: Expr) -> _Factor:
        f = self.factors.get(base)
        if f is None:
            kind = self.plans.get(base, "plain")
            stem = self.pyname.get(base.name, base.name) if isinstance(base, Symbol) else "mat"
            matrix = self.code(base)
            if kind != "plain" and not matrix.atomic:
                matrix = self.assign(matrix, stem)
            f = _Factor(matrix, kind, self.dim(base.shape[0]), stem)
            if kind in ("lu", "cho"):
                self.used_factor_imports = True
                f.name = self.new_name(f"{stem}_{kind}")
                self.lines.append(f"{f.name} = {self.op(kind + '_factor', f.matrix.text)}")
            self.factors[base] = f
        return f

    def solve(self, f: _Factor, trans: bool, rhs: _Code, shape: Shape) -> _Code:
        """M^-1 rhs (M^-T rhs when ``trans``) with M's one factorisation."""
        if f.kind == "plain":
            m = _transposed(f.matrix) if trans else f.matrix
            return _call(self.op("solve", m.text, rhs.text))
        if f.kind == "inv":
            inv = self.inverse(f, trans)
            return _binary(inv, "@", rhs)
        key = "cho_solve" if f.kind == "cho" else ("lu_solve_t" if trans else "lu_solve")
        cached = self.solved.get((key, f.name, rhs.text))
        if cached is not None:  # S^-1 r and r^T S^-1 (symmetric S) are one solve
            return cached
        if self.t.name in SOLVE_NEEDS_MATRIX and _is_vector(shape):
            code = _call(self.op(key, f.name, _right(rhs, POW) + "[:, None]") + "[:, 0]")
        else:
            code = _call(self.op(key, f.name, rhs.text))
        code = self.assign(code, "u" if _is_vector(shape) else "T")
        self.solved[(key, f.name, rhs.text)] = code
        return code

    def inverse(self, f: _Factor, trans: bool = False) -> _Code:
        """The explicit inverse (computed once), for results that contain it."""
        if not f.inverse:
            name = self.new_name(f"{f.stem}_inv")
            if f.kind in ("plain", "inv"):
                self.lines.append(f"{name} = {self.op('inv', f.matrix.text)}")
            elif f.kind == "cho":
                self.lines.append(f"{name} = {self.op('cho_inverse', f.name, f.size)}")
                if self.t.name == "numpy":  # LAPACK potri fills the upper triangle only
                    self.lines.append(f"{name} = {self.op('cho_symmetrize', name)}")
            else:
                eye = self.op("eye", f.size)
                self.lines.append(f"{name} = {self.op('lu_solve', f.name, eye)}")
            f.inverse = name
        code = _Code(f.inverse)
        return _transposed(code) if trans else code

    def determinant(self, f: _Factor, log: bool) -> _Code:
        """det(M) or logdet(M) (NaN where det <= 0) from M's one factorisation."""
        if f.kind in ("plain", "inv"):
            if not log:
                return self.apply("det", f.matrix)
            return self.apply("logdet", f.matrix)
        if f.kind == "cho":
            diagonal = self.assign(_call(self.op("cho_diagonal", f.name)), f"{f.stem}_diag")
            if log:
                return _binary(_Code("2.0"), "*", _call(self.op(
                    "sum_all", _call(self.call("log", diagonal.text)).text)))
            return _binary(_call(f"{self.t.xp}.prod({diagonal.text})"), "**", _Code("2"))
        diagonal = self.assign(_call(self.op("lu_diagonal", f.name)), f"{f.stem}_diag")
        swaps = self.op("lu_swaps", f.name, f.size)
        if not log:
            return _binary(_Code(f"(-1.0) ** {swaps}"), "*",
                           _call(f"{self.t.xp}.prod({diagonal.text})"))
        if not f.sign:
            f.sign = self.new_name(f"{f.stem}_sign")
            logabs = self.op("sum_all", self.call("log", self.call("abs", diagonal.text)))
            f.logdet = self.new_name(f"{f.stem}_logabsdet")
            self.lines.append(f"{f.sign} = (-1.0) ** {swaps} * "
                              f"{self.t.xp}.prod({self.call('sign', diagonal.text)})")
            self.lines.append(f"{f.logdet} = {logabs}")
        return self._positive_log(_Code(f.sign), _Code(f.logdet))

    def _positive_log(self, sign: _Code, logabs: _Code) -> _Code:
        if self.t.name == "numpy":
            return _Code(f"{logabs.text} if {sign.text} > 0 else np.nan", 0)
        return _call(self.op("where", f"{sign.text} > 0", logabs.text, self.op("nan")))


# ---------------------------------------------------------------------------- helpers


def _squares_summed(e: Norm) -> bool:
    """Whether ``||x||^2`` is the sum of the squared entries: the 2-norm of a vector or the
    Frobenius norm of a matrix."""
    if e.arg.shape == SCALAR:
        return False
    return e.p == "F" or (e.p in (None, "2") and not _is_matrix(e.arg.shape))


def _flat_factors(e: Mul) -> list[Expr]:
    """The factors of nested matrix products (a scalar product stays one factor)."""
    out: list[Expr] = []
    for f in e.factors:
        out.extend(_flat_factors(f) if isinstance(f, Mul) and f.shape != SCALAR else [f])
    return out


def _paren(dim: str) -> str:
    return f"({dim})" if " " in dim else dim


def _signed(t: Expr) -> tuple[Expr, bool]:
    """A term without its sign: (-a) is (a, True), (-2) a is (2 a, True)."""
    if isinstance(t, Neg):
        return t.arg, True
    if (isinstance(t, Mul) and isinstance(t.factors[0], Number) and t.factors[0].value < 0):
        rest = t.factors[1:]
        if t.factors[0].value == -1:
            return (rest[0] if len(rest) == 1 else Mul(rest)), True
        return Mul((Number(-t.factors[0].value), *rest)), True
    return t, False


def _scalars_of_scaled_ones(t: Expr) -> tuple[Expr, ...] | None:
    """The scalar factors of ``c 1`` or ``c 1^T`` (a product of scalars and one vector of
    ones), or ``None`` for another term."""
    if not isinstance(t, Mul):
        return None
    ones = [f for f in t.factors if not f.is_scalar]
    if len(ones) != 1 or not isinstance(ones[0].arg if isinstance(ones[0], Transpose)
                                        else ones[0], Ones):
        return None
    return tuple(f for f in t.factors if f.is_scalar)


def _accumulate(total: _Code | None, c: _Code, negated: bool) -> _Code:
    if total is None:
        return _neg(c) if negated else c
    return _binary(total, "-" if negated else "+", c)


def _scale(scale: _Code, c: _Code) -> _Code:
    if scale.text == "-":
        return _neg(c)
    return _binary(scale, "*", c)


def _strip_transpose(e: Expr) -> tuple[Expr, bool]:
    if isinstance(e, Transpose):
        inner, t = _strip_transpose(e.arg)
        return inner, not t
    return e, False


def _transposes(a: Expr, b: Expr) -> bool:
    """Whether a = b^T structurally (or both are the same symmetric matrix)."""
    if isinstance(a, Transpose) and a.arg == b or isinstance(b, Transpose) and b.arg == a:
        return True
    if a == b and isinstance(a, Symbol) and "symmetric" in a.props:
        return True
    return a == b and isinstance(a, Call) and a.name == "diag" and _is_vector(a.args[0].shape)


def _cheap_term(t: Expr) -> bool:
    """A diagonal, a scaled identity or an outer product (rank one)."""
    t, _ = _signed(t)
    if isinstance(t, Identity):
        return True
    if isinstance(t, Call) and t.name == "diag" and _is_vector(t.args[0].shape):
        return True
    if isinstance(t, Mul):
        mats = [f for f in t.factors if f.shape != SCALAR]
        if len(mats) == 1:
            return _cheap_term(mats[0])
        return any(f.shape[1] == 1 for f in mats[:-1])
    return False


def _chain_shape(mats: list[Expr]) -> Shape:
    return (mats[0].shape[0], mats[-1].shape[1])


def _first(order: Any) -> int:
    return order if isinstance(order, int) else _first(order[0])


def _last(order: Any) -> int:
    return order if isinstance(order, int) else _last(order[1])


def _order_cost(sizes: list[int]) -> float:
    return _best_order(sizes, [False] * (len(sizes) - 1))[0] if len(sizes) > 2 else 0.0


def _best_order(dims: list[int], diag: list[bool]) -> tuple[float, Any]:
    """Cheapest parenthesisation (nested pairs of indices) by the classic dynamic program."""
    n = len(diag)
    best: dict[tuple[int, int], tuple[float, Any]] = {(i, i): (0.0, i) for i in range(n)}
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            options = []
            for k in reversed(range(i, j)):  # ties: left to right, as Python reads A @ B @ C
                left_diag = all(diag[i:k + 1])
                right_diag = all(diag[k + 1:j + 1])
                step = (dims[i] * dims[j + 1] if left_diag or right_diag
                        else dims[i] * dims[k + 1] * dims[j + 1])
                cost = best[(i, k)][0] + best[(k + 1, j)][0] + step
                options.append((cost, (best[(i, k)][1], best[(k + 1, j)][1])))
            best[(i, j)] = min(options, key=lambda o: o[0])
    return best[(0, n - 1)]


_BOUNDED01 = ("sigma", "softmax")
_NONNEGATIVE = ("exp", "sqrt", "abs", "relu", "softplus", "step")


def _bounds(e: Expr) -> tuple[float, float]:
    """An interval containing every entry of ``e`` (for square roots of weights)."""
    inf = math.inf
    if isinstance(e, Number):
        return float(e.value), float(e.value)
    if isinstance(e, Ones):
        return 1.0, 1.0
    if isinstance(e, Call) and e.name in _BOUNDED01:
        return 0.0, 1.0
    if isinstance(e, Call) and e.name in _NONNEGATIVE or isinstance(e, Norm):
        return 0.0, inf
    if isinstance(e, Call) and e.name == "tanh":
        return -1.0, 1.0
    if isinstance(e, Neg):
        lo, hi = _bounds(e.arg)
        return -hi, -lo
    if isinstance(e, Add):
        lo = hi = 0.0
        for t in e.terms:
            a, b = _bounds(t)
            lo, hi = lo + a, hi + b
        return lo, hi
    if isinstance(e, Hadamard):  # a factor that occurs twice is a square: y ⊙ y >= 0
        counts = Counter(e.factors)
        squares = [f for f, k in counts.items() for _ in range(k // 2)]
        rest = [f for f, k in counts.items() for _ in range(k % 2)]
        if squares:
            lo, hi = _bounds(Hadamard(tuple(rest))) if len(rest) > 1 else (
                _bounds(rest[0]) if rest else (1.0, 1.0))
            return (0.0, math.inf) if lo >= 0 else (-math.inf, math.inf)
    if isinstance(e, (Hadamard, Mul)) and (isinstance(e, Hadamard) or all(
            f.shape == SCALAR or _is_vector(f.shape) for f in e.factors)
            and sum(f.shape != SCALAR for f in e.factors) <= 1):
        lo, hi = 1.0, 1.0
        for f in e.factors:
            a, b = _bounds(f)
            products = [x * y for x in (lo, hi) for y in (a, b)
                        if not (x == 0 and math.isinf(y) or y == 0 and math.isinf(x))]
            lo, hi = min(products, default=0.0), max(products, default=0.0)
        return lo, hi
    if isinstance(e, ElemPow) and isinstance(e.exponent, Number):
        k = e.exponent.value
        if k.denominator == 1 and k.numerator % 2 == 0:
            return 0.0, inf
    return -inf, inf


def _template_code(text: str) -> _Code:
    """A template's code with the precedence of its outermost operator."""
    depth, ops = 0, set()
    for i, ch in enumerate(text):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
        if depth == 0 and ch in "+-*/@<>=" and i > 0 and text[i - 1] == " ":
            ops.add(ch)
    if not ops:
        return _Code(text, ATOM)
    if ops <= {"*", "/"}:
        return _Code(text, MUL, "*")
    if ops <= {"*", "/", "+", "-"}:
        return _Code(text, ADD, "+")
    return _Code(text, 0)


def _stem(e: Expr) -> str:
    """A readable name for the value of ``e``."""
    if isinstance(e, Call):
        if e.name in ("det", "logdet") and isinstance(e.args[0], Symbol):
            return f"{e.name}_{e.args[0].name}"
        fn = FUNCTIONS.get(e.name)
        return fn.letter if fn is not None and fn.letter != "u" else e.name
    if isinstance(e, Add):
        return "r" if e.shape != SCALAR else "c"
    if isinstance(e, Norm):
        return "norm"
    if isinstance(e, Hadamard):
        return "w"
    if isinstance(e, Mul):
        names = [f.name if isinstance(f, Symbol) else f.arg.name + "t"
                 if isinstance(f, Transpose) and isinstance(f.arg, Symbol) else ""
                 for f in e.factors]
        if all(names) and len("".join(names)) <= 5:
            return "".join(names)
    if e.shape == SCALAR:
        return "c"
    return "u" if _is_vector(e.shape) else "T"


# ---------------------------------------------------------------------------- public API


def default_params(expr: Expr | Sequence[Expr]) -> list[Symbol]:
    """The free symbols of ``expr`` (or of several) in order of first occurrence."""
    seen: dict[str, Symbol] = {}
    for root in ([expr] if isinstance(expr, Expr) else expr):
        for node in root.walk():
            if isinstance(node, Symbol):
                seen.setdefault(node.name, node)
    return list(seen.values())


def _convert_input(p: Symbol, name: str, t: Target) -> str:
    if p.dims == SCALAR:
        return t.op("scalar_in", name)
    if _is_vector(p.dims):
        return t.op("vector_in", name)
    return t.op("matrix_in", name)


def _output(expr: Expr, code: _Code, t: Target) -> str:
    """Results keep their shape: scalars are numbers, a row vector is 1 x n, a vector 1-D."""
    if expr.shape == SCALAR:
        return t.op("scalar_out", code.text)
    if kind_of(expr.shape) == "row vector":
        return f"{_right(code, POW)}.reshape(1, -1)"
    return code.text


def _binding_names(exprs: Sequence[Expr]) -> dict[Expr, str]:
    """The where-binding names of the printed results (h = tanh(W1 x), s = ...)."""
    from .bindings import bind_common

    names: dict[Expr, str] = {}
    for e in exprs:
        try:
            _, bindings = bind_common(e)
        except RecursionError:  # pragma: no cover - names are cosmetic
            continue
        originals: dict[Expr, Expr] = {}

        def expand(x: Expr, originals: dict[Expr, Expr] = originals) -> Expr:
            if isinstance(x, Symbol) and x in originals:
                return originals[x]
            return x.map_children(expand) if x.children else x

        for name, definition in bindings:
            original = expand(definition)
            originals[name] = original
            names.setdefault(original, name.name)
    return names


def to_source(expr: Expr | Sequence[Expr], params: Sequence[Symbol] | None = None,
              target: str = "numpy", name: str = "f", imports: bool = True, *,
              sizes: dict[str, int] | None = None, scipy: bool = True,
              doc: str | None = None) -> str:
    """Python source of ``def name(*, <params>)`` computing ``expr`` for the given target.

    ``expr`` may be a sequence of expressions: the function then returns a tuple and
    computes their shared sub-expressions once (a value and its gradient). ``sizes``
    (dimension name -> typical size) only guides the order of matrix chains.
    ``scipy=False`` keeps NumPy code free of SciPy (then a matrix whose inverse and
    determinant are both needed is factorised twice). ``doc`` replaces the docstring's
    description of the result.
    """
    t = get_target(target)
    if not _IDENT.match(name) or keyword.iskeyword(name) or name in _RESERVED:
        raise DeclarationError(f"{name!r} is not a valid function name")
    roots = [expr] if isinstance(expr, Expr) else list(expr)
    params = list(params) if params is not None else default_params(roots)
    roots = _with_adjugates(_one_spelling(roots))

    def generator() -> _Generator:
        gen = _Generator(params, t, dict(sizes or {}), scipy)
        gen.taken.add(name)
        gen.preferred = _binding_names(roots)
        gen.prepare(roots)
        return gen

    gen = generator()
    try:
        results = [_output(r, gen.code(r), t) for r in roots]
    except RecursionError:
        # Too deep to generate recursively: values children first, so that no call goes
        # deeper than one level (the recursion limit is never raised).
        gen = generator()
        for r in roots:
            for node in postorder(r):
                gen.value(node)
        results = [_output(r, gen.code(r), t) for r in roots]
    returned = results[0] if isinstance(expr, Expr) else "(" + ", ".join(results) + (
        ",)" if len(results) == 1 else ")")
    args = [gen.pyname[p.name] for p in params]
    description = doc if doc is not None else "; ".join(_doc_text(r) for r in roots)
    description = description.replace("\\", "\\\\").replace('"""', "'''")
    head = list(t.imports)
    if gen.used_factor_imports and t.factor_imports:
        head += list(t.factor_imports)
    if t.name == "jax":
        function = _jax_function(name, args, params, gen, returned, description, t)
    else:
        header = f"def {name}(*, {', '.join(args)}):" if args else f"def {name}():"
        docline = f'    """{description}\n\n    Generated by matcalc ({t.name}).'
        if gen.used_factor_imports and t.name == "numpy":
            docline += " Needs SciPy (pip install scipy) for its factorisations."
        body = [f"{a} = {_convert_input(p, a, t)}" for a, p in zip(args, params, strict=True)]
        body += [*gen.lines, f"return {returned}"]
        function = "\n".join([header, docline + '\n    """', *("    " + line for line in body)])
        function += "\n"
    if not imports:
        return function
    note = [f"# {t.note}"] if t.note else []
    return "\n".join(head + note) + "\n\n\n" + function


def _jax_function(name: str, args: list[str], params: Sequence[Symbol], gen: _Generator,
                  returned: str, description: str, t: Target) -> str:
    """A jitted body and a keyword front end that runs it in float64 (jax.enable_x64)."""
    inner = f"_{name}_jit"
    converted = [f"{a} = {_convert_input(p, a, t)}" for a, p in zip(args, params, strict=True)]
    lines = ["@jax.jit", f"def {inner}({', '.join(args)}):"]
    lines += ["    " + line for line in converted + gen.lines] + [f"    return {returned}", "",
                                                                  ""]
    lines.append(f"def {name}(*, {', '.join(args)}):" if args else f"def {name}():")
    lines.append(f'    """{description}\n\n    Generated by matcalc (jax): float64 inside '
                 'jax.enable_x64(True), no global flag is changed.\n    """')
    lines.append("    with jax.enable_x64(True):")
    lines.append(f"        return {inner}({', '.join(args)})")
    return "\n".join(lines) + "\n"


def _base_of(f: Expr) -> Expr:
    """The base of an integer power above 1, else ``f``."""
    if isinstance(f, Pow) and isinstance(f.exponent, Number) and (
            f.exponent.value.denominator == 1 and f.exponent.value > 1):
        return f.base
    return f


def _with_adjugates(roots: list[Expr]) -> list[Expr]:
    """det(U)^k U^-1 (or U^-T) in one product is det(U)^(k-1) adj(U) (or its transpose),
    whose code does not divide by det(U): det gradients stay finite at singular U. A det
    factor is distributed over a sum whose terms hold U^-1 (det(X) (I + tr(X) X^-T))."""
    memo: dict[Expr, Expr] = {}

    def pair(factors: list[Expr]) -> list[Expr] | None:
        for i, f in enumerate(factors):
            det, power = f, 1
            if isinstance(f, Pow) and isinstance(f.exponent, Number) and (
                    f.exponent.value.denominator == 1 and f.exponent.value > 1):
                det, power = f.base, int(f.exponent.value)
            if not (isinstance(det, Call) and det.name == "det"):
                continue
            u = det.args[0]
            for j, g in enumerate(factors):
                inner = g.arg if isinstance(g, Transpose) else g
                if isinstance(inner, Pow) and inner.base == u and inner.exponent == Number(-1):
                    adj: Expr = Call("adj", (u,))
                    out = [*factors]
                    out[j] = Transpose(adj) if isinstance(g, Transpose) else adj
                    if power > 1:
                        out[i] = Pow(det, Number(power - 1))
                    else:
                        out.pop(i)
                    return out
        return None

    def product(factors: list[Expr]) -> Expr:
        return factors[0] if len(factors) == 1 else Mul(tuple(factors))

    def distributed(factors: list[Expr]) -> list[Expr] | None:
        """det(U)^k (S + T U^-T) as det(U)^k S + T det(U)^k U^-T, when a term pairs."""
        dets = [f for f in factors if isinstance(_base_of(f), Call) and _base_of(f).name == "det"]
        sums = [j for j, f in enumerate(factors) if isinstance(f, Add)]
        for det in dets:
            for j in sums:
                terms = []
                for t in factors[j].terms:
                    inner = [det, *(t.factors if isinstance(t, Mul) else (t,))]
                    paired = pair(inner)
                    terms.append((product(paired or inner), paired is not None))
                if any(p for _, p in terms):
                    rest = [f for f in factors if f is not det]
                    k = rest.index(factors[j])
                    return [*rest[:k], Add(tuple(t for t, _ in terms)), *rest[k + 1:]]
        return None

    def walk(root: Expr) -> Expr:
        for e in postorder(root):  # children first, iteratively (deep networks)
            if e in memo:
                continue
            hit = e.map_children(memo.__getitem__) if e.children else e
            if isinstance(hit, Mul):
                factors = pair(list(hit.factors)) or distributed(list(hit.factors))
                if factors is not None:
                    hit = product(factors)
            memo[e] = hit
        return memo[root]

    return [walk(r) for r in roots]


def _one_spelling(roots: list[Expr]) -> list[Expr]:
    """One form for equal values written two ways ((-1) b is -b), so that they are shared."""

    def canon(_node: Expr, out: Expr) -> Expr:  # children first, iteratively
        if isinstance(out, Mul) and isinstance(out.factors[0], Number):
            c = out.factors[0].value
            rest = out.factors[1:]
            if len(rest) == 1 and isinstance(rest[0], Add):
                scaled = [_times_number(t, c) for t in rest[0].terms]
                if all(t is not None for t in scaled):  # 1/2 (2 A - 2 B) is A - B
                    return Add(tuple(scaled))
            elif c == -1:
                out = Neg(rest[0] if len(rest) == 1 else Mul(rest))
        return out

    return [map_bottom_up(r, canon) for r in roots]


def _times_number(t: Expr, c: Fraction) -> Expr | None:
    """c t for a term with a numeric coefficient (None for other terms)."""
    if isinstance(t, Neg):
        inner = _times_number(t.arg, c)
        return None if inner is None else Neg(inner)
    if isinstance(t, Mul) and isinstance(t.factors[0], Number):
        k = t.factors[0].value * c
        rest = t.factors[1:]
        if k in (1, -1):
            single = rest[0] if len(rest) == 1 else Mul(rest)
            return single if k == 1 else Neg(single)
        return Mul((Number(k), *rest))
    return None


def _doc_text(expr: Expr) -> str:
    try:
        from .bindings import bind_common

        body, named = bind_common(expr)
        text = str(body)
        if named:
            text += " where " + ", ".join(f"{n} = {d}" for n, d in named)
    except Exception:  # printing is another module's business; never fail generation on it
        text = type(expr).__name__
    return text if len(text) <= 300 else text[:300] + " ..."


def compile_source(expr: Expr | Sequence[Expr], params: Sequence[Symbol] | None = None,
                   target: str = "numpy", name: str = "f", **options: Any
                   ) -> Callable[..., Any]:
    """A Python function computing ``expr``, built by exec'ing only the generated source."""
    source = to_source(expr, params, target, name, **options)
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<matcalc {target} {name}>", "exec"), namespace)  # noqa: S102
    fn = namespace[name]
    fn.__matcalc_source__ = source
    return fn
