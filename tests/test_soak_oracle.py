"""The soak's oracle (tests/differentiable.py, tests/high_precision.py) can tell right from wrong.

Float64 central differences are the soak's first reference; where they disagree with a
result, a reference at 60 digits decides. These tests pin that second reference down: it
agrees with float64 finite differences where those are accurate, it rejects results that
are slightly wrong, and it decides the two ill-conditioned points the 10,000-case soak
flagged (seed 1, ``--mode all``) in favour of the formula.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import high_precision
import numpy as np
import pytest
from differentiable import (
    _ORACLES,
    SIZES,
    _at_high_precision,
    _finite_differences,
    _python_names,
    check_derivative,
    check_gradient,
    check_hessian,
    check_jacobian,
)
from high_precision import directional_errors

import matcalc
from matcalc.expr import Mul, Number
from matcalc.numeric import random_point

WELL_CONDITIONED = [  # (mode, formula, variable, declarations)
    ("grad", "lambda_max(S) + tr(S^2)", "S", {"S": "symmetric matrix(n, n)"}),
    ("grad", "||X||_2 + ||X||_* + logdet(I + X^T X)", "X", {"X": "matrix(m, n)"}),
    ("derivative", "eigvec_max(A + A^T)", "A", {"A": "matrix(n, n)"}),
    ("derivative", "svec_left(X) + X svec_right(X)", "X", {"X": "matrix(m, n)"}),
    ("derivative", "softmax(W x)", "x", {"W": "matrix(m, n)"}),
    ("hessian", "logdet(X) + tr(X^-1)", "X", {"X": "matrix(n, n)"}),
    ("hessian", "alpha^3 + exp(alpha) sin(alpha)", "alpha", {}),
]


def _setting(mode: str, text: str, wrt: str, decls: dict):
    derive = {"grad": matcalc.grad, "derivative": matcalc.derivative,
              "hessian": matcalc.hessian}[mode]
    result = derive(text, wrt, **decls)
    symbols = sorted(result.function.free_symbols() | {result.wrt}, key=lambda s: s.name)
    point = random_point(symbols, SIZES, np.random.default_rng(7))
    if "X" in point and np.shape(point["X"]) == (2, 2):  # keep X well away from singular
        point["X"] = point["X"] + 4 * np.eye(2)
    oracle = _ORACLES[mode]
    fd = _finite_differences(result.function, result.wrt, point, oracle, oracle.steps[0])
    got = np.asarray(result.to_numpy()(**_python_names(point)), dtype=float).reshape(fd.shape)
    return result, point, oracle, fd, got


def _relative(errors):
    return max(error / scale for error, scale in errors)


@pytest.mark.parametrize(("mode", "text", "wrt", "decls"), WELL_CONDITIONED)
def test_the_reference_agrees_with_accurate_finite_differences(mode, text, wrt, decls):
    result, point, oracle, fd, got = _setting(mode, text, wrt, decls)
    rng = np.random.default_rng(0)
    args = (result.function, result.wrt, point, SIZES, oracle.mode)
    assert _relative(directional_errors(*args, fd, rng)) < 1e-5  # float64 differences
    assert _relative(directional_errors(*args, got, rng)) < 1e-9  # the result's code


@pytest.mark.parametrize(("mode", "text", "wrt", "decls"), WELL_CONDITIONED)
def test_the_reference_rejects_a_slightly_wrong_result(mode, text, wrt, decls):
    result, point, oracle, _, got = _setting(mode, text, wrt, decls)
    wrong = got.copy()
    wrong.flat[np.argmax(np.abs(wrong))] *= 1.01  # one entry off by 1 %
    rng = np.random.default_rng(0)
    assert _relative(directional_errors(result.function, result.wrt, point, SIZES,
                                        oracle.mode, wrong, rng)) > oracle.tolerance[0]
    right, figures = _at_high_precision(result.function, result.wrt, result, point, oracle,
                                        wrong, seed=0)
    assert not right and "float64 code" in figures
    scaled = Mul((Number(Fraction(1001, 1000)), result.expr))  # a formula off by 0.1 %
    right, figures = _at_high_precision(result.function, result.wrt,
                                        replace(result, expr=scaled), point, oracle, got, seed=0)
    assert not right and float(figures.split("the formula is off by ")[1].split(",")[0]) > 1e-4


def test_an_ill_conditioned_soak_point_is_decided_at_high_precision():
    # (I + M^T M)^-2 with cond(I + M^T M) = 1.6e5 and 4e5: float64 differences are 10 %
    # off on a small entry; the formula and its float64 code agree with the reference
    # the soak's case seed 1007013 (written out: the generator draws other expressions
    # from that seed as it learns new operators; the point is drawn from the seed)
    f = matcalc.parse("sign((-J).^3) - (I + ((-C) (J ⊙ J ⊙ Q))^T ((-C) (J ⊙ J ⊙ Q)))^-2",
                      J="matrix(p, p)", C="matrix(n, p)", Q="symmetric matrix(p, p)")
    wrt = next(s for s in f.free_symbols() if s.name == "J")
    outcome = check_derivative(f, wrt, seed=1007013)
    assert outcome.status == "checked", outcome.detail
    assert outcome.high_precision >= 1  # float64 finite differences disagreed
    assert "the formula is off by" in outcome.detail
    formula_error = float(outcome.detail.split("the formula is off by ")[1].split(",")[0])
    assert formula_error < 1e-12


def test_the_eigenvector_derivative_keeps_float64_accuracy_with_a_dominant_eigenvalue():
    # eigvec_max(Q + E^T E) with eigenvalues 6.6e4 and 6.6 to 18 (soak, case seed 1001172):
    # as (lambda I - A + v v^T)^-1 - v v^T the code lost 2e-5 of the Jacobian's scale;
    # projecting first, (lambda I - A + v v^T)^-1 (I - v v^T), it agrees with finite
    # differences and with the 60-digit reference to about 1e-10
    # written out: the generator draws other expressions from that seed as it learns new
    # operators (the point is drawn from the seed)
    f = matcalc.parse("eigvec_max(Q + (-exp(r h_j^T J).^beta)^T (-exp(r h_j^T J).^beta))",
                      r="probability vector(m)", beta="scalar", Q="symmetric matrix(p, p)",
                      J="matrix(p, p)", h_j="vector(p)")
    wrt = next(s for s in f.free_symbols() if s.name == "r")
    outcome = check_jacobian(f, wrt, seed=1001172)
    assert outcome.status == "checked" and outcome.high_precision == 0, outcome.detail
    oracle = _ORACLES["jacobian"]
    symbols = sorted(f.free_symbols() | outcome.result.expr.free_symbols() | {wrt},
                     key=lambda s: s.name)
    rng = np.random.default_rng(1001172)
    for _ in range(2):
        point = random_point(symbols, SIZES, rng)
        got = np.asarray(outcome.result.to_numpy()(**_python_names(point)), dtype=float)
        errors = directional_errors(f, wrt, point, SIZES, oracle.mode, got,
                                    np.random.default_rng(0))
        assert _relative(errors) < 1e-8  # (lambda I - A + v v^T)^-1 - v v^T: 2e-5


@pytest.mark.parametrize(("text", "decls", "case_seed"), [
    # piecewise linear: their Hessians are 0 (soak seed 1)
    ("min(u / exp(alpha))", {"u": "vector(p)"}, 1006594),
    ("-max(r)", {"r": "probability vector(m)"}, 1008690),
])
def test_a_zero_derivative_is_compared_with_the_references_own_rounding(text, decls,
                                                                       case_seed):
    f = matcalc.parse(text, **decls)
    wrt = next(s for s in f.free_symbols() if s.name in decls)
    outcome = check_hessian(f, wrt, seed=case_seed)
    assert outcome.status == "checked", outcome.detail
    assert str(outcome.result) == "0"


def test_a_unit_vector_whose_sign_convention_jumps_is_not_checkable():
    # the left singular vector of sign(y) y^T A is sign(y) / sqrt(n): its entries tie in
    # magnitude, so the sign convention (largest entry positive) jumps under any
    # perturbation; svec_right(.) has no derivative there, and neither oracle is one
    f = matcalc.parse("sum(svec_right(sign(y) y^T log(exp(A))))", y="vector(n)",
                      A="matrix(n, m)")
    wrt = next(s for s in f.free_symbols() if s.name == "y")
    assert check_gradient(f, wrt, seed=1004515).status == "skipped"


def test_the_reference_evaluates_constants_such_as_exp_of_a_number():
    # soak seed 2, --mode all, case seed 2004346: f reaches 4e5, so only the 60-digit
    # reference can decide; the constant exp(3) reached mpmath as the symbol exp(-12) inside
    # a SymPy expression ("cannot create mpf") and the soak counted the result wrong
    f = matcalc.parse("lambda_max(exp(G ⊙ G ⊙ K) ./ (1 + ((W_k / exp(3))^T (W_k / exp(3))).^2)"
                      " + (exp(G ⊙ G ⊙ K) ./ (1 + ((W_k / exp(3))^T (W_k / exp(3))).^2))^T)",
                      G="matrix(n, n)", K="matrix(n, n)", W_k="matrix(m, n)")
    wrt = next(s for s in f.free_symbols() if s.name == "K")
    outcome = check_gradient(f, wrt, seed=2004346)
    assert outcome.status == "checked" and outcome.high_precision >= 1, outcome.detail


def test_a_point_where_f_has_no_float64_value_is_passed_over():
    # soak seed 2, case seed 2007919 (svec_left(log(exp((Q ⊙ J)^3))): the float64 SVD of an
    # argument that overflowed raised LinAlgError inside the oracle, counted as a crash;
    # sqrt(-exp(Q)) is NaN at every point, so the SVD fails at every point and none is
    # checkable
    f = matcalc.parse("svec_left(sqrt(-exp(Q)))", Q="matrix(n, n)")
    wrt = next(s for s in f.free_symbols() if s.name == "Q")
    assert check_jacobian(f, wrt, seed=0).status == "skipped"


def test_a_jump_of_sign_within_the_references_rounding_is_not_checkable():
    # soak seed 3, case seed 3004679: sylvester(G, G, G) = I/2 for every G, so
    # sign(sylvester(G, G, G)) is constant and its derivative 0; at 60 digits the
    # off-diagonal zeros come out as +-1e-60 and their signs flip at random, so the
    # reference called the right result wrong. On a jump the reference cannot decide.
    f = matcalc.parse("sign(sylvester(G, G, G))", G="matrix(n, n)")
    wrt = next(s for s in f.free_symbols() if s.name == "G")
    outcome = check_derivative(f, wrt, seed=3004679)
    assert outcome.status == "skipped" and str(outcome.result) == "0", outcome.detail


def test_a_reference_too_coarse_for_f_is_computed_again_finer():
    # soak seed 4, case seed 4008110: cos(polar(.) / exp(-15 w1^T w1)) varies on a scale
    # of 1e-19 in B, so the 60-digit reference with steps of 1e-20 was 4 % off and called
    # the right derivative wrong; at 120 digits with steps of 1e-45 the formula agrees to
    # 1e-16. The float64 value of f is noise there too (cos of an argument of 1e19), so no
    # float64 code can be compared: the point is not checkable, not wrong
    f = matcalc.parse("cos(polar(B + tanh(B ⊙ W_k) / 4) / exp(-5 w1^T 3 w1))",
                      B="matrix(m, n)", W_k="matrix(m, n)", w1="vector(m)")
    wrt = next(s for s in f.free_symbols() if s.name == "B")
    outcome = check_derivative(f, wrt, seed=4008110)
    assert outcome.status in ("checked", "skipped"), outcome.detail
    symbols = sorted(f.free_symbols() | {wrt}, key=lambda s: s.name)
    point = random_point(symbols, SIZES, np.random.default_rng(4008110))
    claimed = high_precision.evaluate(outcome.result.expr, point, SIZES)
    with high_precision.finer():
        errors = directional_errors(f, wrt, point, SIZES, "derivative", claimed,
                                    np.random.default_rng(0))
    assert _relative(errors) < 1e-12


@pytest.mark.parametrize("text, wrt, decls, check", [
    # soak seed 4, --mode all: polar(J + 1/4) through tanh(sqrt(exp(7e86))) = tanh(inf)
    ("polar(J + tanh(sqrt(exp(sqrt(exp(J^3))))) / 4)", "J", {"J": "matrix(n, n)"},
     check_derivative),
    ("tanh(exp(exp(x^T x + 10)))", "x", {"x": "vector(n)"}, check_gradient),
])
def test_a_nan_where_an_intermediate_of_f_overflows_is_a_limit_of_float64(text, wrt, decls,
                                                                         check):
    # d tanh(u) = (1 - tanh(u)^2) du with u = inf: 0 * inf, NaN in float64 (JAX's and
    # PyTorch's gradients too) though the derivative is finite: not checkable, not wrong
    f = matcalc.parse(text, **decls)
    outcome = check(f, next(s for s in f.free_symbols() if s.name == wrt), seed=0)
    assert outcome.status == "skipped", outcome.detail
    assert "overflows" in outcome.detail


def test_a_nan_where_f_does_not_overflow_is_wrong(monkeypatch):
    f = matcalc.parse("x^T x", x="vector(n)")
    x = next(iter(f.free_symbols()))
    nan_everywhere = matcalc.grad("x^T x + sqrt(-exp(x^T x))", "x")
    monkeypatch.setattr(matcalc, "grad", lambda *_: nan_everywhere)
    outcome = check_gradient(f, x, seed=1)
    assert outcome.status == "wrong" and "not finite" in outcome.detail


def test_the_eigenvector_derivative_keeps_float64_accuracy_at_any_scale():
    # soak seed 6, case seed 6001345: the Hessian of lambda_max(P + ((P^T P).^3)^2 ...) at
    # a point where the eigenvalues are 8e12, 9e14 and 2.6e17. (lambda I - A + u u^T)^-1
    # (Cookbook eq. 68) lost u u^T beside entries of 1e17: its float64 code was 89 % off,
    # the formula exact. The shift ||A||_F u u^T scales with A: the code agrees with the
    # 120-digit reference to about 1e-15 (JAX's float64 Hessian is NaN there)
    f = matcalc.parse("lambda_max(P + (((P^T P).^3)^2)^T ((P^T P).^3)^2)",
                      P="symmetric matrix(m, m)")
    outcome = check_hessian(f, next(iter(f.free_symbols())), seed=6001345)
    assert outcome.status == "checked", outcome.detail
    assert "||" in str(outcome.result)


def test_a_reference_that_has_not_converged_decides_nothing():
    # soak seed 7, case seed 7010007: log(2 + cos(sqrt(exp(exp(H^T))))) at H_33 = 5.56,
    # where r = sqrt(exp(exp(H_33))) is 1e56 and f varies on a scale of 1e-58 in H: even
    # steps of 1e-45 are not small, and the 120-digit reference called the right formula
    # wrong (off by 1). At 240 digits with steps of 1e-90 the formula agrees; f's own
    # float64 value is noise there (cos of 1e56), so the point is not checkable, not wrong
    f = matcalc.parse("log(2 + cos(sqrt(exp(exp(H^T)))))", H="matrix(m, m)")
    wrt = next(iter(f.free_symbols()))
    outcome = check_derivative(f, wrt, seed=7010007)
    assert outcome.status in ("checked", "skipped"), outcome.detail
    point = random_point([wrt], SIZES, np.random.default_rng(7010007))
    claimed = high_precision.evaluate(outcome.result.expr, point, SIZES)
    with high_precision.finer(2):
        errors = directional_errors(f, wrt, point, SIZES, "derivative", claimed,
                                    np.random.default_rng(0))
    assert _relative(errors) < 1e-12


def test_the_reference_evaluates_max_at_a_tie():
    # soak seed 9, case seed 9003274: max(sign(svec_right(J))) ties (entries +-1), and the
    # checker's SymPy form of max refuses a tie (no derivative there), so the reference
    # could not evaluate f and the oracle called a right Hessian wrong. The value of max is
    # continuous at a tie: the reference computes it
    assert high_precision.evaluate(matcalc.parse("max(sign(a))"),
                                   {"a": np.array([1.0, 2.0, -1.0])}, SIZES)[0, 0] == 1.0
    f = matcalc.parse("(sqrt(exp(sum(Q))) ⊙ ||sqrt(1 + W_k.^2)||_2 ⊙ softplus(||k||)) ⊙ "
                      "max(sign(svec_right(J)))", Q="symmetric matrix(p, p)",
                      W_k="matrix(m, n)", k="probability vector(p)", J="matrix(p, p)")
    outcome = check_hessian(f, next(s for s in f.free_symbols() if s.name == "Q"),
                            seed=9003274)
    assert outcome.status == "checked", outcome.detail
