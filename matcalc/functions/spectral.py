"""Spectral functions: extreme eigenvalues and eigenvectors, leading singular vectors.

They have no SymPy closed form (``sympy=None``): the checker uses finite differences.
Unit vectors follow one sign convention: their entry of largest magnitude is positive.
"""

from __future__ import annotations

from typing import Any

from .record import CodeEmitter, Function, cols_vector, rows_vector, same_shape, to_scalar


def fix_sign(np: Any, v: Any) -> Any:
    """The sign convention of unit vectors: the entry of largest magnitude is positive."""
    flat = v.reshape(-1)
    return v * (1.0 if flat[np.argmax(np.abs(flat))] >= 0 else -1.0)


def _eigh(np: Any, a: Any, which: int) -> tuple[Any, Any]:
    # Symmetrising keeps first derivatives right when entries are perturbed independently.
    w, vecs = np.linalg.eigh(0.5 * (a + a.T))
    return w[which], fix_sign(np, vecs[:, [which]])


def _svd(np: Any, a: Any, left: bool) -> Any:
    u, _, vt = np.linalg.svd(a)
    sign = 1.0 if u[np.argmax(np.abs(u[:, 0])), 0] >= 0 else -1.0
    return sign * (u[:, :1] if left else vt[:1].T)


def _eigh_code(which: int, vector: bool):
    def gen(g: CodeEmitter, x: str) -> str:
        values, vectors = g.fresh(), g.fresh()
        g.line(f"{values}, {vectors} = {g.op('eigh', x)}")
        if not vector:
            return g.emit(f"{values}[{which}]")
        v = g.emit(f"{vectors}[:, {which}]")  # generated code has 1-D vectors
        largest = f"{v}[{g.op('argmax_abs', v)}]"
        return g.emit(f"{g.call('sign', largest)} * {v}")

    return gen


def _svd_code(left: bool):
    def gen(g: CodeEmitter, x: str) -> str:
        u, s, vt = g.fresh(), g.fresh(), g.fresh()
        g.line(f"{u}, {s}, {vt} = {g.op('svd', x)}")
        column = f"{u}[:, 0]"
        sign = g.emit(g.call("sign", f"{column}[{g.op('argmax_abs', column)}]"))
        return g.emit(f"{sign} * {column}" if left else f"{sign} * {vt}[0]")

    return gen


def _polar_numpy(np: Any, a: Any) -> Any:
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    return u @ vt


def _polar_code(g: CodeEmitter, x: str) -> str:
    # generated code has 1-D vectors: a vector is the one column of a matrix (x / ||x||)
    u, s, vt = g.fresh(), g.fresh(), g.fresh()
    g.line(f"{u}, {s}, {vt} = {g.op('svd', f'{x}.reshape({x}.shape[0], -1)')}")  # thin
    return g.emit(f"({u} @ {vt}).reshape({x}.shape)")


def _spectral(name: str, description: str, shape, latex: str, numpy, code, accepts="square",
              differential: str | None = None, nonsmooth: str | None = None,
              letter: str = "u") -> Function:
    return Function(name=name, description=description, family="spectral", accepts=accepts,
                    shape=shape, latex=latex, numpy=numpy, sympy=None, code=code,
                    differential=differential, nonsmooth=nonsmooth, letter=letter)


RECORDS = (
    _spectral("lambda_max", "largest eigenvalue of a symmetric matrix", to_scalar,
              r"\lambda_{\max}", lambda np, a: np.full((1, 1), _eigh(np, a, -1)[0]),
              _eigh_code(-1, False), differential="d_lambda_max",
              nonsmooth="lambda_max(A) has a kink where the top eigenvalue is repeated"),
    _spectral("lambda_min", "smallest eigenvalue of a symmetric matrix", to_scalar,
              r"\lambda_{\min}", lambda np, a: np.full((1, 1), _eigh(np, a, 0)[0]),
              _eigh_code(0, False), differential="d_lambda_min",
              nonsmooth="lambda_min(A) has a kink where the bottom eigenvalue is repeated"),
    _spectral("eigvec_max", "unit eigenvector of the largest eigenvalue", rows_vector,
              r"v_{\max}", lambda np, a: _eigh(np, a, -1)[1], _eigh_code(-1, True),
              differential="d_eigvec_max"),
    _spectral("eigvec_min", "unit eigenvector of the smallest eigenvalue", rows_vector,
              r"v_{\min}", lambda np, a: _eigh(np, a, 0)[1], _eigh_code(0, True),
              differential="d_eigvec_min"),
    _spectral("svec_left", "left singular vector of the largest singular value", rows_vector,
              r"u_{1}", lambda np, a: _svd(np, a, True), _svd_code(True), accepts="matrix",
              differential="d_svec_left"),
    _spectral("svec_right", "right singular vector of the largest singular value", cols_vector,
              r"v_{1}", lambda np, a: _svd(np, a, False), _svd_code(False), accepts="matrix",
              differential="d_svec_right"),
    _spectral("polar", "orthogonal polar factor U V^T of a thin SVD X = U S V^T (the gradient "
              "of the nuclear norm)", same_shape, r"\operatorname{polar}", _polar_numpy,
              _polar_code, accepts="matrix",
              differential="d_polar", letter="Q",
              nonsmooth="polar(X) is not differentiable where X loses rank"),
)
