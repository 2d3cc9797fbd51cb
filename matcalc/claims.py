"""Checking a user's own answer: proof or smallest counterexample, and the common mistakes named.

A claim is compared with the derivative matcalc computes: equal in the normal form, or
(when the normal forms differ) checked entry by entry by SymPy against the function itself.
When it is wrong, a counterexample with the smallest sizes and small integer values is
searched for, and the claim is tested against general variants of the true derivative:
its transpose (a layout mistake for vectors), scalar multiples (a factor of 2, a sign), the
derivative with one term left out, and the derivative when one square matrix is symmetric.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .errors import DeclarationError, MatcalcError
from .expr import (
    Add,
    Call,
    Dim,
    Expr,
    Identity,
    Neg,
    Norm,
    Number,
    Ones,
    Symbol,
    Transpose,
    Zero,
    kind_of,
    substitute_dims,
)
from .numeric import evaluate, random_point, shape_value
from .printing.bindings import bind_common
from .simplify import is_zero, simplify

MODES = ("grad", "jacobian", "hessian", "derivative")
_RTOL, _ATOL = 1e-8, 1e-10


@dataclass(frozen=True)
class Diagnosis:
    """A named mistake the claim makes, and an explanation."""

    name: str
    message: str


@dataclass(frozen=True)
class Counterexample:
    """Sizes and values at which claim and derivative differ, and the first entry that does.

    ``entry`` is (row, column), counted from 1; ``values`` are exact small numbers.
    """

    sizes: dict[Dim, int]
    values: dict[str, Any]
    entry: tuple[int, int]
    claimed: float
    expected: float

    def __str__(self) -> str:
        sizes = ", ".join(f"{d} = {n}" for d, n in self.sizes.items()) or "all 1"
        values = "; ".join(f"{k} = {_show(v)}" for k, v in self.values.items())
        i, j = self.entry
        return (f"sizes {sizes}; values {values}: entry ({i}, {j}) of the claim is "
                f"{_num(self.claimed)}, of the derivative {_num(self.expected)}")


@dataclass
class ClaimReport:
    """Whether a claimed derivative is right; truthy iff it is. ``ok`` is the verdict (the
    same key as in the JSON of the command line and the web API)."""

    ok: bool
    method: str
    claim: Expr
    derivative: Any
    claim_text: str = ""
    counterexample: Counterexample | None = None
    diagnoses: list[Diagnosis] = field(default_factory=list)
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok

    @property
    def correct(self) -> bool:
        """The verdict under its former name (an alias of ``ok``, kept for compatibility)."""
        return self.ok

    @property
    def mode(self) -> str:
        """What was asked for: gradient, Jacobian, Hessian or derivative."""
        return _mode(self.derivative)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        c = self.counterexample
        return {
            "ok": self.ok,
            "method": self.method,
            "claim": self.claim_text or str(self.claim),
            "derivative": str(self.derivative),
            "detail": self.detail,
            "counterexample": None if c is None else {
                "sizes": {str(k): v for k, v in c.sizes.items()},
                "values": {k: np.asarray(v, dtype=float).tolist() for k, v in c.values.items()},
                "entry": list(c.entry), "claimed": c.claimed, "expected": c.expected},
            "diagnoses": [{"name": d.name, "message": d.message} for d in self.diagnoses],
        }

    def __str__(self) -> str:
        what = f"the {self.mode} of {self.derivative.function} with respect to " \
               f"{self.derivative.wrt}"
        claim = self.claim_text or str(self.claim)
        if self.ok:
            return f"correct: {claim} is {what} (proved by {self.method})"
        lines = [f"incorrect: {claim} is not {what}, which is {self.derivative}"]
        if self.detail:
            lines.append(f"  {self.detail}")
        if self.counterexample is not None:
            lines.append(f"  counterexample: {self.counterexample}")
        for d in self.diagnoses:
            lines.append(f"  mistake ({d.name}): {d.message}")
        return "\n".join(lines)


def _num(x: float) -> str:
    f = Fraction(x).limit_denominator(1000)
    return str(f) if abs(float(f) - x) < 1e-9 * (1 + abs(x)) else f"{x:.6g}"


def _show(v: Any) -> str:
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return _num(float(a))
    if a.ndim == 1:
        return "[" + ", ".join(_num(float(x)) for x in a) + "]"
    return "[" + "; ".join(", ".join(_num(float(x)) for x in row) for row in a) + "]"


# ---------------------------------------------------------------------------- the claim


def _declarations(function: Expr, wrt: Symbol, decls: dict[str, str]) -> dict[str, str]:
    """Every name of the function declared with its exact kind, shape and properties, so that
    the claim's names mean the same (user declarations win)."""
    from .shapes import declaration_of

    out: dict[str, str] = {}
    for s in function.free_symbols() | {wrt}:
        decl = declaration_of(s)
        if decl is not None:
            out[s.name] = str(decl)
    out.update(decls)
    return out


def parse_claim(claim: str | Expr, derivative: Any, decls: dict[str, str]) -> Expr:
    """The claim as an expression whose names share the function's dimensions."""
    from .parse import parse

    if not isinstance(claim, Expr):
        claim = parse(claim, **_declarations(derivative.function, derivative.wrt, decls))
    # sizes only the claim has (I, 1, 0 in it) are those of the derivative
    known = {d for s in derivative.function.free_symbols() | {derivative.wrt} for d in s.shape}
    if claim == Number(0) and derivative.expr.shape != (1, 1):
        return Zero(derivative.expr.shape)  # `0`, the zero of the derivative's shape
    free = {c: t for c, t in zip(claim.shape, derivative.expr.shape, strict=True)
            if c not in known and isinstance(c, str)}
    if free:
        claim = substitute_dims(claim, lambda d: free.get(d, d))
    # a claim of the derivative's own form takes its sizes inside too: the n of
    # `(1 / (1^T 1)) 1`, which the text cannot tie to the ones vector beside it
    inner = {c: t for c, t in sizes_by_form(simplify(claim), derivative.expr).items()
             if c not in known}
    return substitute_dims(claim, lambda d: inner.get(d, d)) if inner else claim


def sizes_by_form(claim: Expr, truth: Expr, limit: int = 20_000) -> dict[Dim, Dim]:
    """The sizes of the constants (``1``, ``I``, ``0``) of ``claim`` read off ``truth`` when
    the two have the same form, names and numbers; empty when they differ anywhere."""
    sizes: dict[Dim, Dim] = {}
    stack = [(claim, truth)]
    while stack:
        a, b = stack.pop()
        limit -= 1
        if limit < 0 or type(a) is not type(b) or len(a.children) != len(b.children):
            return {}
        if isinstance(a, (Ones, Identity)):
            pairs = [(a.n, b.n)]  # type: ignore[attr-defined]
        elif isinstance(a, Zero):
            pairs = list(zip(a.dims, b.dims, strict=True))  # type: ignore[attr-defined]
        elif a.children or a == b:
            pairs = []
        else:
            return {}  # different names, numbers or constants
        for c, t in pairs:
            if isinstance(c, str) and sizes.setdefault(c, t) != t:
                return {}
        if isinstance(a, (Call, Norm)) and (getattr(a, "name", None), getattr(a, "p", None)) != (
                getattr(b, "name", None), getattr(b, "p", None)):
            return {}
        stack.extend(zip(a.children, b.children, strict=True))
    return sizes


def _derive(f: str | Expr, wrt: str | Symbol, mode: str, layout: str, decls: dict[str, str]
            ) -> Any:
    from . import api

    if mode not in MODES:
        raise MatcalcError(f"unknown derivative {mode!r}", hint=", ".join(MODES))
    if mode == "jacobian":
        return api.jacobian(f, wrt, layout=layout, **decls)
    return getattr(api, mode)(f, wrt, **decls)


def check_claim(f: str | Expr, wrt: str | Symbol, claim: str | Expr, /, of: str = "grad",
                layout: str = "numerator", **decls: str) -> ClaimReport:
    """Whether ``claim`` is the derivative (``of``: grad, jacobian, hessian, derivative) of
    ``f`` with respect to ``wrt``; when not, a counterexample and the mistakes it makes."""
    derivative = _derive(f, wrt, of, layout, decls)
    claim_expr = parse_claim(claim, derivative, decls)
    text = claim.strip() if isinstance(claim, str) else str(claim)
    known = {s.name for s in derivative.function.free_symbols()} | {derivative.wrt.name}
    strangers = sorted(s.name for s in claim_expr.free_symbols() if s.name not in known)
    if strangers:
        raise DeclarationError(
            f"the claim uses {', '.join(strangers)}, which the function does not",
            hint="write the answer in the function's names (a where clause may name parts)")
    truth = derivative.expr
    if claim_expr.shape == truth.shape:
        if is_zero(simplify(Add((claim_expr, Neg(truth))))):
            return ClaimReport(True, "the normal form", claim_expr, derivative, text)
        report = derivative_check(derivative, claim_expr)
        if report:
            return ClaimReport(True, f"SymPy, {report.method} on small sizes", claim_expr,
                               derivative, text)
        detail = ""
    else:
        detail = (f"the claim has shape {_shape(claim_expr)}; the {_mode(derivative)} has "
                  f"shape {_shape(truth)}")
    problem = _Problem(derivative, claim_expr)
    return ClaimReport(False, "", claim_expr, derivative, text, problem.counterexample(),
                       problem.diagnoses(), detail)


def _shape(e: Expr) -> str:
    rows, cols = e.shape
    return f"{rows}×{cols}"


def derivative_check(derivative: Any, claim: Expr):
    """SymPy's entrywise check of ``claim`` against the function itself."""
    from .verify import check_derivative

    mode = "jacobian" if derivative.mode == "jacobian_denominator" else derivative.mode
    if derivative.mode == "jacobian_denominator":
        claim = simplify(Transpose(claim))
    if derivative.mode == "hessian" and kind_of(derivative.wrt.shape) == "matrix":
        return check_derivative(derivative.gradient, derivative.wrt, claim, "derivative")
    return check_derivative(derivative.function, derivative.wrt, claim, mode)


# ---------------------------------------------------------------------------- numbers


class _Problem:
    """The claim and the derivative evaluated at concrete points."""

    def __init__(self, derivative: Any, claim: Expr) -> None:
        self.derivative = derivative
        self.truth: Expr = derivative.expr
        self.claim = claim
        exprs = [derivative.function, self.truth, claim, derivative.wrt]
        self.symbols = sorted(set().union(*(e.free_symbols() for e in exprs)),
                              key=lambda s: s.name)
        self.dims = sorted({d for s in self.symbols for d in s.shape if isinstance(d, str)})

    def _values(self, e: Expr, point: dict[str, Any], sizes: dict[Dim, int]) -> np.ndarray:
        value = evaluate(e, point, sizes)
        return np.asarray(value, dtype=float).reshape(shape_value(e.shape, sizes))

    def counterexample(self) -> Counterexample | None:
        """The first point, by increasing sizes and with small integers, where they differ."""
        rng = random.Random(0)
        for size in (1, 2, 3, 4):
            sizes = {d: size for d in self.dims}
            for _ in range(6):
                point = _small_point(self.symbols, sizes, rng)
                try:
                    claimed = self._values(self.claim, point, sizes)
                    expected = self._values(self.truth, point, sizes)
                except (MatcalcError, ValueError, np.linalg.LinAlgError, FloatingPointError):
                    continue
                if not (np.all(np.isfinite(claimed)) and np.all(np.isfinite(expected))):
                    continue
                if claimed.shape != expected.shape:
                    return None
                bad = np.argwhere(~np.isclose(claimed, expected, rtol=_RTOL, atol=_ATOL))
                if len(bad):
                    i, j = (int(k) for k in bad[0])
                    return Counterexample(sizes, point, (i + 1, j + 1),
                                          float(claimed[i, j]), float(expected[i, j]))
        return None

    def _points(self, count: int = 3, symmetric: Symbol | None = None):
        from .verify import concrete_sizes

        sizes = concrete_sizes([self.derivative.function, self.truth, self.claim])
        rng = np.random.default_rng(1)
        for _ in range(count):
            point = random_point(self.symbols, sizes, rng, positive=True)
            if symmetric is not None:
                m = np.asarray(point[symmetric.name], dtype=float)
                point[symmetric.name] = 0.5 * (m + m.T)
            yield point, sizes

    def _agree(self, claim: Expr, variant: Expr, symmetric: Symbol | None = None) -> bool:
        """``claim`` equals ``variant`` at random points (both finite)."""
        try:
            for point, sizes in self._points(symmetric=symmetric):
                a = self._values(claim, point, sizes)
                b = self._values(variant, point, sizes)
                if a.shape != b.shape or not np.all(np.isfinite(b)):
                    return False
                if not np.allclose(a, b, rtol=_RTOL, atol=_ATOL):
                    return False
        except (MatcalcError, ValueError, np.linalg.LinAlgError):
            return False
        return True

    def _factor(self, claim: Expr, truth: Expr) -> Fraction | None:
        """c with claim = c truth at random points, when there is one (c != 1)."""
        ratios = []
        try:
            for point, sizes in self._points():
                a = self._values(claim, point, sizes)
                b = self._values(truth, point, sizes)
                if a.shape != b.shape:
                    return None
                k = int(np.argmax(np.abs(b)))
                if abs(b.flat[k]) < 1e-9:
                    return None
                c = a.flat[k] / b.flat[k]
                if not np.allclose(a, c * b, rtol=_RTOL, atol=_ATOL):
                    return None
                ratios.append(c)
        except (MatcalcError, ValueError, np.linalg.LinAlgError):
            return None
        c = Fraction(float(np.mean(ratios))).limit_denominator(64)
        if c == 1 or c == 0 or any(abs(float(c) - r) > 1e-6 * (1 + abs(r)) for r in ratios):
            return None
        return c

    def diagnoses(self) -> list[Diagnosis]:
        """The general mistakes the claim matches."""
        out: list[Diagnosis] = []
        d = self.derivative
        truth, claim = self.truth, self.claim
        transposed = simplify(Transpose(truth))
        if not truth.is_scalar and self._agree(claim, transposed):
            out.append(self._transpose_diagnosis())
        c = self._factor(claim, truth)
        if c is not None:
            out.append(_factor_diagnosis(c, d))
        elif not truth.is_scalar:
            c = self._factor(claim, transposed)
            if c is not None and c != 1:
                out.append(Diagnosis("transpose and factor", (
                    f"the claim is {c} times the transpose of the {_mode(d)}")))
        for m in self._square_matrices():
            if self._agree(claim, truth, symmetric=m):
                out.append(Diagnosis("symmetric only", (
                    f"the claim holds only when {m} is symmetric; for a general {m} the "
                    f"{_mode(d)} is {d} (declare {m}: symmetric if it is)")))
        for term in _terms(truth):
            rest = simplify(Add((truth, Neg(term))))
            if self._agree(claim, rest):
                out.append(Diagnosis("missing term", (
                    f"the term {_signed(term)} is missing: the {_mode(d)} is {d}")))
        return out

    def _transpose_diagnosis(self) -> Diagnosis:
        d = self.derivative
        wrt_kind = kind_of(d.wrt.shape)
        if d.mode == "grad" and wrt_kind == "vector":
            return Diagnosis("layout", (
                f"the claim is a row vector, the Jacobian of f (numerator layout); the gradient "
                f"asked for is the column {d}, the shape of {d.wrt}"))
        if d.mode in ("jacobian", "jacobian_denominator"):
            asked = "numerator" if d.mode == "jacobian" else "denominator"
            other = "denominator" if asked == "numerator" else "numerator"
            return Diagnosis("layout", (
                f"the claim is the Jacobian in {other} layout; in {asked} layout it is {d}"))
        return Diagnosis("transpose", (
            f"the claim is the transpose of the {_mode(d)} {d} (the derivative arranged as "
            f"{d.wrt}^T, not as {d.wrt})"))

    def _square_matrices(self) -> list[Symbol]:
        return sorted((s for s in self.derivative.function.free_symbols()
                       if kind_of(s.shape) == "matrix" and s.shape[0] == s.shape[1]
                       and "symmetric" not in s.props), key=lambda s: s.name)


def _mode(d: Any) -> str:
    return {"grad": "gradient", "jacobian": "Jacobian", "jacobian_denominator": "Jacobian",
            "hessian": "Hessian"}.get(d.mode, d.mode)


def _factor_diagnosis(c: Fraction, d: Any) -> Diagnosis:
    if c == -1:
        return Diagnosis("sign", f"the claim has the wrong sign: the {_mode(d)} is {d}")
    if abs(c) < 1:
        return Diagnosis("factor", (
            f"a factor of {1 / c} is missing: the claim is {c} times the {_mode(d)} {d}"))
    return Diagnosis("factor", f"the claim is {c} times the {_mode(d)} {d}")


def _terms(e: Expr) -> list[Expr]:
    return list(e.terms) if isinstance(e, Add) and len(e.terms) > 1 else []


def _signed(term: Expr) -> str:
    from .printing.text import split_sign

    negative, magnitude = split_sign(term)
    body, named = bind_common(magnitude)
    text = str(body) + (" where " + ", ".join(f"{n} = {v}" for n, v in named) if named else "")
    return f"- {text}" if negative else f"+ {text}"


def _small_point(symbols: list[Symbol], sizes: dict[Dim, int], rng: random.Random
                 ) -> dict[str, Any]:
    """Small exact values: integers 1 to 3, square matrices made diagonally dominant,
    symmetric and probability declarations respected."""
    point: dict[str, Any] = {}
    for s in symbols:
        rows, cols = shape_value(s.shape, sizes)
        m = np.array([[rng.randint(1, 3) for _ in range(cols)] for _ in range(rows)],
                     dtype=float)
        if "symmetric" in s.props:
            m = np.triu(m) + np.triu(m, 1).T
        if rows == cols and rows > 1:
            m = m + 2 * rows * np.eye(rows)
        if "probability" in s.props:
            m = m / m.sum()
        kind = kind_of(s.shape)  # the declared kind, whatever the sizes
        if kind == "scalar":
            point[s.name] = float(m[0, 0])
        elif kind == "vector":
            point[s.name] = m[:, 0]
        elif kind == "row vector":
            point[s.name] = m[0, :]
        else:
            point[s.name] = m
    return point


__all__ = ["ClaimReport", "Counterexample", "Diagnosis", "check_claim"]

