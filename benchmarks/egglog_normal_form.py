"""Equality saturation (egglog) on the matrix algebra of issue 10: a measurement.

Not part of matcalc (egglog is not a dependency): `pip install egglog`, then
`python benchmarks/egglog_normal_form.py`. The findings are in docs/NORMAL_FORM.md.
Warning: the second case at 9 iterations ran for about two minutes on the shared machine.
"""
from __future__ import annotations

import time

from egglog import EGraph, Expr, StringLike, i64Like, rewrite, ruleset, vars_


class M(Expr):
    def __init__(self, name: StringLike) -> None: ...
    def __mul__(self, other: M) -> M: ...
    def __add__(self, other: M) -> M: ...
    def t(self) -> M: ...
    def inv(self) -> M: ...
    @classmethod
    def eye(cls) -> M: ...
    def scale(self, k: i64Like) -> M: ...

a, b, c = vars_("a b c", M)
rules = ruleset(
    rewrite(a.t().t()).to(a),
    rewrite((a * b).t()).to(b.t() * a.t()),
    rewrite(b.t() * a.t()).to((a * b).t()),
    rewrite((a + b).t()).to(a.t() + b.t()),
    rewrite(a.t() + b.t()).to((a + b).t()),
    rewrite(a.inv().t()).to(a.t().inv()),
    rewrite(a.t().inv()).to(a.inv().t()),
    rewrite(a * (b * c)).to((a * b) * c),
    rewrite((a * b) * c).to(a * (b * c)),
    rewrite(a + (b + c)).to((a + b) + c),
    rewrite((a + b) + c).to(a + (b + c)),
    rewrite(a + b).to(b + a),
    rewrite(a * (b + c)).to(a * b + a * c),
    rewrite(a * b + a * c).to(a * (b + c)),
    rewrite((b + c) * a).to(b * a + c * a),
    rewrite(b * a + c * a).to((b + c) * a),
    rewrite(a * a.inv()).to(M.eye()),
    rewrite(a.inv() * a).to(M.eye()),
    rewrite(a * M.eye()).to(a),
    rewrite(M.eye() * a).to(a),
)

X, A, B = M("X"), M("A"), M("B")
cases = {
    "(X^-1 B A X^-1)^T": (X.inv() * B * A * X.inv()).t(),
    "(A^T - X^-T X^T A^T) X^-T": (A.t() + (X.inv().t() * X.t() * A.t()).scale(-1)) * X.inv().t(),
    "((A + B)^T X)^T X^-1": ((A + B).t() * X).t() * X.inv(),
}
for name, term in cases.items():
    for iters in (3, 6, 9):
        g = EGraph()
        g.register(term)
        t0 = time.perf_counter()
        g.run(rules * iters)
        best = g.extract(term)
        dt = time.perf_counter() - t0
        print(f"{name:34} iters={iters}: {1000*dt:8.1f} ms  -> {best}")
