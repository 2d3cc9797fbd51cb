"""Time to the same objective accuracy: matcalc.minimize vs specialised solvers and SciPy + JAX.

One run, one process; writes its section of BENCHMARKS.md (between the
``matcalc-solvers`` marker comments). For every problem, the best objective any solver
reaches with tight settings is ``f*``; each solver is then run with a ladder of
tolerances, from loose to tight, and the first (cheapest) setting whose objective is
within ``TARGET`` (relative) of ``f*`` is timed: the fastest of ``REPEATS`` warm runs
(matcalc's derivation and code generation are cached after the first call, and JAX's
``jit`` has compiled; their one-time costs are reported apart).

    pip install -e ".[test,bench]"
    python benchmarks/solvers.py
"""

from __future__ import annotations

import os

# One BLAS / OpenMP thread for every solver, set before NumPy loads OpenBLAS: on a shared,
# loaded machine, threads waiting for a busy core turn the many small BLAS calls of
# L-BFGS-B (in SciPy's C code) from microseconds into milliseconds, at random.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import matcalc  # noqa: E402

TARGET = 1e-6
REPEATS = 15
LADDER = (1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12)


@dataclass
class Solver:
    """A way to solve the problem: ``run(tol)`` returns the objective reached."""

    name: str
    run: Callable[[float], float]
    tolerances: tuple[float, ...] = LADDER
    setup: Callable[[], float] | None = None  # one-time cost, seconds (derivation, jit)


@dataclass
class Problem:
    name: str
    size: str
    solvers: list[Solver]


def _best_time(fn: Callable[[], object]) -> float:
    """The fastest of REPEATS runs: on a loaded machine the others measure the load."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jax, jnp


def _scipy_jax(objective, x0, bounds=None) -> Solver:
    """scipy.optimize.minimize (L-BFGS-B) with jax.jit(jax.value_and_grad(objective))."""
    from scipy.optimize import minimize

    jax, _ = _jax()
    value_and_grad = jax.jit(jax.value_and_grad(objective))

    def fg(x):
        f, g = value_and_grad(x)
        return float(f), np.asarray(g, dtype=float)

    def run(tol: float) -> float:
        res = minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"gtol": tol, "ftol": tol * 1e-3, "maxiter": 100_000})
        return float(res.fun)

    def setup() -> float:
        start = time.perf_counter()
        fg(x0)  # trace and compile once
        return time.perf_counter() - start

    return Solver("scipy L-BFGS-B + jax.grad (jit)", run, setup=setup)


def _matcalc(formula, wrt, data, evaluate, **kwargs) -> Solver:
    def run(tol: float) -> float:
        r = matcalc.minimize(formula, wrt, data, tol=tol, **kwargs)
        return evaluate(r)

    method = kwargs.get("method", "auto")
    label = {"L-BFGS-B": "SciPy's L-BFGS-B"}.get(method, method)  # matcalc's own is L-BFGS
    solver = Solver(f"matcalc.minimize ({label})", run)

    def setup() -> float:
        matcalc.optimize.model._build.cache_clear()
        matcalc.optimize.problem._compiled.cache_clear()
        start = time.perf_counter()
        r = matcalc.minimize(formula, wrt, data, tol=1e-3, **kwargs)
        first = time.perf_counter() - start
        if method == "auto":  # name the method auto chose
            solver.name = f"matcalc.minimize (auto: {r.method})"
        return first - _best_time(lambda: matcalc.minimize(formula, wrt, data, tol=1e-3,
                                                              **kwargs))

    solver.setup = setup
    return solver


# ------------------------------------------------------------------ problems


def logistic(X: np.ndarray, labels: np.ndarray, name: str) -> Problem:
    from sklearn.linear_model import LogisticRegression

    _, jnp = _jax()
    y = 2.0 * labels - 1.0
    n, d = X.shape

    def objective(w, b):
        return 0.5 * w @ w + np.logaddexp(0.0, -y * (X @ w + b)).sum()

    def sklearn(tol: float) -> float:
        clf = LogisticRegression(C=1.0, tol=tol, max_iter=100_000).fit(X, labels)
        return objective(clf.coef_.ravel(), clf.intercept_[0])

    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def jax_objective(z):
        return 0.5 * z[:-1] @ z[:-1] + jnp.logaddexp(0.0, -yj * (Xj @ z[:-1] + z[-1])).sum()

    formula = "1/2 w^T w + 1^T softplus(-y ⊙ (X w + beta 1))"
    ours = _matcalc(formula, ["w", "beta"], {"X": X, "y": y},
                    lambda r: objective(r["w"], r["beta"]))
    others = [_matcalc(formula, ["w", "beta"], {"X": X, "y": y},
                       lambda r: objective(r["w"], r["beta"]), method=method)
              for method in ("L-BFGS-B", "projected-Newton", "trust-krylov")]
    return Problem(name, f"{n} × {d}", [
        Solver("sklearn LogisticRegression (lbfgs)", sklearn), ours, *others,
        _scipy_jax(jax_objective, np.zeros(d + 1))])


def lasso() -> Problem:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Lasso

    _, jnp = _jax()
    X, y = load_diabetes(return_X_y=True)
    y = y - y.mean()
    n, d = X.shape
    alpha = 0.1

    def objective(w):
        return ((X @ w - y) ** 2).sum() / (2 * n) + alpha * np.abs(w).sum()

    def sklearn(tol: float) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = Lasso(alpha=alpha, fit_intercept=False, tol=tol, max_iter=1_000_000).fit(X, y)
        return objective(fit.coef_)

    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def split_objective(z):  # the same exact rewrite matcalc uses: jax.grad of abs is not one
        w = z[:d] - z[d:]
        return ((Xj @ w - yj) ** 2).sum() / (2 * n) + alpha * z.sum()

    jax_solver = _scipy_jax(split_objective, np.zeros(2 * d), [(0, None)] * (2 * d))
    jax_solver.name += ", w = u - v"
    ours = _matcalc("||X w - y||_2^2 / (2 nu) + alpha ||w||_1", "w",
                    {"X": X, "y": y, "nu": n, "alpha": alpha}, lambda r: objective(r["w"]))
    return Problem("lasso, diabetes", f"{n} × {d}", [
        Solver("sklearn Lasso (coordinate descent)", sklearn), ours, jax_solver])


def nnls() -> Problem:
    from scipy.optimize import nnls as scipy_nnls

    _, jnp = _jax()
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((500, 100)), rng.standard_normal(500)

    def objective(x):
        return float(((A @ x - b) ** 2).sum())

    Aj, bj = jnp.asarray(A), jnp.asarray(b)
    ours = _matcalc("||A x - b||_2^2", "x", {"A": A, "b": b}, lambda r: objective(r["x"]),
                    constraints="x >= 0")
    return Problem("non-negative least squares, random", "500 × 100", [
        Solver("scipy.optimize.nnls (active set)", lambda tol: objective(scipy_nnls(A, b)[0]),
               (0.0,)),
        ours,
        _scipy_jax(lambda x: ((Aj @ x - bj) ** 2).sum(), np.zeros(100), [(0, None)] * 100)])


def ridge() -> Problem:
    _, jnp = _jax()
    rng = np.random.default_rng(1)
    X, y, lam = rng.standard_normal((2000, 200)), rng.standard_normal(2000), 10.0

    def objective(w):
        return float(((X @ w - y) ** 2).sum() + lam * w @ w)

    def closed_form(tol: float) -> float:
        return objective(np.linalg.solve(X.T @ X + lam * np.eye(200), X.T @ y))

    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    formula = "||X w - y||_2^2 + lambda ||w||_2^2"
    data = {"X": X, "y": y, "lambda": lam}
    return Problem("ridge, random", "2000 × 200", [
        Solver("closed form (np.linalg.solve)", closed_form, (0.0,)),
        _matcalc(formula, "w", data, lambda r: objective(r["w"])),
        _matcalc(formula, "w", data, lambda r: objective(r["w"]), method="projected-Newton"),
        _matcalc(formula, "w", data, lambda r: objective(r["w"]), method="L-BFGS-B"),
        _matcalc(formula, "w", data, lambda r: objective(r["w"]), method="Newton-CG"),
        _scipy_jax(lambda w: ((Xj @ w - yj) ** 2).sum() + lam * w @ w, np.zeros(200))])


def simplex() -> Problem:
    from scipy.optimize import minimize

    rng = np.random.default_rng(2)
    F = rng.standard_normal((50, 50))
    S, m, gamma = F @ F.T / 50, rng.standard_normal(50) * 0.1, 0.5

    def objective(x):
        return float(x @ S @ x - gamma * m @ x)

    def by_hand(tol: float) -> float:
        res = minimize(lambda x: (objective(x), 2 * S @ x - gamma * m), np.zeros(50), jac=True,
                       method="SLSQP", bounds=[(0, None)] * 50,
                       constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1,
                                     "jac": lambda x: np.ones(50)}],
                       options={"ftol": tol, "maxiter": 10_000})
        return objective(res.x)

    ours = _matcalc("x^T S x - gamma m^T x", "x", {"S": S, "m": m, "gamma": gamma},
                    lambda r: objective(r["x"]), constraints=["x >= 0", "1^T x = 1"])
    return Problem("mean-variance on the simplex, random", "50 assets", [
        Solver("scipy SLSQP, gradient by hand", by_hand), ours,
        _slsqp_jax(S, m, gamma, objective)])


def _slsqp_jax(S, m, gamma, objective) -> Solver:
    """SLSQP with jax.jit(jax.value_and_grad) of the objective and the equality constraint
    (a SciPy dict whose Jacobian is jax.grad's), the bounds as SciPy bounds."""
    from scipy.optimize import minimize

    jax, jnp = _jax()
    Sj, mj = jnp.asarray(S), jnp.asarray(m)
    value_and_grad = jax.jit(jax.value_and_grad(lambda x: x @ Sj @ x - gamma * mj @ x))
    budget = jax.jit(lambda x: jnp.sum(x) - 1.0)
    budget_grad = jax.jit(jax.grad(lambda x: jnp.sum(x) - 1.0))
    n = len(m)

    def fg(x):
        f, g = value_and_grad(x)
        return float(f), np.asarray(g, dtype=float)

    constraint = {"type": "eq", "fun": lambda x: float(budget(x)),
                  "jac": lambda x: np.asarray(budget_grad(x), dtype=float)}

    def run(tol: float) -> float:
        res = minimize(fg, np.zeros(n), jac=True, method="SLSQP", bounds=[(0, None)] * n,
                       constraints=[constraint], options={"ftol": tol, "maxiter": 10_000})
        return objective(res.x)

    def setup() -> float:
        start = time.perf_counter()
        x = np.full(n, 1.0 / n)
        fg(x), constraint["fun"](x), constraint["jac"](x)  # trace and compile once
        return time.perf_counter() - start

    return Solver("scipy SLSQP + jax.grad (jit)", run, setup=setup)


def glasso() -> Problem:
    from sklearn.covariance import graphical_lasso

    rng = np.random.default_rng(3)
    C, lam = np.cov(rng.standard_normal((200, 10)).T), 0.1
    mask = 1.0 - np.eye(10)

    def objective(P):
        return float(-np.linalg.slogdet(P)[1] + np.trace(P @ C) + lam * np.abs(mask * P).sum())

    def sklearn(tol: float) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return objective(graphical_lasso(C, alpha=lam, tol=tol, max_iter=10_000)[1])

    ours = [_matcalc("-logdet(S) + tr(S C) + lambda sum(abs(M ⊙ S))", "S",
                     {"C": C, "lambda": lam, "M": mask}, lambda r: objective(r["S"]),
                     x0={"S": np.eye(10)}, **kwargs) for kwargs in ({}, {"method": "L-BFGS-B"})]
    _, jnp = _jax()
    Cj, Mj = jnp.asarray(C), jnp.asarray(mask)

    def split_objective(z):  # the same exact rewrite matcalc uses: S = P - N, P, N >= 0
        P, N = z[:100].reshape(10, 10), z[100:].reshape(10, 10)
        S = P - N
        return (-jnp.linalg.slogdet(S)[1] + jnp.trace(S @ Cj)
                + lam * jnp.sum(Mj * (P + N)))

    start = np.concatenate([np.eye(10).ravel(), np.zeros(100)])
    jax_solver = _scipy_jax(split_objective, start, [(0, None)] * 200)
    jax_solver.name += ", S = P - N"
    return Problem("graphical lasso, random", "10 × 10", [
        Solver("sklearn graphical_lasso (cd)", sklearn), *ours, jax_solver])


# ------------------------------------------------------------------ measuring


def _run(s: Solver, tol: float) -> float:
    try:
        return s.run(tol)
    except Exception as err:  # a benchmark reports, it does not stop
        print(f"  {s.name} tol={tol}: {type(err).__name__}: {err}", file=sys.stderr)
        return float("nan")


def measure(problem: Problem) -> list[dict]:
    """f* from each solver's tightest setting, then each ladder from loose to tight."""
    setups = [s.setup() if s.setup is not None else None for s in problem.solvers]
    tightest = [_run(s, s.tolerances[-1]) for s in problem.solvers]
    best = min(v for v in tightest if np.isfinite(v))
    rows = []
    for s, setup, tight in zip(problem.solvers, setups, tightest, strict=True):
        row = {"solver": s.name, "tol": None, "time": None, "error": None, "setup": setup}
        gaps = []
        for tol in s.tolerances:
            value = tight if tol == s.tolerances[-1] else _run(s, tol)
            if not np.isfinite(value):
                continue
            gap = (value - best) / max(1.0, abs(best))
            gaps.append(gap)
            if gap <= TARGET:
                row["tol"], row["error"] = tol, gap
                row["time"] = _best_time(lambda s=s, tol=tol: s.run(tol))
                break
        else:
            row["error"] = min(gaps) if gaps else None
        rows.append(row)
        print(f"  {s.name}: {row}", file=sys.stderr)
    return rows


def _ms(t: float | None) -> str:
    if t is None:
        return "—"
    return f"{t * 1e3:.1f} ms" if t >= 1e-3 else f"{t * 1e6:.0f} µs"


def render(results: list[tuple[Problem, list[dict]]], total: float, load: float) -> str:
    import scipy
    import sklearn

    jax, _ = _jax()
    lines = [
        "<!-- matcalc-solvers:start -->",
        "",
        "## Solvers (benchmarks/solvers.py)",
        "",
        "Produced by one run of `python benchmarks/solvers.py` "
        f"(total {total:.0f} s) on a shared 2-core machine (load average {load:.1f} at the "
        "start of the run): read the ratios, not the absolute times, and expect noise of "
        "tens of percent. BLAS and OpenMP run on one thread for every solver "
        "(`OPENBLAS_NUM_THREADS=1`, `OMP_NUM_THREADS=1`, set by the script).",
        "",
        f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy "
        f"{scipy.__version__}, scikit-learn {sklearn.__version__}, JAX {jax.__version__}.",
        "",
        f"Every solver is run with a ladder of tolerances; the cheapest setting whose "
        f"objective is within {TARGET:g} (relative) of the best objective any solver found "
        f"is timed (the fastest of {REPEATS} warm runs, the others measuring the load). "
        "*One-time* is the extra cost of the first call: matcalc's derivation and code "
        "generation (cached per formula afterwards), "
        "JAX's tracing and compilation. The ratio is the time over the specialised "
        "solver's (first row).",
        "",
    ]
    for problem, rows in results:
        lines += [f"### {problem.name} ({problem.size})", "",
                  "| solver | setting | objective gap | time | ratio | one-time |",
                  "|---|---|---|---|---|---|"]
        base = rows[0]["time"]
        for row in rows:
            setting = ("—" if row["tol"] is None else
                       "exact" if row["tol"] == 0.0 else f"tol {row['tol']:g}")
            gap = "—" if row["error"] is None else f"{row['error']:.1e}"
            if row["time"] is None:
                gap += f" (never within {TARGET:g})"
            ratio = (f"{row['time'] / base:.2f}×" if row["time"] is not None and base
                     else "—")
            lines.append(f"| {row['solver']} | {setting} | {gap} | {_ms(row['time'])} | "
                         f"{ratio} | {_ms(row['setup'])} |")
        lines.append("")
    lines.append("<!-- matcalc-solvers:end -->")
    return "\n".join(lines)


def write(section: str, path: Path) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"<!-- matcalc-solvers:start -->.*?<!-- matcalc-solvers:end -->",
                         re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    """Run every problem and write the section of BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--only", help="run only problems whose name contains this")
    args = parser.parse_args()
    from sklearn.datasets import load_breast_cancer

    load = os.getloadavg()[0]
    start = time.perf_counter()
    X, labels = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(4)
    Xs = rng.standard_normal((10_000, 100))
    ys = (Xs @ rng.standard_normal(100) / 10 + rng.standard_normal(10_000) > 0).astype(float)
    makers = [
        lambda: logistic(X, labels, "logistic regression, breast cancer"),
        lambda: logistic(Xs, ys, "logistic regression, random"),
        lasso, nnls, ridge, simplex, glasso,
    ]
    results = []
    for make in makers:
        problem = make()
        if args.only and args.only not in problem.name:
            continue
        print(problem.name, file=sys.stderr)
        results.append((problem, measure(problem)))
    section = render(results, time.perf_counter() - start, load)
    print(section)
    if not args.only:
        write(section, Path(args.out))


if __name__ == "__main__":
    main()
