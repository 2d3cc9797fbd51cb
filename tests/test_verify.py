"""Tests of the SymPy entrywise derivative checks."""

from __future__ import annotations

import pytest
import sympy

import matcalc
from matcalc.dims import dim_value
from matcalc.errors import ShapeError, UnsupportedError
from matcalc.expr import Symbol
from matcalc.verify import (
    check_derivative,
    concrete_sizes,
    constraints,
    instantiate,
    to_sympy,
)

PASSING = [
    ("x^T A x", "x", "(A + A^T) x", "grad", {}),
    ("x^T A x", "x", "2 A x", "grad", {"A": "symmetric matrix"}),
    ("||A x - b||_2^2", "x", "2 A^T (A x - b)", "grad", {}),
    ("logdet(X) where X: symmetric", "X", "X^-1", "grad", {}),
    ("logdet(X)", "X", "(X^-1)^T", "grad", {}),
    ("log(exp(x)^T 1)", "x", "softmax(x)", "grad", {}),
    ("softmax(x)", "x", "diag(s) - s s^T where s = softmax(x)", "jacobian", {}),
    ("x^T A x", "x", "A + A^T", "hessian", {}),
    ("logsumexp(x)", "x", "diag(s) - s s^T where s = softmax(x)", "hessian", {}),
    ("tr(A X B)", "X", "A^T B^T", "grad", {}),
    ("A X B", "X", "kron(B^T, A)", "derivative", {}),
    ("x^T A x", "A", "x x^T", "grad", {"A": "symmetric matrix"}),
    ("-y^T log(softmax(W^T x))", "W", "x (softmax(W^T x) - y)^T", "grad",
     {"y": "probability vector"}),
    ("sum(relu(A x))", "x", "A^T sign(relu(A x))", "grad", {}),
    ("log(1 + exp(-y w^T x))", "w", "-y sigma(-y w^T x) x", "grad", {"y": "scalar"}),
    ("x^T x", "y", "0", "grad", {}),
]


@pytest.mark.parametrize(("f", "wrt", "result", "mode", "decls"), PASSING)
def test_correct_derivatives_pass(f, wrt, result, mode, decls):
    report = check_derivative(f, wrt, result, mode, **decls)
    assert report, str(report)
    assert report.method in ("exact", "numeric")


def test_polynomial_identity_is_proved_exactly():
    report = check_derivative("||A x - b||_2^2", "x", "2 A^T (A x - b)")
    assert report.ok and report.method == "exact"
    assert str(report).startswith("passed (exact")


def test_wrong_gradient_fails_and_names_the_entry():
    report = check_derivative("x^T A x", "x", "A x")
    assert not report
    assert report.index is not None
    assert report.expected != report.got
    assert f"entry {report.index}" in str(report)
    assert "FAILED" in str(report)


def test_missing_factor_two_fails():
    report = check_derivative("||A x - b||_2^2", "x", "A^T (A x - b)")
    assert not report
    assert report.index is not None
    expected, got = float(report.expected), float(report.got)
    assert expected == pytest.approx(2 * got)


def test_symmetric_convention_distinguishes_inverse_from_its_transpose():
    assert not check_derivative("logdet(X)", "X", "X^-1")
    assert check_derivative("logdet(X) where X: symmetric", "X", "X^-1")


def test_wrong_hessian_fails():
    assert not check_derivative("x^T A x", "x", "2 A", "hessian")


@pytest.mark.parametrize("mode", ["grad", "hessian"])
def test_a_point_on_a_kink_is_passed_over(mode):
    # the small rational points put sum(w) on 0 (w = [1, -1]), where relu has no
    # derivative: central differences there give 1/2 (and a spike for a Hessian), which
    # made .check() call the right result wrong; one-sided differences see the kink
    f = "relu(sum(w)) + relu(mean(w^T))"
    assert getattr(matcalc, mode)(f, "w").check()


def test_a_wrong_result_of_a_kinked_function_still_fails():
    # d relu(s) = step(s) ds: twice that is wrong wherever step(s) = 1
    assert not check_derivative("relu(sum(w))", "w", "2 step(sum(w)) 1")
    assert check_derivative("relu(sum(w))", "w", "step(sum(w)) 1")


def test_probability_constraint_is_respected():
    # 1^T y = 1 makes x softmax(W^T x)^T - x y^T the gradient; without it the check fails.
    f = "-y^T log(softmax(W^T x))"
    assert check_derivative(f, "W", "x softmax(W^T x)^T - x y^T", y="probability vector")
    assert not check_derivative(f, "W", "x softmax(W^T x)^T - x y^T")


def test_transposed_result_is_a_shape_failure():
    report = check_derivative("tr(A X B)", "X", "B A")
    assert not report
    assert "shape" in str(report)


def test_spectral_functions_use_finite_differences():
    report = check_derivative("lambda_max(A) where A: symmetric", "A",
                              "eigvec_max(A) eigvec_max(A)^T")
    assert report and report.method == "numeric"
    assert "finite differences" in str(report)
    assert check_derivative("||X||_2", "X", "svec_left(X) svec_right(X)^T")
    assert not check_derivative("||X||_2", "X", "2 svec_left(X) svec_right(X)^T")


def test_wrong_commutation_fails():
    assert not check_derivative("vec(X^T)", "X", "I", "derivative")


def test_mode_errors():
    with pytest.raises(ShapeError):
        check_derivative("A x", "x", "A", "grad")
    with pytest.raises(UnsupportedError):
        check_derivative("x^T x", "x", "2 x", "gradient")


def test_concrete_sizes_are_distinct_and_follow_names():
    f = matcalc.parse("||A x - b||_2^2")
    sizes = concrete_sizes([f])
    assert sorted(sizes.values()) == [2, 3]
    kron = matcalc.parse("kron(A, B) x")
    sizes = concrete_sizes([kron])
    x = next(s for s in kron.free_symbols() if s.name == "x")
    a, b = (next(s for s in kron.free_symbols() if s.name == n) for n in "AB")
    assert dim_value(x.dims[0], sizes) == sizes[a.dims[1]] * sizes[b.dims[1]]


def test_instantiate_and_constraints():
    sym = Symbol("S", ("n", "n"), frozenset({"symmetric"}))
    prob = Symbol("y", ("n", 1), frozenset({"probability"}))
    env = instantiate([sym, prob], {"n": 3})
    assert env["S"] == env["S"].T
    assert env["S"].shape == (3, 3) and env["y"].shape == (3, 1)
    subs = constraints([prob], {"n": 3})
    assert sympy.simplify(sum(env["y"]).xreplace(subs)) == 1


def test_to_sympy_matches_explicit_formula():
    e = matcalc.parse("x^T A x + sum(exp(x))")
    sizes = concrete_sizes([e])
    env = instantiate(e.free_symbols(), sizes)
    x, a = env["x"], env["A"]
    want = (x.T * a * x)[0, 0] + sum(sympy.exp(v) for v in x)
    got = to_sympy(e, env, sizes)
    assert got.shape == (1, 1)
    assert sympy.simplify(got[0, 0] - want) == 0


def test_check_runs_in_a_worker_thread():
    """No signal or timer: a check (exact proof included) works off the main thread."""
    import threading

    reports = {}

    def work():
        reports["exact"] = check_derivative("||A x - b||_2^2", "x", "2 A^T (A x - b)")
        reports["wrong"] = check_derivative("x^T A x", "x", "A x")

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert reports["exact"].ok and reports["exact"].method == "exact"
    assert not reports["wrong"]


def test_large_problem_stays_numeric_and_locates_a_wrong_entry():
    """Beyond the exact phase's size bound the points decide, and still name the entry."""
    good = check_derivative("||A X B - C||_F^2", "X", "2 A^T (A X B - C) B^T")
    assert good.ok and good.method == "numeric"
    bad = check_derivative("||A X B - C||_F^2", "X", "2 A^T (A X B - C) B^T + X")
    assert not bad and bad.index is not None
    assert float(bad.expected) != pytest.approx(float(bad.got))


def test_symbolic_tree_sizes_are_counted_over_the_shared_dag():
    from matcalc.verify.exact import _BoundedAlgebra

    x, y = sympy.symbols("x y")
    e = x
    for _ in range(60):  # each level uses the previous twice: 2^60 nodes as a tree
        e = sympy.Add(e, sympy.Mul(e, y, evaluate=False), evaluate=False)
    size = _BoundedAlgebra().tree_size(e)  # (not in the assert: printing e never ends)
    assert size == 4 * 2**60 - 3  # T(k) = 2 T(k-1) + 3, T(0) = 1


def test_deep_nested_softmax_is_checked_numerically_without_a_symbolic_blowup():
    # each softmax level repeats the entries below it several times in SymPy's tree: the
    # proof stops at the first intermediate value past its bound instead of building the
    # exponential tree first (16 levels took over a minute), and the points still check
    inner = "x"
    for _ in range(16):
        inner = f"softmax({inner})"
    report = matcalc.jacobian(f"log({inner})", "x").check()
    assert report.passed and report.method == "numeric"
