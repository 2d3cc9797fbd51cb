"""The playground's ASGI application (Starlette): the page, KaTeX, the gallery and the JSON API."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from .pool import Limits, WorkerPool, busy
from .service import MAX_REQUEST_BYTES, OPERATIONS, RequestError, error_payload, validate

STATIC = Path(__file__).resolve().parent / "static"
GALLERY = Path(__file__).resolve().parent / "gallery.json"
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1"]
"""The Host names a loopback server answers to (others are refused: DNS rebinding)."""


SECURITY_HEADERS = [
    # only the page's own files: no inline script, nothing fetched from elsewhere
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; "
     b"style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    """The request body, refusing more than MAX_REQUEST_BYTES without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise _TooLarge
    return bytes(body)


def _json_error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(error_payload(kind, message, **extra), status_code=status)


async def _decode(request: Request) -> Any:
    """The decoded JSON body, or an error response."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return _json_error(415, "UnsupportedMediaType",
                           "send the request as JSON (Content-Type: application/json)")
    try:
        body = await _read_body(request)
    except _TooLarge:
        return _json_error(413, "RequestTooLarge",
                           f"the request is larger than {MAX_REQUEST_BYTES} bytes",
                           hint="the formula and its declarations must fit in 10 kB")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return _json_error(400, "MalformedJSON", f"the request body is not valid JSON: {err}")
    except RecursionError:
        return _json_error(400, "MalformedJSON", "the request body is nested too deeply",
                           hint="send a flat JSON object")


def _job_endpoint(job: str, *, need_wrt: bool):
    async def endpoint(request: Request) -> Response:
        payload = await _decode(request)
        if isinstance(payload, Response):
            return payload
        try:
            clean = validate(payload, need_wrt=need_wrt)
        except RequestError as err:
            return JSONResponse(err.payload(), status_code=err.status)
        pool: WorkerPool = request.app.state.pool
        slots: anyio.Semaphore = request.app.state.slots
        # Wait here, not in a thread: only as many threads as workers ever block on the pool.
        try:
            with anyio.fail_after(pool.limits.queue_wait):
                await slots.acquire()
        except TimeoutError:
            status, body = busy()
            return JSONResponse(body, status_code=status)
        try:
            status, body = await run_in_threadpool(pool.run, job, clean)
        finally:
            slots.release()
        return JSONResponse(body, status_code=status)

    return endpoint


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _gallery(request: Request) -> Response:
    return FileResponse(GALLERY, media_type="application/json")


async def _info(request: Request) -> Response:
    limits: Limits = request.app.state.pool.limits
    return JSONResponse({
        "version": __version__,
        "operations": OPERATIONS,
        "limits": {"request_bytes": MAX_REQUEST_BYTES, "timeout_s": limits.timeout,
                   "memory_mb": limits.memory_mb},
    })


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return _json_error(exc.status_code, kind, str(exc.detail),
                           hint="POST JSON to /api/derive or /api/parse")
    return Response(str(exc.detail), status_code=exc.status_code, media_type="text/plain")


def create_app(limits: Limits | None = None, *, allowed_hosts: list[str] | None = None,
               on_ready: Callable[[], None] | None = None) -> Starlette:
    """The playground application with its own worker pool (started with the app).

    ``on_ready`` is called once the workers are up and requests can be answered.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette):
        pool = WorkerPool(limits)
        await run_in_threadpool(pool.start)
        app.state.pool = pool
        app.state.slots = anyio.Semaphore(pool.limits.workers)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await run_in_threadpool(pool.close)

    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts is not None:  # a loopback server refuses other Host names (DNS rebinding)
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(
        routes=[
            Route("/", _index),
            Route("/api/derive", _job_endpoint("derive", need_wrt=True), methods=["POST"]),
            Route("/api/parse", _job_endpoint("parse", need_wrt=False), methods=["POST"]),
            Route("/api/info", _info),
            Route("/gallery.json", _gallery),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
