"""Speed of matcalc's generated code against the best hand-written form and JAX/PyTorch autodiff.

Run by benchmarks/run.py in a fresh process per thread count (XLA reads its thread flags
when it starts), or alone:

    python benchmarks/codespeed.py --threads 1 --json out.json

Every hand-written baseline is checked against the generated code (and jax.grad /
jax.hessian against both) before anything is timed; a disagreement is reported, never
timed silently.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _configure_threads(threads: int) -> None:
    """Before NumPy, JAX or torch start: their BLAS / XLA / intra-op pools use ``threads``."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if threads == 1:
        os.environ["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")


ROOT = Path(__file__).resolve().parent.parent


def problems(quick: bool) -> list[dict[str, Any]]:
    """The four problems of issue 15, with their hand-written best forms."""
    import numpy as np
    import scipy.linalg

    rng = np.random.default_rng(0)
    m, p = (500, 100) if quick else (2000, 500)
    X = rng.normal(size=(m, p)) / np.sqrt(p)
    y01 = (rng.uniform(size=m) < 0.5).astype(float)
    w = rng.normal(size=p)
    d = 200 if quick else 1000
    Q = rng.normal(size=(d, d))
    S = Q @ Q.T / d + np.eye(d)
    xv, mv = rng.normal(size=d), rng.normal(size=d)
    width, batch = (256, 64) if quick else (2048, 256)
    W1 = rng.normal(size=(width, width)) / np.sqrt(width)
    W2 = rng.normal(size=(width, width)) / np.sqrt(width)
    Xb, Yb = rng.normal(size=(width, batch)), rng.normal(size=(width, batch))

    def sigmoid(z):
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def logistic_hessian():
        s = sigmoid(X @ w)
        Z = np.sqrt(s * (1.0 - s))[:, None] * X
        return Z.T @ Z

    def logistic_gradient():
        return X.T @ (sigmoid(X @ w) - y01)

    def nll_gradient():
        # the fastest form we know: one Cholesky, the inverse from its factor (LAPACK potri,
        # about half the work of cho_solve(c, I)), u = S^-1 r from the inverse
        c = scipy.linalg.cho_factor(S)
        upper = scipy.linalg.lapack.dpotri(*c)[0]
        inv = np.triu(upper) + np.triu(upper, 1).T
        u = inv @ (xv - mv)
        return inv - np.outer(u, u)

    def mlp_gradient():
        H = np.tanh(W1 @ Xb)
        R = W2 @ H - Yb
        return (2.0 * ((W2.T @ R) * (1.0 - H * H))) @ Xb.T

    cross_entropy = "-y^T log(sigma(X w)) - (1 - y)^T log(1 - sigma(X w))"
    return [
        dict(name="logistic-regression Hessian", size=f"X: {m}×{p}", mode="hessian",
             f=cross_entropy, wrt="w", decls={}, sizes={},
             data=dict(X=X, w=w, y=y01), hand=logistic_hessian,
             hand_text="Z = sqrt(s(1-s))[:, None] * X; Z.T @ Z",
             jax_loss="logistic", jax_args=("w", "X", "y"),
             torch_hand=None),
        dict(name="Gaussian NLL gradient wrt S", size=f"d = {d}", mode="grad",
             f="logdet(S) + (x - m)^T S^-1 (x - m)", wrt="S",
             decls={"S": "positive definite matrix"}, sizes={},
             data=dict(S=S, m=mv, x=xv), hand=nll_gradient,
             hand_text="one Cholesky; S^-1 from its factor (potri); u = S^-1 (x - m); "
                       "S^-1 - u u^T",
             jax_loss="nll", jax_args=("S", "x", "m")),
        dict(name="2-layer MLP gradient wrt W1", size=f"width {width}, batch {batch}",
             mode="grad", f="||W2 tanh(W1 X) - Y||_F^2", wrt="W1", decls={},
             sizes={}, data=dict(W1=W1, W2=W2, X=Xb, Y=Yb), hand=mlp_gradient,
             hand_text="H = tanh(W1 X); (2 (W2^T (W2 H - Y)) * (1 - H*H)) @ X.T",
             jax_loss="mlp", jax_args=("W1", "W2", "X", "Y")),
        dict(name="logistic-regression gradient", size=f"X: {m}×{p}", mode="grad",
             f=cross_entropy, wrt="w", decls={}, sizes={},
             data=dict(X=X, w=w, y=y01), hand=logistic_gradient,
             hand_text="X.T @ (sigmoid(X @ w) - y)",
             jax_loss="logistic", jax_args=("w", "X", "y")),
    ]


def _jax_losses(jnp: Any, jax: Any) -> dict[str, Callable]:
    def logistic(w, X, y):
        z = X @ w
        return -(y @ jax.nn.log_sigmoid(z)) - ((1.0 - y) @ jax.nn.log_sigmoid(-z))

    def nll(S, x, m):
        r = x - m
        return jnp.linalg.slogdet(S)[1] + r @ jnp.linalg.solve(S, r)

    def mlp(W1, W2, X, Y):
        return jnp.sum((W2 @ jnp.tanh(W1 @ X) - Y) ** 2)

    return {"logistic": logistic, "nll": nll, "mlp": mlp}


def measure_all(columns: dict[str, Callable[[], Any]], repeats: int, budget: float
                ) -> dict[str, dict[str, float]]:
    """Median and spread (min, max, interquartile range) of wall-clock calls, the columns
    timed in turn (one call each per round, in a shuffled order), so that a load change on
    a shared machine, or the threads another library leaves spinning, hit every column
    alike."""
    for fn in columns.values():
        fn()  # warm-up (JIT compilation, caches)
    times: dict[str, list[float]] = {name: [] for name in columns}
    order = random.Random(0)
    start = time.perf_counter()
    rounds = 0
    while rounds < repeats or (time.perf_counter() - start < budget and rounds < 50):
        names = list(columns)
        order.shuffle(names)  # no column always runs right after another's work
        for name in names:
            t0 = time.perf_counter()
            columns[name]()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
        if time.perf_counter() - start > 4 * budget and rounds >= 3:
            break
    out = {}
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0]] * 3
        out[name] = {"median": statistics.median(ts), "min": min(ts), "max": max(ts),
                     "q1": q[0], "q3": q[2], "n": len(ts)}
    return out


def sizes_of(deriv: Any, data: dict[str, Any]) -> dict[str, int]:
    """The sizes of the formula's dimensions in this data (they order matrix chains)."""
    import numpy as np

    out: dict[str, int] = {}
    for p in deriv.params():
        shape = np.shape(data.get(p.name, ()))
        dims = [d for d in p.dims if d != 1] if len(shape) == 1 else list(p.dims)
        for d, n in zip(dims, shape, strict=False):
            if isinstance(d, str):
                out[d] = int(n)
    return out


def run(threads: int, quick: bool) -> dict[str, Any]:
    """Every problem: check the baselines, then time each column."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import matcalc

    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        jax = jnp = None
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    repeats, budget = (3, 0.3) if quick else (7, 2.0)
    rows = []
    for prob in problems(quick):
        deriv = getattr(matcalc, prob["mode"])(prob["f"], prob["wrt"], **prob["decls"])
        data = prob["data"]
        prob["sizes"] = sizes_of(deriv, data)
        row: dict[str, Any] = {k: prob[k] for k in ("name", "size", "mode", "f", "wrt",
                                                    "hand_text")}
        row["result"] = deriv.text()
        row["decls"] = prob["decls"]
        row["source"] = deriv.to_source("numpy", sizes=prob["sizes"] or None)
        want = prob["hand"]()
        checks, columns = {}, {}
        generated = deriv.to_function("numpy", sizes=prob["sizes"] or None)
        got = np.asarray(generated(**data))
        checks["matcalc NumPy = hand-written"] = bool(np.allclose(
            got.reshape(want.shape), want, rtol=1e-7, atol=1e-9))
        columns["matcalc NumPy"] = lambda g=generated, data=data: g(**data)
        columns["hand-written NumPy"] = prob["hand"]
        if jax is not None:
            fj = deriv.to_function("jax", sizes=prob["sizes"] or None)
            with jax.enable_x64(True):
                jdata = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in data.items()}
                got_j = np.asarray(fj(**jdata))
                checks["matcalc JAX = hand-written"] = bool(np.allclose(
                    got_j.reshape(want.shape), want, rtol=1e-7, atol=1e-9))
                loss = _jax_losses(jnp, jax)[prob["jax_loss"]]
                transform = jax.hessian if prob["mode"] == "hessian" else jax.grad
                auto = jax.jit(transform(loss))
                args = [jdata[a] for a in prob["jax_args"]]
                got_a = np.asarray(auto(*args))
                checks[f"jax.{transform.__name__} = hand-written"] = bool(np.allclose(
                    got_a.reshape(want.shape), want, rtol=1e-6, atol=1e-8))
                columns["matcalc JAX (jit)"] = (
                    lambda fj=fj, jdata=jdata: fj(**jdata).block_until_ready())
                columns[f"jax.{transform.__name__} (jit)"] = (
                    lambda auto=auto, args=args: auto(*args).block_until_ready())
        if torch is not None:
            ft = deriv.to_function("torch", sizes=prob["sizes"] or None)
            tdata = {k: torch.as_tensor(v) for k, v in data.items()}
            got_t = ft(**tdata).numpy()
            checks["matcalc torch = hand-written"] = bool(np.allclose(
                got_t.reshape(want.shape), want, rtol=1e-7, atol=1e-9))
            columns["matcalc PyTorch"] = lambda ft=ft, tdata=tdata: ft(**tdata)
        if jax is not None:
            with jax.enable_x64(True):
                times = measure_all(columns, repeats, budget)
        else:
            times = measure_all(columns, repeats, budget)
        row["checks"], row["times"] = checks, times
        print(f"[{threads} thread(s)] {prob['name']}: " + ", ".join(
            f"{k} {v['median'] * 1e3:.2f} ms" for k, v in times.items())
            + f"; checks {checks}", file=sys.stderr, flush=True)
        rows.append(row)
    versions = {"numpy": np.__version__}
    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            versions["BLAS"] = (f"{blas[0].get('internal_api')} {blas[0].get('version')} "
                                f"({blas[0].get('architecture')}, "
                                f"{blas[0].get('num_threads')} threads)")
    except ImportError:
        pass
    return {"threads": threads, "rows": rows, "versions": versions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default="-")
    args = parser.parse_args(argv)
    result = run(args.threads, args.quick)
    text = json.dumps(result, indent=1)
    if args.json == "-":
        print(text)
    else:
        Path(args.json).write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    _configure_threads(int(sys.argv[sys.argv.index("--threads") + 1])
                       if "--threads" in sys.argv else 1)
    raise SystemExit(main())
