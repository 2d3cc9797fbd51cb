"""Matrix functions: trace, determinant, log-determinant, diag, sum of entries, vec."""

from __future__ import annotations

from typing import Any

from .record import (
    CodeEmitter,
    Function,
    as_scalar,
    diag_shape,
    same_shape,
    scalar_matrix,
    to_scalar,
    vec_shape,
)


def sympy_det(sp: Any, m: Any) -> Any:
    """Determinant of an explicit SymPy matrix by Berkowitz (fast on small symbolic ones)."""
    if m.rows == 1:
        return m[0, 0]
    return m.det(method="berkowitz")


def _logdet_numpy(np: Any, a: Any) -> Any:
    sign, logabs = np.linalg.slogdet(a)
    return np.full((1, 1), logabs if sign > 0 else np.nan)


def _logdet_code(g: CodeEmitter, x: str) -> str:
    sign, logabs = g.fresh(), g.fresh()
    g.line(f"{sign}, {logabs} = {g.op('slogdet', x)}")
    return g.emit(g.op("logdet_value", sign, logabs))


def _diag_numpy(np: Any, a: Any) -> Any:
    return np.diagflat(a) if a.shape[1] == 1 else np.diagonal(a).reshape(-1, 1)


def _diag_sympy(sp: Any, m: Any) -> Any:
    if m.cols == 1:
        return sp.diag(*m)
    return sp.Matrix([m[i, i] for i in range(m.rows)])


def vec_entries(m: Any) -> list[Any]:
    """The entries of a SymPy matrix, columns stacked (column-major)."""
    return [m[i, j] for j in range(m.cols) for i in range(m.rows)]


def _sum_expr(sp: Any, a: Any) -> Any:
    if not isinstance(a, sp.MatrixExpr):
        return a
    rows, cols = a.shape
    return as_scalar(sp, sp.OneMatrix(1, rows) * a * sp.OneMatrix(cols, 1))


def _det_expr(sp: Any, a: Any) -> Any:
    return sp.det(a) if isinstance(a, sp.MatrixExpr) else a


def _adjugate_numpy(np: Any, a: Any) -> Any:
    """adj(A) = det(W) det(V^T) V diag(prod_{j != i} s_j) W^T for A = W diag(s) V^T: exact
    where A is singular (rank n - 1 gives a rank-one adjugate), no division by det(A)."""
    w, s, vt = np.linalg.svd(a)
    eye = np.eye(s.shape[0])
    others = np.prod(s.reshape(1, -1) * (1.0 - eye) + eye, axis=1)
    return np.linalg.det(w) * np.linalg.det(vt) * ((vt.T * others.reshape(1, -1)) @ w.T)


def _adjugate_code(g: CodeEmitter, a: str) -> str:
    w, s, vt = g.fresh(), g.fresh(), g.fresh()
    g.line(f"{w}, {s}, {vt} = {g.op('svd', a)}")
    # row i of s^(1 - I) is s with s_i replaced by 1: its product is prod_{j != i} s_j
    mask = g.op("off_diagonal", f"{s}.shape[0]")
    others = g.emit(g.op("prod_rows", f"{s}.reshape(1, -1) ** {mask}"))
    sign = g.emit(f"{g.call('det', w)} * {g.call('det', vt)}")
    return g.emit(f"{sign} * (({vt}.T * {others}.reshape(1, -1)) @ {w}.T)")


RECORDS = (
    Function(
        name="tr", description="trace", family="matrix", accepts="square", shape=to_scalar,
        latex=r"\operatorname{tr}", spellings=("trace", "Tr"),
        numpy=lambda np, a: np.full((1, 1), np.trace(a)),
        sympy=lambda sp, m: scalar_matrix(sp, m.trace()),
        sympy_expr=lambda sp, a: sp.Trace(a) if isinstance(a, sp.MatrixExpr) else a,
        code="{xp}.trace({0})", differential="d_trace", adjoint="adj_trace",
    ),
    Function(
        name="det", description="determinant", family="matrix", accepts="square",
        shape=to_scalar, latex=r"\det", latex_bare=True,
        numpy=lambda np, a: np.full((1, 1), np.linalg.det(a)),
        sympy=lambda sp, m: scalar_matrix(sp, sympy_det(sp, m)),
        sympy_expr=_det_expr,
        code="{xp}.linalg.det({0})", differential="d_determinant", small_sizes=True,
    ),
    Function(
        name="logdet", description="log of the determinant (NaN where it is not positive)",
        family="matrix", accepts="square", shape=to_scalar, latex=r"\operatorname{logdet}",
        numpy=_logdet_numpy,
        sympy=lambda sp, m: scalar_matrix(sp, sp.log(sympy_det(sp, m))),
        sympy_expr=lambda sp, a: sp.log(_det_expr(sp, a)),
        code=_logdet_code, differential="d_log_determinant", small_sizes=True,
    ),
    Function(
        name="diag", description="vector to diagonal matrix, or matrix to its diagonal",
        family="matrix", accepts="vector or square", shape=diag_shape,
        latex=r"\operatorname{diag}",
        numpy=_diag_numpy, sympy=_diag_sympy,
        sympy_expr=lambda sp, a: sp.DiagMatrix(a) if a.shape[1] == 1 else sp.DiagonalOf(a),
        # diag of a vector never reaches this template: the generator keeps it lazy (row and
        # column scaling, additions to a diagonal). Generated code has 1-D vectors.
        code="{xp}.diagonal({0})", differential="d_diag", adjoint="adj_diag",
    ),
    Function(
        # No adjoint rule: canonical.rules rewrites sum(U) to 1^T U 1 before differentiating.
        name="sum", description="sum of all entries", family="matrix", accepts="any",
        shape=to_scalar, latex=r"\operatorname{sum}",
        numpy=lambda np, a: np.full((1, 1), a.sum()),
        sympy=lambda sp, m: scalar_matrix(sp, sum(m)),
        sympy_expr=_sum_expr,
        code="{xp}.sum({0})", differential="d_sum_entries",
    ),
    Function(
        name="adj", description="adjugate det(A) A^-1, computed without dividing by det(A) "
        "(generated code writes det(A) A^-1 this way, finite where A is singular)",
        family="matrix", accepts="square", shape=same_shape, latex=r"\operatorname{adj}",
        numpy=_adjugate_numpy, sympy=lambda sp, m: m.adjugate(),
        sympy_expr=lambda sp, a: sp.det(a) * a.I if isinstance(a, sp.MatrixExpr) else 1,
        code=_adjugate_code, differential="d_adjugate", small_sizes=True,
    ),
    Function(
        name="mean", description="mean of all entries", family="matrix", accepts="any",
        shape=to_scalar, latex=r"\operatorname{mean}",
        numpy=lambda np, a: np.full((1, 1), a.mean()),
        sympy=lambda sp, m: scalar_matrix(sp, sum(m) / len(m)),
        sympy_expr=lambda sp, a: _sum_expr(sp, a) / (a.shape[0] * a.shape[1])
        if isinstance(a, sp.MatrixExpr) else a,
        code="{xp}.mean({0})", differential="d_mean", adjoint="adj_mean",
    ),
    Function(
        name="vec", description="columns stacked into one vector (column-major)",
        family="matrix", accepts="any", shape=vec_shape, latex=r"\operatorname{vec}",
        numpy=lambda np, a: a.reshape(-1, 1, order="F"),
        sympy=lambda sp, m: sp.Matrix(vec_entries(m)),
        code="{0}.T.reshape(-1)",  # column-major without an order= argument (JAX, torch)
        differential="d_vec", adjoint="adj_vec",  # then adj_vec_general (unvec as a product)
    ),
)
