"""A pool of derivation worker processes with a time and a memory limit per derivation.

Each worker is a ``python -m matcalc.web.worker`` subprocess that answers one request at a
time. A request that overruns its time limit gets its worker killed and replaced, so one
pathological formula costs one worker for a moment and never stalls the server. Workers
are also replaced after a number of jobs, so memory stays flat however long it serves.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matcalc

from .service import error_payload

_PACKAGE_ROOT = str(Path(matcalc.__file__).resolve().parent.parent)
_ONE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Limits:
    """What one derivation may use, and how the pool is sized."""

    workers: int = 2
    timeout: float = 15.0
    """Seconds a request may take in its worker (the check with SymPy included)."""
    memory_mb: int = 2048
    """Address-space cap of each worker process."""
    jobs_per_worker: int = 2000
    """A worker is replaced after this many requests (keeps memory flat)."""
    queue_wait: float = 30.0
    """Seconds a request waits for a free worker before the answer is 503."""
    start_timeout: float = 60.0


def busy() -> tuple[int, dict[str, Any]]:
    """The answer when no worker frees up within ``Limits.queue_wait``."""
    return 503, error_payload("ServerBusy",
                              "every derivation worker is busy; try again in a moment")


class WorkerFailed(Exception):
    """The worker died, overran its time, or could not start."""


class Worker:
    """One worker subprocess and its line protocol."""

    def __init__(self, limits: Limits) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
        )
        env.update({name: "1" for name in _ONE_THREAD})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "matcalc.web.worker", "--memory-mb", str(limits.memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=os.path.abspath(os.sep),
            env=env,
        )
        self.jobs = 0
        self._buffer = b""
        hello = self._read_line(time.monotonic() + limits.start_timeout)
        if not hello.get("ready"):
            self.kill()
            raise WorkerFailed("the worker did not start")

    def _read_line(self, deadline: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerFailed("timeout")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerFailed("the worker exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def ask(self, job: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request; the answer ``{"status", "body"}`` or WorkerFailed."""
        assert self.process.stdin is not None
        self.jobs += 1
        try:
            self.process.stdin.write(json.dumps({"job": job, "request": request}).encode()
                                     + b"\n")
            self.process.stdin.flush()
        except OSError as err:
            raise WorkerFailed("the worker exited") from err
        return self._read_line(time.monotonic() + timeout)

    def kill(self) -> None:
        """Stop the process now and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        """Let the process finish (stdin closed), killing it if it lingers."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class WorkerPool:
    """A fixed number of workers shared by the server's request threads."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._all: set[Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0

    def start(self) -> None:
        """Start every worker (in parallel) and wait until they are ready."""
        threads = [threading.Thread(target=self._add_worker) for _ in range(self.limits.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self._idle.qsize() == 0:
            raise WorkerFailed("no derivation worker could be started")

    def _add_worker(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                worker = Worker(self.limits)
                break
            except (OSError, WorkerFailed) as err:
                if attempt == attempts - 1:
                    print(f"matcalc serve: a derivation worker could not start ({err})",
                          file=sys.stderr, flush=True)
                    return
        with self._lock:
            if self._closed:
                worker.close()
                return
            self._all.add(worker)
        self._idle.put(worker)

    def _replace(self, worker: Worker) -> None:
        """Retire a worker and start its successor in the background."""
        with self._lock:
            self._all.discard(worker)
            self.replaced += 1
        threading.Thread(target=worker.kill, daemon=True).start()
        threading.Thread(target=self._add_worker, daemon=True).start()

    def idle(self) -> int:
        """How many workers are ready for a request now."""
        return self._idle.qsize()

    def pids(self) -> list[int]:
        """Process ids of the live workers (for the load test's memory figures)."""
        with self._lock:
            return [w.process.pid for w in self._all]

    def run(self, job: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Run one job in a free worker: (HTTP status, JSON body). Blocks; never raises."""
        try:
            worker = self._idle.get(timeout=self.limits.queue_wait)
        except queue.Empty:
            return busy()
        try:
            answer = worker.ask(job, request, self.limits.timeout)
        except WorkerFailed as err:
            self._replace(worker)
            if str(err) == "timeout":
                return 422, error_payload(
                    "TimeLimitExceeded",
                    f"the derivation took longer than {self.limits.timeout:g} s and was stopped",
                    hint="simplify the formula, or check it without the SymPy check",
                )
            return 422, error_payload(
                "WorkerCrashed", "the derivation stopped the worker (out of memory or stack)",
                hint="simplify the formula or name repeated parts with where-bindings",
            )
        if answer.get("retire") or worker.jobs >= self.limits.jobs_per_worker:
            self._replace(worker)
        else:
            self._idle.put(worker)
        return answer["status"], answer["body"]

    def close(self) -> None:
        """Stop every worker."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.close()
