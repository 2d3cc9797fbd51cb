"""Growth of derivation time with the size of the formula, as ratios in one run.

Usage (from the repository root)::

    python benchmarks/stress.py            # each family at two sizes, ratio checked
    python benchmarks/stress.py --soak     # larger sizes, three doublings per family

For each family of formulas the time is measured at size n and 2n (best of a few runs)
and the ratio t(2n) / t(n) is compared with 4, a quadratic bound: a ratio above 4 (with a
margin for noise) marks the family as growing faster than quadratically. The growth is
measured without the step budget (matcalc.budget), which would end the larger sizes.

Then each runaway (a derivation whose work outgrows the budget of its input) is run with
the default budget: it must end with a RewriteError that names the sub-expression it was
working on, and its wall and CPU time until then are reported (the best of --repeat runs,
each from a cold start: the caches of expressions emptied, as in a fresh command-line run),
with a verdict: issue 12 asks for "well under a second" on inputs under 10 kB, read here as
at most TARGET seconds of CPU (a verdict printed, not a timed test: the budget itself
counts steps, never time). Exit status 1 when a family grows faster than quadratically or a
runaway does not end with the budget's located error. The numbers are recorded in
BENCHMARKS.md ("Stress").
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matcalc  # noqa: E402
import matcalc.expr as expr_module  # noqa: E402
from matcalc.budget import BASE_STEPS, STEPS_PER_NODE, derivation_budget, input_size  # noqa: E402
from matcalc.errors import RewriteError  # noqa: E402

parse_module = sys.modules["matcalc.parse"]  # (the package exports the function as parse)

QUADRATIC = 4.0
TARGET = 0.5  # seconds of CPU until a runaway's error, the verdict's threshold
NOISE = 1.5  # timings on a shared machine; a real super-quadratic family is far above


def nested_softmax(n: int) -> tuple[str, str]:
    inner = "x"
    for _ in range(n):
        inner = f"softmax({inner})"
    return f"y^T log({inner})", "x"


def nested_softmax_jacobian(n: int) -> tuple[str, str]:
    inner = "x"
    for _ in range(n):
        inner = f"softmax({inner})"
    return f"log({inner})", "x"


def network(n: int) -> tuple[str, str]:
    chain = ", ".join(["h0 = x"] + [f"h{i} = tanh(W{i} h{i - 1})" for i in range(1, n + 1)])
    return f"sum(h{n}) where {chain}", "x"


def residual(n: int) -> tuple[str, str]:
    chain = ", ".join(["h0 = x"] + [f"h{i} = h{i - 1} + tanh(W{i} h{i - 1})"
                                    for i in range(1, n + 1)])
    return f"sum(h{n}) where {chain}", "x"


FAMILIES: dict[str, tuple[str, Callable[[int], tuple[str, str]], int]] = {
    # name: (mode, formula of the size, base size)
    "tr(X^k)": ("grad", lambda n: (f"tr(X^{n})", "X"), 250),
    "tr(X^-k)": ("grad", lambda n: (f"tr(X^-{n})", "X"), 250),
    "nested softmax": ("grad", nested_softmax, 8),
    "nested softmax, Jacobian": ("jacobian", nested_softmax_jacobian, 8),
    "x .* x ... (n factors)": ("grad", lambda n: ("sum(" + " .* ".join(["x"] * n) + ")", "x"),
                               64),
    "x^T A ... A x": ("grad", lambda n: ("x^T " + " ".join(["A"] * n) + " x", "A"), 50),
    "||A1 ... An x||^2": ("grad", lambda n: ("||" + " ".join(f"A{i}" for i in range(n))
                                             + " x||^2", "x"), 32),
    "tanh network, gradient": ("grad", network, 64),
    "residual network h_i = h_(i-1) + tanh(W_i h_(i-1))": ("grad", residual, 16),
    "tanh network, Hessian": ("hessian", network, 8),
    "where-bindings h_k = h_(k-1) .* h_(k-1)": (
        "grad", lambda n: (f"sum(h{n}) where " + ", ".join(
            ["h0 = x"] + [f"h{i} = h{i - 1} .* h{i - 1}" for i in range(1, n + 1)]), "x"), 20),
}


SOAK_LARGEST = {"tanh network, Hessian": 32}  # deeper Hessians recurse in factor_sum

RUNAWAYS: list[tuple[str, str, str]] = [
    # (mode, formula, wrt): results of thousands of terms, or quadratic work in a large input
    ("grad", "a^T X^10000 b", "X"),
    ("jacobian", "X^10000", "X"),
    ("hessian", "tr(X^10000)", "X"),
    ("hessian", "x^T " + " ".join(["A"] * 100) + " x", "A"),
    ("hessian", nested_softmax(64)[0], "x"),
    ("grad", "x^T " + " ".join(["A"] * 2000) + " x", "A"),
    ("hessian", network(256)[0], "x"),
    ("hessian", residual(200)[0], "x"),
    ("hessian", network(390)[0], "x"),
    # the same families grown to just under 10 kB
    ("grad", "x^T " + " ".join(["A"] * 4995) + " x", "A"),
    ("hessian", network(425)[0], "x"),
    ("hessian", residual(330)[0], "x"),
]


def timed(mode: str, formula: str, wrt: str, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with derivation_budget(steps=10**10):  # growth, not the budget, is measured here
            result = getattr(matcalc, mode)(formula, wrt)
        str(result)  # printing is part of the work
        best = min(best, time.perf_counter() - start)
    return best


def cold_start() -> None:
    """Empty what earlier derivations left in matcalc's caches of expressions (memo tables,
    lru caches of more than one entry, the texts parse read; the rule files and their
    indexes stay loaded), then collect the garbage: each runaway starts from the state of a
    fresh process (one command-line run) that has loaded the rules, whatever ran before."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("matcalc") or module is None:
            continue
        for value in list(vars(module).values()):
            info = getattr(value, "cache_info", None)
            if info is not None and (info().maxsize or 0) > 1:
                value.cache_clear()
    for table in expr_module._MEMO_TABLES:
        table.clear()
    parse_module._WRITTEN.clear()
    gc.collect()


def run_once(mode: str, formula: str, wrt: str) -> tuple[float, float, str | None]:
    """Wall and CPU seconds until the runaway ends, from a cold start, and its error's
    message (None when it derived)."""
    cold_start()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        getattr(matcalc, mode)(formula, wrt)
        error = None
    except RewriteError as err:
        # its message only: the error's traceback holds the derivation's frames, whose
        # nodes and memo tables would stay alive through the next runaway's timing
        error = err.message
    return time.perf_counter() - wall, time.process_time() - cpu, error


def runaways(repeat: int) -> tuple[list[str], list[str]]:
    """Time each runaway until the default budget ends it (the best of ``repeat`` runs, each
    from a cold start): the formulas it did not end with its located error, and those that
    took more than TARGET seconds of CPU."""
    print(f"\nrunaways, default budget ({BASE_STEPS} steps + {STEPS_PER_NODE} per unit of "
          f"input); best of {repeat}, each from a cold start")
    print(f"{'formula':44} {'chars':>6} {'size':>5} {'budget':>7} {'wall':>8} {'cpu':>8}  "
          f"verdict (cpu <= {TARGET} s)")
    escaped, slow = [], []
    for mode, formula, wrt in RUNAWAYS:
        size = input_size(matcalc.parse(formula))
        runs = [run_once(mode, formula, wrt) for _ in range(repeat)]
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        error = runs[0][2]
        if error is None:
            outcome = "derived (not a runaway)"
        elif "working on `" not in error:
            outcome = "ended without naming the sub-expression"
        else:
            outcome = "ok" if cpu <= TARGET else "slower than the target"
        if error is None or outcome.startswith("ended"):
            escaped.append(formula)
        elif cpu > TARGET:
            slow.append(f"{mode} {formula[:30]}")
        name = f"{mode} {formula}"
        name = name if len(name) <= 44 else name[:41] + "..."
        print(f"{name:44} {len(formula):>6} {size:>5} {BASE_STEPS + STEPS_PER_NODE * size:>7} "
              f"{wall:>7.3f}s {cpu:>7.3f}s  {outcome}")
    return escaped, slow


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", action="store_true", help="larger sizes, three doublings")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each runaway, the fastest reported (default 3)")
    args = parser.parse_args()
    matcalc.grad("x^T x", "x")  # load the rules first
    doublings = 3 if args.soak else 1
    failed = []
    print(f"{'family':44} {'n':>6} {'time':>9} {'ratio':>7}")
    for name, (mode, make, base) in FAMILIES.items():
        n = base * (2 if args.soak else 1)
        previous = timed(mode, *make(n))
        print(f"{name:44} {n:>6} {previous:>8.3f}s")
        for _ in range(doublings):
            if args.soak and 2 * n > SOAK_LARGEST.get(name, 2 * n):
                break
            n *= 2
            now = timed(mode, *make(n))
            ratio = now / max(previous, 1e-3)
            verdict = "" if ratio <= QUADRATIC * NOISE else "  faster than quadratic"
            if verdict:
                failed.append(name)
            print(f"{'':44} {n:>6} {now:>8.3f}s {ratio:>6.1f}x{verdict}")
            previous = now
    if failed:
        print("growing faster than quadratically: " + ", ".join(failed))
    else:
        print("every family grows at most quadratically (ratio <= 4 per doubling, with margin)")
    escaped, slow = runaways(args.repeat)
    if escaped:
        print("not ended by the budget's located error: " + ", ".join(f[:40] for f in escaped))
    else:
        print("every runaway ends with a RewriteError naming the sub-expression at work")
    print(f"{len(RUNAWAYS) - len(escaped) - len(slow)} of {len(RUNAWAYS)} end within {TARGET} s of "
          f"CPU" + (f"; slower: {'; '.join(slow)}" if slow else ""))
    return 1 if failed or escaped else 0


if __name__ == "__main__":
    sys.exit(main())
