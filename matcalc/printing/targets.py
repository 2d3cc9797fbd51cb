"""Code-generation targets: how NumPy, JAX and PyTorch spell each operation the generator uses.

A target is a module alias, the import lines of the generated source, and the templates
that differ from the NumPy-like defaults in ``BASE``. The functions of the language are
spelled in their records (``matcalc/functions/``, with per-target ``code_overrides``).
Templates are ``str.format`` strings: ``{xp}`` is the module alias, ``{0}``, ``{1}``, ...
the operands. Nothing here imports JAX or PyTorch: they are named only inside the
generated text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import MatcalcError
from ..functions import Function

BASE: dict[str, str] = {
    # primitives the generator and the functions' multi-line code use (the functions
    # themselves are spelled in their records, matcalc/functions/)
    "max": "{xp}.max({0})",
    # constructors
    "eye": "{xp}.eye({0})",
    "ones": "{xp}.ones(({0}, 1))",
    "zeros": "{xp}.zeros(({0}, {1}))",
    "diag_dense": "{0} * {xp}.eye({0}.shape[0])",  # only where a lazy diag must be an array
    # linear algebra
    "inv": "{xp}.linalg.inv({0})",
    "solve": "{xp}.linalg.solve({0}, {1})",
    "matrix_power": "{xp}.linalg.matrix_power({0}, {1})",
    "norm_spectral": "{xp}.linalg.norm({0}, 2)",
    "norm_1": "{xp}.sum({xp}.abs({0}))",
    "norm": "{xp}.linalg.norm({0})",
    "slogdet": "{xp}.linalg.slogdet({0})",
    "logdet_value": "{xp}.where({0} > 0, {1}, {xp}.nan)",
    "eigh": "{xp}.linalg.eigh(0.5 * ({0} + {0}.T))",
    "svd": "{xp}.linalg.svd({0})",
    "argmax_abs": "{xp}.argmax({xp}.abs({0}))",
    "einsum": '{xp}.einsum("{0}", {1}, optimize=True)',
    # conversions at the boundary
    "matrix_in": "{xp}.asarray({0}, dtype=float)",
    "scalar_in": "{xp}.asarray({0}, dtype=float)",
    "scalar_out": "{0}",
}


@dataclass(frozen=True)
class Target:
    """One backend: module alias, import lines and the templates that differ from ``BASE``."""

    name: str
    xp: str
    imports: tuple[str, ...]
    overrides: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def op(self, key: str, *args: object) -> str:
        """The code for operation ``key`` applied to the operand codes ``args``."""
        template = self.overrides.get(key, BASE[key])
        return template.format(*args, xp=self.xp)

    def call(self, fn: Function, *args: object) -> str:
        """The one-line code of a function (its record's template for this target)."""
        template = fn.code_template(self.name)
        if not isinstance(template, str):
            raise TypeError(f"{fn.name} is generated over several lines, not by a template")
        return template.format(*args, xp=self.xp)


TARGETS: dict[str, Target] = {
    "numpy": Target(
        "numpy",
        "np",
        ("import numpy as np",),
        {
            "scalar_in": "float({0})",
            "scalar_out": "float({0})",
            "logdet_value": "{1} if {0} > 0 else np.nan",
        },
    ),
    "jax": Target(
        "jax",
        "jnp",
        ("import jax.numpy as jnp",),
        note="jit-compatible; for float64 call jax.config.update('jax_enable_x64', True) first",
    ),
    "torch": Target(
        "torch",
        "torch",
        ("import torch",),
        {
            "eye": "torch.eye({0}, dtype=torch.float64)",
            "ones": "torch.ones(({0}, 1), dtype=torch.float64)",
            "zeros": "torch.zeros(({0}, {1}), dtype=torch.float64)",
            "norm_spectral": "torch.linalg.matrix_norm({0}, 2)",
            "einsum": 'torch.einsum("{0}", {1})',
            "matrix_in": "torch.as_tensor({0}, dtype=torch.float64)",
            "scalar_in": "torch.as_tensor({0}, dtype=torch.float64)",
        },
        note="float64 tensors in and out",
    ),
}


def get_target(name: str) -> Target:
    """The target called ``name`` (numpy, jax or torch)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise MatcalcError(f"unknown code-generation target {name!r}",
                           hint="one of " + ", ".join(TARGETS)) from None
