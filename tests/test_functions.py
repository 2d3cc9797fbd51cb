"""Every function record is complete and consistent, and is the only definition of its function.

The records (``matcalc/functions/``) are enumerated: for each one, the NumPy and SymPy
implementations agree at random points, the shape rule agrees with the values, the
SymPy matrix-expression form and the generated code agree with NumPy, text and LaTeX
parse back, and its rules exist in ``rules/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy
from sympy.matrices.expressions import Identity, MatrixExpr, MatrixSymbol, OneMatrix

from matcalc.dims import dim_value
from matcalc.expr import Call, Differential, Symbol
from matcalc.functions import (
    ACCEPTS,
    ALIASES,
    FAMILIES,
    FUNCTIONS,
    RECORDS,
    SPECIAL_CALLS,
    canonical_function,
)
from matcalc.interop import to_sympy_matrix_expr
from matcalc.parse import parse
from matcalc.printing.codegen import compile_source
from matcalc.rewrite import load_rules

NAMES = [f.name for f in RECORDS]
DIFFERENTIALS = {r.name: r for r in load_rules("differentials")}
ADJOINTS = {r.name: r for r in load_rules("adjoint")}
CANONICAL = load_rules("canonical")

NO_ADJOINT_YET: set[str] = set()
"""Known gaps: linear functions with no adjoint rule (none left)."""


def _argument(name: str) -> Symbol:
    """A variable of the kind the function takes (square 3x3 where it may be a matrix)."""
    accepts = FUNCTIONS[name].accepts
    if accepts == "vector":
        return Symbol("x", ("n", 1))
    if accepts in ("square", "vector or square"):
        return Symbol("A", ("n", "n"))
    return Symbol("A", ("n", "m"))


SIZES = {"n": 3, "m": 2}


def _value(sym: Symbol, rng: np.random.Generator) -> np.ndarray:
    """Positive entries (log, sqrt defined), diagonally dominant when square, symmetric
    (the eigenvalue functions read symmetric matrices)."""
    rows, cols = (SIZES.get(d, d) for d in sym.dims)
    value = rng.uniform(0.25, 1.25, size=(rows, cols))
    if rows == cols:
        value = 0.5 * (value + value.T) + 1.5 * rows * np.eye(rows)
    return value


def _numpy(name: str, value: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(FUNCTIONS[name].numpy(np, value), dtype=float)


@pytest.mark.parametrize("name", NAMES)
def test_record_is_complete(name: str) -> None:
    fn = FUNCTIONS[name]
    assert fn.description and fn.latex and fn.code, name
    assert fn.family in FAMILIES and fn.accepts in ACCEPTS
    assert fn.arity == 1
    assert re.fullmatch(r"[a-z][a-z_]*", fn.name)
    # the name of a where-binding of its value: upper case for a matrix (Q = polar(X))
    assert re.fullmatch(r"[a-z]", fn.letter) or (fn.accepts == "matrix"
                                                  and fn.shape(("m", "n")) == ("m", "n")
                                                  and re.fullmatch(r"[A-Z]", fn.letter))
    assert fn.sympy is not None or fn.family == "spectral", "only spectral functions lack SymPy"


def test_names_and_spellings_are_unique() -> None:
    assert len(set(NAMES)) == len(NAMES)
    spellings = [s for f in RECORDS for s in f.spellings]
    assert len(set(spellings)) == len(spellings)
    assert not set(spellings) & (set(NAMES) | set(SPECIAL_CALLS))
    for spelling, name in ALIASES.items():
        assert canonical_function(spelling) == name


@pytest.mark.parametrize("name", NAMES)
def test_numpy_values_have_the_shape_the_shape_rule_gives(name: str) -> None:
    arg = _argument(name)
    call = Call(name, (arg,))
    expected = tuple(dim_value(d, SIZES) for d in call.shape)
    assert _numpy(name, _value(arg, np.random.default_rng(0))).shape == expected


@pytest.mark.parametrize("name", [n for n in NAMES if FUNCTIONS[n].sympy is not None])
def test_numpy_and_sympy_agree_at_random_points(name: str) -> None:
    fn = FUNCTIONS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(3):
        value = _value(_argument(name), rng)
        if fn.elementwise and name != "sqrt" and name != "log":
            value = value * rng.choice([-1.0, 1.0], size=value.shape)  # both signs
        exact = fn.sympy_matrix(sympy, sympy.Matrix(value))
        got = np.array(sympy.Matrix(exact).evalf(20), dtype=float)
        np.testing.assert_allclose(got, _numpy(name, value), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in NAMES if FUNCTIONS[n].sympy is not None])
def test_sympy_matrix_expression_form_agrees_with_numpy(name: str) -> None:
    fn = FUNCTIONS[name]
    arg = _argument(name)
    if fn.sympy_expr is None and not fn.elementwise:
        pytest.xfail(f"{name} has no SymPy matrix-expression form (interop raises)")
    value = _value(arg, np.random.default_rng(1))
    out = to_sympy_matrix_expr(Call(name, (arg,)), SIZES)
    symbol = MatrixSymbol(arg.name, *value.shape)
    if isinstance(out, MatrixExpr):  # explicit first: DiagonalOf of an explicit matrix fails
        rows, cols = value.shape
        out = out.as_explicit().xreplace(
            {symbol[i, j]: value[i, j] for i in range(rows) for j in range(cols)})
    out = out.xreplace({symbol: sympy.ImmutableMatrix(value)})
    out = out.replace(lambda a: isinstance(a, (OneMatrix, Identity)), lambda a: a.as_explicit())
    out = out.doit()
    got = np.array(sympy.Matrix(out) if isinstance(out, MatrixExpr) or hasattr(out, "shape")
                   else [[out]], dtype=float)
    np.testing.assert_allclose(got, _numpy(name, value), rtol=1e-10)


TARGETS = ["numpy", "jax", "torch"]  # the test extra installs jax[cpu] and torch


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", NAMES)
def test_generated_code_agrees_with_numpy(name: str, target: str) -> None:
    if target == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    arg = _argument(name)
    value = _value(arg, np.random.default_rng(2))
    f = compile_source(Call(name, (arg,)), [arg], target)
    got = np.asarray(f(**{arg.name: value}), dtype=float)
    expected = _numpy(name, value)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_text_and_spellings_parse_back(name: str) -> None:
    arg = _argument(name)
    call = Call(name, (arg,))
    decl = {arg.name: "vector(n)" if arg.dims[1] == 1 else f"matrix({', '.join(arg.dims)})"}
    assert parse(str(call), **decl) == call
    for spelling in FUNCTIONS[name].spellings:
        assert parse(f"{spelling}({arg.name})", **decl) == call


@pytest.mark.parametrize("name", [n for n in NAMES if FUNCTIONS[n].family != "spectral"])
def test_latex_parses_back(name: str) -> None:
    arg = _argument(name)
    call = Call(name, (arg,))
    decl = {arg.name: "vector(n)" if arg.dims[1] == 1 else f"matrix({', '.join(arg.dims)})"}
    assert parse(call.latex(), **decl) == call


@pytest.mark.parametrize("name", NAMES)
def test_differential_rule_exists_and_is_about_the_function(name: str) -> None:
    fn = FUNCTIONS[name]
    assert fn.differential is not None, name
    rule = DIFFERENTIALS[fn.differential]
    assert isinstance(rule.lhs, Call) and rule.lhs.name == name


def _is_linear(name: str) -> bool:
    """Its differential applies the function itself to d(U): d(f(U)) = f(d(U))."""
    rule = DIFFERENTIALS.get(FUNCTIONS[name].differential or "")
    return (rule is not None and isinstance(rule.rhs, Call) and rule.rhs.name == name
            and isinstance(rule.rhs.args[0], Differential))


@pytest.mark.parametrize("name", [n for n in NAMES if _is_linear(n)])
def test_linear_functions_have_an_adjoint_rule_or_are_rewritten_away(name: str) -> None:
    fn = FUNCTIONS[name]
    if fn.adjoint is not None:
        rule = ADJOINTS[fn.adjoint]
        if rule.function is not None:  # written in Python: its docstring names the function
            assert f"{name}(" in (rule.function.__doc__ or "")
            return
        assert any(isinstance(n, Call) and n.name == name for n in rule.lhs.walk())
        return
    rewritten = [r for r in CANONICAL if isinstance(r.lhs, Call) and r.lhs.name == name]
    if not rewritten:
        assert name in NO_ADJOINT_YET
        pytest.xfail(f"a gradient through {name} is not supported yet")


def test_adjoint_rules_name_only_linear_functions() -> None:
    for fn in RECORDS:
        if fn.adjoint is not None:
            assert _is_linear(fn.name), fn.name


_SOURCE = Path(__file__).resolve().parents[1] / "matcalc"


def test_no_other_module_keeps_a_table_of_functions() -> None:
    """Function names used as keys of dict literals outside the records are a second home
    (one such key may be a coincidence, such as the ``vec`` layout; two make a table)."""
    key = re.compile(r"""(?:^\s*|[{,]\s*)["']([A-Za-z_]+)["']\s*:""")
    offenders = {}
    for path in _SOURCE.rglob("*.py"):
        if "functions" in path.relative_to(_SOURCE).parts:
            continue
        keys = {m.group(1) for line in path.read_text(encoding="utf-8").splitlines()
                for m in key.finditer(line)}
        names = sorted(keys & (set(FUNCTIONS) | set(ALIASES)))
        if len(names) > 1:
            offenders[str(path.relative_to(_SOURCE))] = names
    assert offenders == {}
