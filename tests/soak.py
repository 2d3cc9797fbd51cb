"""Soak test: gradients of many random expressions against finite differences.

Usage (from the repository root)::

    python tests/soak.py --n 10000 [--seed 0] [--max-depth 4] [--mode grad]

``--mode`` chooses what is differentiated: ``grad`` (scalar expressions, the default),
``jacobian`` (vector-valued), ``derivative`` (matrix-valued), ``hessian`` (scalars), or
``all`` (the four in turn).

Prints how many expressions were checked, how many raised UnsupportedError, how many
could not be checked numerically (not finite or not smooth at the random points), how
many were WRONG and how many crashed (an exception other than UnsupportedError), with
every wrong or crashing expression, and (``--mode all``) every UnsupportedError's message:
a step budget that ran out, or a gap. Exit status 1 when any was wrong or crashed.

A point where float64 finite differences disagree with the result, or cannot be used
(|f| too large for them, or two step sizes disagree), is decided by a reference at 60
digits (``tests/high_precision.py``): the result is right there only if its formula,
evaluated at 60 digits, agrees with that reference to 1e-8 and its float64 code to the
usual tolerance; each such point is printed ("DECIDED AT 60 DIGITS") and counted, so
ill-conditioned points where finite differences are not an oracle are visible, neither
hidden nor counted as wrong. NaN or infinity in a result where the derivative is finite
is wrong, unless an intermediate value of f itself overflows float64 there
(``tanh(exp(exp(20)))`` is 1 through an infinity): the derivative's closed form then
multiplies that infinity by a factor that underflows to 0, which is NaN in any float64
code of it, JAX's and PyTorch's included, so the point is not checkable.
The result of the last run is recorded in BENCHMARKS.md ("Soak test").
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # tests/ (strategies) and the checkout

import high_precision  # noqa: E402
from differentiable import (  # noqa: E402
    check_derivative,
    check_gradient,
    check_hessian,
    check_jacobian,
    differentiable_scalars,
    random_expression,
)
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

from matcalc.expr import Expr  # noqa: E402


def _operators(e: Expr) -> set[str]:
    return {n.name if type(n).__name__ == "Call" else type(n).__name__ for n in e.walk()}


MODES = {"grad": ("scalar", check_gradient), "jacobian": ("vector", check_jacobian),
         "derivative": ("matrix", check_derivative), "hessian": ("scalar", check_hessian)}


def soak(n: int, seed: int, max_depth: int, verbose: bool = False, mode: str = "grad"
         ) -> Counter[str]:
    """Run ``n`` random expressions; print the tally and every failure; return the tally."""
    tally: Counter[str] = Counter()
    coverage: Counter[str] = Counter()
    sizes: list[int] = []
    failures: list[str] = []
    decided: Counter[str] = Counter()  # points decided by the high-precision reference
    if mode != "grad":
        return _soak_modes(n, seed, max_depth, mode, verbose)

    @hypothesis_seed(seed)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(differentiable_scalars(max_depth=max_depth))
    def one(case) -> None:
        f, wrt = case
        sizes.append(sum(1 for _ in f.walk()))
        coverage.update(_operators(f))
        try:
            outcome = check_gradient(f, wrt, seed=len(sizes))
            status, detail = outcome.status, outcome.detail
            result = outcome.result
        except Exception:
            status, detail, result = "crashed", traceback.format_exc(limit=3), None
        tally[status] += 1
        if status == "checked" and outcome.high_precision:
            decided['high precision'] += 1
            print(f"DECIDED AT {high_precision.DIGITS} DIGITS: d/d{wrt.name} {f}\n  {detail}\n")
        if status in ("wrong", "crashed"):
            failures.append(f"{status.upper()}: d/d{wrt.name} {f}\n  result: {result}\n"
                            f"  {detail}\n  repr: {f!r}")
        if verbose and len(sizes) % 500 == 0:
            print(f"  {len(sizes)} ... {dict(tally)}", flush=True)

    start = time.perf_counter()
    one()
    elapsed = time.perf_counter() - start
    total = sum(tally.values())
    for failure in failures:
        print(failure, end="\n\n")
    print(f"soak: {total} random expressions, seed {seed}, max depth {max_depth}, "
          f"{elapsed:.0f} s ({platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()})")
    print(f"  checked against finite differences: {tally['checked']} (of which "
          f"{decided['high precision']} decided at {high_precision.DIGITS} digits)")
    print(f"  UnsupportedError:                   {tally['unsupported']}")
    print(f"  not checkable at the random points: {tally['skipped']}")
    print(f"  WRONG:                              {tally['wrong']}")
    print(f"  crashed:                            {tally['crashed']}")
    if sizes:
        print(f"  expression size: mean {sum(sizes) / len(sizes):.1f} nodes, max {max(sizes)}")
    print(f"  operators and functions seen: {len(coverage)}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(coverage.items())))
    return tally


def _soak_modes(n: int, seed: int, max_depth: int, mode: str, verbose: bool) -> Counter[str]:
    """Every mode (or one): expression i of kind and mode taken in turn, seeded by i."""
    modes = list(MODES) if mode == "all" else [mode]
    tally: Counter[str] = Counter()
    per_mode: dict[str, Counter[str]] = {m: Counter() for m in modes}
    failures: list[str] = []
    decided: list[str] = []  # checked only by the high-precision reference
    decided_in: Counter[str] = Counter()
    unsupported: list[str] = []  # UnsupportedError: a budget that ran out, or a gap
    start = time.perf_counter()
    for i in range(n):
        name = modes[i % len(modes)]
        kind, check = MODES[name]
        case_seed = seed * 1_000_003 + i
        f, wrt = random_expression(case_seed, kind, max_depth)
        try:
            outcome = check(f, wrt, seed=case_seed)
            status, detail, result = outcome.status, outcome.detail, outcome.result
        except Exception:
            status, detail, result = "crashed", traceback.format_exc(limit=3), None
        tally[status] += 1
        per_mode[name][status] += 1
        if status == "unsupported":
            unsupported.append(f"UNSUPPORTED: {name} (case seed {case_seed}) d/d{wrt.name} {f}"
                               f"\n  {detail.splitlines()[0] if detail else ''}")
        if status == "checked" and outcome.high_precision:
            decided_in[name] += 1
            decided.append(f"{name} (case seed {case_seed}) d/d{wrt.name} {f}\n  {detail}")
        if status in ("wrong", "crashed"):
            failures.append(f"{status.upper()}: {name} (case seed {case_seed}) d/d{wrt.name} {f}"
                            f"\n  result: {result}"
                            f"\n  {detail}\n  repr: {f!r}")
        if verbose and (i + 1) % 500 == 0:
            print(f"  {i + 1} ... {dict(tally)}", flush=True)
    elapsed = time.perf_counter() - start
    for note in decided:
        print(f"DECIDED AT {high_precision.DIGITS} DIGITS: {note}", end="\n\n")
    for note in unsupported:
        print(note, end="\n\n")
    for failure in failures:
        print(failure, end="\n\n")
    print(f"soak ({mode}): {n} random expressions, seed {seed}, max depth {max_depth}, "
          f"{elapsed:.0f} s ({platform.python_implementation()} {platform.python_version()})")
    for name, counts in per_mode.items():
        total = sum(counts.values())
        ok = total - counts["unsupported"]
        print(f"  {name:<10} {total:>6}: checked {counts['checked']} (of which "
              f"{decided_in[name]} decided at {high_precision.DIGITS} digits), "
              f"unsupported {counts['unsupported']}, not checkable {counts['skipped']}, "
              f"WRONG {counts['wrong']}, crashed {counts['crashed']}; succeeded "
              f"{ok / max(total, 1):.2%}")
    return tally


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; exit status 1 when any gradient was wrong or crashed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of random expressions")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed")
    parser.add_argument("--max-depth", type=int, default=4, help="nesting depth of expressions")
    parser.add_argument("--verbose", action="store_true", help="progress every 500 expressions")
    parser.add_argument("--mode", choices=[*MODES, "all"], default="grad",
                        help="what is differentiated (default: gradients of scalars)")
    args = parser.parse_args(argv)
    tally = soak(args.n, args.seed, args.max_depth, args.verbose, args.mode)
    return 1 if tally["wrong"] or tally["crashed"] else 0


if __name__ == "__main__":
    sys.exit(main())
