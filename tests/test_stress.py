"""Stress suite: formula families grown in size, the reproducers of issue 12, threads.

Sizes are chosen to finish in seconds; growth ratios are measured in benchmarks/stress.py,
not here. Results are checked against closed forms derived by hand or finite differences.
A longer run: ``python benchmarks/stress.py --soak`` (larger sizes, every family).
"""

from __future__ import annotations

import sys
import threading

import pytest
from differentiable import check_gradient, check_hessian, check_jacobian

import matcalc
from matcalc.errors import MatcalcError, RewriteError, UnsupportedError


def nested_softmax(n: int) -> str:
    inner = "x"
    for _ in range(n):
        inner = f"softmax({inner})"
    return inner


def tanh_network(layers: int) -> str:
    """sum(h_L) with h_i = tanh(W_i h_(i-1)), written with where-bindings (any depth)."""
    chain = ", ".join(["h0 = x"] + [f"h{i} = tanh(W{i} h{i - 1})" for i in range(1, layers + 1)])
    sizes = ", ".join(["x: vector(n)"] + [f"W{i}: matrix(n, n)" for i in range(1, layers + 1)])
    return f"sum(h{layers}) where {chain}, {sizes}"


def _assert_checked(outcome) -> None:
    assert outcome.status == "checked", outcome.detail


@pytest.fixture
def no_recursion_limit_changes(monkeypatch):
    """Fail if anything raises (or lowers) the process-wide recursion limit."""
    def forbidden(limit: int) -> None:
        raise AssertionError(f"sys.setrecursionlimit({limit}) called")

    monkeypatch.setattr(sys, "setrecursionlimit", forbidden)


# ---------------------------------------------------------------------------- families


@pytest.mark.parametrize("k", [3, 50, 1000])
def test_matrix_power_closed_form(k: int) -> None:
    # d tr(X^k) = k tr(X^(k-1) dX), so the gradient is k (X^(k-1))^T
    assert str(matcalc.grad(f"tr(X^{k})", "X")) == f"{k} (X^T)^{k - 1}"


@pytest.mark.parametrize("k", [2, 20, 1000])
def test_negative_matrix_power_closed_form(k: int) -> None:
    # d tr(X^-k) = -k tr(X^(-k-1) dX): the gradient is -k (X^-T)^(k+1)
    assert str(matcalc.grad(f"tr(X^-{k})", "X")) == f"-{k} (X^-T)^{k + 1}"


def test_matrix_power_against_finite_differences() -> None:
    f = matcalc.parse("a^T X^7 b")
    _assert_checked(check_gradient(f, next(s for s in f.free_symbols() if s.name == "X")))


@pytest.mark.parametrize("n", [1, 4, 8])
def test_nested_softmax(n: int) -> None:
    f = matcalc.parse(f"y^T log({nested_softmax(n)})")
    x = next(s for s in f.free_symbols() if s.name == "x")
    outcome = check_gradient(f, x)
    _assert_checked(outcome)
    # one named softmax per level: the printed result grows linearly with n
    assert len(str(outcome.result)) < 120 * (n + 2)


def test_sixteen_nested_softmax_print_linearly() -> None:
    g = matcalc.grad(f"y^T log({nested_softmax(16)})", "x")
    assert len(str(g)) < 120 * 18


@pytest.mark.parametrize("n", [1, 3, 6])
def test_nested_softmax_jacobian(n: int) -> None:
    f = matcalc.parse(f"log({nested_softmax(n)})")
    _assert_checked(check_jacobian(f, next(s for s in f.free_symbols() if s.name == "x")))
    assert matcalc.jacobian(f, "x").check().passed


@pytest.mark.parametrize("n", [12, 16])
def test_deep_nested_softmax_jacobian_is_a_chain_of_shared_factors(n: int) -> None:
    # J = J_log J_n ... J_1 with J_k = diag(s_k) - s_k s_k^T: one factor per level, so the
    # printed Jacobian grows linearly (following every path through the forward differential
    # doubled it per level); checked against finite differences of the original formula
    f = matcalc.parse(f"log({nested_softmax(n)})")
    assert len(str(matcalc.jacobian(f, "x"))) < 60 * (n + 2)
    _assert_checked(check_jacobian(f, next(s for s in f.free_symbols() if s.name == "x")))


def test_long_elementwise_product() -> None:
    n = 128
    g = matcalc.grad("sum(" + " .* ".join(["x"] * n) + ")", "x")
    assert str(g) == f"{n} x.^{n - 1}"  # d/dx sum(x^n) = n x^(n-1), entrywise


def test_long_matrix_chain() -> None:
    sizes = ", ".join(f"A{i}: matrix(n, n)" for i in range(5))
    f = matcalc.parse("||" + " ".join(f"A{i}" for i in range(5)) + f" x||^2 where {sizes}")
    _assert_checked(check_gradient(f, next(s for s in f.free_symbols() if s.name == "x")))
    g = matcalc.grad("||" + " ".join(f"A{i}" for i in range(128)) + " x||^2", "x")
    assert g.shape == g.wrt.shape


def test_repeated_factor_chain() -> None:
    f = matcalc.parse("x^T " + " ".join(["A"] * 8) + " x")
    _assert_checked(check_gradient(f, next(s for s in f.free_symbols() if s.name == "A")))
    g = matcalc.grad("x^T " + " ".join(["A"] * 100) + " x", "A")
    assert len(g.expr.terms) == 100  # sum_i (A^T)^i x x^T (A^T)^(99-i)


def residual_network(layers: int) -> str:
    """h_i = h_(i-1) + tanh(W_i h_(i-1)): each h used twice, a tree of 2^L leaves."""
    chain = ", ".join(["h0 = x"] + [f"h{i} = h{i - 1} + tanh(W{i} h{i - 1})"
                                    for i in range(1, layers + 1)])
    sizes = ", ".join(["x: vector(n)"] + [f"W{i}: matrix(n, n)" for i in range(1, layers + 1)])
    return f"sum(h{layers}) where {chain}, {sizes}"


def test_shared_bindings_differentiate_as_a_dag() -> None:
    g = matcalc.grad(residual_network(40), "x")  # 2^40 leaves as a tree
    assert g.shape == g.wrt.shape and len(str(g)) < 20_000
    f = matcalc.parse(residual_network(4))
    _assert_checked(check_gradient(f, next(s for s in f.free_symbols() if s.name == "x")))


def test_doubling_bindings_stay_shared() -> None:
    # h_k = h_(k-1) ⊙ h_(k-1) = x.^(2^k): a tree of 2^40 leaves; d/dx sum(x^N) = N x^(N-1)
    chain = ", ".join(["h0 = x"] + [f"h{i} = h{i - 1} .* h{i - 1}" for i in range(1, 41)])
    g = matcalc.grad(f"sum(h40) where {chain}", "x")
    assert str(g) == f"{2 ** 40} x.^{2 ** 40 - 1}"


def test_deep_network_gradient_needs_no_recursion_limit(no_recursion_limit_changes) -> None:
    g = matcalc.grad(tanh_network(256), "x")
    assert g.shape == g.wrt.shape
    assert str(g) and g.latex() and g.text(bindings=False)
    assert "def f(" in g.to_source()
    f = matcalc.parse(tanh_network(24))
    _assert_checked(check_gradient(f, next(s for s in f.free_symbols() if s.name == "x")))


def test_deep_network_hessian(no_recursion_limit_changes) -> None:
    f = matcalc.parse(tanh_network(6))
    _assert_checked(check_hessian(f, next(s for s in f.free_symbols() if s.name == "x")))


def test_deep_expressions_print(no_recursion_limit_changes) -> None:
    from matcalc.expr import Kron, Symbol

    e = Symbol("x", ("n", 1))
    for _ in range(3000):
        e = Kron(e, Symbol("x", ("n", 1)))
    assert str(e).count("⊗") == 3000
    assert e.latex().count(r"\otimes") == 3000


# ---------------------------------------------------------------------------- reproducers

LOCATED = [
    "x^T x where x: vector(0.5)",
    "x^T x where x: vector(1e9)",
    "alpha + " + "1" * 4301,
    "1e400 x^T x",
    "x^T x where x:",
    "tr(X^{100000000000000000000})",
    "sum(" + " ⊗ ".join(["x"] * 300) + ")",
    "(" * 150 + "x" + ")" * 150 + " + " + "exp(" * 250 + "x" + ")" * 250,
]


@pytest.mark.parametrize("text", LOCATED, ids=[t[:24] for t in LOCATED])
def test_input_errors_are_located(text: str) -> None:
    with pytest.raises(MatcalcError) as info:
        matcalc.grad(text, "X" if "X" in text else "x")
    assert info.value.line is not None and info.value.column is not None


def test_rank_one_determinant_is_unsupported_not_a_failing_formula() -> None:
    # det(u u^T) = 0 for n >= 2: Jacobi's formula (with (u u^T)^-1) does not apply, and
    # with a symbolic size n = 1 (det = u^2) cannot be ruled out: the error names the reason
    with pytest.raises(UnsupportedError) as info:
        matcalc.grad("-det(u u^T)", "u")
    assert "`u u^T` has rank one" in info.value.message
    assert "is 0 for every size above 1" in info.value.message
    assert "vector(3)" in info.value.hint


def test_rank_one_determinant_of_a_declared_size_is_zero() -> None:
    # rank(u v^T) <= 1 < 3, so det(u v^T) = 0 and its gradient is the zero vector
    g = matcalc.grad("-det(u u^T) where u: vector(3)", "u")
    assert str(g) == "0" and g.check()
    f = matcalc.parse("det(A x y^T B) + x^T x where A: matrix(4, 4), B: matrix(4, 4)")
    assert str(matcalc.grad(f, "x")) == "2 x"  # det(A) det(x y^T B) = 0


def test_jacobian_of_scalar_in_a_matrix_checks() -> None:
    j = matcalc.jacobian("x^T X y", "X")
    assert str(j) == "vec(x y^T)^T"  # d(x^T X y) = (y ⊗ x)^T vec(dX)
    assert j.check()


def test_huge_numbers_never_reach_code_generation() -> None:
    g = matcalc.grad("1e300 x^T x", "x")
    assert "def f(" in g.to_source()


def test_runaway_ends_with_unsupported_error_naming_the_work() -> None:
    from matcalc.budget import derivation_budget

    # (3 000 of the 8 000 steps it needs: its canonical form, which the earlier tests of
    # this file leave cached, takes over 1 500 in a fresh process, before any softmax is
    # differentiated)
    with derivation_budget(steps=3_000), pytest.raises(UnsupportedError) as info:
        matcalc.grad(f"y^T log({nested_softmax(16)})", "x")
    assert "softmax" in str(info.value)


def untied_network(layers: int) -> str:
    chain = ", ".join(["h0 = x"] + [f"h{i} = tanh(W{i} h{i - 1})" for i in range(1, layers + 1)])
    return f"sum(h{layers}) where {chain}"


# Derivations whose work outgrows any budget linear in the input (their results have
# thousands of terms, or the Hessian of a deep network is quadratic in its depth); the time
# each takes to end is in benchmarks/stress.py ("runaways") and BENCHMARKS.md.
RUNAWAYS = [
    ("grad", "a^T X^10000 b", "X"),  # a sum of 10 000 terms
    ("jacobian", "X^10000", "X"),
    ("hessian", "x^T " + " ".join(["A"] * 100) + " x", "A"),  # 100^2 Kronecker terms
    ("hessian", untied_network(256), "x"),  # 5.8 kB of input
]


@pytest.mark.parametrize(("mode", "text", "wrt"), RUNAWAYS, ids=[r[1][:20] for r in RUNAWAYS])
def test_runaways_end_with_a_budget_that_grows_with_the_input(mode: str, text: str,
                                                             wrt: str) -> None:
    from matcalc.budget import BASE_STEPS, STEPS_PER_NODE, input_size

    with pytest.raises(RewriteError) as info:
        getattr(matcalc, mode)(text, wrt)
    allowed = BASE_STEPS + STEPS_PER_NODE * input_size(matcalc.parse(text))
    assert f"needs more than {allowed:,} steps" in str(info.value)
    assert "working on `" in str(info.value) and info.value.hint


def test_a_runaway_points_at_the_sub_formula_it_was_differentiating() -> None:
    from matcalc.errors import RewriteError

    with pytest.raises(RewriteError) as info:
        matcalc.grad("a^T X^10000 b", "X")  # d(X^10000) is a sum of 10 000 terms
    assert "while differentiating `X^10000`" in info.value.message
    assert (info.value.line, info.value.column) == (1, 5)


def test_the_budget_grows_with_the_input_unless_fixed() -> None:
    from matcalc.budget import BASE_STEPS, STEPS_PER_NODE, derivation_budget, input_size

    f = matcalc.parse(untied_network(40))
    # 41 bindings, each a node with its links: tanh, the product, W_i (h_0 = x is shared)
    assert input_size(f) > 40 * 4
    with derivation_budget() as budget:
        matcalc.grad(f, "x")
    assert budget.limit == BASE_STEPS + STEPS_PER_NODE * input_size(f)
    assert 0 < budget.used < budget.limit
    with derivation_budget(steps=10**7) as fixed:
        matcalc.grad(f, "x")
    # the same count, less what process-wide memo tables of pure functions kept from the
    # first run (the symmetry and sum tests): a repeated derivation never needs more
    assert fixed.limit == 10**7 and 0 < fixed.used <= budget.used


@pytest.mark.parametrize("steps", [300, 3_000, 12_000])
def test_a_spent_budget_is_never_mistaken_for_a_missing_rule(steps: int) -> None:
    # trying the next rule after the budget ran out would report "no differential rule
    # applies" (or fall back to another method) instead of the runaway
    from matcalc.budget import derivation_budget
    from matcalc.errors import RewriteError

    with derivation_budget(steps=steps), pytest.raises(RewriteError):
        matcalc.hessian(untied_network(8), "x")


def test_a_caller_can_allow_more_work_than_the_default_budget() -> None:
    # a 24-layer tanh Hessian needs a little more than the budget of its input: the error
    # says how to allow more, and inside a larger budget the Hessian derives and is right
    f = matcalc.parse(tanh_network(24))
    x = next(s for s in f.free_symbols() if s.name == "x")
    with pytest.raises(RewriteError) as info:
        matcalc.hessian(f, x)
    assert "matcalc.derivation_budget(steps=N)" in info.value.hint
    assert "--max-steps" in info.value.hint
    with matcalc.derivation_budget(steps=400_000) as budget:
        _assert_checked(check_hessian(f, x))
    assert budget.fixed and 0 < budget.used <= 400_000


def test_locating_a_runaway_does_not_print_every_written_sub_formula(monkeypatch) -> None:
    # the error's position is searched among the ~2000 sub-formulas of the text: they are
    # compared by tree size first, so the large ones are never printed (it took seconds)
    from matcalc.printing import text

    printed = []
    original = text.to_text
    monkeypatch.setattr(text, "to_text", lambda e, *a, **k: printed.append(e) or original(
        e, *a, **k))
    with pytest.raises(RewriteError):
        matcalc.hessian(untied_network(256), "x")
    assert len(printed) < 50


def test_messages_name_a_large_shared_expression_without_printing_its_tree() -> None:
    # residual bindings are a tree of 2^60 leaves: the excerpt must stay short (and quick)
    from matcalc.expr import Differential
    from matcalc.simplify import excerpt

    f = matcalc.parse(residual_network(60))
    assert len(excerpt(f)) < 120
    assert excerpt(Differential(f)).startswith("d(")


def test_deep_bindings_with_sums_differentiate_in_linear_work() -> None:
    # every layer has a sum (W h + b): the sums of the formula are compared with the result
    # through one memo table (a fresh one per sum was quadratic), and the test for a sum in
    # parentheses is iterative (it recursed once per layer: RecursionError at 300 layers)
    from matcalc.budget import derivation_budget

    def biased(layers: int) -> str:
        chain = ", ".join(["h0 = x"] + [f"h{i} = tanh(W h{i - 1} + b)"
                                        for i in range(1, layers + 1)])
        return f"sum(h{layers}) + x^T x where {chain}"

    used = []
    for layers in (50, 100):
        with derivation_budget() as budget:
            matcalc.grad(biased(layers), "x")
        used.append(budget.used)
    assert used[1] < 2.5 * used[0]  # linear in the depth, with slack for the fixed part
    g = matcalc.grad(biased(300), "x")
    assert g.shape == g.wrt.shape
    # the symmetry test of a deep matrix chain is a fold too (it recursed once per level)
    chain = ", ".join(["H0 = X"] + [f"H{i} = tanh(H{i - 1})" for i in range(1, 401)])
    with pytest.raises(UnsupportedError):  # Hadamard products of up to 400 factors
        matcalc.grad(f"tr(H400) where {chain}", "X")
    deep = matcalc.grad(f"tr(H150) where {chain}", "X")  # I ⊙ (1 - H1.^2) ⊙ ... ⊙ (1 - ...)
    assert deep.shape == deep.wrt.shape and str(deep).count("⊙ (1 - ") == 150
    f = matcalc.parse(biased(6) + ", x: vector(n), W: matrix(n, n), b: vector(n)")
    _assert_checked(check_gradient(f, next(s for s in f.free_symbols() if s.name == "x")))


@pytest.mark.parametrize("k", [-3, 2, 5])
def test_trace_of_a_power_against_finite_differences(k: int) -> None:
    # d tr(X^k) = k tr(X^(k-1) dX) (Matrix Cookbook eq. 121), one term for any integer k
    f = matcalc.parse(f"tr(X^{k})")
    _assert_checked(check_gradient(f, next(iter(f.free_symbols()))))
    _assert_checked(check_hessian(f, next(iter(f.free_symbols()))))


# ---------------------------------------------------------------------------- threads

FORMULAS = [
    ("||A x - b||_2^2", "x"), ("tr(X^20)", "X"), (f"y^T log({nested_softmax(6)})", "x"),
    ("logdet(X^T X)", "X"), (tanh_network(12), "x"), ("x^T A x where A: symmetric", "x"),
]


def test_eight_threads_derive_at_once() -> None:
    expected = [str(matcalc.grad(f, w)) for f, w in FORMULAS]
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            order = FORMULAS[i % len(FORMULAS):] + FORMULAS[:i % len(FORMULAS)]
            got = {f: str(matcalc.grad(f, w)) for f, w in order}
            results[i] = [got[f] for f, _ in FORMULAS]
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(results[i] == expected for i in range(8))


def test_a_formula_whose_bindings_double_prints_with_where_bindings() -> None:
    """Twenty doubling bindings are a tree of 2^20 leaves: str() and latex() name the shared
    parts (a where clause) instead of spelling out the tree, and the text parses back."""
    chain = ", ".join(f"h{i} = h{i - 1} .* h{i - 1}" for i in range(1, 21))
    e = matcalc.parse(f"sum(h20) where h0 = x, {chain}")
    text = str(e)
    assert " where " in text and len(text) < 2000
    assert matcalc.parse(text) == e
    assert r"\text{where}" in e.latex() and len(e.latex()) < 4000


def test_a_differential_of_a_deep_expression_prints(no_recursion_limit_changes) -> None:
    # d(tanh(W400 tanh(...))) of a deep network: the printer's iterative fallback must enter
    # the differential's variable too (a spent budget's message names such differentials)
    from matcalc.expr import Differential
    from matcalc.simplify import excerpt

    f = matcalc.parse(untied_network(400))
    inner = f.args[0]  # h400 = tanh(W400 h399), 400 levels deep
    text = str(Differential(inner))
    assert text.startswith("d(tanh(W400 tanh(W399 ") and text.count("tanh(") == 400
    assert excerpt(Differential(inner)).startswith("d(tanh(W400 ")


def test_a_spent_budget_ends_the_work_at_once() -> None:
    # d(X^10000) is a sum of 10 000 terms built by a Python rule and then traversed: the
    # budget ends it at the next node built or visited (it ran 60 000 steps past its limit
    # when only the simplifier and the pattern rules could stop a derivation)
    from matcalc.budget import derivation_budget

    with derivation_budget(steps=20_000) as budget, pytest.raises(RewriteError) as info:
        matcalc.grad("a^T X^10000 b", "X")
    assert 0 < budget.used - budget.limit < 1_000
    assert "working on `" in info.value.message


def test_work_outside_the_derivation_is_not_counted() -> None:
    # loading rule files on first use (or describing a spent budget) runs unbudgeted, so a
    # derivation needs the same steps whatever the process loaded before
    from matcalc.budget import derivation_budget, tally, unbudgeted

    with derivation_budget(steps=100) as budget:
        with unbudgeted():
            tally(10**9)
        assert budget.used == 0
        with pytest.raises(RewriteError):
            tally(101)
