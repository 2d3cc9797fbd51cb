"""The commutation matrix K_{m,n} (vec(X^T) = K_{m,n} vec(X)) and its identities."""

from __future__ import annotations

from .expr import (
    Add,
    Call,
    Commutation,
    Dim,
    Expr,
    Identity,
    Kron,
    Mul,
    Number,
    Pow,
    Transpose,
    mul_dims,
)


def commutation(m: Dim, n: Dim) -> Expr:
    """K_{m,n}, or the identity when one size is 1 (K_{1,n} = K_{n,1} = I_n)."""
    if m == 1 or n == 1:
        return Identity(mul_dims(m, n))
    return Commutation(m, n)


def permutation(m: int, n: int) -> list[int]:
    """Row i of K_{m,n} is the unit row e_p(i)^T: (K vec(X))[i] = vec(X)[p(i)].

    vec(X^T)[j + n i] = X[i, j] = vec(X)[i + m j] for X m×n (column-major vec).
    """
    return [i + m * j for i in range(m) for j in range(n)]


def kron(a: Expr, b: Expr) -> Expr:
    """a ⊗ b, leaving out a 1×1 identity factor (I_1 ⊗ B = B)."""
    if isinstance(a, Identity) and a.n == 1:
        return b
    if isinstance(b, Identity) and b.n == 1:
        return a
    return Kron(a, b)


def product(*factors: Expr) -> Expr:
    """The product of the factors, leaving out identities."""
    kept = [f for f in factors if not isinstance(f, Identity)]
    if not kept:
        return factors[0]
    return kept[0] if len(kept) == 1 else Mul(tuple(kept))


# ---------------------------------------------------------------------------- rules


def transpose_of_commutation(e: Expr) -> Expr | None:
    """K_{m,n}^T = K_{n,m} (Magnus & Neudecker, Theorem 3.9; K is a permutation matrix)."""
    if isinstance(e, Transpose) and isinstance(e.arg, Commutation):
        return Commutation(e.arg.n, e.arg.m)
    return None


def trivial_commutation(e: Expr) -> Expr | None:
    """K_{1,n} = K_{n,1} = I_n."""
    if isinstance(e, Commutation) and (e.m == 1 or e.n == 1):
        return Identity(mul_dims(e.m, e.n))
    return None


def _kron_shapes(k: Kron):
    (m, n), (p, q) = k.left.shape, k.right.shape
    return m, n, p, q


def vec_inner_product(e: Expr) -> Expr | None:
    """vec(A)^T vec(B) = tr(A^T B) for A and B of the same shape (adjacent factors)."""
    if not isinstance(e, Mul):
        return None
    factors = list(e.factors)
    for i in range(len(factors) - 1):
        row, col = factors[i], factors[i + 1]
        if not (isinstance(row, Transpose) and _is_vec(row.arg) and _is_vec(col)):
            continue
        a, b = row.arg.args[0], col.args[0]  # type: ignore[attr-defined]
        if a.shape != b.shape:
            continue
        inner = Call("tr", (Mul((Transpose(a), b)),))
        rest = factors[:i] + [inner] + factors[i + 2:]
        return rest[0] if len(rest) == 1 else Mul(tuple(rest))
    return None


def _is_vec(e: Expr) -> bool:
    return isinstance(e, Call) and e.name == "vec"


def is_twice_symmetriser(e: Expr) -> bool:
    """``I + K_{n,n}`` (twice the symmetriser N = (I + K)/2)."""
    if not (isinstance(e, Add) and len(e.terms) == 2):
        return False
    ks = [t for t in e.terms if isinstance(t, Commutation) and t.m == t.n]
    ids = [t for t in e.terms if isinstance(t, Identity)]
    return len(ks) == 1 and len(ids) == 1


def symmetriser_products(e: Expr) -> Expr | None:
    """With S = I + K_{n,n} = 2 N: K S = S K = S, S^k = 2^(k-1) S, S (A ⊗ A) = (A ⊗ A) S
    (K_{n,n} commutes with A ⊗ A), which moves S to the right, and M + M K = M S (Magnus &
    Neudecker, ch. 3 sec. 7, properties of N_n)."""
    if isinstance(e, Pow) and is_twice_symmetriser(e.base) and isinstance(e.exponent, Number) \
            and e.exponent.value.denominator == 1 and e.exponent.value > 1:
        return Mul((Number(2 ** (int(e.exponent.value) - 1)), e.base))
    if isinstance(e, Add):
        return _gather_symmetriser(e)
    if not isinstance(e, Mul):
        return None
    factors = list(e.factors)
    for i in range(len(factors) - 1):
        left, right = factors[i], factors[i + 1]
        if isinstance(left, Commutation) and is_twice_symmetriser(right) and left.m == left.n:
            return Mul(tuple(factors[:i] + factors[i + 1:]))
        if is_twice_symmetriser(left) and isinstance(right, Commutation) and right.m == right.n:
            return Mul(tuple(factors[:i + 1] + factors[i + 2:]))
        if is_twice_symmetriser(left) and isinstance(right, Kron) and right.left == right.right:
            return Mul(tuple(factors[:i] + [right, left] + factors[i + 2:]))
        if is_twice_symmetriser(left) and left == right:
            return Mul(tuple(factors[:i] + [Number(2), left] + factors[i + 2:]))
    return None


def _gather_symmetriser(e: Add) -> Expr | None:
    """``M + M K_{n,n} = M (I + K_{n,n})``: the two halves of a symmetrised derivative
    (K already moved right) as one product, so that S S = 2 S can apply."""
    terms = list(e.terms)
    for i, t in enumerate(terms):
        if not (isinstance(t, Mul) and isinstance(t.factors[-1], Commutation)
                and t.factors[-1].m == t.factors[-1].n):
            continue
        k, rest = t.factors[-1], t.factors[:-1]
        half = rest[0] if len(rest) == 1 else Mul(rest)
        if half in terms:
            j = terms.index(half)
            gathered = Mul((*rest, Add((Identity(k.shape[0]), k))))
            others = [u for n, u in enumerate(terms) if n not in (i, j)]
            return Add((*others, gathered)) if others else gathered
    return None


def commutation_products(e: Expr) -> Expr | None:
    """In a product: K_{m,n} K_{n,m} = I, and K_{p,m} (A ⊗ B) = (B ⊗ A) K_{q,n} for A m×n,
    B p×q (Magnus & Neudecker, Theorem 3.9), which moves every K to the right end."""
    if not isinstance(e, Mul):
        return None
    factors = list(e.factors)
    for i in range(len(factors) - 1):
        left, right = factors[i], factors[i + 1]
        if not isinstance(left, Commutation):
            continue
        if isinstance(right, Commutation) and (right.m, right.n) == (left.n, left.m):
            new = factors[:i] + factors[i + 2:]
            if not new:
                return Identity(e.shape[0])
            return new[0] if len(new) == 1 else Mul(tuple(new))
        if isinstance(right, Kron):
            m, n, p, q = _kron_shapes(right)
            if (left.m, left.n) == (p, m):
                swapped = [Kron(right.right, right.left), commutation(q, n)]
                new = factors[:i] + swapped + factors[i + 2:]
                return Mul(tuple(new))
    return None

