"""Derivatives with respect to structured variables (LANGUAGE.md section 6).

A variable declared ``symmetric`` (``diagonal``) is differentiated on the space of symmetric
(diagonal) matrices with the Frobenius inner product: the entries are first treated as
independent (an unconstrained twin of the variable), the result is evaluated where the
variable has its structure, and then projected onto that space. The gradient becomes
sym(G) = (G + G^T)/2 (or I ⊙ G), a vec-derivative J P and a Hessian P H P, where P is the
orthogonal projector on vec of the structured matrices: the symmetriser N = (I + K)/2, or
diag(vec(I)). A ``probability`` vector is differentiated without its constraint.
"""

from __future__ import annotations

from fractions import Fraction

from .commutation import commutation
from .expr import Add, Call, Expr, Hadamard, Identity, Mul, Number, Symbol, Transpose, mul_dims

HALF = Number(Fraction(1, 2))


def unconstrained(wrt: Symbol) -> Symbol:
    """The same variable with independent entries (no declared properties)."""
    return Symbol(wrt.name, wrt.dims)


def symmetriser(n) -> Expr:
    """N = (I + K_{n,n})/2, the projector of vec(E) onto vec of symmetric matrices."""
    return Mul((HALF, Add((Identity(mul_dims(n, n)), commutation(n, n)))))


def projector(wrt: Symbol) -> Expr | None:
    """P with P vec(E) the projection of a direction E onto the structure of ``wrt``."""
    n = wrt.dims[0]
    if "symmetric" in wrt.props:
        return symmetriser(n)
    if "diagonal" in wrt.props:
        return Call("diag", (Call("vec", (Identity(n),)),))
    return None


def project_gradient(g: Expr, wrt: Symbol) -> Expr:
    """sym(G) = (G + G^T)/2 for a symmetric ``wrt``, I ⊙ G for a diagonal one."""
    if "symmetric" in wrt.props:
        return Mul((HALF, Add((g, Transpose(g)))))
    if "diagonal" in wrt.props:
        return Hadamard((Identity(wrt.dims[0]), g))
    return g


def project_jacobian(j: Expr, wrt: Symbol) -> Expr:
    """J P: the vec-derivative restricted to (and expressed on) structured directions."""
    p = projector(wrt)
    return j if p is None else Mul((j, p))
