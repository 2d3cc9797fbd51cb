"""``matcalc serve``: run the playground with uvicorn on a local address and print it."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import webbrowser

import uvicorn

from ..errors import MatcalcError
from .app import LOOPBACK_NAMES, create_app
from .pool import Limits


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise MatcalcError(f"cannot listen on {host} port {port}: {err.strerror or err}",
                           hint="choose another --port (0 picks a free one)") from None
    sock.listen(128)  # connections wait in the backlog until the workers are ready
    return sock


def url_of(sock: socket.socket) -> str:
    """The http address of a bound socket (port 0 resolved to the port the system chose)."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(host: str = "127.0.0.1", port: int = 8000, *, open_browser: bool = False,
          limits: Limits | None = None) -> None:
    """Serve the playground until interrupted; prints the address once it answers requests."""
    sock = _bind(host, port)
    url = url_of(sock)
    allowed = LOOPBACK_NAMES + [host] if is_loopback(host) else None

    def announce() -> None:
        print(f"matcalc playground: {url}  (Ctrl-C to stop)", flush=True)
        if not is_loopback(host):
            print("warning: reachable from other machines; the playground has no login",
                  file=sys.stderr, flush=True)
        if open_browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    app = create_app(limits, allowed_hosts=allowed, on_ready=announce)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
