"""Load test of the web playground: concurrent clients replay the gradient table.

Starts ``matcalc serve --port 0`` on loopback, runs CLIENTS threads that each POST the rows
of tests/data/gradients.json to /api/derive in a loop (each from its own offset) for
DURATION seconds, and reports throughput, latency percentiles, every non-200 answer, and the
resident memory of the server and its workers over the run:

    pip install -e ".[web]"
    python benchmarks/web_load.py --clients 20 --duration 60 [--json out.json]

A benchmark, not a test: figures depend on the machine and are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = json.loads((ROOT / "tests" / "data" / "gradients.json").read_text("utf-8"))


def rss_kib(pid: int) -> int:
    """Resident memory of one process in KiB (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def children(pid: int) -> list[int]:
    """Direct children of a process (the server's workers), whichever thread started them."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return sorted(found)


def total_rss_mib(server_pid: int) -> tuple[float, float, int]:
    """Resident memory (MiB) of the server with its workers, of the server alone, and the
    number of workers."""
    workers = children(server_pid)
    server = rss_kib(server_pid)
    return (server + sum(rss_kib(w) for w in workers)) / 1024, server / 1024, len(workers)


def cpu_seconds(server_pid: int) -> tuple[float, float]:
    """CPU time (user + system) of the server process alone, and of the server with its
    workers, the live ones and the reaped (replaced) ones."""
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid: int) -> list[int]:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return [0, 0, 0, 0]
        return [int(v) for v in text.rsplit(")", 1)[1].split()[11:15]]

    utime, stime, cutime, cstime = fields(server_pid)
    live = sum(sum(fields(w)[:2]) for w in children(server_pid))
    return (utime + stime) / tick, (utime + stime + cutime + cstime + live) / tick


def start_server(workers: int) -> tuple[subprocess.Popen, str, int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "matcalc", "serve", "--port", "0", "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc, match.group(0), int(match.group(1))


class Client(threading.Thread):
    """One client: a keep-alive connection replaying the table from its own offset."""

    def __init__(self, port: int, offset: int, stop_at: float, record, options: dict) -> None:
        super().__init__(daemon=True)
        self.port, self.offset, self.stop_at, self.record = port, offset, stop_at, record
        self.options = options

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        i = self.offset
        while time.monotonic() < self.stop_at:
            row = TABLE[i % len(TABLE)]
            body = json.dumps({"formula": row["f"], "op": "grad", "wrt": row["wrt"],
                               "decls": row.get("decls", {}), "options": self.options})
            started = time.monotonic()
            try:
                conn.request("POST", "/api/derive", body,
                             {"Content-Type": "application/json"})
                reply = conn.getresponse()
                payload = reply.read()
                status = reply.status
            except (OSError, http.client.HTTPException) as err:
                status, payload = 0, str(err).encode()
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.record(time.monotonic() - started, status, row, payload)
            i += 1
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--answer", choices=["full", "result"], default="full",
                        help="full: derivation and code too, as the page asks (default);"
                        " result: the result only (more requests in the same time)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    proc, url, port = start_server(args.workers)
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[tuple[int, str, str]] = []
    # (seconds, requests, MiB with workers, MiB of the server process, workers)
    memory: list[tuple[float, int, float, float, int]] = []

    def record(seconds: float, status: int, row: dict, payload: bytes) -> None:
        with lock:
            latencies.append(seconds)
            if status != 200:
                failures.append((status, row["f"], payload[:200].decode(errors="replace")))

    try:
        total, server, count = total_rss_mib(proc.pid)
        memory.append((0.0, 0, round(total, 1), round(server, 1), count))
        cpu_before = cpu_seconds(proc.pid)
        begin = time.monotonic()
        stop_at = begin + args.duration
        options = {} if args.answer == "full" else {"derivation": False, "code": False}
        clients = [Client(port, k * len(TABLE) // args.clients, stop_at, record, options)
                   for k in range(args.clients)]
        for c in clients:
            c.start()
        while time.monotonic() < stop_at:
            time.sleep(min(5.0, max(0.0, stop_at - time.monotonic())))
            with lock:
                done = len(latencies)
            total, server, count = total_rss_mib(proc.pid)
            memory.append((round(time.monotonic() - begin, 1), done, round(total, 1),
                           round(server, 1), count))
        for c in clients:
            c.join()
        elapsed = time.monotonic() - begin
        cpu_after = cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    full = [m for m in memory if m[1] > 0 and m[4] == args.workers]  # not mid-replacement
    figures = {
        "url": url,
        "clients": args.clients,
        "workers": args.workers,
        "answer": args.answer,
        "duration_s": round(elapsed, 1),
        "requests": len(latencies),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "latency_ms": {"p50": round(pct(0.50), 1), "p95": round(pct(0.95), 1),
                       "p99": round(pct(0.99), 1), "max": round(ordered[-1] * 1000, 1),
                       "mean": round(statistics.fmean(ordered) * 1000, 1)},
        "cpu_ms_per_request": {
            "server": round((cpu_after[0] - cpu_before[0]) / len(latencies) * 1000, 2),
            "server_and_workers": round((cpu_after[1] - cpu_before[1]) / len(latencies) * 1000,
                                        2),
        },
        "load_average_1min_at_end": os.getloadavg()[0],
        "errors": len(failures),
        "first_errors": failures[:5],
        "memory_mib": memory,
        "memory_first_vs_last_mib": [full[0][2], full[-1][2]] if full else None,
        "server_memory_first_vs_last_mib": [full[0][3], full[-1][3]] if full else None,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
