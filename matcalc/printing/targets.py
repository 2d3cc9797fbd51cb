"""Code-generation targets: how NumPy, JAX and PyTorch spell each operation the generator uses.

A target is a module alias, the import lines of the generated source, and the templates
that differ from the NumPy-like defaults in ``BASE``. Templates are ``str.format`` strings:
``{xp}`` is the module alias, ``{0}``, ``{1}``, ... the operands. Nothing here imports
JAX or PyTorch: they are named only inside the generated text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import MatcalcError

BASE: dict[str, str] = {
    # elementwise and reductions
    "exp": "{xp}.exp({0})",
    "log": "{xp}.log({0})",
    "sqrt": "{xp}.sqrt({0})",
    "sin": "{xp}.sin({0})",
    "cos": "{xp}.cos({0})",
    "tanh": "{xp}.tanh({0})",
    "sigma": "0.5 * (1.0 + {xp}.tanh(0.5 * {0}))",
    "relu": "{xp}.maximum({0}, 0.0)",
    "softplus": "{xp}.logaddexp(0.0, {0})",
    "abs": "{xp}.abs({0})",
    "sign": "{xp}.sign({0})",
    "step": "{xp}.heaviside({0}, {xp}.zeros_like({0}))",
    "tr": "{xp}.trace({0})",
    "det": "{xp}.linalg.det({0})",
    "sum": "{xp}.sum({0})",
    "max": "{xp}.max({0})",
    "vec": "{0}.T.reshape(-1, 1)",  # column-major vec without an order= argument
    # constructors
    "eye": "{xp}.eye({0})",
    "ones": "{xp}.ones(({0}, 1))",
    "zeros": "{xp}.zeros(({0}, {1}))",
    "diag_dense": "{0} * {xp}.eye({0}.shape[0])",  # only where a lazy diag must be an array
    "diagonal": "{xp}.diagonal({0}).reshape(-1, 1)",
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
            "relu": "torch.clamp({0}, min=0.0)",
            "softplus": "torch.logaddexp(torch.zeros_like({0}), {0})",
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
