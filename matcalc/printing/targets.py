"""Code-generation targets: how NumPy, JAX and PyTorch spell each operation the generator uses.

A target is a module alias, the import lines of the generated source, and the templates
that differ from the NumPy-like defaults in ``BASE``. The functions of the language are
spelled in their records (``matcalc/functions/``, with per-target ``code_overrides``).
Templates are ``str.format`` strings: ``{xp}`` is the module alias, ``{dev}`` the
``dtype``/``device`` keywords of array constructors (empty for NumPy and JAX), ``{0}``,
``{1}``, ... the operands. Vectors are 1-D arrays in generated code. Nothing here imports
JAX or PyTorch: they are named only inside the generated text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import MatcalcError
from ..functions import Function

BASE: dict[str, str] = {
    # primitives of the generator and of the functions' multi-line code (the functions of
    # the language are spelled in their records, matcalc/functions/)
    "sum_all": "{0}.sum()",
    "sum_axis": "{0}.sum(axis={1})",
    "max": "{0}.max()",
    "unvec": "{0}.reshape({2}, {1}).T",  # the m x n matrix whose column-major vec is {0}
    # constructors
    "eye": "{xp}.eye({0}{dev})",
    "ones": "{xp}.ones({0}{dev})",
    "ones2": "{xp}.ones(({0}, {1}){dev})",
    "zeros": "{xp}.zeros({0}{dev})",
    "zeros2": "{xp}.zeros(({0}, {1}){dev})",
    "full2": "{xp}.full(({0}, {1}), {2}{dev})",
    "outer": "{xp}.outer({0}, {1})",
    "diagonal": "{xp}.diagonal({0})",
    "column": "{0}[:, None]",
    # adding a vector or scalar to the diagonal, never through a dense diagonal matrix
    "add_diagonal": "{0}[{xp}.diag_indices_from({0})] += {1}",
    "copy": "{0}.copy()",
    # linear algebra (one call per factorisation)
    "inv": "{xp}.linalg.inv({0})",
    "solve": "{xp}.linalg.solve({0}, {1})",
    "slogdet": "{xp}.linalg.slogdet({0})",
    "matrix_power": "{xp}.linalg.matrix_power({0}, {1})",
    "kron": "{xp}.kron({0}, {1})",
    "logdet_value": "{xp}.where({0} > 0, {1}, {xp}.nan)",
    "norm": "{xp}.linalg.norm({0})",
    "norm_spectral": "{xp}.linalg.norm({0}, 2)",
    "norm_nuclear": "{xp}.linalg.norm({0}, 'nuc')",
    "eigh": "{xp}.linalg.eigh(0.5 * ({0} + {0}.T))",
    "svd": "{xp}.linalg.svd({0}, full_matrices=False)",
    "prod_rows": "{xp}.prod({0}, axis=1)",
    "off_diagonal": "(({xp}.arange({0}).reshape(-1, 1) != {xp}.arange({0})) * 1.0)",
    "argmax_abs": "{xp}.argmax({xp}.abs({0}))",
    "einsum": '{xp}.einsum("{0}", {1})',
    "nan": "{xp}.nan",
    "where": "{xp}.where({0}, {1}, {2})",
    # shared factorisations (SciPy's names; JAX has the same in jax.scipy.linalg)
    "lu_factor": "scipy.linalg.lu_factor({0})",
    "lu_solve": "scipy.linalg.lu_solve({0}, {1})",
    "lu_solve_t": "scipy.linalg.lu_solve({0}, {1}, trans=1)",
    "lu_diagonal": "{xp}.diagonal({0}[0])",
    "lu_swaps": "{xp}.count_nonzero({0}[1] != {xp}.arange({1}))",
    "cho_factor": "scipy.linalg.cho_factor({0})",
    "cho_solve": "scipy.linalg.cho_solve({0}, {1})",
    "cho_diagonal": "{xp}.diagonal({0}[0])",
    # the inverse from the Cholesky factor (LAPACK potri fills one triangle)
    "cho_inverse": "scipy.linalg.lapack.dpotri(*{0})[0]",
    "cho_symmetrize": "{xp}.triu({0}) + {xp}.triu({0}, 1).T",
    # conversions at the boundary
    "matrix_in": "{xp}.asarray({0}, dtype=float)",
    "vector_in": "{xp}.asarray({0}, dtype=float).reshape(-1)",
    "scalar_in": "float({0})",
    "scalar_out": "float({0})",
}


@dataclass(frozen=True)
class Target:
    """One backend: module alias, import lines and the templates that differ from ``BASE``."""

    name: str
    xp: str
    imports: tuple[str, ...]
    overrides: dict[str, str] = field(default_factory=dict)
    note: str = ""
    factor_imports: tuple[str, ...] = ()
    """Import lines needed once a shared factorisation is used."""
    functional: bool = False
    """Arrays are immutable (JAX): the diagonal is updated with ``.at[...]``."""

    def op(self, key: str, *args: object, dev: str = "") -> str:
        """The code for operation ``key`` applied to the operand codes ``args``."""
        template = self.overrides.get(key, BASE[key])
        return template.format(*args, xp=self.xp, dev=dev)

    def call(self, fn: Function, *args: object) -> str:
        """The one-line code of a function (its record's template for this target)."""
        template = fn.code_template(self.name)
        if not isinstance(template, str):
            raise TypeError(f"{fn.name} is generated over several lines, not by a template")
        return template.format(*args, xp=self.xp)


_SCIPY_NOTE = ("SciPy (pip install scipy) computes one factorisation per matrix, shared by "
               "its solves and determinants")

TARGETS: dict[str, Target] = {
    "numpy": Target(
        "numpy",
        "np",
        ("import numpy as np",),
        {
            "logdet_value": "{1} if {0} > 0 else np.nan",
        },
        factor_imports=("import scipy.linalg",),
    ),
    "jax": Target(
        "jax",
        "jnp",
        ("import jax", "import jax.numpy as jnp"),
        {
            "add_diagonal": "{0}.at[jnp.diag_indices_from({0})].add({1})",
            "copy": "{0}",
            "lu_factor": "jax.scipy.linalg.lu_factor({0})",
            "lu_solve": "jax.scipy.linalg.lu_solve({0}, {1})",
            "lu_solve_t": "jax.scipy.linalg.lu_solve({0}, {1}, trans=1)",
            "cho_factor": "jax.scipy.linalg.cho_factor({0})",
            "cho_solve": "jax.scipy.linalg.cho_solve({0}, {1})",
            "cho_inverse": "jax.scipy.linalg.cho_solve({0}, jnp.eye({1}))",
            "matrix_in": "jnp.asarray({0}, dtype=jnp.float64)",
            "vector_in": "jnp.asarray({0}, dtype=jnp.float64).reshape(-1)",
            "scalar_in": "jnp.asarray({0}, dtype=jnp.float64)",
            "scalar_out": "{0}",
        },
        note="float64 without a global flag: f runs its jitted body under jax.enable_x64(True)",
        factor_imports=("import jax.scipy.linalg",),
        functional=True,
    ),
    "torch": Target(
        "torch",
        "torch",
        ("import torch",),
        {
            "sum_axis": "{0}.sum(dim={1})",
            "add_diagonal": "{0}.diagonal().add_({1})",
            "copy": "{0}.clone()",
            "norm_spectral": "torch.linalg.matrix_norm({0}, 2)",
            "prod_rows": "torch.prod({0}, dim=1)",
            "kron": "torch.kron({0}.contiguous(), {1}.contiguous())",  # views of .T fail
            "norm_nuclear": "torch.linalg.matrix_norm({0}, 'nuc')",
            "svd": "torch.linalg.svd({0}, full_matrices=False)",
            "nan": "float('nan')",
            "lu_factor": "torch.linalg.lu_factor({0})",
            "lu_solve": "torch.linalg.lu_solve(*{0}, {1})",
            "lu_solve_t": "torch.linalg.lu_solve(*{0}, {1}, adjoint=True)",
            "lu_swaps": "torch.count_nonzero({0}[1] != torch.arange(1, {1} + 1, "
                        "device={0}[1].device))",
            "cho_factor": "torch.linalg.cholesky({0})",
            "cho_solve": "torch.cholesky_solve({1}, {0})",
            "cho_diagonal": "torch.diagonal({0})",
            "cho_inverse": "torch.cholesky_inverse({0})",
            "matrix_in": "torch.as_tensor({0}, dtype=torch.float64)",
            "vector_in": "torch.as_tensor({0}, dtype=torch.float64).reshape(-1)",
            "scalar_in": "torch.as_tensor({0}, dtype=torch.float64)",
            "scalar_out": "{0}",
        },
        note="float64 tensors in and out, on the device of the input tensors",
    ),
}

SOLVE_NEEDS_MATRIX = {"torch"}
"""Targets whose LU and Cholesky solves take only matrix right-hand sides."""


def get_target(name: str) -> Target:
    """The target called ``name`` (numpy, jax or torch)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise MatcalcError(f"unknown code-generation target {name!r}",
                           hint="one of " + ", ".join(TARGETS)) from None
