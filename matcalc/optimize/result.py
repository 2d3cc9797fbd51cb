"""The outcome of ``matcalc.minimize``: the solution by variable name, and how it was found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class MinimizeResult:
    """Solution arrays by variable name, objective, KKT residual, iterations, time, formulas.

    ``status`` is ``optimal`` (the KKT residual is at most the tolerance), ``stopped``
    (the solver ended before that; ``message`` says why), ``max_iter``, ``unbounded``
    (the objective kept decreasing without bound) or ``infeasible`` (the constraints
    are violated at the end).
    """

    solution: dict[str, Any]
    fun: float
    kkt_residual: float
    grad_norm: float
    iterations: int
    evaluations: int
    time: float
    setup_time: float
    method: str
    status: str
    message: str
    max_violation: float = 0.0
    formulas: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        """Whether the solution satisfies the KKT conditions to the tolerance."""
        return self.status == "optimal"

    def __getitem__(self, name: str) -> Any:
        return self.solution[name]

    def __str__(self) -> str:
        return self.report()

    def report(self, formulas: bool = True) -> str:
        """A plain-text summary: status, objective, residuals, counts, solution, formulas."""
        lines = [
            f"status: {self.status} ({self.message})",
            f"objective: {self.fun:.12g}",
            f"KKT residual: {self.kkt_residual:.3g}   (gradient norm {self.grad_norm:.3g}"
            + (f", max constraint violation {self.max_violation:.3g})" if self.max_violation
               else ")"),
            f"method: {self.method}, {self.iterations} iterations, {self.evaluations} "
            f"evaluations, {self.time * 1e3:.1f} ms solve + {self.setup_time * 1e3:.1f} ms "
            "derivation and code generation",
        ]
        for name, value in self.solution.items():
            text = np.array2string(np.asarray(value), precision=6, threshold=20,
                                   suppress_small=True)
            lines.append(f"{name} = {text}")
        if formulas and self.formulas:
            lines.append("formulas:")
            lines += [f"  {key}: {value}" for key, value in self.formulas.items()]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (arrays as nested lists)."""
        return {
            "status": self.status, "message": self.message, "fun": self.fun,
            "kkt_residual": self.kkt_residual, "grad_norm": self.grad_norm,
            "max_violation": self.max_violation, "iterations": self.iterations,
            "evaluations": self.evaluations, "time": self.time, "setup_time": self.setup_time,
            "method": self.method,
            "solution": {k: np.asarray(v).tolist() for k, v in self.solution.items()},
            "formulas": self.formulas, "notes": self.notes,
        }
