"""Generated code reads as written by hand: inspected in the source, not timed."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_codegen import CASES
from test_operators import HESSIANS

import matcalc
from matcalc.printing.codegen import to_source

_FACTORISING = re.compile(
    r"(np\.linalg\.inv|np\.linalg\.solve|np\.linalg\.slogdet|np\.linalg\.det|"
    r"scipy\.linalg\.lu_factor|scipy\.linalg\.cho_factor)\((\w+)")


def _sources():
    for f, wrt, decls in CASES:
        yield f"grad {f} d/d{wrt}", matcalc.grad(f, wrt, **decls).to_source()
    for f, wrt, decls in HESSIANS:
        yield f"hessian {f} d/d{wrt}", matcalc.hessian(f, wrt, **decls).to_source()
        yield f"hvp {f} d/d{wrt}", matcalc.hvp(f, wrt, **decls).to_source()


SOURCES = list(_sources())


def test_least_squares_gradient_reads_as_written():
    source = matcalc.grad("||A x - b||_2^2", "x").to_source()
    body = source.split('"""')[-1]
    plain = "return 2.0 * (A.T @ (A @ x - b))" in body
    named = "r = A @ x - b" in body and "return 2.0 * (A.T @ r)" in body
    assert plain or named, source


@pytest.mark.parametrize("label, source", SOURCES, ids=[s[0] for s in SOURCES])
def test_no_dense_diagonal_kronecker_or_second_factorisation(label, source):
    body = source.split('"""')[-1]
    assert "np.kron" not in body
    assert not re.search(r"np\.diag\(|np\.diagflat\(", body)
    # the identity only as the right-hand side that turns LU factors into an inverse
    assert "np.eye(" not in re.sub(r"lu_solve\(\w+, np\.eye\(", "", body), source
    factorised = [m.group(2) for m in _FACTORISING.finditer(body)]
    repeated = {name for name in factorised if factorised.count(name) > 1}
    assert not repeated, f"{label}: {sorted(repeated)} factorised twice\n{source}"


@pytest.mark.parametrize("label, source", SOURCES, ids=[s[0] for s in SOURCES])
def test_no_compiler_artifacts(label, source):
    body = source.split('"""')[-1]
    assert not re.search(r"\bt\d+\b", body), source  # temporaries are named after meaning
    assert not re.search(r"\(-1\.0\) \*(?!\*)", body) and "[0, 0]" not in body, source
    assert not re.search(r"\bif\b.*:\s*$", body, re.M), source  # no run-time branches
    assert not re.search(r"\b(\w+) / \1\b(?![.(\[])", body), source  # no p / p


def test_one_factorisation_serves_every_solve_and_log_determinant():
    d = matcalc.grad("logdet(S) + (x - m)^T S^-1 (x - m)", "S")
    source = d.to_source(with_value=True)
    assert source.count("lu_factor(S)") == 1, source
    assert "inv(" not in source and "slogdet" not in source, source
    fn = d.to_function(with_value=True)
    rng = np.random.default_rng(0)
    q = rng.normal(size=(6, 6))
    s, x, m = q @ q.T + 6 * np.eye(6), rng.normal(size=6), rng.normal(size=6)
    value, grad = fn(S=s, m=m, x=x)
    r = x - m
    assert value == pytest.approx(np.linalg.slogdet(s)[1] + r @ np.linalg.solve(s, r))
    inv = np.linalg.inv(s)
    np.testing.assert_allclose(grad, inv.T - np.outer(inv.T @ r, inv @ r), rtol=1e-9)


def test_symmetric_products_for_symmetric_results():
    logistic = matcalc.hessian("-y^T log(sigma(X w)) - (1 - y)^T log(1 - sigma(X w))", "w")
    body = logistic.to_source()
    assert re.search(r"(\w+) = \w+\[:, None\] \* X", body) and "Z.T @ Z" in body, body
    lse = matcalc.hessian("logsumexp(A x)", "x").to_source()
    assert "Z.T @ Z" in lse and "np.outer(g, g)" in lse, lse


def test_weights_of_unknown_sign_scale_one_side():
    source = to_source(matcalc.parse("X^T diag(w) X"))
    assert "sqrt" not in source, source
    assert "w[:, None] * X" in source or "X.T * w" in source, source


def test_declared_sizes_are_literals_and_sum_of_ones_is_a_sum():
    source = to_source(matcalc.parse("1^T y + ones where y: vector(3), ones: scalar"))
    assert "y.sum()" in source and "np.ones" not in source, source
    source = matcalc.grad("x^T x", "x", x="vector(3)").to_source()
    assert ".shape[" not in source.split('"""')[-1], source


def test_a_scalar_times_ones_in_a_sum_broadcasts():
    """X w + beta 1 adds the scalar beta (NumPy broadcasts it); no vector of ones is formed
    and multiplied, one pass over the entries fewer in every logistic-regression gradient."""
    source = to_source(matcalc.parse("X w + beta 1 - 2 c 1 where c: scalar"))
    assert "np.ones" not in source, source
    namespace: dict = {}
    exec(source, namespace)  # the generated module, as a user would import it
    rng = np.random.default_rng(5)
    X, w = rng.standard_normal((4, 3)), rng.standard_normal(3)
    out = namespace["f"](X=X, w=w, beta=0.5, c=2.0)
    np.testing.assert_allclose(np.ravel(out), X @ w + 0.5 - 4.0)
    # alone, c 1 is still the vector it stands for
    namespace = {}
    exec(to_source(matcalc.parse("beta 1 + v where v: vector(3)")), namespace)
    np.testing.assert_allclose(np.ravel(namespace["f"](beta=2.0, v=np.zeros(3))), [2.0] * 3)


def test_positive_definite_declaration_shares_one_cholesky():
    d = matcalc.grad("logdet(S) + (x - m)^T S^-1 (x - m)", "S", S="positive definite matrix")
    assert "positive definite" in d.wrt.props and "symmetric" in d.wrt.props
    source = d.to_source(with_value=True)
    body = source.split('"""')[-1]
    assert body.count("cho_factor(S)") == 1 and body.count("cho_solve(") == 1, source
    assert "inv(" not in body and "lu_factor" not in body, source
    rng = np.random.default_rng(3)
    q = rng.normal(size=(5, 5))
    s, x, m = q @ q.T + 5 * np.eye(5), rng.normal(size=5), rng.normal(size=5)
    value, grad = d.to_function(with_value=True)(S=s, m=m, x=x)
    inv, r = np.linalg.inv(s), x - m
    assert value == pytest.approx(np.linalg.slogdet(s)[1] + r @ inv @ r)
    np.testing.assert_allclose(grad, inv - np.outer(inv @ r, inv @ r), rtol=1e-9)


@pytest.mark.parametrize("target, head", [("numpy", "import numpy as np"),
                                          ("jax", "import jax"), ("torch", "import torch")])
def test_cli_writes_code_for_each_target(target, head):
    import contextlib
    import io

    from matcalc.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["grad", "||A x - b||_2^2", "--wrt", "x", "--format", target])
    assert code in (0, None) and out.getvalue().startswith(head), out.getvalue()
