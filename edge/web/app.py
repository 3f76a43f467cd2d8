"""The Starlette app: dashboard, upload page, JSON API, Server-Sent Events and MJPEG live view.

Routes (README "Web page"): ``/``, ``/classify``, ``/static/{name}``, ``/api/health``,
``/api/state``, ``/api/events?after=<seq>``, ``/api/events/stream`` (SSE),
``POST /api/classify`` (image bytes as the body), ``/stream/{source}.mjpg``
(only with ``live_view``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from edge.config import Config
from edge.runtime import ModelError
from edge.web.analyze import MAX_UPLOAD_BYTES, UploadAnalyzer, UploadError, analyze_upload
from edge.web.auth import GuardMiddleware
from edge.web.config import web_password
from edge.web.live import BOUNDARY, LiveEncoder, mjpeg_part
from edge.web.state import WebState

log = logging.getLogger("edge-fer.web")
SSE_POLL_S = 0.25        # how often an SSE stream looks for new events (seconds)
SSE_STATE_S = 1.0        # how often it sends the state (source cards, MQTT)
SSE_RETRY_MS = 2000      # browser reconnect delay after a lost stream
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".js": "text/javascript; charset=utf-8"}
NO_STORE = {"cache-control": "no-store"}


def load_static() -> dict[str, bytes]:
    """Every file of ``edge/web/static`` (package data) by name, read once."""
    folder = resources.files("edge.web") / "static"
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.name.rsplit(".", 1)[-1] in ("html", "css", "js")}


class WebApp:
    """Route handlers over one :class:`WebState` (the daemon's or an empty one for ``--serve``).

    Args:
        cfg: Validated configuration (``web`` section, models for uploads).
        state: What the processing thread pushes.
    """

    def __init__(self, cfg: Config, state: WebState) -> None:
        self.cfg = cfg
        self.state = state
        self.closing = threading.Event()
        self.encoder = LiveEncoder(state)
        self.analyzer = UploadAnalyzer(cfg)
        self.static = load_static()

    def routes(self) -> list[Route]:
        """The app's routes."""
        return [Route("/", self.page("index.html")), Route("/classify", self.page("classify.html")),
                Route("/static/{name}", self.static_file), Route("/api/health", self.health),
                Route("/api/state", self.api_state), Route("/api/events", self.events),
                Route("/api/events/stream", self.event_stream), Route("/api/classify", self.classify, methods=["POST"]),
                Route("/stream/{source}.mjpg", self.mjpeg)]

    def page(self, name: str):
        """A handler serving the static page ``name``."""
        async def handler(_request: Request) -> Response:
            return Response(self.static[name], media_type=STATIC_TYPES[".html"], headers=NO_STORE)
        return handler

    async def static_file(self, request: Request) -> Response:
        """``/static/{name}``: the page's CSS and JS (HTML pages only under their own routes)."""
        name = request.path_params["name"]
        suffix = "." + name.rsplit(".", 1)[-1]
        if name not in self.static or suffix == ".html":
            return PlainTextResponse("not found", 404)
        return Response(self.static[name], media_type=STATIC_TYPES[suffix], headers={"cache-control": "max-age=300"})

    async def health(self, _request: Request) -> JSONResponse:
        """``/api/health``: 200 when every source processed a frame within ``read_timeout_s``, else 503."""
        ok, details = self.state.health()
        return JSONResponse(details, 200 if ok else 503, headers=NO_STORE)

    async def api_state(self, _request: Request) -> JSONResponse:
        """``/api/state``: :meth:`WebState.snapshot`."""
        return JSONResponse(self.state.snapshot(), headers=NO_STORE)

    async def events(self, request: Request) -> JSONResponse:
        """``/api/events?after=<seq>``: kept events (last 50) with a higher ``seq``; 400 for a bad ``after``."""
        after = _int_param(request.query_params.get("after"))
        if after is None:
            return JSONResponse({"error": "after: expected an integer sequence number"}, 400)
        return JSONResponse({"events": self.state.events_after(after), "last_seq": self.state.last_seq},
                            headers=NO_STORE)

    async def event_stream(self, request: Request) -> Response:
        """``/api/events/stream``: Server-Sent Events from ``Last-Event-ID`` or ``?after=`` (default 0)."""
        after = _int_param(request.headers.get("last-event-id") or request.query_params.get("after"))
        if after is None:
            return JSONResponse({"error": "after / Last-Event-ID: expected an integer sequence number"}, 400)
        return StreamingResponse(self._sse(after), media_type="text/event-stream",
                                 headers={**NO_STORE, "x-accel-buffering": "no"})

    async def _sse(self, after: int):
        """``event: state`` every ``SSE_STATE_S``; each new event as a default message with ``id: seq``."""
        yield f"retry: {SSE_RETRY_MS}\n\n".encode()
        ticks = 0
        state_every = max(1, round(SSE_STATE_S / SSE_POLL_S))
        while not self.closing.is_set():
            if ticks % state_every == 0:
                yield f"event: state\ndata: {json.dumps(self.state.snapshot())}\n\n".encode()
            for event in self.state.events_after(after):
                after = event["seq"]
                yield f"id: {after}\ndata: {json.dumps(event)}\n\n".encode()
            ticks += 1
            await asyncio.sleep(SSE_POLL_S)

    async def mjpeg(self, request: Request) -> Response:
        """``/stream/{source}.mjpg``: MJPEG of the annotated latest frame; 404 without ``live_view``."""
        source = request.path_params["source"]
        if not self.state.live_view or not self.state.has_source(source):
            return PlainTextResponse("not found (live view is off: web.live_view)" if not self.state.live_view
                                     else "not found: no such source", 404)
        return StreamingResponse(self._mjpeg(source), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 headers=NO_STORE)

    async def _mjpeg(self, source: str):
        """Parts of the MJPEG stream: a new JPEG at most every ``encoder.period_s`` until closing."""
        last = -1
        while not self.closing.is_set():
            jpeg = await run_in_threadpool(self.encoder.get, source)
            if jpeg is not None and jpeg.number != last and jpeg.data:
                last = jpeg.number
                yield mjpeg_part(jpeg.data)
            await asyncio.sleep(self.encoder.period_s)

    async def classify(self, request: Request) -> JSONResponse:
        """``POST /api/classify`` (body: the image bytes): faces and an annotated preview, or ``{"error"}``.

        The error statuses are 400 (empty), 413 (over 10 MB or 50 MP), 415 (not an image),
        422 (undecodable) and 500 (model).
        """
        declared = _int_param(request.headers.get("content-length"))
        if declared is not None and declared > MAX_UPLOAD_BYTES:
            return _upload_error(UploadError(f"file too large: {declared / 1e6:.1f} MB "
                                             f"(limit {MAX_UPLOAD_BYTES // 2**20} MB)", 413))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD_BYTES:
                return _upload_error(UploadError(f"file too large (limit {MAX_UPLOAD_BYTES // 2**20} MB)", 413))
        try:
            result = await run_in_threadpool(analyze_upload, self.analyzer, bytes(body))
        except UploadError as exc:
            return _upload_error(exc)
        except ModelError as exc:
            log.error("upload: %s", exc)
            return JSONResponse({"error": f"model cannot be loaded: {exc}"}, 500)
        return JSONResponse(result, headers=NO_STORE)


def _int_param(value: str | None, default: int = 0) -> int | None:
    """``value`` as a non-negative int; ``default`` when absent; None when malformed."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 0 else None


def _upload_error(exc: UploadError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, exc.status)


def build_app(cfg: Config, state: WebState) -> tuple[Starlette, WebApp]:
    """The ASGI app (with basic auth when ``web.password``/``password_file`` is set) and its handlers.

    Raises:
        ConfigError: ``web.password_file`` is unreadable.
    """
    handlers = WebApp(cfg, state)
    password = web_password(cfg.web)
    app = Starlette(routes=handlers.routes(), middleware=[Middleware(GuardMiddleware, password=password)])
    return app, handlers
