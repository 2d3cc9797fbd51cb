"""Immutable, typed expression nodes; constructors never simplify."""

from __future__ import annotations

import weakref
from _weakref import _remove_dead_weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from fractions import Fraction
from operator import attrgetter
from typing import ClassVar, TypeVar

from .budget import charge, running_budget, spent
from .dims import Dim, dim_factors, map_dim, mul_dims

Shape = tuple[Dim, Dim]
SCALAR: Shape = (1, 1)

SCALAR_KIND, VECTOR_KIND, ROW_KIND, MATRIX_KIND = "scalar", "vector", "row vector", "matrix"


def kind_of(shape: Shape) -> str:
    """The kind a shape stands for: scalar, vector, row vector or matrix."""
    rows, cols = shape
    if rows == 1 and cols == 1:
        return SCALAR_KIND
    if cols == 1:
        return VECTOR_KIND
    if rows == 1:
        return ROW_KIND
    return MATRIX_KIND


class _InternRef(weakref.ref):
    """A weak reference to an interned node that knows its key (``weakref.KeyedRef`` without
    its constructor written in Python: two Python calls fewer per node built)."""

    __slots__ = ("key",)


_INTERNED: dict[tuple, _InternRef] = {}
"""The live nodes by their key ``(class, *arguments)``: a weak-valued table (what
``weakref.WeakValueDictionary`` does, without its Python-level ``__setitem__``)."""
_INTERNED_REFS = _INTERNED.get


def _forget(ref: _InternRef, _table: dict = _INTERNED,
            _remove: Callable[[dict, object], None] = _remove_dead_weakref) -> None:
    """Drop a dead node's entry, unless a live node of the same key took its place (the
    table is bound here: module globals may be gone when a node dies at exit)."""
    _remove(_table, ref.key)


class Expr:
    """Base of all nodes: structural equality and hashing, cached shape.

    Nodes are hash-consed: building a node equal to a live one returns that object, so
    equal sub-expressions are usually the same object and comparing them is O(1) (the
    memo tables of the simplifier and the differentiator rely on this for linear time).
    """

    __slots__ = ("_hash", "_shape", "__weakref__")
    _children: ClassVar[tuple[str, ...]] = ()
    precedence: ClassVar[int] = 100

    def __new__(cls, *args: object, **kwargs: object) -> Expr:
        if kwargs:
            names = cls.__match_args__  # type: ignore[attr-defined]
            args = args + tuple(kwargs[n] for n in names[len(args):] if n in kwargs)
        # building a node (or finding it built) is work of the derivation running
        # (matcalc.budget); hashing the key of a node with many children costs more.
        # The budget is read inline (no call, no generator): this runs for every node.
        budget = running_budget()
        if budget is not None:
            links = 0
            for a in args:
                if type(a) is tuple:
                    links += len(a)
            budget.used += 1 + links // 16
            if budget.used > budget.limit:  # a spent budget ends the derivation here
                raise spent(budget)
        key = (cls, *args)  # one tuple per live node (the key lives as long as the node)
        try:
            ref = _INTERNED_REFS(key)
        except TypeError:  # an unhashable argument: the constructor will complain
            return super().__new__(cls)
        if ref is not None:
            hit = ref()
            if hit is not None:
                return hit
        node = super().__new__(cls)
        ref = _InternRef(node, _forget)
        ref.key = key
        _INTERNED[key] = ref
        return node

    # -- structure -------------------------------------------------------------
    _key: ClassVar[Callable[[Expr], object]]
    """The node's fields (``__match_args__``) as one value, read in C (``attrgetter``, set
    per class by ``_node``): what equality compares and the hash is made of."""

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(self) is not type(other):
            return False
        if hash(self) != hash(other):
            return False
        key = type(self)._key
        return key(self) == key(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            h = hash((type(self).__name__, type(self)._key(self)))
            object.__setattr__(self, "_hash", h)
            return h

    @property
    def children(self) -> tuple[Expr, ...]:
        """The direct sub-expressions, in order (a node's one tuple of children is returned
        as it is: no copy, the traversals ask for them again and again)."""
        names = self._children
        if len(names) == 1:
            value = getattr(self, names[0])
            return value if type(value) is tuple else (value,)
        out: list[Expr] = []
        for name in names:
            value = getattr(self, name)
            if isinstance(value, tuple):
                out.extend(value)
            else:
                out.append(value)
        return tuple(out)

    def rebuild(self, children: tuple[Expr, ...]) -> Expr:
        """The same node with new children (in the order of ``children``)."""
        if not self._children:
            return self
        cls = type(self)
        args = [getattr(self, name) for name in self.__match_args__]  # type: ignore[attr-defined]
        at = 0
        for index in _child_fields(cls):
            if isinstance(args[index], tuple):
                n = len(args[index])
                args[index] = tuple(children[at:at + n])
                at += n
            else:
                args[index] = children[at]
                at += 1
        return cls(*args)

    def map_children(self, fn: Callable[[Expr], Expr]) -> Expr:
        """Apply ``fn`` to each child; returns ``self`` when nothing changed."""
        old = self.children
        new = tuple(fn(c) for c in old)
        if all(a is b for a, b in zip(old, new, strict=True)):
            return self
        return self.rebuild(new)

    def walk(self) -> Iterator[Expr]:
        """Each distinct node once, pre-order, iteratively: linear in the size of the DAG
        (shared sub-expressions are not visited again), safe on deep expressions."""
        seen: set[int] = set()
        stack: list[Expr] = [self]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            yield node
            stack.extend(reversed(node.children))

    def free_symbols(self) -> set[Symbol]:
        """The variables occurring in the expression."""
        return {n for n in self.walk() if isinstance(n, Symbol)}

    def contains(self, target: Expr) -> bool:
        """Whether ``target`` occurs as a sub-expression."""
        return any(n == target for n in self.walk())

    # -- typing ----------------------------------------------------------------
    @property
    def shape(self) -> Shape:
        """(rows, cols) with symbolic or concrete dimensions."""
        try:
            return self._shape
        except AttributeError:
            pass
        # the shapes this one needs first, iteratively (deep expressions, no deep recursion)
        stack: list[Expr] = [self]
        while stack:
            node = stack[-1]
            if hasattr(node, "_shape"):
                stack.pop()
                continue
            missing = [c for c in node._shape_inputs() if not hasattr(c, "_shape")]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            object.__setattr__(node, "_shape", node._compute_shape())
        return self._shape

    def _shape_inputs(self) -> tuple[Expr, ...]:
        """The nodes whose shapes ``_compute_shape`` reads."""
        return self.children

    def _compute_shape(self) -> Shape:
        raise NotImplementedError

    @property
    def kind(self) -> str:
        """``"scalar"``, ``"vector"``, ``"row vector"`` or ``"matrix"``."""
        return kind_of(self.shape)

    @property
    def is_scalar(self) -> bool:
        try:  # the shape known already (most often): no second property call
            return self._shape == SCALAR
        except AttributeError:
            return self.shape == SCALAR

    # -- printing --------------------------------------------------------------
    def __str__(self) -> str:
        from .printing.bindings import needs_bindings, with_where
        from .printing.text import to_text

        if needs_bindings(self):
            return with_where(self, to_text, " where ", ", ")
        return to_text(self)

    def latex(self) -> str:
        """This expression as LaTeX (amsmath; renders in KaTeX)."""
        from .printing.bindings import needs_bindings, with_where
        from .printing.latex import to_latex

        if needs_bindings(self):
            return with_where(self, to_latex, r" \quad\text{where}\quad ", r",\; ")
        return to_latex(self)

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"

    def __repr__(self) -> str:
        args = ", ".join(repr(getattr(self, n)) for n in self.__match_args__)  # type: ignore[attr-defined]
        return f"{type(self).__name__}({args})"


def _no_children(_node: Expr) -> tuple[Expr, ...]:
    return ()


def _children_getter(cls: type) -> Callable[[Expr], tuple[Expr, ...]] | None:
    """A node class's ``children`` as one call, in C where it can be (``attrgetter``): a
    tuple field as it is, several single children as one tuple; None for the general form.
    The traversals ask for children hundreds of thousands of times in a large derivation."""
    names = cls._children  # type: ignore[attr-defined]
    if not names:
        return _no_children
    tuples = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
    if len(names) == 1 and names[0] in tuples:
        return attrgetter(names[0])
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda node: (one(node),)
    if not tuples & set(names):
        return attrgetter(*names)
    return None


def _node(cls: type) -> type:
    """A node class: a frozen dataclass with slots and its fast ``children``."""
    cls = dataclass(frozen=True, slots=True, eq=False, repr=False)(cls)
    cls._key = staticmethod(attrgetter(*cls.__match_args__))  # type: ignore[attr-defined]
    getter = _children_getter(cls)
    if getter is not None:
        cls.children = property(getter, doc=Expr.children.__doc__)  # type: ignore[attr-defined]
    return cls

_CHILD_FIELDS: dict[type, tuple[int, ...]] = {}


def _child_fields(cls: type) -> tuple[int, ...]:
    """Positions, among a node class's fields, of the fields that hold its children."""
    fields = _CHILD_FIELDS.get(cls)
    if fields is None:
        names = cls.__match_args__  # type: ignore[attr-defined]
        fields = _CHILD_FIELDS[cls] = tuple(names.index(n) for n in cls._children)  # type: ignore[attr-defined]
    return fields

# ---------------------------------------------------------------------------- leaves


@_node
class Symbol(Expr):
    """A variable: vector, matrix or scalar, with properties such as ``symmetric``."""

    name: str
    dims: Shape = SCALAR
    props: frozenset[str] = field(default_factory=frozenset)

    def _compute_shape(self) -> Shape:
        return self.dims

    def __repr__(self) -> str:
        extra = f", props={sorted(self.props)!r}" if self.props else ""
        return f"Symbol({self.name!r}, {self.dims!r}{extra})"


@_node
class Number(Expr):
    """An exact rational constant."""

    value: Fraction

    def __post_init__(self) -> None:
        if not isinstance(self.value, Fraction):
            object.__setattr__(self, "value", Fraction(self.value))

    def _compute_shape(self) -> Shape:
        return SCALAR

    def __repr__(self) -> str:
        return f"Number({self.value})"


@_node
class Identity(Expr):
    """The identity matrix ``I`` of size n."""

    n: Dim

    def _compute_shape(self) -> Shape:
        return (self.n, self.n)


@_node
class Commutation(Expr):
    """The commutation matrix K_{m,n}: vec(X^T) = K_{m,n} vec(X) for an m×n matrix X."""

    m: Dim
    n: Dim

    def _compute_shape(self) -> Shape:
        size = mul_dims(self.m, self.n)
        return (size, size)


@_node
class Ones(Expr):
    """The all-ones column vector ``1`` of size n."""

    n: Dim

    def _compute_shape(self) -> Shape:
        return (self.n, 1)


@_node
class Zero(Expr):
    """The zero scalar, vector or matrix of a given shape."""

    dims: Shape = SCALAR

    def _compute_shape(self) -> Shape:
        return self.dims


@_node
class Differential(Expr):
    """The differential ``dX`` of a variable."""

    var: Symbol

    def _compute_shape(self) -> Shape:
        return self.var.shape

    def _shape_inputs(self) -> tuple[Expr, ...]:
        return (self.var,)


# ---------------------------------------------------------------------------- operators


def _broadcast(shapes: list[Shape]) -> Shape:
    for s in shapes:
        if s != SCALAR:
            return s
    return SCALAR


@_node
class Add(Expr):
    """A sum; scalar terms broadcast over vector or matrix terms."""

    terms: tuple[Expr, ...]
    _children: ClassVar = ("terms",)
    precedence: ClassVar[int] = 10

    def _compute_shape(self) -> Shape:
        return _broadcast([t.shape for t in self.terms])


@_node
class Neg(Expr):
    """Negation ``-a``."""

    arg: Expr
    _children: ClassVar = ("arg",)
    precedence: ClassVar[int] = 15

    def _compute_shape(self) -> Shape:
        return self.arg.shape


def product_shape(shapes: list[Shape]) -> Shape:
    """Shape of a product whose factors scale (scalars) or multiply (matrices)."""
    current: Shape | None = None
    for s in shapes:
        if current is None or current == SCALAR:
            current = s
        elif s != SCALAR:
            current = (current[0], s[1])
    return current if current is not None else SCALAR


@_node
class Mul(Expr):
    """A product: scalar factors scale, the others multiply as matrices, in order."""

    factors: tuple[Expr, ...]
    _children: ClassVar = ("factors",)
    precedence: ClassVar[int] = 20

    def _compute_shape(self) -> Shape:
        return product_shape([f.shape for f in self.factors])


@_node
class Div(Expr):
    """Division by a scalar ``a / s``."""

    num: Expr
    den: Expr
    _children: ClassVar = ("num", "den")
    precedence: ClassVar[int] = 20

    def _compute_shape(self) -> Shape:
        return self.num.shape


@_node
class Hadamard(Expr):
    """Elementwise product ``a ⊙ b ⊙ ...``."""

    factors: tuple[Expr, ...]
    _children: ClassVar = ("factors",)
    precedence: ClassVar[int] = 20

    def _compute_shape(self) -> Shape:
        return _broadcast([f.shape for f in self.factors])


@_node
class ElemDiv(Expr):
    """Elementwise division ``a ./ b``."""

    num: Expr
    den: Expr
    _children: ClassVar = ("num", "den")
    precedence: ClassVar[int] = 20

    def _compute_shape(self) -> Shape:
        return _broadcast([self.num.shape, self.den.shape])


@_node
class Kron(Expr):
    """Kronecker product ``a ⊗ b``."""

    left: Expr
    right: Expr
    _children: ClassVar = ("left", "right")
    precedence: ClassVar[int] = 20

    def _compute_shape(self) -> Shape:
        (m, n), (p, q) = self.left.shape, self.right.shape
        return (mul_dims(m, p), mul_dims(n, q))


@_node
class Sylvester(Expr):
    """The solution W of the Sylvester equation ``A W + W B = C`` (A m×m, B n×n, C m×n),
    written ``sylvester(A, B, C)``; unique when no eigenvalue of A is minus one of B's."""

    a: Expr
    b: Expr
    c: Expr
    _children: ClassVar = ("a", "b", "c")

    def _compute_shape(self) -> Shape:
        return self.c.shape


@_node
class Transpose(Expr):
    """Transpose ``a^T``."""

    arg: Expr
    _children: ClassVar = ("arg",)
    precedence: ClassVar[int] = 30

    def _compute_shape(self) -> Shape:
        rows, cols = self.arg.shape
        return (cols, rows)


@_node
class Pow(Expr):
    """Power of a scalar, or integer power (``-1``: inverse) of a square matrix."""

    base: Expr
    exponent: Expr
    _children: ClassVar = ("base", "exponent")
    precedence: ClassVar[int] = 30

    def _compute_shape(self) -> Shape:
        return self.base.shape


@_node
class ElemPow(Expr):
    """Elementwise power ``a.^p``."""

    base: Expr
    exponent: Expr
    _children: ClassVar = ("base", "exponent")
    precedence: ClassVar[int] = 30

    def _compute_shape(self) -> Shape:
        return self.base.shape


@_node
class Norm(Expr):
    """A norm: ``p`` is ``"2"``, ``"1"``, ``"F"`` or ``None`` (written without subscript)."""

    arg: Expr
    p: str | None = None
    _children: ClassVar = ("arg",)

    def _compute_shape(self) -> Shape:
        return SCALAR


@_node
class Call(Expr):
    """A named function applied to arguments (``tr``, ``exp``, ``softmax``, ...)."""

    name: str
    args: tuple[Expr, ...]
    _children: ClassVar = ("args",)

    def _compute_shape(self) -> Shape:
        from .functions import FUNCTIONS

        return FUNCTIONS[self.name].shape(*(a.shape for a in self.args))


# ---------------------------------------------------------------------------- helpers


def distinct_preorder(root: Expr) -> list[Expr]:
    """Distinct sub-expressions in the order a reader meets them (parents first), iteratively."""
    out: list[Expr] = []
    seen: set[Expr] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def topological_order(root: Expr) -> list[Expr]:
    """Distinct sub-expressions, every parent before all of its children, iteratively."""
    order: list[Expr] = []
    seen: set[Expr] = set()
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((c, False) for c in node.children)
    order.reverse()
    return order


def leaf_dims(node: Expr) -> tuple[Dim, ...]:
    """The dimensions a leaf is declared with (the names of K_{m,n}'s sizes); () for operators."""
    if isinstance(node, (Symbol, Zero)):
        return tuple(node.dims)
    if isinstance(node, (Identity, Ones)):
        return (node.n,)
    if isinstance(node, Commutation):
        return tuple(p for d in (node.m, node.n) for p in dim_factors(d))
    return ()


def postorder(root: Expr) -> list[Expr]:
    """Each distinct node once, children before parents (iterative: safe on deep DAGs).

    Memoised recursive functions stay within a small recursion depth when they are
    called on these nodes in this order first: every child is then a memo hit.
    """
    order, links = postorder_by(root, _own_children)
    # work of the derivation running (matcalc.budget), charged at once: a traversal of a
    # large DAG ends a spent budget here, not after further work
    charge(root, len(order) + links // 16)
    return order


def _own_children(node: Expr) -> tuple[Expr, ...]:
    return node.children


def postorder_by(root: Expr, parts: Callable[[Expr], tuple[Expr, ...]]
                 ) -> tuple[list[Expr], int]:
    """Each distinct node reached through ``parts`` once, parts before the node, and the
    number of links followed (iterative, uncharged: ``postorder`` is the budgeted walk)."""
    order: list[Expr] = []
    seen: set[int] = set()
    links = 0
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        children = parts(node)
        stack.extend((c, False) for c in reversed(children))
        links += len(children)
    return order, links


def map_bottom_up(root: Expr, fn: Callable[[Expr, Expr], Expr]) -> Expr:
    """``fn(node, rebuilt)`` for every distinct node, children first, where ``rebuilt`` is
    the node with its children already mapped; memoised over the DAG and iterative."""
    done: dict[int, Expr] = {}
    for node in postorder(root):
        children = node.children
        if children:
            new = tuple(done[id(c)] for c in children)
            rebuilt = node if all(a is b for a, b in zip(new, children, strict=True)) else (
                node.rebuild(new))
        else:
            rebuilt = node
        done[id(node)] = fn(node, rebuilt)
    return done[id(root)]


Value = TypeVar("Value")

# A fold's shared cache is emptied past this many entries, so memory stays bounded.
_FOLD_CACHE_LIMIT = 1 << 17

_MEMO_TABLES: list[dict] = []
_MEMO_KEPT = 200
"""Entries a process-wide memo table keeps from one derivation to the next (trim_memo_tables):
a typical derivation fills at most 82 per table (the 119 cases of benchmarks/run.py), one on
10 kB of input tens of thousands; a deep network's 1 000 to 2 000 entries are keys whose
sub-expressions are the whole network, tens of thousands of live objects."""


def memo_table() -> dict:
    """A process-wide memo table of a pure function of nodes (``fold_dag``'s cache, an order
    key), trimmed between derivations by ``trim_memo_tables``."""
    table: dict = {}
    _MEMO_TABLES.append(table)
    return table


def trim_memo_tables() -> None:
    """Empty the memo tables that a large derivation left holding more than _MEMO_KEPT
    entries, before the next derivation starts. Their keys keep that derivation's nodes alive:
    hundreds of thousands of objects that every full pass of Python's garbage collector then
    walks (up to a third of the CPU time of the next large derivation); and what earlier
    derivations left cannot bring a table to its own limit in the middle of a later one,
    where it would be emptied and its work counted again (matcalc.budget)."""
    for table in _MEMO_TABLES:
        if len(table) > _MEMO_KEPT:
            table.clear()


def fold_dag(root: Expr, combine: Callable[[Expr, list[Value]], Value],
             cache: dict[Expr, Value]) -> Value:
    """``combine(node, values of its children)`` for every distinct node of ``root``,
    children first: iterative, memoised over the DAG in ``cache`` (kept across calls)."""
    hit = cache.get(root)  # (first: most calls are hits, and need no frame of their own)
    if hit is not None:
        return hit
    found: dict[Expr, Value] = {}  # this call's results (another thread may clear the cache)
    found_get, cache_get = found.get, cache.get
    budget = running_budget()
    stack = [root]
    while stack:
        node = stack[-1]
        if found_get(node) is not None:
            stack.pop()
            continue
        hit = cache_get(node)
        if hit is not None:  # kept here: another thread may clear the cache (or fill it
            found[node] = hit  # with the root itself) before this call returns
            stack.pop()
            continue
        values, missing = [], False
        for c in node.children:
            value = found_get(c)
            if value is None:
                value = cache_get(c)
                missing = missing or value is None
            values.append(value)
        # work of the derivation running (matcalc.budget): a spent budget ends the fold
        # here (a fold over a runaway's large result ran on for tens of thousands of nodes)
        if budget is not None:
            budget.used += 1 + len(values) // 16
            if budget.used > budget.limit:
                raise spent(budget, root)
        if missing:
            stack.extend(c for c, v in zip(node.children, values, strict=True) if v is None)
            continue
        stack.pop()
        found[node] = combine(node, values)  # type: ignore[arg-type]
    if len(cache) > _FOLD_CACHE_LIMIT:
        cache.clear()
    cache.update(found)
    return found[root]


def depth(expr: Expr) -> int:
    """Height of the expression tree, computed iteratively."""
    best = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in node.children)
    return best


def substitute_dims(e: Expr, fn: Callable[[Dim], Dim]) -> Expr:
    """The same expression with each dimension name (each factor of a product) renamed
    (each distinct node once, iteratively: deep expressions need no deep recursion)."""

    def dim(d: Dim) -> Dim:
        return map_dim(d, fn)

    def rename(node: Expr, rebuilt: Expr) -> Expr:
        if isinstance(node, Symbol):
            return Symbol(node.name, (dim(node.dims[0]), dim(node.dims[1])), node.props)
        if isinstance(node, Zero):
            return Zero((dim(node.dims[0]), dim(node.dims[1])))
        if isinstance(node, (Identity, Ones)):
            return type(node)(dim(node.n))
        if isinstance(node, Commutation):
            return Commutation(dim(node.m), dim(node.n))
        if isinstance(node, Differential):
            return Differential(substitute_dims(node.var, fn))  # type: ignore[arg-type]
        return rebuilt

    return map_bottom_up(e, rename)


ZERO = Number(Fraction(0))
ONE = Number(Fraction(1))
