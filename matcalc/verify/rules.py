"""Checking an identity of ``rules/``: both sides on explicit matrices at random points.

One check for the rule table's self-check (``matcalc rules``) and the test suite
(``tests/test_rules.py``). An identity ``lhs = rhs`` is compared at random exact points,
evaluated with SymPy at 40 digits; a differential rule ``d f(V) = R(V, dV)`` is compared
as a directional derivative: central differences of f along a random direction D against
R with dV := D. Functions without a SymPy form (eigenvalues, singular vectors) are
compared with NumPy central differences, at symmetric points for the eigenvalue ones.
"""

from __future__ import annotations

import random

import numpy as np

from ..errors import MatcalcError, UnsupportedError
from ..expr import Call, Differential, Expr, Symbol
from ..functions import FUNCTIONS
from ..numeric import evaluate, random_point
from ..rewrite import Rule
from .points import DIGITS, RTOL, number
from .sizes import concrete_sizes
from .translate import rational_point, to_sympy

_STEP = 1e-12


def differentials_as_symbols(e: Expr) -> Expr:
    """``dV`` as a plain variable ``d_V`` of the same shape, to be given a direction."""
    if isinstance(e, Differential):
        return Symbol("d_" + e.var.name, e.var.dims, e.var.props)
    if not e.children:
        return e
    return e.rebuild(tuple(differentials_as_symbols(c) for c in e.children))


def check_rule(rule: Rule, trials: int = 2) -> bool | None:
    """Whether a rule holds at ``trials`` random points; None for a rule written in Python
    or one whose sides cannot be evaluated on matrices."""
    if rule.rhs is None:
        return None
    lhs, rhs = rule.lhs, differentials_as_symbols(rule.rhs)
    sizes = concrete_sizes([lhs, rhs])
    variables = sorted(lhs.free_symbols(), key=lambda s: s.name)
    rng = random.Random(rule.name)
    try:
        try:
            return all(_holds_at(rule, lhs, rhs, variables, sizes, rng) for _ in range(trials))
        except UnsupportedError:  # no SymPy form: NumPy central differences
            return _holds_numerically(rule, lhs, rhs, variables, sizes, trials)
    except MatcalcError:
        return None


def _close(left, right, scale: float = 0.0) -> bool:
    if left.shape != right.shape:
        return False
    for a, b in zip(left, right, strict=True):
        diff, size = number(a - b), number(a)
        if diff is None or size is None or abs(diff) > RTOL * (1 + abs(size) + scale):
            return False
    return True


def _holds_at(rule: Rule, lhs: Expr, rhs: Expr, variables, sizes, rng) -> bool:
    point = {k: v.evalf(DIGITS) for k, v in rational_point(variables, sizes, rng, True).items()}
    if rule.family != "differentials":
        return _close(to_sympy(lhs, point, sizes), to_sympy(rhs, point, sizes))
    to_sympy(lhs, point, sizes)  # a function may refuse a point where it has no derivative
    direction = {k: v.evalf(DIGITS) for k, v in rational_point(variables, sizes, rng).items()}
    h = _STEP

    def moved(sign: int) -> dict:
        return {k: v + sign * h * direction[k] for k, v in point.items()}

    along = (to_sympy(lhs, moved(1), sizes) - to_sympy(lhs, moved(-1), sizes)) / (2 * h)
    values = {**point, **{"d_" + k: v for k, v in direction.items()}}
    return _close(along, to_sympy(rhs, values, sizes))


def _symmetric_arguments(lhs: Expr) -> bool:
    """Whether the rule reads eigenvalues or eigenvectors (defined for symmetric matrices)."""
    return any(isinstance(n, Call) and FUNCTIONS[n.name].family == "spectral"
               and FUNCTIONS[n.name].accepts == "square" for n in lhs.walk())


def _holds_numerically(rule: Rule, lhs: Expr, rhs: Expr, variables, sizes, trials: int) -> bool:
    rng = np.random.default_rng(len(rule.name))
    symmetric = _symmetric_arguments(lhs)

    def sample() -> dict:
        point = random_point(variables, sizes, rng, positive=True)
        if symmetric:
            point = {k: (v + v.T) / 2 if np.ndim(v) == 2 else v for k, v in point.items()}
        return point

    with np.errstate(all="ignore"):
        for _ in range(trials):
            point = sample()
            if rule.family != "differentials":
                left = np.asarray(evaluate(lhs, point, sizes), float)
                right = np.asarray(evaluate(rhs, point, sizes), float)
                if not np.allclose(left.reshape(right.shape), right, rtol=1e-8, atol=1e-8):
                    return False
                continue
            direction = sample()
            h = 1e-6
            plus = {k: v + h * np.asarray(direction[k]) for k, v in point.items()}
            minus = {k: v - h * np.asarray(direction[k]) for k, v in point.items()}
            numeric = (np.asarray(evaluate(lhs, plus, sizes), float)
                       - np.asarray(evaluate(lhs, minus, sizes), float)) / (2 * h)
            values = {**point, **{"d_" + k: v for k, v in direction.items()}}
            symbolic = np.asarray(evaluate(rhs, values, sizes), float)
            if not np.allclose(symbolic.reshape(numeric.shape), numeric, rtol=1e-5,
                               atol=1e-6):
                return False
    return True
