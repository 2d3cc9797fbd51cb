"""Generated code for every golden and table case agrees with finite differences of the
function (numpy, jax, torch)."""

from __future__ import annotations

import json
import keyword
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_golden import SEED_RESULTS, SEED_TABLE

import matcalc
from matcalc.errors import MatcalcError
from matcalc.numeric import finite_difference, random_point, symbols_of
from matcalc.printing.codegen import compile_source, to_source
from matcalc.verify import concrete_sizes, project_derivative

TABLE = json.loads((Path(__file__).parent / "data" / "gradients.json").read_text("utf-8"))
CASES = [(f, wrt, decls) for f, wrt, decls, _ in SEED_TABLE + SEED_RESULTS] + [
    (c["f"], c["wrt"], c.get("decls", {})) for c in TABLE
]
IDS = [f"{f} d/d{wrt}" for f, wrt, _ in CASES]


TARGETS = ["numpy", "jax", "torch"]  # the test extra installs jax[cpu] and torch

_DERIVATIVES: dict[tuple, matcalc.Derivative] = {}


def _derivative(f, wrt, decls):
    key = (f, wrt, tuple(sorted(decls.items())))
    if key not in _DERIVATIVES:
        _DERIVATIVES[key] = matcalc.grad(f, wrt, **decls)
    return _DERIVATIVES[key]


def _params(d):
    return sorted(d.function.free_symbols() | d.expr.free_symbols() | {d.wrt},
                  key=lambda s: s.name)


def _runner(target, d):
    fn = compile_source(d.expr, _params(d), target)
    if target == "jax":  # jitted and float64 by itself: no global flag is touched
        return lambda **kw: np.asarray(fn(**kw))
    if target == "torch":
        return lambda **kw: fn(**kw).numpy()
    return fn


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("f, wrt, decls", CASES, ids=IDS)
def test_generated_code_agrees_with_finite_differences(f, wrt, decls, target):
    """The generated gradient against an independent reference: central differences of
    the original function (on the declared structure of the variable)."""
    d = _derivative(f, wrt, decls)
    sizes = concrete_sizes([d.function, d.expr, d.wrt])
    point = random_point(symbols_of([d.function, d.expr, d.wrt]), sizes,
                         np.random.default_rng(11), positive=True)
    fd = np.asarray(finite_difference(d.function, d.wrt, point, "grad"), dtype=float)
    if {"symmetric", "diagonal"} & d.wrt.props:
        fd = project_derivative(fd, d.wrt, "grad", fd.shape[0], exact=False)
    run = _runner(target, d)
    got = run(**{k + "_" if keyword.iskeyword(k) else k: v for k, v in point.items()})
    got = np.asarray(got, dtype=float).reshape(fd.shape)
    scale = 1.0 + float(np.max(np.abs(fd), initial=0.0))
    np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6 * scale,
                               err_msg=f"{target} code for {d}:\n{d.to_source(target)}")


@pytest.mark.parametrize("f, wrt, decls", CASES, ids=IDS)
def test_generated_numpy_never_materialises_diag_or_kron(f, wrt, decls):
    source = _derivative(f, wrt, decls).to_source("numpy")
    assert "np.kron" not in source
    assert not re.search(r"np\.diag\(|np\.diagflat\(", source)


def test_chain_order_is_chosen_at_generation_time_from_the_sizes():
    e = matcalc.parse("A B C")
    assert "if " not in to_source(e)
    wide = to_source(e, sizes={"m": 300, "n": 2, "p": 300, "q": 3}, imports=False)
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(size=s) for s in ((300, 2), (2, 300), (300, 3)))
    for sizes in ({}, {"n": 2}):
        fn = compile_source(e, sizes=sizes)
        np.testing.assert_allclose(fn(A=a, B=b, C=c), a @ b @ c, rtol=1e-10, atol=1e-10)
    dims = {s.name: s.dims for s in e.free_symbols()}
    small = dims["A"][1]  # the inner dimension of A B: 2 wide, so (B C) first is cheaper
    src = to_source(e, sizes={small: 2}, imports=False)
    assert "A @ (B @ C)" in src or "(A @ B) @ C" not in src, (wide, src)


def test_gram_matrix_is_never_formed_for_a_matrix_vector_product():
    source = to_source(matcalc.grad("||A x - b||_2^2 + ||A x||^2", "x").expr)
    assert "A.T @ A" not in source and "if " not in source
    assert re.search(r"\bA @ x\b", source)


def test_diag_is_row_scaling_and_kron_a_reshape():
    rows = to_source(matcalc.parse("diag(v) A"))
    assert "v[:, None] * A" in rows and "@" not in rows and "eye" not in rows
    kron = to_source(matcalc.parse("kron(A, B) x"))
    assert "kron" not in kron.replace("kron(A, B)", "") and "reshape" in kron
    fn = compile_source(matcalc.parse("kron(A, B) x"))
    rng = np.random.default_rng(1)
    a, b, x = rng.normal(size=(2, 3)), rng.normal(size=(4, 5)), rng.normal(size=15)
    np.testing.assert_allclose(fn(A=a, B=b, x=x), np.kron(a, b) @ x)


@pytest.mark.parametrize("target, head", [("numpy", "import numpy as np"),
                                          ("jax", "import jax\nimport jax.numpy as jnp"),
                                          ("torch", "import torch")])
def test_to_source_names_its_imports(target, head):
    text = matcalc.grad("||A x - b||_2^2", "x").to_source(target)
    assert text.startswith(head)
    assert "def f(*, A, b, x):" in text
    compile(text, "<generated>", "exec")


def test_unknown_target_is_an_error():
    with pytest.raises(MatcalcError):
        matcalc.grad("x^T x", "x").to_source("fortran")


def test_core_package_imports_no_jax_torch_or_tensorgrad():
    code = (
        "import sys, matcalc\n"
        "from matcalc.printing import codegen, numpy, targets\n"
        "d = matcalc.grad('||A x - b||_2^2', 'x')\n"
        "[d.to_source(t) for t in ('numpy', 'jax', 'torch')]\n"
        "d.to_numpy()\n"
        "bad = [m for m in ('jax', 'jaxlib', 'torch', 'tensorgrad') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
