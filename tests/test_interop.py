"""SymPy interop: matcalc expressions and results as MatrixSymbol expressions, same values."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy.matrices.expressions import Identity, MatrixExpr, MatrixSymbol, OneMatrix

import matcalc
from matcalc.expr import Expr
from matcalc.interop import to_sympy_matrix_expr
from matcalc.numeric import evaluate, random_point

CASES = [
    ("||A x - b||_2^2", "x", {}),
    ("x^T A x", "x", {"A": "symmetric"}),
    ("log(1 + exp(-y w^T x))", "w", {"y": "scalar"}),
    ("-y^T log(softmax(W^T x))", "W", {"y": "probability vector"}),
    ("||X w - y||_2^2 + lambda ||w||_2^2", "w", {}),
    ("||X w - y||_2^2 + lambda ||w||_1", "w", {}),
    ("logdet(X)", "X", {"X": "symmetric"}),
    ("tr(A X B)", "X", {}),
    ("||x||_2", "x", {}),
    ("sum(tanh(W x))", "W", {}),
    ("1^T sigma(W x) + sqrt(x^T x)", "x", {}),
    ("log(exp(x)^T 1)", "x", {}),
    ("tr(X^-1 A) + det(X)", "X", {}),
    ("||W2 tanh(W1 x) - y||^2", "W1", {}),
]


def sympy_value(expr: Expr, values: dict, sizes: dict) -> np.ndarray:
    """Substitute concrete values into the SymPy form of ``expr`` and evaluate it."""
    converted = to_sympy_matrix_expr(expr, sizes)
    subs = {}
    for sym in expr.free_symbols():
        value = np.asarray(values[sym.name], float)
        if sym.shape == (1, 1):
            subs[sympy.Symbol(sym.name, real=True)] = sympy.Float(float(value))
        else:
            value = value.reshape(value.shape[0], -1)
            subs[MatrixSymbol(sym.name, *value.shape)] = sympy.ImmutableMatrix(value)
    out = converted.xreplace(subs)
    out = out.replace(lambda a: isinstance(a, (OneMatrix, Identity)), lambda a: a.as_explicit())
    out = out.doit()
    return np.array(sympy.Matrix(out) if isinstance(out, MatrixExpr) or hasattr(out, "shape")
                    else [[out]], dtype=float)


@pytest.mark.parametrize("f, wrt, decls", CASES, ids=[c[0] for c in CASES])
def test_sympy_form_has_the_same_values(f: str, wrt: str, decls: dict) -> None:
    g = matcalc.grad(f, wrt, **decls)
    symbols = sorted(g.function.free_symbols() | g.expr.free_symbols(), key=lambda s: s.name)
    sizes = {}
    for sym in symbols:
        for d in sym.dims:
            if isinstance(d, str):
                sizes.setdefault(d, 2 + len(sizes))
    rng = np.random.default_rng(7)
    values = random_point(symbols, sizes, rng, positive=True)
    for name, sym in {s.name: s for s in symbols}.items():
        if "symmetric" in sym.props:
            values[name] = values[name] + values[name].T + 4 * np.eye(values[name].shape[0])
    for e in (g.function, g.expr):
        expected = np.asarray(evaluate(e, values, sizes), float)
        got = sympy_value(e, values, sizes)
        np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-8, atol=1e-10)


def test_derivative_to_sympy_is_built_on_matrix_symbols() -> None:
    result = matcalc.grad("||A x - b||_2^2", "x").to_sympy()
    assert isinstance(result, MatrixExpr)
    assert {s.name for s in result.free_symbols if isinstance(s, MatrixSymbol)} == {"A", "b", "x"}
    n, m = sympy.symbols("n m", integer=True, positive=True)
    A, b, x = MatrixSymbol("A", n, m), MatrixSymbol("b", n, 1), MatrixSymbol("x", m, 1)
    assert sympy.simplify(result - 2 * A.T * (A * x - b)) == sympy.ZeroMatrix(m, 1)
    assert result.shape == (m, 1)


def test_scalar_results_and_strings() -> None:
    assert to_sympy_matrix_expr("x^T A x") == sympy.Trace(
        MatrixSymbol("x", sympy.Symbol("n", integer=True, positive=True), 1).T
        * MatrixSymbol("A", *sympy.symbols("n n", integer=True, positive=True))
        * MatrixSymbol("x", sympy.Symbol("n", integer=True, positive=True), 1)
    )
    assert to_sympy_matrix_expr("alpha beta") == sympy.Symbol("alpha", real=True) * sympy.Symbol(
        "beta", real=True
    )


def test_unsupported_nodes_raise_a_matcalc_error() -> None:
    with pytest.raises(matcalc.UnsupportedError):
        to_sympy_matrix_expr("lambda_max(A)")
    with pytest.raises(matcalc.UnsupportedError):
        to_sympy_matrix_expr("||X||_2")
