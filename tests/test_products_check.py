"""``.check()`` of hvp, jvp and vjp: each verified against the original function."""

from __future__ import annotations

import dataclasses

import pytest

import matcalc
from matcalc.expr import Add, Mul, Number, Transpose

PRODUCTS = [
    ("hvp", "log(1 + exp(-y w^T x)) where y: scalar", "w"),
    ("hvp", "x^T A x", "x"),
    ("hvp", "logdet(X)", "X"),
    ("hvp", "sum(exp(X a))", "X"),
    ("jvp", "softmax(x)", "x"),
    ("jvp", "X^-1", "X"),
    ("jvp", "tanh(W x)", "x"),
    ("vjp", "softmax(x)", "x"),
    ("vjp", "X^-1", "X"),
    ("vjp", "A x", "x"),
]


@pytest.mark.parametrize(("mode", "f", "wrt"), PRODUCTS)
def test_a_product_checks(mode: str, f: str, wrt: str) -> None:
    report = getattr(matcalc, mode)(f, wrt).check()
    assert report.ok, str(report)


@pytest.mark.parametrize(("mode", "f", "wrt"), PRODUCTS)
def test_a_wrong_product_fails_its_check(mode: str, f: str, wrt: str) -> None:
    right = getattr(matcalc, mode)(f, wrt)
    # twice the product: still linear in the direction, wrong by a factor everywhere
    wrong = dataclasses.replace(right, expr=Mul((Number(2), right.expr)))
    assert not wrong.check().ok


def test_an_hvp_with_the_transposed_hessian_fails() -> None:
    # H = A + A^T is symmetric; the claim A v is the half that a layout slip would give
    right = matcalc.hvp("x^T A x", "x")
    a = next(s for s in right.function.free_symbols() if s.name == "A")
    wrong = dataclasses.replace(right, expr=Mul((Transpose(a), right.direction)))
    assert not wrong.check().ok


def test_a_result_not_linear_in_the_direction_fails() -> None:
    right = matcalc.jvp("X^-1", "X")
    shifted = dataclasses.replace(right, expr=Add((right.expr, right.function)))
    report = shifted.check()
    assert not report.ok and "not linear" in str(report)
