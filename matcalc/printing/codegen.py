"""Code generation for NumPy, JAX and PyTorch: straight-line functions with cheap products.

``to_source(expr, params, target)`` writes ``def f(*, A, x): ...`` where

- every distinct sub-expression is computed once (equal sub-trees share one temporary);
- matrix chains are ordered by cost: when the best order is the same for all sizes of the
  symbolic dimensions (``A^T A x`` is always ``A.T @ (A @ x)``, vectors being 1 wide) it is
  fixed in the code; when it depends on them, the candidate orders are all emitted and the
  cheapest is chosen at run time from the actual shapes;
- ``diag(v) M`` is row scaling ``v * M`` and ``M diag(v)`` column scaling, ``A^-1 B`` is a
  linear solve, and Kronecker products are applied through reshapes and ``einsum`` (never
  materialised by a ``kron`` call);
- vectors are accepted as 1-D arrays (or columns) and returned 1-D; internally vectors are
  2-D columns.

The target (``numpy``, ``jax``, ``torch``; see ``targets.py``) only changes how each
operation is spelled; JAX and PyTorch are imported by the generated code, never here.
"""

from __future__ import annotations

import itertools
import keyword
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..dims import Product, dim_factors, dim_names, dim_size
from ..errors import DeclarationError, UnsupportedError
from ..expr import (
    SCALAR,
    Add,
    Call,
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
)
from ..functions import FUNCTIONS
from .targets import Target, get_target

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_LARGE = 100  # assumed size of a symbolic dimension when one order must be fixed
_RESERVED = {"np", "jnp", "jax", "torch"}  # module aliases of the targets
_SAMPLE_SIZES = (4, 64, 1024)  # sizes tried for each symbolic dimension of a chain
_MAX_CANDIDATES = 4



@dataclass(frozen=True)
class _Val:
    """A computed value: ``dense`` (an array or float named by ``code``), or a lazy form:
    ``diag`` (code: the diagonal as a column), ``inv`` (code: the matrix to invert),
    ``kron`` (code, other: the two factors), ``identity`` (code: its size)."""

    kind: str
    code: str
    other: str = ""


def python_name(name: str) -> str:
    """The Python identifier used for a variable name (keywords get a trailing ``_``)."""
    if not _IDENT.match(name):
        raise DeclarationError(f"{name!r} cannot be a parameter name of generated code")
    if name in _RESERVED:
        return name + "_"
    return name + "_" if keyword.iskeyword(name) else name


def _number(value: Any) -> str:
    text = repr(float(value))
    return f"({text})" if text.startswith("-") else text


class _Generator:
    """Emits one assignment per distinct sub-expression."""

    def __init__(self, params: Sequence[Symbol], target: Target) -> None:
        self.t = target
        self.params = {p.name: p for p in params}
        self.pyname = {p.name: python_name(p.name) for p in params}
        taken = set(self.pyname.values())
        self.prefix = next(p for p in ("t", "tmp", "t_") if not any(
            re.fullmatch(re.escape(p) + r"\d+", n) for n in taken))
        self.counter = itertools.count()
        self.lines: list[str] = []
        self.memo: dict[Expr, _Val] = {}
        self.uses: dict[Expr, int] = {}
        self.dims: dict[Dim, str] = {}
        for p in params:
            for axis, d in enumerate(p.dims):
                if isinstance(d, str) and d not in self.dims and p.dims != SCALAR:
                    self.dims[d] = f"{self.pyname[p.name]}.shape[{axis}]"

    # -- plumbing ----------------------------------------------------------------
    def op(self, key: str, *args: object) -> str:
        return self.t.op(key, *args)

    def call(self, name: str, *args: object) -> str:
        return self.t.call(FUNCTIONS[name], *args)

    def fresh(self) -> str:
        return f"{self.prefix}{next(self.counter)}"

    def line(self, code: str) -> None:
        self.lines.append(code)

    def emit(self, code: str) -> str:
        name = self.fresh()
        self.lines.append(f"{name} = {code}")
        return name

    def dim(self, d: Dim) -> str:
        if isinstance(d, int):
            return str(d)
        if d in self.dims:
            return self.dims[d]
        if isinstance(d, Product):
            return " * ".join(self.dim(p) for p in dim_factors(d))
        raise UnsupportedError(f"the size {d} cannot be read off any parameter")

    def count_uses(self, root: Expr) -> None:
        seen: set[Expr] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            for child in set(node.children):
                self.uses[child] = self.uses.get(child, 0) + 1
                stack.append(child)

    # -- values ------------------------------------------------------------------
    def value(self, e: Expr) -> _Val:
        if e not in self.memo:
            method = getattr(self, "_" + type(e).__name__, None)
            if method is None:
                raise UnsupportedError(f"cannot generate code for {type(e).__name__}")
            self.memo[e] = method(e)
        return self.memo[e]

    def code(self, e: Expr) -> str:
        """A dense (or scalar) atom for ``e``."""
        return self.dense(self.value(e))

    def dense(self, v: _Val) -> str:
        if v.kind == "dense":
            return v.code
        if v.kind == "diag":
            return self.emit(self.op("diag_dense", v.code))
        if v.kind == "inv":
            return self.emit(self.op("inv", v.code))
        if v.kind == "identity":
            return self.emit(self.op("eye", v.code))
        left, right = v.code, v.other
        return self.emit(
            self.op("einsum", "ia,jb->ijab", f"{left}, {right}") + ".reshape("
            f"{left}.shape[0] * {right}.shape[0], {left}.shape[1] * {right}.shape[1])"
        )

    # -- leaves ------------------------------------------------------------------
    def _Symbol(self, e: Symbol) -> _Val:
        if e.name not in self.pyname:
            raise DeclarationError(f"{e.name} occurs in the expression but is not a parameter")
        return _Val("dense", self.pyname[e.name])

    def _Number(self, e: Number) -> _Val:
        return _Val("dense", _number(e.value))

    def _Identity(self, e: Identity) -> _Val:
        return _Val("identity", self.dim(e.n))

    def _Commutation(self, e) -> _Val:
        # K_{m,n}: row a n + b is the unit row e_{a + m b} (vec(X^T) = K vec(X), X m×n)
        m, n = self.dim(e.m), self.dim(e.n)
        eye = self.op("eye", f"({m}) * ({n})")
        return _Val("dense", self.emit(
            f"{eye}.reshape({n}, {m}, -1).swapaxes(0, 1).reshape(({m}) * ({n}), -1)"))

    def _Ones(self, e: Ones) -> _Val:
        return _Val("dense", self.emit(self.op("ones", self.dim(e.n))))

    def _Zero(self, e: Zero) -> _Val:
        if e.dims == SCALAR:
            return _Val("dense", "0.0")
        rows, cols = (self.dim(d) for d in e.dims)
        return _Val("dense", self.emit(self.op("zeros", rows, cols)))

    # -- operators ---------------------------------------------------------------
    def _Add(self, e: Add) -> _Val:
        terms = [(t.arg, True) if isinstance(t, Neg) else (t, False) for t in e.terms]
        values = [self.value(t) for t, _ in terms]
        lazy_diag = e.shape != SCALAR and all(v.kind == "diag" for v in values)
        parts = []
        for i, ((_, negated), v) in enumerate(zip(terms, values, strict=True)):
            code = v.code if lazy_diag else self.dense(v)
            parts.append(f"- {code}" if negated else ("+ " if i else "") + code)
        # a sum of diagonal matrices stays diagonal: add the diagonals (never n x n arrays)
        return _Val("diag" if lazy_diag else "dense", self.emit(" ".join(parts)))

    def _Neg(self, e: Neg) -> _Val:
        v = self.value(e.arg)
        if v.kind == "diag":
            return _Val("diag", self.emit(f"-{v.code}"))
        return _Val("dense", self.emit(f"-{self.dense(v)}"))

    def _Div(self, e: Div) -> _Val:
        return _Val("dense", self.emit(f"{self.code(e.num)} / {self.code(e.den)}"))

    def _Hadamard(self, e: Hadamard) -> _Val:
        return _Val("dense", self.emit(" * ".join(self.code(f) for f in e.factors)))

    def _ElemDiv(self, e: ElemDiv) -> _Val:
        return _Val("dense", self.emit(f"{self.code(e.num)} / {self.code(e.den)}"))

    def _ElemPow(self, e: ElemPow) -> _Val:
        return _Val("dense", self.emit(f"{self.code(e.base)} ** {self.code(e.exponent)}"))

    def _Kron(self, e: Kron) -> _Val:
        if e.left.shape == SCALAR or e.right.shape == SCALAR:  # a scalar factor only scales
            return _Val("dense", self.emit(f"{self.code(e.left)} * {self.code(e.right)}"))
        return _Val("kron", self.code(e.left), self.code(e.right))

    def _Transpose(self, e: Transpose) -> _Val:
        v = self.value(e.arg)
        if e.arg.shape == SCALAR or v.kind in ("diag", "identity"):
            return v
        if v.kind == "kron":
            return _Val("kron", _transposed(v.code), _transposed(v.other))
        return _Val(v.kind, _transposed(v.code))

    def _Pow(self, e: Pow) -> _Val:
        if e.base.shape == SCALAR and isinstance(e.base, Norm) and _negative(e.exponent):
            # 1/||x|| at x = 0: the subgradient convention of LANGUAGE.md (x / ||x|| is 0 there)
            n = self.code(e.base)
            k = self.code(e.exponent)
            return _Val("dense", self.emit(f"({n} != 0) * ({n} + ({n} == 0)) ** {k}"))
        if e.base.shape == SCALAR:
            return _Val("dense", self.emit(f"{self.code(e.base)} ** {self.code(e.exponent)}"))
        if not isinstance(e.exponent, Number) or e.exponent.value.denominator != 1:
            raise UnsupportedError("a matrix power needs an integer exponent")
        k = int(e.exponent.value)
        if k == -1:
            return _Val("inv", self.code(e.base))
        return _Val("dense", self.emit(self.op("matrix_power", self.code(e.base), k)))

    def _Norm(self, e: Norm) -> _Val:
        x = self.code(e.arg)
        if e.arg.shape == SCALAR:
            return _Val("dense", self.emit(self.call("abs", x)))
        if e.arg.kind == "matrix" and e.p == "2":
            return _Val("dense", self.emit(self.op("norm_spectral", x)))
        if e.arg.kind == "matrix" and e.p != "F":
            raise UnsupportedError(f"the matrix norm ||.||_{e.p} has no translation")
        if e.p == "1":
            return _Val("dense", self.emit(self.op("norm_1", x)))
        return _Val("dense", self.emit(self.op("norm", x)))

    def _Call(self, e: Call) -> _Val:
        arg = e.args[0]
        if e.name == "diag" and arg.kind == "vector":
            return _Val("diag", self.code(arg))  # lazy: row or column scaling in products
        fn = FUNCTIONS[e.name]
        generate = fn.code_template(self.t.name)
        if isinstance(generate, str):
            return _Val("dense", self.emit(self.t.call(fn, self.code(arg))))
        return _Val("dense", generate(self, self.code(arg)))

    # -- products ----------------------------------------------------------------
    def _flatten(self, e: Mul) -> list[Expr]:
        out: list[Expr] = []
        for f in e.factors:
            inline = f.shape != SCALAR and self.uses.get(f, 0) <= 1 and f not in self.memo
            if isinstance(f, Mul) and inline:
                out.extend(self._flatten(f))
            else:
                out.append(f)
        return out

    def _Mul(self, e: Mul) -> _Val:
        factors = self._flatten(e)
        scalars = [self.code(f) for f in factors if f.shape == SCALAR]
        mats = [f for f in factors if f.shape != SCALAR]
        vals = [(f, self.value(f)) for f in mats]
        kept = [(f, v) for f, v in vals if v.kind != "identity"] or vals[:1]
        scale = " * ".join(scalars)
        if not kept:
            return _Val("dense", self.emit(scale or "1.0"))
        if len(kept) == 1:
            return self._scaled(kept[0][1], scale, e)
        exprs, values = [f for f, _ in kept], [v for _, v in kept]
        candidates = _candidate_orders(exprs)
        result = None
        if len(candidates) > 1:
            result = self._runtime_choice(candidates, exprs, values)
        if result is None:
            result = self._apply(_chain_order(exprs), values, _chain_dims(exprs))
        return self._scaled(result, scale, e)

    def _runtime_choice(self, candidates: list[Any], exprs: list[Expr],
                        values: list[_Val]) -> _Val | None:
        """Emit every candidate order and pick the cheapest on the actual shapes."""
        try:
            dim_codes = [self.dim(d) for d in _chain_dims(exprs)]
        except UnsupportedError:
            return None
        diag = [_factor_cost_kind(f) == "diag" for f in exprs]
        saved, branches = self.lines, []
        for order in candidates:
            self.lines = []
            v = self._apply(order, values, _chain_dims(exprs))
            if v.kind != "dense":
                self.lines = saved
                return None
            branches.append((self.lines, v.code))
        self.lines = saved
        costs = []
        for order in candidates:
            terms = _cost_terms(order, len(exprs), diag)
            costs.append(self.emit(" + ".join(
                " * ".join(f"({dim_codes[i]})" if " " in dim_codes[i] else dim_codes[i]
                           for i in term) for term in terms)))
        out = self.fresh()
        for k, (lines, code) in enumerate(branches):
            others = [c for j, c in enumerate(costs) if j > k]
            test = " and ".join(f"{costs[k]} <= {c}" for c in others)
            if k == 0:
                self.lines.append(f"if {test}:")
            elif others:
                self.lines.append(f"elif {test}:")
            else:
                self.lines.append("else:")
            self.lines.extend("    " + line for line in lines)
            self.lines.append(f"    {out} = {code}")
        return _Val("dense", out)

    def _scaled(self, v: _Val, scale: str, e: Expr) -> _Val:
        if e.shape == SCALAR:
            entry = self._first_entry(v.code)
            return _Val("dense", self.emit(f"{scale} * {entry}") if scale else entry)
        if not scale:
            return v
        if v.kind == "diag":
            return _Val("diag", self.emit(f"{scale} * {v.code}"))
        return _Val("dense", self.emit(f"{scale} * {self.dense(v)}"))

    def _first_entry(self, name: str) -> str:
        """``name[0, 0]``, folded into the line that just computed ``name`` when possible."""
        last = self.lines[-1] if self.lines else ""
        shared = any(v.code == name for v in self.memo.values())
        if last.startswith(f"{name} = ") and not shared:
            self.lines[-1] = f"{name} = ({last[len(name) + 3:]})[0, 0]"
            return name
        return self.emit(f"{name}[0, 0]")

    def _apply(self, order: Any, vals: list[_Val], dims: list[Dim] | None = None) -> _Val:
        if isinstance(order, int):
            return vals[order]
        left = self._apply(order[0], vals, dims)
        right = self._apply(order[1], vals, dims)
        inner = dims[_last(order[0]) + 1] if dims is not None else None
        if inner == 1 and left.kind == "dense" and right.kind == "dense":
            # an outer product (inner dimension 1): broadcasting, no matrix multiply
            return _Val("dense", self.emit(f"{left.code} * {right.code}"))
        return self._product(left, right)

    def _product(self, a: _Val, b: _Val) -> _Val:
        if a.kind == "identity":
            return b
        if b.kind == "identity":
            return a
        if a.kind == "diag" and b.kind == "diag":
            return _Val("diag", self.emit(f"{a.code} * {b.code}"))
        if a.kind == "diag" and b.kind == "dense":
            return _Val("dense", self.emit(f"{a.code} * {b.code}"))
        if a.kind == "dense" and b.kind == "diag":
            return _Val("dense", self.emit(f"{a.code} * {b.code}.T"))
        if a.kind == "inv" and b.kind == "dense":
            return _Val("dense", self.emit(self.op("solve", a.code, b.code)))
        if a.kind == "dense" and b.kind == "inv":
            solved = self.op("solve", _transposed(b.code), _transposed(a.code))
            return _Val("dense", self.emit(f"{solved}.T"))
        if a.kind == "kron" and b.kind == "dense":
            return _Val("dense", self.emit(self._kron_times(a.code, a.other, b.code)))
        if a.kind == "dense" and b.kind == "kron":
            return _Val("dense", self.emit(self._times_kron(a.code, b.code, b.other)))
        if a.kind == "dense" and b.kind == "dense":
            if a.code.endswith(".T") and a.code[:-2].isidentifier():
                # A^T b as (b^T A)^T: XLA would otherwise copy the transpose of a large A
                return _Val("dense", self.emit(f"({_transposed(b.code)} @ {a.code[:-2]}).T"))
            return _Val("dense", self.emit(f"{a.code} @ {b.code}"))
        # Two lazy forms of different kinds: make one of them an array.
        if b.kind in ("diag", "inv", "kron") and a.kind not in ("diag",):
            return self._product(a, _Val("dense", self.dense(b)))
        return self._product(_Val("dense", self.dense(a)), b)

    def _kron_times(self, left: str, right: str, m: str) -> str:
        """(left ⊗ right) @ m through a reshape of m (never forms the Kronecker product)."""
        operands = f"{left}, {right}, {m}.reshape({left}.shape[1], {right}.shape[1], -1)"
        return (self.op("einsum", "ia,jb,abk->ijk", operands)
                + f".reshape({left}.shape[0] * {right}.shape[0], -1)")

    def _times_kron(self, m: str, left: str, right: str) -> str:
        """m @ (left ⊗ right) through a reshape of m."""
        operands = f"{m}.reshape(-1, {left}.shape[0], {right}.shape[0]), {left}, {right}"
        return (self.op("einsum", "kij,ia,jb->kab", operands)
                + f".reshape(-1, {left}.shape[1] * {right}.shape[1])")


def _negative(e: Expr) -> bool:
    return isinstance(e, Number) and e.value < 0


def _last(order: Any) -> int:
    """The index of the last factor in a (nested) order."""
    return order if isinstance(order, int) else _last(order[1])


def _transposed(code: str) -> str:
    return code[:-2] if code.endswith(".T") else f"{code}.T"


# ---------------------------------------------------------------------------- chain ordering


def _chain_dims(factors: list[Expr]) -> list[Dim]:
    return [factors[0].shape[0]] + [f.shape[1] for f in factors]


def _estimate(d: Dim, sizes: dict[str, int] | None = None) -> int:
    """The size of ``d`` with names sized by ``sizes``, others assumed large."""
    return dim_size(d, sizes or {}, default=_LARGE)  # type: ignore[return-value]


def _factor_cost_kind(f: Expr) -> str:
    if isinstance(f, Call) and f.name == "diag" and f.args[0].kind == "vector":
        return "diag"
    return "dense"


def _best_order(dims: list[int], diag: list[bool]) -> tuple[float, Any]:
    """Cheapest parenthesisation (nested pairs of indices) by the classic dynamic program."""
    n = len(diag)
    best: dict[tuple[int, int], tuple[float, Any]] = {(i, i): (0.0, i) for i in range(n)}
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            options = []
            for k in range(i, j):
                left_diag = all(diag[i:k + 1])
                right_diag = all(diag[k + 1:j + 1])
                step = (dims[i] * dims[j + 1] if left_diag or right_diag
                        else dims[i] * dims[k + 1] * dims[j + 1])
                cost = best[(i, k)][0] + best[(k + 1, j)][0] + step
                options.append((cost, (best[(i, k)][1], best[(k + 1, j)][1])))
            best[(i, j)] = min(options, key=lambda o: o[0])
    return best[(0, n - 1)]


def _chain_order(factors: list[Expr]) -> Any:
    """The order for symbolic dimensions all assumed large."""
    dims = [_estimate(d) for d in _chain_dims(factors)]
    return _best_order(dims, [_factor_cost_kind(f) == "diag" for f in factors])[1]


def _candidate_orders(factors: list[Expr]) -> list[Any]:
    """The orders that are cheapest for some sizes of the chain's symbolic dimensions."""
    chain = _chain_dims(factors)
    names = sorted({p for d in chain for p in dim_names(d)})
    diag = [_factor_cost_kind(f) == "diag" for f in factors]
    if len(factors) < 3 or not names:
        return [_chain_order(factors)]
    if len(names) <= 4:
        samples = itertools.product(_SAMPLE_SIZES, repeat=len(names))
    else:
        rng = random.Random(0)
        samples = (tuple(rng.choice(_SAMPLE_SIZES) for _ in names) for _ in range(100))
    wins: Counter = Counter()
    for values in samples:
        sizes = dict(zip(names, values, strict=True))
        wins[_best_order([_estimate(d, sizes) for d in chain], diag)[1]] += 1
    default = _chain_order(factors)
    ranked = [o for o, _ in wins.most_common(_MAX_CANDIDATES)]
    if default not in ranked:
        ranked[-1:] = [default]
    return ranked


def _cost_terms(order: Any, n: int, diag: list[bool]) -> list[list[int]]:
    """Cost of an order as a sum of products of chain-dimension indices."""
    terms: list[list[int]] = []

    def walk(node: Any) -> tuple[int, int, bool]:
        if isinstance(node, int):
            return node, node, diag[node]
        i, k, left_diag = walk(node[0])
        _, j, right_diag = walk(node[1])
        terms.append([i, j + 1] if left_diag or right_diag else [i, k + 1, j + 1])
        return i, j, left_diag and right_diag

    walk(order)
    return terms


# ---------------------------------------------------------------------------- public API


def default_params(expr: Expr) -> list[Symbol]:
    """The free symbols of ``expr`` in order of first occurrence."""
    seen: dict[str, Symbol] = {}
    for node in expr.walk():
        if isinstance(node, Symbol):
            seen.setdefault(node.name, node)
    return list(seen.values())


def _convert_input(p: Symbol, name: str, t: Target) -> str:
    if p.dims == SCALAR:
        return f"{name} = {t.op('scalar_in', name)}"
    value = t.op("matrix_in", name)
    if p.dims[1] == 1:
        return f"{name} = {value}.reshape(-1, 1)"
    if p.dims[0] == 1:
        return f"{name} = {value}.reshape(1, -1)"
    return f"{name} = {value}"


def _return(expr: Expr, code: str, t: Target) -> str:
    if expr.shape == SCALAR:
        return f"return {t.op('scalar_out', code)}"
    if expr.shape[1] == 1:
        return f"return {code}.reshape(-1)"
    return f"return {code}"


def to_source(expr: Expr, params: Sequence[Symbol] | None = None, target: str = "numpy",
              name: str = "f", imports: bool = True) -> str:
    """Python source of ``def name(*, <params>)`` computing ``expr`` for the given target."""
    t = get_target(target)
    if not _IDENT.match(name) or keyword.iskeyword(name) or name in _RESERVED:
        raise DeclarationError(f"{name!r} is not a valid function name")
    params = list(params) if params is not None else default_params(expr)
    gen = _Generator(params, t)
    gen.count_uses(expr)
    result = gen.dense(gen.value(expr))
    args = ", ".join(gen.pyname[p.name] for p in params)
    header = f"def {name}(*, {args}):" if args else f"def {name}():"
    body = [_convert_input(p, gen.pyname[p.name], t) for p in params]
    body += [*gen.lines, _return(expr, result, t)]
    doc = f'    """Generated by matcalc ({t.name}) from: {_doc_text(expr)}"""'
    function = "\n".join([header, doc, *("    " + line for line in body)]) + "\n"
    if not imports:
        return function
    head = list(t.imports) + ([f"# {t.note}"] if t.note else [])
    return "\n".join(head) + "\n\n\n" + function


def _doc_text(expr: Expr) -> str:
    try:
        text = str(expr)
    except Exception:  # printing is another module's business; never fail generation on it
        text = type(expr).__name__
    text = text.replace("\\", "\\\\").replace('"""', "'''")
    return text if len(text) <= 200 else text[:200] + " ..."


def compile_source(expr: Expr, params: Sequence[Symbol] | None = None, target: str = "numpy",
                   name: str = "f") -> Callable[..., Any]:
    """A Python function computing ``expr``, built by exec'ing only the generated source."""
    source = to_source(expr, params, target, name)
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<matcalc {target} {name}>", "exec"), namespace)  # noqa: S102
    fn = namespace[name]
    fn.__matcalc_source__ = source
    return fn
