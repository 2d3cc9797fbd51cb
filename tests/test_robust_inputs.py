"""Bad and extreme input: every failure a MatcalcError with a location, at the right place."""

from __future__ import annotations

import pytest

import matcalc
from matcalc.errors import DeclarationError, MatcalcError, ParseError, ShapeError


def test_caret_points_at_the_first_of_repeated_sub_expressions() -> None:
    # `A x` occurs twice and is one hash-consed node: the error names the first occurrence.
    with pytest.raises(ShapeError) as info:
        matcalc.parse("y + A x + 2 (A x) where y: vector(k), A: matrix(m, n)")
    assert (info.value.line, info.value.column) == (1, 5)
    with pytest.raises(ShapeError) as info:
        matcalc.parse("(A x) + y + A x where y: vector(k), A: matrix(m, n)")
    assert info.value.column == 9  # the sum fails at y, the second term


def test_caret_points_into_a_binding_definition() -> None:
    text = "s + y where y: vector(k), s = A x, A: matrix(m, n)"
    with pytest.raises(ShapeError) as info:
        matcalc.parse(text)
    assert text[info.value.pos - 1:].startswith(" y")  # the term that does not fit


@pytest.mark.parametrize("text,fragment,column", [
    ("x^T x where x: vector(0.5)", "not a size", 23),
    ("x^T x where x: vector(1e9)", "not a size", 23),
    ("x^T x where x: vector(0)", "not a size", 23),
    ("x^T x where x:", "needs a kind", 15),
    ("1e400 x^T x", "range of floating-point", 1),
    ("x + 1e-400 x", "range of floating-point", 5),
    ("alpha + 1" + "0" * 1200, "significant digits", 9),
    ("alpha + 2e99999999999", "exponent", 9),
])
def test_literal_errors_are_located(text: str, fragment: str, column: int) -> None:
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(text)
    assert fragment in str(info.value)
    assert (info.value.line, info.value.column) == (1, column)
    assert isinstance(info.value, (ParseError, DeclarationError))


def test_leading_and_trailing_zeros_do_not_count() -> None:
    assert str(matcalc.parse("alpha + " + "0" * 4301)) == "alpha + 0"
    assert matcalc.parse("0" * 5000 + "1.5" + "0" * 5000).value == 1.5  # type: ignore[attr-defined]


def test_bindings_are_shared_not_expanded() -> None:
    # h_k = h_(k-1) .* h_(k-1): a tree of 2^400 leaves, a DAG of 400 nodes
    n = 400
    chain = ", ".join(["h0 = x"] + [f"h{i} = h{i - 1} .* h{i - 1}" for i in range(1, n + 1)])
    e = matcalc.parse(f"sum(h{n}) where {chain}")
    distinct, stack = set(), [e]
    while stack:
        node = stack.pop()
        if id(node) not in distinct:
            distinct.add(id(node))
            stack.extend(node.children)
    assert len(distinct) <= n + 5


def test_binding_cycles_through_several_names_are_errors() -> None:
    with pytest.raises(DeclarationError) as info:
        matcalc.parse("a where a = b, b = c, c = a")
    assert "refers to itself" in str(info.value) and info.value.line == 1
