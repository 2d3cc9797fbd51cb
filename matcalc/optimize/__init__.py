"""Minimize a formula of the matcalc language with matcalc's own derivatives and SciPy.

``minimize(f, wrt, data, constraints=..., method=...)`` binds data to every name except
the variables, rewrites ``c ||w||_1`` exactly (``w = w_plus - w_minus``, both >= 0) and
``c ||E||_1``, ``c 1^T relu(E)``, ``c max(E)`` through a new variable bounding ``E``,
refuses every other non-differentiable term, and runs its own projected Newton method
(exact dense Hessian) or SciPy's optimizers on the generated NumPy code of the gradient
(and of Hessian-vector products for SciPy's Newton-type methods).
"""

from .model import Model, build_model
from .result import MinimizeResult
from .solve import METHODS, kkt_residual, minimize

__all__ = ["METHODS", "MinimizeResult", "Model", "build_model", "kkt_residual", "minimize"]
