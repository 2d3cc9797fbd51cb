"""The cost of ``Derivative.check()``: every golden gradient, and ``||A X B - C||_F^2``.

One line per slow case and a summary: the slowest check of the golden table
(``tests/data/gradients.json``, the seed notes' gradients) and the line for
``||A X B - C||_F^2`` w.r.t. X (61 s when the checker differentiated with ``sympy.diff``
at every point). The target is under 2 s each on 2 cores; nothing here is asserted.

    python benchmarks/check_cost.py
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import matcalc  # noqa: E402

SEED = [("a^T x", "x", {}), ("x^T A x", "x", {"A": "symmetric matrix"}), ("x^T A x", "x", {}),
        ("||x||_2", "x", {}), ("||A x - b||_2^2", "x", {}), ("log(exp(x)^T 1)", "x", {}),
        ("log(1 + exp(-y w^T x))", "w", {"y": "scalar"}),
        ("-y^T log(softmax(W^T x))", "W", {"y": "probability vector"}),
        ("||X w - y||_2^2 + lambda ||w||_1", "w", {})]


def timed_check(f: str, wrt: str, decls: dict) -> tuple[float, str]:
    """Seconds for ``.check()`` of the gradient (derivation excluded), and the report."""
    d = matcalc.grad(f, wrt, **decls)
    start = time.perf_counter()
    report = d.check()
    return time.perf_counter() - start, str(report).splitlines()[0]


def main() -> None:
    matcalc.grad("x^T x", "x").check()  # imports SymPy once, outside the timings
    golden = json.loads((ROOT / "tests" / "data" / "gradients.json").read_text())
    cases = [(g["f"], g["wrt"], g.get("decls", {})) for g in golden] + SEED
    times = []
    for f, wrt, decls in cases:
        seconds, report = timed_check(f, wrt, decls)
        times.append((seconds, f, report))
        if seconds > 1.0:
            print(f"  slow: {seconds:6.2f} s  {f}  ({report})")
    worst = max(times)
    total = sum(t for t, _, _ in times)
    print(f"golden table: {len(times)} checks, {total:.1f} s in all, slowest {worst[0]:.2f} s "
          f"({worst[1]}; {worst[2]})")
    seconds, report = timed_check("||A X B - C||_F^2", "X", {})
    print(f"||A X B - C||_F^2 w.r.t. X: {seconds:.2f} s ({report})")
    box: dict = {}
    worker = threading.Thread(target=lambda: box.update(t=timed_check("logdet(X)", "X", {})))
    worker.start()
    worker.join()
    print(f"logdet(X) w.r.t. X from a worker thread: {box['t'][0]:.2f} s ({box['t'][1]})")


if __name__ == "__main__":
    main()
