"""matcalc benchmarks: derivation (cold and warm) against SymPy and tensorgrad, the L-layer
network, and the speed of the generated code against hand-written code and JAX autodiff.

One command, one process, one run; writes BENCHMARKS.md (between marker comments, other
sections kept) and benchmarks/network.png:

    pip install -e ".[bench]"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py

``--quick`` runs a small subset with few repeats (for trying the script, not for figures).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import signal
import statistics
import subprocess
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


def clear_expression_caches() -> None:
    """Empty matcalc's memo tables keyed by expressions (bounded lru caches), keep the
    loaded rule files (unbounded caches: read once per session), and drop dead nodes."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("matcalc") or module is None:
            continue
        for value in list(vars(module).values()):
            info = getattr(value, "cache_info", None)
            if info is not None and info().maxsize is not None:
                value.cache_clear()
    gc.collect()


def timed_cold(fn: Callable[[], Any], repeats: int, limit: float, clear: Callable[[], None],
               budget: float = 1.5) -> tuple[float, Any]:
    """Median wall time of ``fn`` with the caches emptied by ``clear`` before each call."""
    times, result = [], None
    start = time.perf_counter()
    for _ in range(repeats):
        result = None
        clear()
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


def battery(quick: bool, sample: int = 1) -> list[dict]:
    """Gradients from tests/data/gradients.json and the seed, Jacobians and Hessians."""
    table = json.loads((ROOT / "tests" / "data" / "gradients.json").read_text("utf-8"))
    cases = [{"mode": "grad", "f": c["f"], "wrt": c["wrt"], "decls": c.get("decls", {}),
              "source": c["source"]} for c in table]
    for mode, rows in (("jacobian", JACOBIANS), ("hessian", HESSIANS)):
        cases += [{"mode": mode, "f": f, "wrt": w, "decls": d, "source": s}
                  for f, w, d, s in rows]
    return cases[::6] if quick else cases[::sample]


def derive_matcalc(mode: str, e: Any, wrt: Any) -> Any:
    """matcalc.grad, .jacobian or .hessian."""
    return getattr(matcalc, mode)(e, wrt)


def run_battery(cases: list[dict], peers: list, quick: bool) -> list[dict]:
    """Time every tool on every case and check each result against finite differences."""
    repeats, limit = (2, 10.0) if quick else (3, 30.0)
    derive_matcalc("grad", matcalc.parse("x^T A x"), "x")  # load rule files once
    rows = []
    for n, case in enumerate(cases, 1):
        e = matcalc.parse(case["f"], **case["decls"])
        wrt = next((s for s in e.free_symbols() if s.name == case["wrt"]), None)
        row = {**case, "times": {}, "cold": {}, "right": {}, "notes": {}}
        rows.append(row)
        if wrt is None:
            continue
        sizes = concrete_sizes([e, wrt])
        point = random_point(symbols_of([e, wrt]), sizes, np.random.default_rng(n),
                             positive=True)
        want = np.asarray(finite_difference(e, wrt, point, case["mode"]), dtype=float)
        # matcalc: cold (from text, parsing included, memo tables empty) and warm (again on
        # the parsed expression, as the caches of the first derivation left them)
        try:
            t, d = timed_cold(lambda c=case: derive_matcalc(
                c["mode"], matcalc.parse(c["f"], **c["decls"]), c["wrt"]), repeats, limit,
                clear_expression_caches)
            row["cold"]["matcalc"] = t
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
                if peer.clear_caches is not None:  # cold: conversion included, caches empty
                    row["cold"][peer.name], _ = timed_cold(
                        lambda p=peer, m=case["mode"], e=e, w=wrt: p.derive(m, *p.convert(e, w)),
                        repeats, limit, peer.clear_caches)
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
    limit = 20.0
    rows, dead = [], set()
    matcalc.grad("||W2 tanh(W1 x) - y||^2", "W1")  # load the rule files before timing
    for L in layers:
        e = matcalc.parse(network_formula(L))
        wrt = next(s for s in e.free_symbols() if s.name == "W1")
        row = {"L": L, "times": {}, "sizes": {}, "notes": {}}
        # One cold derivation per L, from text (a repeat would reuse the node and memo
        # caches of the first, which a user deriving a new formula does not have).
        clear_expression_caches()
        t, d = timed(lambda L=L: matcalc.grad(network_formula(L), "W1"), 1, 600.0)
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


def run_evaluation(quick: bool) -> tuple[list[dict], str]:
    """benchmarks/codespeed.py in a fresh process with one BLAS/XLA thread, then all."""
    results = []
    for threads in sorted({1, os.cpu_count() or 1}):
        cmd = [sys.executable, str(Path(__file__).with_name("codespeed.py")),
               "--threads", str(threads)] + (["--quick"] if quick else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        sys.stderr.write(out.stderr)
        if out.returncode != 0:
            return [], f"codespeed.py failed: {out.stderr.strip().splitlines()[-1:]}"
        results.append(json.loads(out.stdout))
    return results, ""


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
    command = f"{COMMAND} {' '.join(sys.argv[1:])}".rstrip()
    out += ["Produced by one run of", "", "    pip install -e \".[bench]\"", f"    {command}", "",
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
    out += ["Cold = a new formula from text: parsing (and, for SymPy, conversion) included, "
            "memo tables and SymPy's cache emptied, rule files already loaded. Warm = the same "
            "derivation repeated on the parsed expression (the caches of the first run "
            "reused); earlier versions of this file reported only warm times.", ""]
    out += ["| tool | derived | right | median cold (its cases) | median warm (its cases) "
            "| median cold (cases all derived) | median cold ratio to matcalc (per case) |",
            "|---|---|---|---|---|---|---|"]
    common = [r for r in rows if all(n in r["times"] for n in names)]
    for n in names:
        mine = [r["times"][n] for r in rows if n in r["times"]]
        cold = [r["cold"][n] for r in rows if n in r["cold"]]
        right = sum(bool(r["right"].get(n)) for r in rows)
        evaluated = sum(n in r["right"] for r in rows)
        ratios = [r["cold"][n] / r["cold"]["matcalc"] for r in rows
                  if n in r["cold"] and "matcalc" in r["cold"]]
        right_text = f"{right}/{len(rows)}" + (
            f" ({evaluated} evaluated)" if evaluated < len(mine) else "")
        common_cold = [r["cold"][n] for r in common if n in r["cold"]]
        ratio_text = "1" if n == "matcalc" else (
            f"{median_or_none(ratios):.1f}×" if ratios else "not timed cold")
        out.append(f"| {n} | {len(mine)}/{len(rows)} | {right_text} | "
                   f"{fmt_time(median_or_none(cold))} | {fmt_time(median_or_none(mine))} | "
                   f"{fmt_time(median_or_none(common_cold))} | {ratio_text} |")
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
                cold = f"{fmt_time(r['cold'][n])} / " if n in r["cold"] else ""
                cells.append(f"{cold}{fmt_time(r['times'][n])} {mark}")
            else:
                cells.append(r["notes"].get(n, "–").replace("|", "\\|"))
        f_text = r["f"].replace("|", "\\|")
        out.append(f"| {r['mode']} | `{f_text}` | {r['wrt']} | " + " | ".join(cells) + " |")
    out += ["", "Cells: cold / warm time; ✓ right, ✗ wrong, ? not evaluated.", "",
            "</details>", ""]
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
    out += ["", "### 3. Speed of the generated code", ""]
    out += code_speed_text(evaluation, jax_note)
    out += ["", "### Targets", ""]
    out += targets_text(rows, network, evaluation, names)
    out += ["", END]
    return "\n".join(out)


def _spread(t: dict) -> str:
    return (f"{fmt_time(t['median'])} ({fmt_time(t['q1'])}–{fmt_time(t['q3'])}, "
            f"n={t['n']})")


def code_speed_text(evaluation: list[dict], jax_note: str) -> list[str]:
    """One table per thread count: median and interquartile range of each column."""
    out = ["The four problems of issue 15, float64 throughout. Each column is timed in a "
           "fresh process per thread count (NumPy's BLAS, XLA and PyTorch limited to that "
           "many threads); JAX functions are jitted and timed after a warm-up call. Cells: "
           "median (interquartile range, number of calls). The hand-written forms are the "
           "best ones we know (below), each checked against the generated code before "
           "timing.", ""]
    if jax_note:
        out += [jax_note, ""]
    for result in evaluation:
        rows = result["rows"]
        cols = list(dict.fromkeys(k for r in rows for k in r["times"]))
        out += [f"#### {result['threads']} thread{'s' if result['threads'] > 1 else ''}"
                f" ({result['versions'].get('BLAS', '')})", "",
                "| problem | size | " + " | ".join(cols) + " | matcalc NumPy / hand |",
                "|---|---|" + "---|" * len(cols) + "---|"]
        for r in rows:
            ratio = r["times"]["matcalc NumPy"]["median"] / r["times"][
                "hand-written NumPy"]["median"]
            out.append(f"| {r['name']} | {r['size']} | " + " | ".join(
                _spread(r["times"][c]) if c in r["times"] else "–" for c in cols)
                + f" | {ratio:.2f}× |")
        failed = [f"{r['name']}: {k}" for r in rows for k, ok in r["checks"].items() if not ok]
        out += ["", "Checks before timing: " + ("all agree." if not failed else
                                                 "DISAGREE: " + "; ".join(failed)), ""]
    if evaluation:
        out += ["The formulas, matcalc's results and the hand-written forms:", ""]
        for r in evaluation[0]["rows"]:
            decls = ", ".join(f"{k}: {v}" for k, v in r["decls"].items())
            out.append(f"- {r['name']}: {r['mode']} of `{r['f']}` wrt {r['wrt']}"
                       + (f" where {decls}" if decls else "")
                       + f" = `{r['result']}`; hand-written: {r['hand_text']}")
        out += ["", "<details><summary>The generated NumPy code</summary>", ""]
        for r in evaluation[0]["rows"]:
            out += [f"{r['name']}:", "", "```python", r["source"].rstrip(), "```", ""]
        out += ["</details>", ""]
    return out


def targets_text(rows: list[dict], network: list[dict], evaluation: list[dict],
                 names: list[str]) -> list[str]:
    """Met or missed, and by how much, for each target of issue #5."""
    lines = []
    mine = median_or_none([r["cold"]["matcalc"] for r in rows if "matcalc" in r["cold"]])
    for n in names[1:]:
        theirs = median_or_none([r["cold"][n] for r in rows if n in r["cold"]])
        if mine and theirs:
            factor = theirs / mine
            verdict = "met" if factor >= 10 else f"MISSED (needs 10×, is {factor:.1f}×)"
            lines.append(f"- Median cold derivation time 10× below {n}: {verdict} "
                         f"({fmt_time(mine)} against {fmt_time(theirs)}).")
        else:
            lines.append(f"- Median cold derivation time 10× below {n}: not measured cold.")
    last = network[-1] if network else None
    if last:
        t = last["times"]["matcalc"]
        gt = growth_exponent(network, "matcalc", "times")
        gs = growth_exponent(network, "matcalc", "sizes")
        lines.append(f"- L = {last['L']} under 1 s: {'met' if t < 1 else 'MISSED'} "
                     f"({fmt_time(t)}{'' if t < 1 else f', {t:.1f}× over'}).")
        lines.append(f"- Linear growth: time exponent {gt:.2f}, size exponent {gs:.2f} "
                     f"({'met' if max(gt, gs) < 1.2 else 'MISSED'}).")
    for result in evaluation:
        threads = result["threads"]
        for r in result["rows"]:
            t = r["times"]
            ratio = t["matcalc NumPy"]["median"] / t["hand-written NumPy"]["median"]
            lines.append(f"- [{threads} thread(s)] {r['name']}: generated NumPy within 1.05× "
                         f"of the best hand-written form: {'met' if ratio <= 1.05 else 'MISSED'}"
                         f" ({ratio:.2f}×).")
            if r["mode"] == "hessian" and "matcalc JAX (jit)" in t and "jax.hessian (jit)" in t:
                j = t["jax.hessian (jit)"]["median"] / t["matcalc JAX (jit)"]["median"]
                lines.append(f"- [{threads} thread(s)] {r['name']}: generated JAX beats "
                             f"jax.hessian (jit): {'met' if j > 1 else 'MISSED'} (jax.hessian "
                             f"takes {j:.2f}× the generated code's time).")
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
    parser.add_argument("--sample", type=int, default=1,
                        help="time every K-th case of the battery (a shorter run on a busy "
                             "machine; the report says so)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--plot", default=str(ROOT / "benchmarks" / "network.png"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
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
    cases = battery(args.quick, args.sample)
    total_cases = len(battery(False))
    rows = run_battery(cases, peers, args.quick)
    network = run_network(peers, args.quick)
    evaluation, jax_note = run_evaluation(args.quick)
    plot(network, Path(args.plot))
    if len(cases) < total_cases:
        skipped["part of the battery"] = (f"{len(cases)} of the {total_cases} cases timed "
                                          f"(every {args.sample if not args.quick else 6}th)")
    info["load average at start"] = load
    section = report(info, rows, network, evaluation, peers, skipped, jax_note,
                     time.perf_counter() - start, args.quick)
    write_markdown(section, Path(args.out))
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
