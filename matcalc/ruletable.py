"""The rule table for users: every identity in rules/ with LaTeX, source and a self-check."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .data import data_path
from .dims import dim_names
from .expr import Differential, Expr, Symbol, leaf_dims
from .rewrite import Rule, load_rules

FAMILY_ORDER = ("canonical", "differentials", "adjoint", "jacobian", "simplify")
"""Families in the order the engine uses them; other rule files follow alphabetically."""

FAMILY_TITLES = {
    "canonical": "Canonical forms (applied before differentiating)",
    "differentials": "Differentials (one rule per operator)",
    "adjoint": "Reading off the gradient (adjoint rules)",
    "jacobian": "Reading off the Jacobian (vec rules)",
    "kronecker": "Kronecker products and the commutation matrix",
    "simplify": "Simplification (applied to every result)",
}


@dataclass(frozen=True)
class RuleEntry:
    """One row of the rule table."""

    name: str
    family: str
    identity: str
    source: str
    latex: str | None
    """The identity as LaTeX math, or None for a rule written in Python."""
    verified: str
    """``yes`` (numeric self-check passed), ``FAILED``, or ``n/a`` (not checkable here)."""


def families() -> list[str]:
    """The rule families shipped with matcalc, in engine order."""
    present = sorted(p.stem for p in data_path("rules").glob("*.rules"))
    return [f for f in FAMILY_ORDER if f in present] + [f for f in present
                                                        if f not in FAMILY_ORDER]


def rule_latex(rule: Rule) -> str | None:
    """The identity of a pattern rule as LaTeX (differentials written ``d(lhs) = rhs``)."""
    if rule.rhs is None:
        return None
    lhs = rule.lhs.latex()
    if rule.family == "differentials":
        lhs = rf"\mathrm{{d}}\left({lhs}\right)"
    return f"{lhs} = {rule.rhs.latex()}"


def _sizes(*exprs: Expr) -> dict:
    sizes: dict = {}
    for e in exprs:
        for n in e.walk():
            for d in leaf_dims(n):
                for name in dim_names(d):
                    sizes.setdefault(name, 2 + len(sizes))
    return sizes


def _as_symbols(e: Expr) -> Expr:
    if isinstance(e, Differential):
        return Symbol("d_" + e.var.name, e.var.dims, e.var.props)
    if not e.children:
        return e
    return e.rebuild(tuple(_as_symbols(c) for c in e.children))


def _symmetrize(values: dict) -> dict:
    return {k: (v + v.T) / 2 if np.ndim(v) == 2 and v.shape[0] == v.shape[1] else v
            for k, v in values.items()}


def verify_rule(rule: Rule, trials: int = 2) -> bool | None:
    """Check a pattern rule numerically on random values; None when it cannot be checked here.

    Rewrite rules compare both sides; a differential rule compares its right side (``dV``
    set to a direction D) with a central difference of the left side along D.
    """
    from .numeric import evaluate, random_point

    if rule.rhs is None:
        return None
    lhs, rhs = rule.lhs, _as_symbols(rule.rhs)
    sizes = _sizes(lhs, rhs)
    variables = sorted(lhs.free_symbols(), key=lambda s: s.name)
    spectral = any(getattr(n, "name", "") in ("lambda_max", "lambda_min") for n in lhs.walk())
    rng = np.random.default_rng(zlib.crc32(rule.name.encode()))
    try:
        with np.errstate(all="ignore"):
            for _ in range(trials):
                point = random_point(variables, sizes, rng, positive=True)
                if spectral:
                    point = _symmetrize(point)
                if rule.family != "differentials":
                    left = np.asarray(evaluate(lhs, point, sizes), float)
                    right = np.asarray(evaluate(rhs, point, sizes), float)
                    if not np.allclose(left.reshape(right.shape), right, rtol=1e-8, atol=1e-8):
                        return False
                    continue
                direction = random_point(variables, sizes, rng)
                if spectral:
                    direction = _symmetrize(direction)
                h = 1e-6
                plus = {k: v + h * np.asarray(direction[k]) for k, v in point.items()}
                minus = {k: v - h * np.asarray(direction[k]) for k, v in point.items()}
                numeric = (np.asarray(evaluate(lhs, plus, sizes), float)
                           - np.asarray(evaluate(lhs, minus, sizes), float)) / (2 * h)
                values = {**point, **{"d_" + k: v for k, v in direction.items()}}
                symbolic = np.asarray(evaluate(rhs, values, sizes), float)
                if not np.allclose(symbolic.reshape(numeric.shape), numeric,
                                   rtol=1e-5, atol=1e-6):
                    return False
    except Exception:  # an identity the numeric evaluator cannot instantiate
        return None
    return True


def rule_table(family: str | None = None, verify: bool = True) -> list[RuleEntry]:
    """Every rule (or one family's) with its identity, LaTeX, source and self-check status."""
    chosen = families() if family is None else [family]
    entries = []
    for fam in chosen:
        for rule in load_rules(fam):
            status = "not run"
            if verify:
                ok = verify_rule(rule)
                status = {True: "yes", False: "FAILED", None: "n/a"}[ok]
            entries.append(RuleEntry(rule.name, fam, rule.text, rule.source, rule_latex(rule),
                                     status))
    return entries


__all__ = ["FAMILY_TITLES", "RuleEntry", "families", "rule_latex", "rule_table", "verify_rule"]
