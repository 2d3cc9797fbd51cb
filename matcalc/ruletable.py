"""The rule table for users: every identity in rules/ with LaTeX, source and a self-check."""

from __future__ import annotations

from dataclasses import dataclass

from .data import data_path
from .rewrite import Rule, load_rules
from .verify.rules import check_rule

FAMILY_ORDER = ("canonical", "differentials", "adjoint", "jacobian", "simplify", "expansions")
"""Families in the order the engine uses them; other rule files follow alphabetically."""

FAMILY_TITLES = {
    "canonical": "Canonical forms (applied before differentiating)",
    "differentials": "Differentials (one rule per operator)",
    "adjoint": "Reading off the gradient (adjoint rules)",
    "jacobian": "Reading off the Jacobian (vec rules)",
    "kronecker": "Kronecker products and the commutation matrix",
    "simplify": "Simplification (applied to every result)",
    "expansions": "Expansions (tried when they shorten a sum)",
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


def rule_table(family: str | None = None, verify: bool = True) -> list[RuleEntry]:
    """Every rule (or one family's) with its identity, LaTeX, source and self-check status."""
    chosen = families() if family is None else [family]
    entries = []
    for fam in chosen:
        for rule in load_rules(fam):
            status = "not run"
            if verify:
                ok = check_rule(rule)
                status = {True: "yes", False: "FAILED", None: "n/a"}[ok]
            entries.append(RuleEntry(rule.name, fam, rule.text, rule.source, rule_latex(rule),
                                     status))
    return entries


__all__ = ["FAMILY_TITLES", "RuleEntry", "families", "rule_latex", "rule_table", "check_rule"]
