"""A derivation worker process: JSON requests on stdin, one JSON answer per line.

Started by ``pool.py`` as ``python -m matcalc.web.worker --memory-mb N``. It caps its own
address space, warms the engine up, says ``{"ready": true}``, then answers
``{"job": ..., "request": ...}`` lines with ``{"status": ..., "body": ...}`` lines until
stdin closes. Answers go to a private copy of the original stdout, so a stray ``print``
in the engine cannot corrupt the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys


def _limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _warm_up() -> None:
    """Load the grammar and rule files once, so the first request is as fast as the rest."""
    from .service import derive, validate

    derive(validate({"formula": "||A x - b||_2^2", "op": "grad", "wrt": "x"}))


def serve_forever(channel) -> int:  # noqa: ANN001 (a binary file)
    """Answer request lines from stdin on ``channel`` until stdin closes."""
    from .service import error_payload, run

    def send(message: dict) -> None:
        channel.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")
        channel.flush()

    send({"ready": True, "pid": os.getpid()})
    for line in sys.stdin.buffer:
        try:
            message = json.loads(line)
            status, body = run(message["job"], message["request"])
        except MemoryError:
            send({"status": 422, "retire": True, "body": error_payload(
                "MemoryLimitExceeded",
                "the derivation needed more memory than the server allows",
                hint="simplify the formula or name repeated parts with where-bindings",
            )})
            return 1  # the heap may be in a poor state: let the pool start a fresh worker
        except Exception as err:  # a bug in matcalc: answer 500, keep serving
            status, body = 500, error_payload(
                "InternalError", f"{type(err).__name__}: {err}",
                hint="this is a bug in matcalc; please report the formula",
            )
        send({"status": status, "body": body})
    return 0


def main() -> int:
    """Entry point of the worker process."""
    parser = argparse.ArgumentParser(prog="python -m matcalc.web.worker")
    parser.add_argument("--memory-mb", type=int, default=0)
    args = parser.parse_args()
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray output goes to stderr
    sys.stdout = sys.stderr
    _limit_memory(args.memory_mb)
    _warm_up()
    return serve_forever(channel)


if __name__ == "__main__":
    sys.exit(main())
