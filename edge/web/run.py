"""Running the web server: in a thread of the daemon, or alone for ``edge-fer --serve``.

Uvicorn serves the Starlette app from :mod:`edge.web.app` on a socket bound
here first, so a busy port is one clear error before anything else starts.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time

from edge import exit_codes as codes
from edge.config import Config, ConfigError
from edge.runtime import ModelError
from edge.web.state import WebState

log = logging.getLogger("edge-fer.web")
START_TIMEOUT_S = 5.0        # wait for uvicorn to accept connections
STOP_GRACE_S = 1             # uvicorn's graceful-shutdown limit for open streams (seconds)
MAX_CONNECTIONS = 64        # uvicorn answers 503 beyond this (a small board's memory and threads)
EXTRA_HINT = "the web page needs the [web] extra: .venv/bin/pip install -e '.[web]'"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``.

    Raises:
        OSError: one line naming ``host:port`` (port busy, address not on this machine, ...).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(64)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise OSError(f"web: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


class WebServer:
    """A running web server (uvicorn in a daemon thread); :meth:`stop` ends it."""

    def __init__(self, server, thread: threading.Thread, handlers, url: str) -> None:
        self._server = server
        self._thread = thread
        self.handlers = handlers
        self.url = url

    @property
    def alive(self) -> bool:
        """Whether the server thread still runs."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 1.5) -> None:
        """End open streams, stop accepting, and wait up to ``timeout_s`` seconds for the thread."""
        self.handlers.closing.set()
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(0.5)


def start_in_daemon(cfg: Config, state: WebState) -> WebServer:
    """Serve the page of ``cfg.web`` in a daemon thread, reading ``state``; returns once it accepts connections.

    Args:
        cfg: Validated configuration (``web.host``, ``port``, ``live_view``, password; models for uploads).
        state: The store the processing thread pushes into.

    Raises:
        ConfigError: the ``[web]`` extra is not installed, or ``web.password_file`` is unreadable.
        OSError: ``web.host:web.port`` cannot be bound (one line naming it), or the server did not start.
    """
    try:
        import uvicorn

        from edge.web.app import build_app
    except ImportError as exc:
        raise ConfigError(f"web.enabled: {EXTRA_HINT} ({exc.name} missing)") from exc
    app, handlers = build_app(cfg, state)
    sock = bind(cfg.web.host, cfg.web.port)
    if not log.isEnabledFor(logging.DEBUG):   # uvicorn's start/stop lines add nothing to ours
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none", http="h11",
                            timeout_graceful_shutdown=STOP_GRACE_S, limit_concurrency=MAX_CONNECTIONS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        handlers.closing.set()
        server.should_exit = True
        sock.close()
        raise OSError(f"web: the server on {cfg.web.host}:{cfg.web.port} did not start")
    host = f"[{cfg.web.host}]" if ":" in cfg.web.host else cfg.web.host
    url = f"http://{host}:{sock.getsockname()[1]}/"
    log.info("web page on %s%s", url, " (live view on)" if state.live_view else "")
    return WebServer(server, thread, handlers, url)


def serve_offline(cfg: Config) -> int:
    """``edge-fer --serve``: the upload page and API without any source, until SIGINT/SIGTERM.

    The models load before the page is served (a missing model fails at once).

    Returns:
        Exit code: 0 after SIGINT/SIGTERM, 2 for a busy port / missing extra / unreadable password
        file, 3 for a model that cannot load.
    """
    state = WebState((), live_view=False, read_timeout_s=cfg.read_timeout_s, device_id=cfg.device_id)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        server = start_in_daemon(cfg, state)
        server.handlers.analyzer.load()
        print(f"edge-fer: serving {server.url} (photo upload: {server.url}classify); Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            if not server.alive:
                return codes.fail(codes.INTERNAL, "web server stopped unexpectedly (see the log)")
        return codes.OK
    except (ConfigError, OSError) as exc:
        return codes.fail(codes.USAGE, str(exc))
    except ModelError as exc:
        return codes.fail(codes.MODEL, str(exc))
    finally:
        if server is not None:
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
