"""matcalc benchmarks: derivation against SymPy and tensorgrad, the L-layer network, code speed.

One command, one process, one run; writes BENCHMARKS.md (between marker comments, other
sections kept) and benchmarks/network.png:

    pip install -e ".[bench]"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py

``--quick`` runs a small subset with few repeats (for trying the script, not for figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# One thread for BLAS and XLA: the machine is shared, and two threads contending with other
# processes measured in scheduler quanta (16 ms steps) rather than in arithmetic.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
THREADS = 1

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import SympyPeer, TensorgradPeer, Unsupported  # noqa: E402

import matcalc  # noqa: E402
from matcalc.numeric import evaluate, finite_difference, random_point, symbols_of  # noqa: E402
from matcalc.verify import concrete_sizes  # noqa: E402

START, END = "<!-- matcalc-bench:start -->", "<!-- matcalc-bench:end -->"
COMMAND = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py"

JACOBIANS = [
    ("A x", "x", {}, "Matrix Cookbook eq. 69 (d(Ax)/dx = A)"),
    ("tanh(W x)", "x", {}, "one network layer"),
    ("tanh(W x)", "W", {}, "one network layer, weights"),
    ("softmax(x)", "x", {}, "softmax Jacobian diag(s) - s s^T"),
    ("exp(x)", "x", {}, "elementwise map"),
    ("x .* y", "x", {}, "Hadamard product"),
    ("A X B", "X", {}, "Matrix Cookbook eq. 520 (B^T ⊗ A)"),
    ("sigma(W x + b)", "b", {}, "logistic layer, bias"),
    ("X^T X", "X", {}, "Gram matrix"),
    ("x / ||x||_2", "x", {}, "normalisation"),
]
HESSIANS = [
    ("x^T A x", "x", {}, "Matrix Cookbook eq. 97"),
    ("||A x - b||_2^2", "x", {}, "least squares"),
    ("1^T log(1 + exp(-y .* (X w)))", "w", {}, "logistic regression"),
    ("a^T x + ||x||_2^2", "x", {}, "ridge term"),
    ("logsumexp(x)", "x", {}, "log-sum-exp"),
    ("-y^T log(softmax(x))", "x", {"y": "probability vector"}, "cross-entropy in the logits"),
    ("sum(exp(A x))", "x", {}, "exponential sum"),
    ("||x||_2", "x", {}, "Euclidean norm"),
]


# ---------------------------------------------------------------------------- helpers


class Timeout(Exception):
    """A derivation ran past its time limit."""


@contextmanager
def time_limit(seconds: float):
    """Raise Timeout in the main thread after ``seconds`` (SIGALRM)."""
    def handler(signum, frame):
        raise Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def timed(fn: Callable[[], Any], repeats: int, limit: float, budget: float = 0.5
          ) -> tuple[float, Any]:
    """Median wall time of ``fn`` (repeated while under ``budget`` s in all) and its result."""
    times, result = [], None
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        with time_limit(limit):
            result = fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return statistics.median(times), result


def close(got: Any, want: np.ndarray, mode: str) -> bool:
    """Numerically equal (a transposed Jacobian or Hessian counts: layouts differ)."""
    try:
        got = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return False
    tol = {"rtol": 1e-3, "atol": 1e-4} if mode == "hessian" else {"rtol": 1e-4, "atol": 1e-5}
    if got.size != want.size or not np.all(np.isfinite(got)):
        return False
    if np.allclose(got.reshape(want.shape), want, **tol):
        return True
    return mode != "grad" and want.ndim == 2 and got.size == want.size and np.allclose(
        got.reshape(want.shape[::-1]).T, want, **tol)


def fmt_time(seconds: float | None) -> str:
    """Seconds as a short human string."""
    if seconds is None:
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def machine() -> dict[str, str]:
    """CPU, cores, Python and library versions, BLAS."""
    info = {"Python": platform.python_version(), "OS": platform.platform()}
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["CPU"] = f"{cpu} ({os.cpu_count()} cores visible)"
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("matcalc-symbolic", "numpy", "sympy", "jax", "jaxlib", "torch", "tensorgrad"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = "not installed"
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
                f"{p.get('num_threads')} threads)" for p in threadpool_info()
                if p.get("user_api") == "blas"]
        info["BLAS (NumPy)"] = "; ".join(blas) or "?"
    except ImportError:
        info["BLAS (NumPy)"] = "threadpoolctl not installed"
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return info


# ---------------------------------------------------------------------------- 1. battery


def battery(quick: bool) -> list[dict]:
    """Gradients from tests/data/gradients.json and the seed, Jacobians and Hessians."""
    table = json.loads((ROOT / "tests" / "data" / "gradients.json").read_text("utf-8"))
    cases = [{"mode": "grad", "f": c["f"], "wrt": c["wrt"], "decls": c.get("decls", {}),
              "source": c["source"]} for c in table]
    for mode, rows in (("jacobian", JACOBIANS), ("hessian", HESSIANS)):
        cases += [{"mode": mode, "f": f, "wrt": w, "decls": d, "source": s}
                  for f, w, d, s in rows]
    return cases[::6] if quick else cases


def derive_matcalc(mode: str, e: Any, wrt: Any) -> Any:
    """matcalc.grad, .jacobian or .hessian."""
    return getattr(matcalc, mode)(e, wrt)


def run_battery(cases: list[dict], peers: list, quick: bool) -> list[dict]:
    """Time every tool on every case and check each result against finite differences."""
    repeats, limit = (2, 10.0) if quick else (5, 30.0)
    derive_matcalc("grad", matcalc.parse("x^T A x"), "x")  # load rule files once
    rows = []
    for n, case in enumerate(cases, 1):
        e = matcalc.parse(case["f"], **case["decls"])
        wrt = next((s for s in e.free_symbols() if s.name == case["wrt"]), None)
        row = {**case, "times": {}, "right": {}, "notes": {}}
        rows.append(row)
        if wrt is None:
            continue
        sizes = concrete_sizes([e, wrt])
        point = random_point(symbols_of([e, wrt]), sizes, np.random.default_rng(n),
                             positive=True)
        want = np.asarray(finite_difference(e, wrt, point, case["mode"]), dtype=float)
        # matcalc
        try:
            t, d = timed(lambda m=case["mode"], e=e, w=wrt: derive_matcalc(m, e, w),
                         repeats, limit)
            row["times"]["matcalc"] = t
            got = evaluate(d.expr, point, sizes)
            row["right"]["matcalc"] = close(got, want, case["mode"])
        except Timeout:
            row["notes"]["matcalc"] = "timeout"
        except Exception as err:  # a failure is a result, not a crash of the benchmark
            row["notes"]["matcalc"] = f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"
        for peer in peers:
            try:
                f_peer, x_peer = peer.convert(e, wrt)
            except Unsupported as err:
                row["notes"][peer.name] = f"cannot express: {err}"
                continue
            except Exception as err:
                row["notes"][peer.name] = f"conversion: {type(err).__name__}"
                continue
            try:
                t, result = timed(lambda p=peer, f=f_peer, x=x_peer, m=case["mode"]:
                                  p.derive(m, f, x), repeats, limit)
                row["times"][peer.name] = t
            except Timeout:
                row["notes"][peer.name] = f"timeout (> {limit:.0f} s)"
                continue
            except Exception as err:
                row["notes"][peer.name] = f"{type(err).__name__}: {str(err)[:80]}"
                continue
            try:
                with time_limit(limit):
                    if isinstance(peer, TensorgradPeer):
                        got = peer.evaluate(result, sizes, point, case["mode"], want.shape)
                    else:
                        got = peer.evaluate(result, sizes, point)
                row["right"][peer.name] = close(got, want, case["mode"])
            except Unsupported as err:
                row["notes"][peer.name] = f"not evaluated: {err}"
            except Exception as err:
                row["right"][peer.name] = False
                row["notes"][peer.name] = f"evaluation: {type(err).__name__}"
        status = " ".join(f"{k}={fmt_time(v)}{'' if row['right'].get(k) else '✗'}"
                          for k, v in row["times"].items())
        print(f"[{n}/{len(cases)}] {case['mode']} {case['f']} d/d{case['wrt']}: {status}",
              flush=True)
    return rows


# ---------------------------------------------------------------------------- 2. network


def network_formula(L: int) -> str:
    """||W_L tanh(W_{L-1} ... tanh(W_1 x)) - y||^2 with W1..WL."""
    inner = "x"
    for k in range(1, L):
        inner = f"tanh(W{k} {inner})"
    return f"||W{L} {inner} - y||_2^2"


def run_network(peers: list, quick: bool) -> list[dict]:
    """Derivation time and printed size of d/dW1 for L = 1, 2, 4, ..., 64."""
    layers = [1, 2, 4, 8, 16] if quick else [1, 2, 4, 8, 16, 32, 64]
    limit = 20.0 if quick else 60.0
    rows, dead = [], set()
    matcalc.grad("||W2 tanh(W1 x) - y||^2", "W1")  # load the rule files before timing
    for L in layers:
        e = matcalc.parse(network_formula(L))
        wrt = next(s for s in e.free_symbols() if s.name == "W1")
        row = {"L": L, "times": {}, "sizes": {}, "notes": {}}
        # One cold derivation per L (a repeat would reuse the node and memo caches of the
        # first, which a user deriving a new formula does not have).
        t, d = timed(lambda e=e, wrt=wrt: matcalc.grad(e, wrt), 1, 600.0)
        row["times"]["matcalc"], row["sizes"]["matcalc"] = t, len(str(d))
        for peer in peers:
            if peer.name in dead:
                row["notes"][peer.name] = "skipped (failed at a smaller L)"
                continue
            try:
                f_peer, x_peer = peer.convert(e, wrt)
                t, result = timed(lambda p=peer, f=f_peer, x=x_peer: p.derive("grad", f, x),
                                  1, limit)
                row["times"][peer.name], row["sizes"][peer.name] = t, peer.size(result)
            except Timeout:
                row["notes"][peer.name] = f"timeout (> {limit:.0f} s)"
                dead.add(peer.name)
            except Exception as err:
                row["notes"][peer.name] = f"{type(err).__name__}: {str(err)[:60]}"
                dead.add(peer.name)
        print(f"network L={L}: " + ", ".join(
            f"{k} {fmt_time(v)} ({row['sizes'][k]} chars)" for k, v in row["times"].items())
            + "".join(f"; {k}: {v}" for k, v in row["notes"].items()), flush=True)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- 3. evaluation


def bench_call(fn: Callable[[], Any], quick: bool) -> float:
    """Median time of a call (after a warm-up call)."""
    fn()
    n = 5 if quick else 30
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_evaluation(quick: bool) -> tuple[list[dict], str]:
    """matcalc's generated code against hand-written NumPy and jax.grad / jax.hessian."""
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        jax_note = ""
    except ImportError:
        jax, jnp, jax_note = None, None, "jax is not installed: its columns are empty"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(THREADS)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    rows = []

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    # least squares
    n, d = (1000, 500) if quick else (4000, 2000)
    A, b, x = rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=d)
    # logistic regression
    m, p = (500, 100) if quick else (2000, 500)
    X, y, w = rng.normal(size=(m, p)), rng.choice([-1.0, 1.0], size=m), 0.1 * rng.normal(size=p)
    # softmax regression (one sample, k classes)
    q, k = (500, 100) if quick else (2000, 500)
    W, xs = 0.01 * rng.normal(size=(q, k)), rng.normal(size=q)
    ys = rng.uniform(size=k)
    ys /= ys.sum()

    cases = [
        ("least squares gradient", f"A: {n}×{d}", "grad", "||A x - b||_2^2", "x", {},
         dict(A=A, b=b, x=x), lambda: 2.0 * (A.T @ (A @ x - b)),
         "2 * A.T @ (A @ x - b)",
         (lambda x_, A_, b_: jnp.sum((A_ @ x_ - b_) ** 2)) if jax else None, (x, A, b)),
        ("logistic gradient", f"X: {m}×{p}", "grad", "1^T log(1 + exp(-y .* (X w)))", "w", {},
         dict(X=X, w=w, y=y), lambda: -X.T @ (y * sigmoid(-y * (X @ w))),
         "-X.T @ (y * sigmoid(-y * (X @ w)))",
         (lambda w_, X_, y_: jnp.sum(jnp.logaddexp(0.0, -y_ * (X_ @ w_)))) if jax else None,
         (w, X, y)),
        ("logistic Hessian", f"X: {m}×{p}", "hessian", "1^T log(1 + exp(-y .* (X w)))", "w", {},
         dict(X=X, w=w, y=y),
         lambda: (lambda s: X.T @ (X * (s * (1 - s))[:, None]))(sigmoid(y * (X @ w))),
         "X.T @ (X * (s*(1-s))[:, None])",
         (lambda w_, X_, y_: jnp.sum(jnp.logaddexp(0.0, -y_ * (X_ @ w_)))) if jax else None,
         (w, X, y)),
        ("softmax regression gradient", f"W: {q}×{k}", "grad", "-y^T log(softmax(W^T x))", "W",
         {"y": "probability vector"}, dict(W=W, x=xs, y=ys),
         lambda: (lambda z: np.outer(xs, np.exp(z - z.max()) / np.exp(z - z.max()).sum() - ys))(
             W.T @ xs),
         "np.outer(x, softmax(W.T @ x) - y)",
         (lambda W_, x_, y_: -y_ @ jax.nn.log_softmax(W_.T @ x_)) if jax else None,
         (W, xs, ys)),
    ]
    for name, size, mode, f, wrt, decls, kw, hand, hand_text, jloss, jargs in cases:
        deriv = getattr(matcalc, mode)(f, wrt, **decls)
        generated = deriv.to_numpy()
        want = hand()
        got = generated(**kw)
        ok = np.allclose(np.asarray(got).reshape(np.shape(want)), want, rtol=1e-8, atol=1e-8)
        row = {"name": name, "size": size, "formula": f"{mode} of {f} wrt {wrt}",
               "result": str(deriv), "hand": hand_text, "agree": ok, "times": {}}
        row["times"]["matcalc (NumPy)"] = bench_call(lambda g=generated, kw=kw: g(**kw), quick)
        row["times"]["hand-written NumPy"] = bench_call(hand, quick)
        if jax is not None:
            ns: dict[str, Any] = {}
            exec(deriv.to_source("jax"), ns)  # noqa: S102
            mj = jax.jit(ns["f"])
            jkw = {key: jnp.asarray(v) for key, v in kw.items()}
            row["times"]["matcalc (JAX, jit)"] = bench_call(
                lambda mj=mj, jkw=jkw: mj(**jkw).block_until_ready(), quick)
            transform = jax.hessian if mode == "hessian" else jax.grad
            jf = jax.jit(transform(jloss))
            jj = [jnp.asarray(a) for a in jargs]
            jres = np.asarray(jf(*jj))
            row["jax_agrees"] = bool(np.allclose(jres.reshape(np.shape(want)), want,
                                                 rtol=1e-8, atol=1e-8))
            label = "jax.hessian (jit)" if mode == "hessian" else "jax.grad (jit)"
            row["times"][label] = bench_call(lambda jf=jf, jj=jj: jf(*jj).block_until_ready(),
                                             quick)
        print(f"eval {name}: " + ", ".join(f"{k} {fmt_time(v)}" for k, v in row["times"].items())
              + f"; agree={ok}", flush=True)
        rows.append(row)
    return rows, jax_note


# ---------------------------------------------------------------------------- report


def median_or_none(values: list[float]) -> float | None:
    """Median of a list, None when empty."""
    return statistics.median(values) if values else None


def growth_exponent(rows: list[dict], tool: str, key: str) -> float | None:
    """Slope of log(value) against log(L) over the last three points."""
    pts = [(r["L"], r[key][tool]) for r in rows if tool in r[key]][-3:]
    if len(pts) < 2:
        return None
    xs, ys = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(xs, ys, 1)[0])


def plot(network: list[dict], path: Path) -> None:
    """Derivation time and printed size against L, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    tools = sorted({t for r in network for t in r["times"]})
    for tool in tools:
        pts = [(r["L"], r["times"][tool], r["sizes"][tool]) for r in network
               if tool in r["times"]]
        if not pts:
            continue
        Ls, ts, ss = zip(*pts, strict=True)
        axes[0].plot(Ls, ts, marker="o", label=tool)
        axes[1].plot(Ls, ss, marker="o", label=tool)
    Ls = [r["L"] for r in network]
    base = network[0]["times"]["matcalc"] / Ls[0] if network else 1
    axes[0].plot(Ls, [base * L for L in Ls], ls=":", color="grey", label="linear")
    axes[0].set(xscale="log", yscale="log", xlabel="layers L", ylabel="derivation time (s)",
                title="d/dW1 of the L-layer network")
    axes[1].set(xscale="log", yscale="log", xlabel="layers L", ylabel="printed size (chars)",
                title="size of the printed derivative")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(info: dict, rows: list[dict], network: list[dict], evaluation: list[dict],
           peers: list, skipped: dict, jax_note: str, elapsed: float, quick: bool) -> str:
    """The markdown section for BENCHMARKS.md."""
    names = ["matcalc"] + [p.name for p in peers]
    out = [START, "", "## Benchmarks (benchmarks/run.py)", ""]
    out += ["Produced by one run of", "", "    pip install -e \".[bench]\"", f"    {COMMAND}", "",
            f"({'QUICK run: not for figures; ' if quick else ''}total {elapsed:.0f} s). "
            "Times are medians of repeated wall-clock runs in one process on a shared 2-core "
            "machine; they are measurements of one run, not timed tests.", ""]
    out += ["### Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in info.items()]
    for name, why in skipped.items():
        out += ["", f"**{name} skipped:** {why}"]
    out += ["", "### 1. Derivation time on the battery", ""]
    modes = sorted({r["mode"] for r in rows}, key=["grad", "jacobian", "hessian"].index)
    out += [f"{len(rows)} cases: " + ", ".join(
        f"{sum(r['mode'] == m for r in rows)} {m}" for m in modes)
        + " (every gradient of tests/data/gradients.json, Jacobians and Hessians from "
        "benchmarks/run.py). Right = agrees with central finite differences at a random "
        "point (Jacobians and Hessians in either layout); a peer that cannot express the "
        "formula counts as not right.", ""]
    out += ["| tool | derived | right | median time (its cases) | median time (cases all "
            "derived) | median ratio to matcalc (per case) |", "|---|---|---|---|---|---|"]
    common = [r for r in rows if all(n in r["times"] for n in names)]
    for n in names:
        mine = [r["times"][n] for r in rows if n in r["times"]]
        right = sum(bool(r["right"].get(n)) for r in rows)
        evaluated = sum(n in r["right"] for r in rows)
        ratios = [r["times"][n] / r["times"]["matcalc"] for r in rows
                  if n in r["times"] and "matcalc" in r["times"]]
        right_text = f"{right}/{len(rows)}" + (
            f" ({evaluated} evaluated)" if evaluated < len(mine) else "")
        out.append(f"| {n} | {len(mine)}/{len(rows)} | {right_text} | "
                   f"{fmt_time(median_or_none(mine))} | "
                   f"{fmt_time(median_or_none([r['times'][n] for r in common]))} | "
                   f"{'1' if n == 'matcalc' else f'{median_or_none(ratios) or 0:.1f}×'} |")
    out += ["", f"'Cases all derived' = the {len(common)} cases every tool derived.", ""]
    for m in modes:
        sub = [r for r in rows if r["mode"] == m]
        out.append(f"- {m}: " + "; ".join(
            f"{n} {sum(bool(r['right'].get(n)) for r in sub)}/{len(sub)} right, median "
            f"{fmt_time(median_or_none([r['times'][n] for r in sub if n in r['times']]))}"
            for n in names))
    out += ["", "<details><summary>Every case</summary>", "",
            "| mode | f | wrt | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names)]
    for r in rows:
        cells = []
        for n in names:
            if n in r["times"]:
                mark = {True: "✓", False: "✗"}.get(r["right"].get(n), "?")
                cells.append(f"{fmt_time(r['times'][n])} {mark}")
            else:
                cells.append(r["notes"].get(n, "–").replace("|", "\\|"))
        f_text = r["f"].replace("|", "\\|")
        out.append(f"| {r['mode']} | `{f_text}` | {r['wrt']} | " + " | ".join(cells) + " |")
    out += ["", "✓ right, ✗ wrong, ? not evaluated.", "", "</details>", ""]
    out += ["### 2. The L-layer network", "",
            "d/dW1 of `||W_L tanh(W_{L-1} ... tanh(W_1 x)) - y||_2^2` (matcalc names W1..WL); "
            "size = characters of the printed result.", "",
            "| L | " + " | ".join(f"{n} time | {n} size" for n in names) + " |",
            "|---|" + "---|---|" * len(names)]
    for r in network:
        cells = []
        for n in names:
            if n in r["times"]:
                cells += [fmt_time(r["times"][n]), str(r["sizes"][n])]
            else:
                cells += [r["notes"].get(n, "–"), "–"]
        out.append(f"| {r['L']} | " + " | ".join(cells) + " |")
    out += ["", "![derivation time and size against L](benchmarks/network.png)", ""]
    for n in names:
        gt, gs = growth_exponent(network, n, "times"), growth_exponent(network, n, "sizes")
        if gt is not None:
            out.append(f"- {n}: time grows like L^{gt:.2f}, size like L^{gs:.2f} "
                       "(slope over the last three points)")
    out += ["", "### 3. Speed of the generated code", "",
            f"NumPy's BLAS and XLA run on {THREADS} thread (XLA_FLAGS, threadpoolctl), "
            "float64 throughout; JAX functions are jitted and timed after a warm-up call.", ""]
    if jax_note:
        out += [jax_note, ""]
    cols = sorted({k for r in evaluation for k in r["times"]},
                  key=lambda k: ["matcalc (NumPy)", "hand-written NumPy", "matcalc (JAX, jit)"]
                  .index(k) if k.startswith(("matcalc", "hand")) else 9)
    out += ["| problem | size | " + " | ".join(cols) + " | matcalc / hand | agrees |",
            "|---|---|" + "---|" * len(cols) + "---|---|"]
    for r in evaluation:
        ratio = r["times"]["matcalc (NumPy)"] / r["times"]["hand-written NumPy"]
        out.append(f"| {r['name']} | {r['size']} | "
                   + " | ".join(fmt_time(r["times"].get(c)) for c in cols)
                   + f" | {ratio:.2f}× | {'yes' if r['agree'] else 'NO'} |")
    out += ["", "matcalc's results and the hand-written closed forms:", ""]
    out += [f"- {r['name']}: matcalc `{r['result']}`; hand-written `{r['hand']}`"
            for r in evaluation]
    out += ["", "### Targets", ""]
    out += targets_text(rows, network, evaluation, names)
    out += ["", END]
    return "\n".join(out)


def targets_text(rows: list[dict], network: list[dict], evaluation: list[dict],
                 names: list[str]) -> list[str]:
    """Met or missed, and by how much, for each target of issue #5."""
    lines = []
    mine = median_or_none([r["times"]["matcalc"] for r in rows if "matcalc" in r["times"]])
    for n in names[1:]:
        theirs = median_or_none([r["times"][n] for r in rows if n in r["times"]])
        if mine and theirs:
            factor = theirs / mine
            verdict = "met" if factor >= 10 else f"MISSED (needs 10×, is {factor:.1f}×)"
            lines.append(f"- Median derivation time 10× below {n}: {verdict} "
                         f"({fmt_time(mine)} against {fmt_time(theirs)}).")
        else:
            lines.append(f"- Median derivation time 10× below {n}: not measured.")
    last = network[-1] if network else None
    if last:
        t = last["times"]["matcalc"]
        gt = growth_exponent(network, "matcalc", "times")
        gs = growth_exponent(network, "matcalc", "sizes")
        lines.append(f"- L = {last['L']} under 1 s: {'met' if t < 1 else 'MISSED'} "
                     f"({fmt_time(t)}{'' if t < 1 else f', {t:.1f}× over'}).")
        lines.append(f"- Linear growth: time exponent {gt:.2f}, size exponent {gs:.2f} "
                     f"({'met' if max(gt, gs) < 1.2 else 'MISSED'}).")
    for r in evaluation:
        ratio = r["times"]["matcalc (NumPy)"] / r["times"]["hand-written NumPy"]
        lines.append(f"- {r['name']} within 1.1× of the hand-written form: "
                     f"{'met' if ratio <= 1.1 else 'MISSED'} ({ratio:.2f}×).")
        if "jax.hessian (jit)" in r["times"]:
            j = r["times"]["jax.hessian (jit)"] / r["times"]["matcalc (NumPy)"]
            lines.append(f"- {r['name']} at least as fast as jax.hessian: "
                         f"{'met' if j >= 1 else 'MISSED'} (jax.hessian takes {j:.2f}× "
                         "matcalc's time).")
    return lines


def write_markdown(section: str, path: Path) -> None:
    """Replace the section between the markers; keep everything else (e.g. a Soak test)."""
    old = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    if START in old and END in old:
        head, rest = old.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        lines = old.rstrip("\n").split("\n")
        if lines and lines[0].startswith("# "):
            text = lines[0] + "\n\n" + section + "\n\n" + "\n".join(lines[1:]).lstrip("\n")
        else:
            text = "# Benchmarks\n\n" + section + "\n\n" + old
    path.write_text(text.rstrip("\n") + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the three benchmarks and write BENCHMARKS.md and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subset, few repeats")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--plot", default=str(ROOT / "benchmarks" / "network.png"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    info = machine()
    peers, skipped = [SympyPeer()], {}
    try:
        tg = TensorgradPeer()
        peers.append(tg)
        if not tg.can_evaluate:
            skipped["tensorgrad evaluation"] = tg.why_not
    except Exception as err:  # not installed, or fails to import offline
        skipped["tensorgrad"] = f"{type(err).__name__}: {err} (pip install -e '.[bench]')"
    for name, why in skipped.items():
        print(f"{name} skipped: {why}", flush=True)
    rows = run_battery(battery(args.quick), peers, args.quick)
    network = run_network(peers, args.quick)
    evaluation, jax_note = run_evaluation(args.quick)
    plot(network, Path(args.plot))
    section = report(info, rows, network, evaluation, peers, skipped, jax_note,
                     time.perf_counter() - start, args.quick)
    write_markdown(section, Path(args.out))
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
