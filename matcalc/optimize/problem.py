"""The numeric side of a minimization: data bound to a model, one flat vector of unknowns.

``bind`` checks the data against every formula of the model (each name bound, finite
values, shapes that agree on every dimension), fixes the sizes of the variables, and
compiles the model's formulas with matcalc's NumPy code generator. The resulting
``Problem`` evaluates the objective, its gradient, Hessian-vector products and the
constraints at a flat vector ``x`` that stacks the variables (column-major, like vec).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any

import numpy as np

from ..dims import dim_size
from ..errors import DataError, MatcalcError, ShapeError, UnsupportedError
from ..expr import Expr, Symbol, kind_of
from ..names import normalize
from ..printing.codegen import compile_source, python_name
from .model import Model

_AXES = {"vector": ("entries", "columns"), "row vector": ("rows", "entries"),
         "matrix": ("rows", "columns"), "scalar": ("rows", "columns")}


def compiled(exprs: Expr | tuple[Expr, ...], extra: tuple[Symbol, ...] = ()) -> Compiled:
    """The compiled formulas (cached: generated code depends on the formulas only, the
    sizes being read off the arrays at run time)."""
    return _compiled(exprs, extra)


class Compiled:
    """Formulas compiled to NumPy, called with values looked up by variable name.

    Given several formulas (a value and its gradients), one function computes them all
    and returns a tuple, sharing their common sub-expressions when the code generator
    supports several outputs.
    """

    def __init__(self, exprs: Expr | tuple[Expr, ...], extra: tuple[Symbol, ...] = ()) -> None:
        roots = (exprs,) if isinstance(exprs, Expr) else tuple(exprs)
        params: dict[str, Symbol] = {}
        for root in roots:
            for s in root.free_symbols():
                params.setdefault(s.name, s)
        for s in extra:
            params.setdefault(s.name, s)
        self.params = sorted(params.values(), key=lambda s: s.name)
        self.keys = [(p.name, python_name(p.name)) for p in self.params]
        self.fn = _compile(roots, tuple(self.params), not isinstance(exprs, Expr))

    def __call__(self, values: Mapping[str, Any]) -> Any:
        return self.fn(**{py: values[name] for name, py in self.keys})


@lru_cache(maxsize=1024)
def symbols_of(expr: Expr) -> tuple[Symbol, ...]:
    """The free symbols of ``expr``, sorted by name (cached: binding data looks them up on
    every call)."""
    return tuple(sorted(expr.free_symbols(), key=lambda s: s.name))


@lru_cache(maxsize=256)
def _number(expr: Expr) -> Any:
    """The value of a formula without names (a bound such as ``w >= 0``)."""
    return compiled(expr)({})


@lru_cache(maxsize=512)
def _compiled(exprs: Expr | tuple[Expr, ...], extra: tuple[Symbol, ...]) -> Compiled:
    return Compiled(exprs, extra)


def _compile(roots: tuple[Expr, ...], params: tuple[Symbol, ...], many: bool
             ) -> Callable[..., Any]:
    """One function for ``roots``: a tuple of results when ``many``."""
    if not many:
        return compile_source(roots[0], params, "numpy", "f")
    try:
        return compile_source(list(roots), params, "numpy", "f")
    except (TypeError, AttributeError):  # a generator with one output per function
        parts = [compile_source(r, params, "numpy", "f") for r in roots]
        return lambda **values: tuple(fn(**values) for fn in parts)


def _concrete_shape(name: str, symbol: Symbol, value: np.ndarray) -> tuple[int, int]:
    kind = kind_of(symbol.dims)
    if kind == "scalar":
        if value.size != 1:
            raise ShapeError(f"{name} is a scalar in the formula but its data has shape "
                             f"{value.shape}", hint="bind a single number")
        return (1, 1)
    if kind in ("vector", "row vector"):
        if value.ndim == 1 or (value.ndim == 2 and 1 in value.shape):
            n = value.size
            return (n, 1) if kind == "vector" else (1, n)
        raise ShapeError(f"{name} is a {kind} in the formula but its data has shape "
                         f"{value.shape}", hint="bind a 1-D array")
    if value.ndim != 2:
        raise ShapeError(f"{name} is a matrix in the formula but its data has shape "
                         f"{value.shape}", hint="bind a 2-D array")
    return value.shape


def _numeric(name: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"the data for {name} is not an array of numbers",
                        hint="bind NumPy arrays or numbers") from None
    if not np.isfinite(array).all():
        bad = ~np.isfinite(array)
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"the data for {name} has a non-finite entry "
                        f"({array[index] if index else array.item()} at index {index})",
                        hint="remove or impute NaN and inf before minimizing")
    return array


def _check_structure(symbol: Symbol, array: np.ndarray, what: str) -> None:
    """Symmetric and diagonal declarations hold for the array (iterates keep them: the
    gradient of a structured variable is structured)."""
    if "symmetric" in symbol.props and not np.allclose(array, array.T):
        raise DataError(f"{symbol.name} is declared symmetric but {what} {symbol.name} is not",
                        hint="symmetrize it, e.g. (A + A.T) / 2")
    if "diagonal" in symbol.props and np.any(array - np.diag(np.diag(array))):
        raise DataError(f"{symbol.name} is declared diagonal but {what} {symbol.name} is not",
                        hint="keep only its diagonal")


def _variable(chunk: np.ndarray, shape: tuple[int, int]) -> Any:
    """A variable's slice of the flat vector as the generated code takes it."""
    if shape == (1, 1):
        return float(chunk[0])
    return chunk if 1 in shape else chunk.reshape(shape, order="F")


def _as_value(array: np.ndarray, shape: tuple[int, int]) -> Any:
    """The value as the generated code takes it: float, 1-D vector or 2-D matrix."""
    if shape == (1, 1):
        return float(array.reshape(-1)[0])
    if 1 in shape:
        return array.reshape(-1)
    return array.reshape(shape)


def unify(symbols: list[Symbol], shapes: Mapping[str, tuple[int, int]],
          formula: str | Expr, env: dict | None = None) -> dict:
    """Sizes of the dimensions of ``symbols`` given the concrete shapes; a ShapeError on a
    mismatch names both sides."""
    env = {} if env is None else env
    origin: dict = {}
    for s in sorted(symbols, key=lambda s: s.name):
        if s.name not in shapes:
            continue
        kind = kind_of(s.dims)
        for axis, (d, k) in enumerate(zip(s.dims, shapes[s.name], strict=True)):
            what = f"{s.name} has {k} {_AXES[kind][axis]}"
            if not isinstance(d, str):  # a number or a product: implied by the others
                expected = dim_size(d, env)
                if expected is not None and expected != k:
                    raise ShapeError(f"the data do not fit `{formula}`: {what}, the formula "
                                     f"needs {expected}")
                continue
            if d in env and env[d] != k:
                raise ShapeError(
                    f"the data do not fit `{formula}`: {what} but "
                    f"{origin.get(d, 'another name')} (both are the dimension {d})",
                    hint="check the shapes of the arrays bound in data")
            env[d] = k
            origin.setdefault(d, what.replace(" has ", " has "))
    return env


@dataclass
class ConstraintFunction:
    """A general constraint at the numbers: ``fun(x) >= 0`` or ``= 0``, ``jac(x)`` dense."""

    kind: str
    fun: Callable[[np.ndarray], np.ndarray]
    jac: Callable[[np.ndarray], np.ndarray]
    linear: bool
    text: str
    size: int


class Problem:
    """A model bound to data: evaluates everything at one flat vector ``x``."""

    def __init__(self, model: Model, data: Mapping[str, Any],
                 x0: Mapping[str, Any] | None = None) -> None:
        self.model = model
        names = {v.name for v in model.variables} | {v.name for v in model.user_variables}
        values: dict[str, Any] = {}
        shapes: dict[str, tuple[int, int]] = {}
        if not isinstance(data, Mapping):
            raise DataError(f"data must map names to arrays, got {type(data).__name__}")
        raw = {normalize(str(k)): v for k, v in data.items()}
        objective = model.objective
        symbols = {s.name: s for s in symbols_of(objective)}
        needed = sorted(n for n in symbols if n not in names)
        missing = [n for n in needed if n not in raw]
        if missing:
            raise DataError(
                f"no data for {', '.join(missing)} in `{objective}`",
                hint="data must bind every name except the variables being minimized: "
                     + ", ".join(needed))
        for n in needed:
            array = _numeric(n, raw[n])
            shapes[n] = _concrete_shape(n, symbols[n], array)
            _check_structure(symbols[n], array, "the data of")
            values[n] = _as_value(array, shapes[n])
        starts = {normalize(str(k)): v for k, v in (x0 or {}).items()}
        for v in model.user_variables:
            if v.name in starts:
                array = _numeric(v.name, starts[v.name])
                shapes[v.name] = _concrete_shape(v.name, v, array)
                _check_structure(v, array, "the starting point of")
        env = unify(list(symbols.values()), shapes, objective)
        self.shapes: dict[str, tuple[int, int]] = {}
        for v in model.user_variables:
            shape = tuple(dim_size(d, env) for d in v.dims)
            if None in shape:
                raise DataError(
                    f"the size of {v.name} is not fixed by the data",
                    hint=f"give a starting point x0 for {v.name} or declare its size "
                         f"(e.g. {v.name}: vector(5))")
            self.shapes[v.name] = shape
        for t in model.l1_terms:
            for s in (t.plus, t.minus):
                self.shapes[s.name] = self.shapes[t.variable.name]
        for t in model.epigraph_terms:
            self.shapes[t.bound.name] = tuple(dim_size(d, env, default=1) for d in t.bound.dims)
        self.data = values
        self.data_shapes = shapes
        self.dimension_sizes = env
        self._raw = raw
        self.variables = model.variables
        self.sizes = [math.prod(self.shapes[v.name]) for v in self.variables]
        self.offsets = list(accumulate(self.sizes, initial=0))
        self.n = self.offsets[-1]
        self._layout = [(v.name, slice(lo, hi), self.shapes[v.name])
                        for v, lo, hi in zip(self.variables, self.offsets[:-1],
                                             self.offsets[1:], strict=True)]

        self._objective = compiled(model.smooth_simplified, tuple(self.variables))
        self._original = compiled(model.objective)
        self._value_and_gradients = compiled(
            (model.smooth_simplified, *(model.gradients[v.name] for v in self.variables)),
            tuple(self.variables))
        # the keyword arguments of the value-and-gradients function: the data bound once
        python = dict(self._value_and_gradients.keys)
        self._data_arguments = {python[n]: v for n, v in values.items() if n in python}
        self._variable_arguments = [(python[name], part, shape)
                                    for name, part, shape in self._layout]
        self._hvp: tuple[Compiled, list[str]] | None = None
        self._recent: list[tuple[bytes, float, np.ndarray]] = []
        self.evaluations = 0
        self._dense: tuple[Compiled, list[tuple[str, str]], bool] | None = None
        self._constant_hessian: np.ndarray | None = None
        self._check_coefficients()
        self.lower, self.upper = self._bounds()
        self.constraints = [self._constraint(c) for c in model.general]
        self._positive_definite = None
        if model.positive_definite:  # its data bound once, as for the objective
            fn = compiled(tuple(model.positive_definite), tuple(self.variables))
            python = dict(fn.keys)
            self._positive_definite = (fn.fn, {python[n]: v for n, v in self.data.items()
                                               if n in python},
                                       [(python[name], part, shape)
                                        for name, part, shape in self._layout])
        self.x0 = self._start(starts)

    # -- packing -------------------------------------------------------------------
    def unpack(self, x: np.ndarray) -> dict[str, Any]:
        """The variables of the flat vector ``x``, as the generated code takes them."""
        return {name: _variable(x[part], shape) for name, part, shape in self._layout}

    def pack(self, parts: Mapping[str, Any]) -> np.ndarray:
        """The flat vector of the variable values in ``parts`` (column-major)."""
        chunks = []
        for v in self.variables:
            shape = self.shapes[v.name]
            chunks.append(np.broadcast_to(np.asarray(parts[v.name], dtype=float).reshape(
                shape if np.size(parts[v.name]) == shape[0] * shape[1] else (1, 1)), shape
            ).reshape(-1, order="F"))
        return np.concatenate(chunks) if chunks else np.zeros(0)

    def values(self, x: np.ndarray) -> dict[str, Any]:
        return {**self.data, **self.unpack(x)}

    def solution(self, x: np.ndarray) -> dict[str, Any]:
        """The user's variables at ``x`` (``w = w_plus - w_minus`` for a split variable; a
        symmetric one as ``(S + S^T) / 2``: the iterates are symmetric up to the rounding
        of the solver's matrix products, which this removes)."""
        parts = self.unpack(x)
        out = {}
        for v in self.model.user_variables:
            term = next((t for t in self.model.l1_terms if t.variable.name == v.name), None)
            if term is None:
                out[v.name] = parts[v.name]
            else:
                out[v.name] = parts[term.plus.name] - parts[term.minus.name]
            if "symmetric" in v.props and np.ndim(out[v.name]) == 2:
                out[v.name] = (out[v.name] + out[v.name].T) / 2
        return out

    # -- evaluation ----------------------------------------------------------------
    def fun(self, x: np.ndarray) -> float:
        return float(self._objective(self.values(x)))

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.fun_and_grad(x)[1]

    def fun_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective and its gradient (flat), from one generated function; the last
        two points are remembered (solvers ask again for the start and the end)."""
        key = x.tobytes()
        for seen, value, gradient in self._recent:
            if seen == key:
                return value, gradient
        arguments = dict(self._data_arguments)
        for py, part, shape in self._variable_arguments:
            arguments[py] = _variable(x[part], shape)
        value, *gradients = self._value_and_gradients.fn(**arguments)
        result = (float(value), self._flat(gradients))
        self.evaluations += 1
        self._recent = [(key, *result)] + self._recent[:1]
        return result

    def inside(self, x: np.ndarray) -> bool:
        """Whether ``x`` lies in the domain minimize gives ``logdet(A)`` of a symmetric
        ``A``: every such argument positive definite (its Cholesky factorisation exists;
        ``model.positive_definite_arguments`` says why)."""
        if self._positive_definite is None:
            return True
        fn, arguments, variables = self._positive_definite
        arguments = dict(arguments)
        for py, part, shape in variables:
            arguments[py] = _variable(x[part], shape)
        for a in fn(**arguments):
            a = np.atleast_2d(a)
            if not np.isfinite(a).all():
                return False
            try:
                np.linalg.cholesky(a)
            except np.linalg.LinAlgError:
                return False
        return True

    def _flat(self, parts: list[Any]) -> np.ndarray:
        if len(parts) == 1 and np.ndim(parts[0]) == 1:  # one vector variable: as it is
            return np.asarray(parts[0], dtype=float)
        flat = np.empty(self.n)
        for (_, part, _), p in zip(self._layout, parts, strict=True):
            flat[part] = np.reshape(p, -1, order="F") if np.ndim(p) > 1 else p
        return flat

    def original_value(self, solution: Mapping[str, Any]) -> float:
        """The objective as written (with ``||w||_1``) at the user's variables."""
        return float(self._original({**self.data, **solution}))

    def hvp(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The Hessian of the objective at ``x`` applied to ``p`` (never formed)."""
        if self._hvp is None:
            directions, products = self.model.hessian_vector_products()
            names = [directions[v.name].name for v in self.variables]
            fn = compiled(tuple(products[v.name] for v in self.variables),
                          (*self.variables, *directions.values()))
            self._hvp = (fn, names)
        fn, names = self._hvp
        if not np.all(np.isfinite(p)):  # a Krylov solver that broke down: pass it on
            return np.full(self.n, np.nan)
        values = self.values(x)
        values.update(zip(names, self.unpack(p).values(), strict=True))
        return self._flat(list(fn(values)))

    def hvp_is_constant(self) -> bool:
        """Whether the derived Hessian-vector products are free of the variables: the
        Hessian is constant and the objective a quadratic."""
        names = {v.name for v in self.variables}
        products = self.model.hessian_vector_products()[1].values()
        return not any(s.name in names for e in products for s in symbols_of(e))

    def _dense_hessian(self) -> tuple[Compiled, list[tuple[str, str]], bool]:
        if self._dense is None:
            blocks = self.model.hessian_blocks()
            keys = list(blocks)
            names = {v.name for v in self.variables}
            constant = not any(s.name in names for k in keys for s in symbols_of(blocks[k]))
            fn = compiled(tuple(blocks[k] for k in keys), tuple(self.variables))
            self._dense = (fn, keys, constant)
        return self._dense

    def hessian_is_constant(self) -> bool:
        """Whether the Hessian does not depend on the variables (a quadratic objective)."""
        return self._dense_hessian()[2]

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """The dense n×n Hessian of the smooth objective at ``x``, assembled from matcalc's
        blocks (evaluated once when it does not depend on the variables)."""
        if self._constant_hessian is not None:
            return self._constant_hessian
        fn, keys, constant = self._dense_hessian()
        H = np.zeros((self.n, self.n))
        if keys:
            index = {v.name: i for i, v in enumerate(self.variables)}
            for (a, b), part in zip(keys, fn(self.values(x)), strict=True):
                i, j = index[a], index[b]
                shape = (self.sizes[i], self.sizes[j])
                part = np.asarray(part, dtype=float)
                block = (part.reshape(shape) if part.size == shape[0] * shape[1]
                         else np.broadcast_to(part, shape))
                rows = slice(self.offsets[i], self.offsets[i + 1])
                cols = slice(self.offsets[j], self.offsets[j + 1])
                H[rows, cols] = block
                if i != j:
                    H[cols, rows] = block.T
        if constant:
            self._constant_hessian = H
        return H

    def evaluation_costs(self) -> tuple[float, float]:
        """Estimated floating-point operations of one value-and-gradient evaluation and of
        one dense Hessian (``cost.flops`` at the sizes of the data)."""
        return self.model.evaluation_costs(self.dimension_sizes)

    def hvp_cost(self) -> float:
        """Estimated floating-point operations of one Hessian-vector product."""
        return self.model.hvp_cost(self.dimension_sizes)

    # -- constraints ----------------------------------------------------------------
    def _bind_more(self, symbols: list[Symbol], text: str) -> None:
        """Convert the data of names that only constraints use."""
        variables = {v.name for v in self.variables}
        missing = sorted(s.name for s in symbols
                         if s.name not in variables and s.name not in self._raw)
        if missing:
            raise DataError(f"no data for {', '.join(missing)} in `{text}`",
                            hint="bind every name of a constraint in data")
        for s in symbols:
            if s.name not in variables and s.name not in self.data:
                array = _numeric(s.name, self._raw[s.name])
                self.data_shapes[s.name] = _concrete_shape(s.name, s, array)
                self.data[s.name] = _as_value(array, self.data_shapes[s.name])

    def _evaluate_constant(self, expr: Expr, text: str) -> Any:
        symbols = list(symbols_of(expr))
        if not symbols:  # a number: the same for every data
            return _number(expr)
        self._bind_more(symbols, text)
        unify(symbols, self.data_shapes, text)
        return compiled(expr)(self.data)

    def _check_coefficients(self) -> None:
        for e in self.model.epigraph_terms:
            c = self._evaluate_constant(e.coefficient, e.text)
            if not np.ndim(c) == 0 or float(c) < 0:
                raise UnsupportedError(
                    f"the coefficient in `{e.text}` is {c}: a negative multiple of a convex "
                    "non-smooth function is concave and has no exact smooth rewrite",
                    hint="minimize rewrites c ||E||_1, c 1^T relu(E) and c max(E) for c >= 0")
        for t in self.model.l1_terms:
            c = self._evaluate_constant(t.coefficient, t.text)
            if not np.ndim(c) == 0 or float(c) < 0:
                raise UnsupportedError(
                    f"the coefficient of ||{t.variable.name}||_1 in `{t.text}` is {c}: a "
                    "negative multiple of a norm is concave and not differentiable at 0",
                    hint="minimize makes c ||w||_1 smooth exactly only for c >= 0")
            if t.weight is not None:
                d = np.asarray(self._evaluate_constant(t.weight, t.text))
                if np.any(d < 0):
                    raise UnsupportedError(
                        f"the weights {t.weight} in `{t.text}` have negative entries",
                        hint="the exact rewrite of sum(abs(D ⊙ W)) needs D >= 0")

    def _bounds(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        if not self.model.bounds:
            return None, None
        lower = np.full(self.n, -np.inf)
        upper = np.full(self.n, np.inf)
        index = {v.name: i for i, v in enumerate(self.variables)}
        for b in self.model.bounds:
            i = index[b.variable.name]
            shape = self.shapes[b.variable.name]
            value = np.asarray(self._evaluate_constant(b.constant, b.text), dtype=float)
            if value.size not in (1, shape[0] * shape[1]):
                raise ShapeError(f"the bound in `{b.text}` has {value.size} entries but "
                                 f"{b.variable.name} has {shape[0] * shape[1]}")
            flat = np.broadcast_to(value.reshape(-1, order="F") if value.ndim > 1
                                   else value.reshape(-1), (self.sizes[i],))
            lo, hi = self.offsets[i], self.offsets[i + 1]
            if b.which == "lower":
                lower[lo:hi] = np.maximum(lower[lo:hi], flat)
            else:
                upper[lo:hi] = np.minimum(upper[lo:hi], flat)
        if np.any(lower > upper):
            k = int(np.argmax(lower > upper))
            raise MatcalcError(f"the bounds are infeasible: entry {k} must lie in "
                               f"[{lower[k]}, {upper[k]}]", hint="check the lower and upper bounds")
        return lower, upper

    def _constraint(self, c) -> ConstraintFunction:
        symbols = list(symbols_of(c.expr))
        names = {v.name for v in self.variables}
        self._bind_more(symbols, c.text)
        shapes = {**self.data_shapes, **self.shapes}
        env = unify(symbols, shapes, c.text)
        size = int(np.prod([dim_size(d, env) or 1 for d in c.expr.shape]))
        variables = tuple(s for s in symbols if s.name in names)
        value = compiled(c.expr, variables)
        # every name of the constraint is a parameter: a Jacobian such as 1 (of t 1 - A x
        # with respect to t) reads its size off the data
        jacobians = [(self.variables.index(next(v for v in self.variables if v.name == n)),
                      compiled(j, tuple(symbols))) for n, j in c.jacobians.items()]

        def fun(x: np.ndarray) -> np.ndarray:
            out = value(self.values(x))
            return np.reshape(out, -1, order="F") if np.ndim(out) > 1 else np.atleast_1d(out)

        def jac(x: np.ndarray) -> np.ndarray:
            values = self.values(x)
            out = np.zeros((size, self.n))
            for i, fn in jacobians:
                out[:, self.offsets[i]:self.offsets[i + 1]] = np.reshape(
                    fn(values), (size, self.sizes[i]))
            return out

        if c.linear:
            zero = np.zeros(self.n)
            matrix, offset = jac(zero), fun(zero)
            return ConstraintFunction(c.kind, lambda x: matrix @ x + offset, lambda x: matrix,
                                      True, c.text, size)
        return ConstraintFunction(c.kind, fun, jac, False, c.text, size)

    def _start(self, starts: Mapping[str, Any]) -> np.ndarray:
        x = self._start_variables(starts)
        if self.model.epigraph_terms:  # each t where its constraints hold with equality
            values = self.values(x)
            for t in self.model.epigraph_terms:
                with np.errstate(all="ignore"):
                    e = np.asarray(compiled(t.inner)(values), dtype=float)
                level = (np.abs(e) if t.kind == "absolute" else np.maximum(e, 0.0)
                         if t.kind == "positive part" else np.max(e, initial=-np.inf))
                i = next(i for i, v in enumerate(self.variables) if v.name == t.bound.name)
                flat = np.reshape(level, -1, order="F")
                if np.all(np.isfinite(flat)):
                    x[self.offsets[i]:self.offsets[i + 1]] = flat
        return x

    def _start_variables(self, starts: Mapping[str, Any]) -> np.ndarray:
        if not starts:
            x = np.zeros(self.n)
            return x if self.lower is None else np.clip(x, self.lower, self.upper)
        parts = {}
        for v in self.variables:
            parts[v.name] = np.zeros(self.shapes[v.name])
        for t in self.model.l1_terms:
            if t.variable.name in starts:
                w = np.asarray(starts[t.variable.name], dtype=float)
                parts[t.plus.name] = np.maximum(w, 0)
                parts[t.minus.name] = np.maximum(-w, 0)
        for v in self.model.user_variables:
            if v.name in starts and v.name in parts:
                parts[v.name] = np.asarray(starts[v.name], dtype=float)
        x = self.pack(parts)
        if self.lower is not None:
            x = np.clip(x, self.lower, self.upper)
        return x


def bind(model: Model, data: Mapping[str, Any], x0: Mapping[str, Any] | None = None) -> Problem:
    """The model with its data: checked, sized and compiled."""
    try:
        return Problem(model, data, x0)
    except MatcalcError:
        raise
    except (np.linalg.LinAlgError, FloatingPointError, ValueError) as err:
        raise DataError(f"the data cannot be used: {err}") from None
