"""The peers in the benchmark: SymPy's MatrixSymbol ``diff`` and tensorgrad, fed matcalc formulas.

Each peer converts a parsed matcalc expression into its own representation (not timed),
differentiates it (timed), and evaluates its result at a numeric point (for the
correctness count). A formula a peer cannot express raises ``Unsupported``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from matcalc import expr as mc
from matcalc.expr import SCALAR


class Unsupported(Exception):
    """The peer cannot express this formula or derivative."""


def _natural_shape(value: np.ndarray) -> np.ndarray:
    return np.asarray(value, dtype=float)


# ---------------------------------------------------------------------------- SymPy


class SympyPeer:
    """SymPy matrix expressions (``MatrixSymbol``) and ``diff``."""

    name = "SymPy"

    def __init__(self) -> None:
        import sympy

        self.sympy = sympy
        self.version = sympy.__version__
        # cold timing empties SymPy's expression cache (as a fresh session has it)
        self.clear_caches = sympy.core.cache.clear_cache

    def convert(self, f: mc.Expr, wrt: mc.Symbol) -> tuple[Any, Any]:
        """The SymPy function and the SymPy variable."""
        from matcalc.errors import MatcalcError
        from matcalc.interop import to_sympy_matrix_expr

        try:
            s = to_sympy_matrix_expr(f)
        except MatcalcError as err:
            raise Unsupported(str(err).splitlines()[0]) from None
        for atom in s.free_symbols:
            if getattr(atom, "name", None) == wrt.name:
                return s, atom
        raise Unsupported(f"{wrt.name} does not occur")

    def derive(self, mode: str, s: Any, x: Any) -> Any:
        """The derivative: ``diff`` once (grad, jacobian) or twice (hessian)."""
        result = s.diff(x)
        if mode == "hessian":
            result = result.diff(x)
        return result

    def evaluate(self, result: Any, sizes: dict, point: dict) -> np.ndarray:
        """The result as an array at ``point`` (dimension symbols replaced by ``sizes``)."""
        sp = self.sympy
        candidates = set(result.free_symbols)
        for m in result.atoms(sp.MatrixSymbol):
            candidates |= {d for d in m.shape if isinstance(d, sp.Symbol)}
        dims = {a: sizes[a.name] for a in candidates
                if isinstance(a, sp.Symbol) and a.name in sizes and a.name not in point}
        concrete = result.xreplace(dims) if dims else result
        subs = {}
        for a in concrete.free_symbols:
            name = getattr(a, "name", None)
            if name not in point:
                continue
            value = np.asarray(point[name], dtype=float)
            if isinstance(a, sp.MatrixSymbol):
                subs[a] = sp.ImmutableMatrix(value.reshape(a.shape))
            else:
                subs[a] = sp.Float(float(value))
        value = concrete.xreplace(subs).doit()
        if hasattr(value, "as_explicit") and not isinstance(value, sp.MatrixBase):
            value = value.as_explicit()
        if hasattr(value, "tolist"):
            return np.array(sp.N(sp.Matrix(value)).tolist(), dtype=float)
        return np.array(float(sp.N(value)))

    def size(self, result: Any) -> int:
        """Printed size of the result."""
        return len(str(result))


# ---------------------------------------------------------------------------- tensorgrad


class TensorgradPeer:
    """tensorgrad: tensor networks with symbolic ``grad`` and ``full_simplify``."""

    name = "tensorgrad"

    clear_caches = None  # timed warm only: its caches are internal

    def __init__(self) -> None:
        import sympy
        import tensorgrad
        import tensorgrad.functions as F
        import torch

        self.tg, self.F, self.torch, self.sympy = tensorgrad, F, torch, sympy
        try:
            from importlib.metadata import version

            self.version = version("tensorgrad")
        except Exception:  # pragma: no cover - metadata missing
            self.version = "?"
        try:
            torch.zeros(1, names=("a",))
            self.can_evaluate = True
            self.why_not = ""
        except TypeError:
            self.can_evaluate = False
            self.why_not = (f"torch {torch.__version__} has no named tensors, which "
                            "tensorgrad's evaluation needs (derivation times are still real)")

    # -- conversion ----------------------------------------------------------
    def convert(self, f: mc.Expr, wrt: mc.Symbol) -> tuple[Any, Any]:
        """The tensorgrad function and variable; edges ``i`` (rows) and ``j`` (columns)."""
        self.vars: dict[str, Any] = {}
        self.dims: dict[str, Any] = {}
        self.count = 0
        t = self._conv(f)
        var = self.vars.get(wrt.name) or self._variable(wrt)
        return t, var

    def _size(self, d: Any) -> Any:
        if not isinstance(d, str):  # a number or a product of dimensions
            raise Unsupported(f"dimension {d}")
        if d not in self.dims:
            self.dims[d] = self.sympy.Symbol(d)
        return self.dims[d]

    def _edges(self, shape: tuple) -> dict[str, Any]:
        rows, cols = shape
        edges = {}
        if rows != 1:
            edges["i"] = self._size(rows)
        if cols != 1:
            edges["j"] = self._size(cols)
        return edges

    def _variable(self, s: mc.Symbol) -> Any:
        if s.name not in self.vars:
            edges = self._edges(s.dims)
            kwargs = {}
            if "symmetric" in s.props and len(edges) == 2:
                kwargs["_symmetries"] = "i j"
            self.vars[s.name] = self.tg.Variable(s.name, **edges, **kwargs)
        return self.vars[s.name]

    def _ones(self, shape: tuple) -> Any:
        return self.tg.Ones(**self._edges(shape))

    def _const(self, value: float, shape: tuple) -> Any:
        return float(value) * self._ones(shape)

    def _conv(self, e: mc.Expr) -> Any:
        F = self.F
        if isinstance(e, mc.Symbol):
            return self._variable(e)
        if isinstance(e, mc.Number):
            return self._const(float(e.value), SCALAR)
        if isinstance(e, mc.Ones):
            return self._ones(e.shape)
        if isinstance(e, mc.Identity):
            n = self._size(e.n)
            return self.tg.Delta(n, "i", "j")
        if isinstance(e, mc.Zero):
            return self.tg.Zero(**self._edges(e.shape))
        if isinstance(e, mc.Neg):
            return -self._conv(e.arg)
        if isinstance(e, mc.Add):
            return self._add([self._conv(t) for t in e.terms], [t.shape for t in e.terms],
                             e.shape)
        if isinstance(e, mc.Transpose):
            t = self._conv(e.arg)
            return t.rename(i="j", j="i") if t.edges else t
        if isinstance(e, mc.Mul):
            return self._mul(e.factors)
        if isinstance(e, mc.Hadamard):
            out = self._conv(e.factors[0])
            for f in e.factors[1:]:
                out = out * self._conv(f)
            return out
        if isinstance(e, mc.ElemDiv | mc.Div):
            return self._conv(e.num) * F.pow(self._conv(e.den), -1)
        if isinstance(e, mc.ElemPow):
            return F.pow(self._conv(e.base), self._exponent(e.exponent))
        if isinstance(e, mc.Pow):
            k = self._exponent(e.exponent)
            if isinstance(e.base, mc.Norm) and k == 2 and e.base.p in (None, "2", "F"):
                return F.frobenius2(self._conv(e.base.arg))
            base = self._conv(e.base)
            if e.base.shape == SCALAR:
                return F.pow(base, k)
            if k == -1:
                return F.inverse(base)
            if isinstance(k, int) and k > 0:
                return self._mul((e.base,) * k)
            raise Unsupported("matrix power")
        if isinstance(e, mc.Norm):
            t = self._conv(e.arg)
            if e.p in (None, "2", "F") and (e.arg.kind != "matrix" or e.p != "2"):
                return F.sqrt(F.frobenius2(t))
            if e.p == "1":
                return F.sum(F.abs(t))
            raise Unsupported(f"norm {e.p}")
        if isinstance(e, mc.Call):
            return self._call(e)
        if isinstance(e, mc.Kron):
            raise Unsupported("Kronecker product as a matrix")
        raise Unsupported(type(e).__name__)

    def _exponent(self, e: mc.Expr) -> Any:
        if not isinstance(e, mc.Number):
            raise Unsupported("symbolic exponent")
        v = e.value
        return int(v) if v.denominator == 1 else v

    def _add(self, terms: list, shapes: list, shape: tuple) -> Any:
        out = None
        for t, s in zip(terms, shapes, strict=True):
            if s == SCALAR and shape != SCALAR:
                t = t @ self._ones(shape)
            out = t if out is None else out + t
        return out

    def _mul(self, factors: tuple) -> Any:
        out, out_shape = None, SCALAR
        for f in factors:
            t = self._conv(f)
            if out is None:
                out, out_shape = t, f.shape
                continue
            if f.shape == SCALAR or out_shape == SCALAR:
                out = out @ t
            else:
                self.count += 1
                k = f"k{self.count}"
                left = out.rename(j=k) if "j" in out.edges else out
                right = t.rename(i=k) if "i" in t.edges else t
                out = left @ right
            out_shape = mc.product_shape([out_shape, f.shape])
        return out

    def _call(self, e: mc.Call) -> Any:
        F = self.F
        arg = e.args[0]
        t = self._conv(arg)
        simple = {"exp": F.exp, "log": F.log, "tanh": F.tanh, "sigma": F.sigmoid,
                  "relu": F.relu, "abs": F.abs, "sign": F.sign, "sqrt": F.sqrt}
        if e.name in simple:
            return simple[e.name](t)
        if e.name == "tr":
            return F.trace(t)
        if e.name == "sum":
            return F.sum(t)
        if e.name == "det":
            return F.det(t)
        if e.name == "logdet":
            return F.log(F.det(t))
        if e.name == "softmax":
            return F.softmax(t, dim="i")
        if e.name == "logsumexp":
            return F.log(F.sum(F.exp(t)))
        if e.name == "diag" and arg.kind == "vector":
            return t @ self.tg.Delta(self._size(arg.shape[0]), "i", "j")
        raise Unsupported(e.name)

    # -- derivation and evaluation ------------------------------------------------
    def derive(self, mode: str, t: Any, var: Any) -> Any:
        """grad (jacobian: new edges for the variable), then ``full_simplify``."""
        if mode == "grad":
            return t.grad(var).full_simplify()
        renamed = {e: e + "_" for e in var.edges}
        result = t.grad(var, new_names=renamed)
        if mode == "hessian":
            result = result.grad(var).full_simplify()
            return result
        return result.full_simplify()

    def evaluate(self, result: Any, sizes: dict, point: dict, mode: str,
                 out_shape: tuple) -> np.ndarray:
        """The result at ``point`` through tensorgrad's compiler (named torch tensors)."""
        if not self.can_evaluate:
            raise Unsupported(self.why_not)
        from tensorgrad.compiler.runtime import compile_to_callable

        torch = self.torch
        values = {}
        for name, var in self.vars.items():
            value = np.asarray(point[name], dtype=float)
            order = [e for e in ("i", "j") if e in var.edges]
            arr = value.reshape([sizes[str(var.shape[e])] for e in order])
            values[var] = torch.tensor(arr, dtype=torch.float64, names=tuple(order))
        shapes = {sym: sizes[name] for name, sym in self.dims.items()}
        out = compile_to_callable(result)(values, shapes)
        if isinstance(out, tuple):
            out = out[0]
        edges = list(out.names) if out.names else []
        want = [e for e in ("i", "j", "i_", "j_") if e in edges]
        arr = out.align_to(*want).rename(None).detach().numpy() if want else out.detach().numpy()
        if mode == "grad":
            return arr
        rows = [e for e in want if not e.endswith("_")]
        cols = [e for e in want if e.endswith("_")]
        nrows = int(np.prod([arr.shape[want.index(e)] for e in rows])) if rows else 1
        # d y / d x^T with column-major vec on both sides
        a = arr.transpose([want.index(e) for e in rows[::-1] + cols[::-1]])
        return a.reshape(nrows, -1)

    def size(self, result: Any) -> int:
        """Printed size of the result."""
        return len(repr(result))
