"""The gradient table (tests/data/gradients.json): SymPy check and finite differences agree."""

import json
import keyword
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.numeric import evaluate, finite_difference, random_point
from matcalc.verify import concrete_sizes

CASES = json.loads((Path(__file__).parent / "data" / "gradients.json").read_text("utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c['f']} d/d{c['wrt']}" for c in CASES])
def test_gradient_matches_finite_differences(case):
    result = matcalc.grad(case["f"], case["wrt"], **case.get("decls", {}))
    assert result.expr.shape == result.wrt.shape
    if "expected" in case:  # the textbook form, where one exists
        assert str(result) == case["expected"]
    report = result.check()
    assert report, str(report)
    sizes = concrete_sizes([result.function, result.expr, result.wrt])
    symbols = result.function.free_symbols() | result.expr.free_symbols() | {result.wrt}
    rng = np.random.default_rng(7)
    compiled = result.to_numpy()
    for _ in range(2):
        point = random_point(sorted(symbols, key=lambda s: s.name), sizes, rng, positive=True)
        expected = finite_difference(result.function, result.wrt, point)
        got = evaluate(result.expr, point, sizes)
        np.testing.assert_allclose(
            np.asarray(got, dtype=float).reshape(np.shape(expected)),
            expected,
            rtol=1e-5,
            atol=1e-6,
            err_msg=f"{case['f']} d/d{case['wrt']} = {result}",
        )
        # a variable named like a Python keyword is the parameter `lambda_` (PEP 8 style)
        generated = compiled(**{k + "_" if keyword.iskeyword(k) else k: v
                                for k, v in point.items()})
        np.testing.assert_allclose(np.asarray(generated, dtype=float).reshape(np.shape(expected)),
                                   expected, rtol=1e-5, atol=1e-6,
                                   err_msg=f"generated NumPy code for {result}")


def test_table_is_large_enough_and_sourced():
    assert len(CASES) >= 80
    assert all(c.get("source") for c in CASES)
    assert all("expected" in c for c in CASES)  # every row asserts its textbook text
