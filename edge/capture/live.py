"""Live sources (V4L2 camera, RTSP/HTTP stream) and paced files for the daemon.

A reader thread per source keeps only the newest frame in a one-slot buffer:
frames the pipeline had no time for are dropped and counted, so processing
never lags behind real time. A source that fails to open, errors, or stays
silent for ``read_timeout_s`` is reopened with capped exponential backoff;
the daemon keeps serving the other sources meanwhile.

RTSP is read over TCP (``OPENCV_FFMPEG_CAPTURE_OPTIONS=rtsp_transport;tcp``)
with OpenCV's FFmpeg open/read timeouts (``CAP_PROP_OPEN_TIMEOUT_MSEC``,
``CAP_PROP_READ_TIMEOUT_MSEC``).

Credentials never reach a log line: every message names the source by
:attr:`LiveSource.display_uri`, the URI with its password masked
(:func:`edge.redact.mask_url`, ``rtsp://admin:***@host/...``).

A reader thread that fails unexpectedly (an exception, not a source that
stops delivering: that one is reopened) logs one ERROR line and ends;
:attr:`LiveSource.alive` turns False and the daemon's supervisor
(:mod:`edge.daemon.supervise`) calls :meth:`LiveSource.restart`, counted in
``edge_fer_thread_restarts_total{thread="source"}``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass

import cv2

from edge.redact import mask_url
from edge.types import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveOptions:
    """Reconnect and timeout settings (seconds)."""

    read_timeout_s: float = 10.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 30.0
    loop: bool = False
    width: int | None = None
    height: int | None = None


def classify_uri(uri: str | int) -> str:
    """``device`` (index or /dev/videoN), ``stream`` (rtsp/http/...) or ``file``."""
    if isinstance(uri, int) or re.fullmatch(r"\d+", str(uri)) or str(uri).startswith("/dev/video"):
        return "device"
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", str(uri)):
        return "stream"
    return "file"


def open_capture(uri: str | int, kind: str, opts: LiveOptions) -> cv2.VideoCapture:
    """Open a ``cv2.VideoCapture`` with timeouts (streams) or V4L2 size (devices)."""
    if kind == "device":
        index = int(uri) if re.fullmatch(r"\d+", str(uri)) else str(uri)
        cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
        if opts.width and opts.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, opts.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, opts.height)
        return cap
    if kind == "stream":
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        ms = int(opts.read_timeout_s * 1000)
        return cv2.VideoCapture(str(uri), cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    return cv2.VideoCapture(str(uri))


class LiveSource:
    """A source read in its own thread into a latest-frame slot.

    Attributes:
        name: Source name (MQTT topic level, metrics label).
        uri: The URI as configured (may hold a password: never log it).
        display_uri: ``uri`` with its password masked, for logs and errors.
        up: True while frames arrive.
        dropped: Frames overwritten before the pipeline took them.
        reconnects: Reopen attempts after the first open.
        paused: When set, frames are read but not handed out.
    """

    def __init__(self, name: str, uri: str | int, options: LiveOptions = LiveOptions(),
                 new_frame: threading.Event | None = None) -> None:
        """Prepare the source (the reader starts with :meth:`start`).

        Args:
            name: Source name.
            uri: Device index, /dev/videoN, stream URL or file path.
            options: Timeouts and reconnect backoff.
            new_frame: Event set whenever a frame arrives (shared by the daemon's sources).
        """
        self.name, self.uri, self.options = name, uri, options
        self.display_uri = mask_url(uri)
        self.kind = classify_uri(uri)
        self.up = False
        self.dropped = 0
        self.read = 0
        self.reconnects = 0
        self.paused = False
        self._slot: Frame | None = None
        self._lock = threading.Lock()
        self.new_frame = new_frame or threading.Event()
        self._taken = threading.Event()
        self._stop = threading.Event()
        self._thread = self._new_thread()
        self._index = 0
        self._t0 = time.monotonic()

    def _new_thread(self) -> threading.Thread:
        return threading.Thread(target=self._run, name=f"source-{self.name}", daemon=True)

    def start(self) -> None:
        """Start the reader thread."""
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the reader thread runs (False before :meth:`start`, after :meth:`stop` or a failure)."""
        return self._thread.is_alive()

    def restart(self) -> None:
        """Start a new reader thread after the previous one ended (a no-op while it still runs).

        Clears the stop flag; counters, frame numbering and the latest-frame slot carry on.
        """
        if self._thread.is_alive():
            return
        self._stop.clear()
        self.up = False
        self._thread = self._new_thread()
        self._thread.start()

    def latest(self) -> Frame | None:
        """Take the newest unread frame (None if none arrived since the last call or paused)."""
        with self._lock:
            frame, self._slot = self._slot, None
        if frame is not None:
            self._taken.set()
        return None if self.paused else frame

    def _offer(self, image) -> None:
        if self.kind == "file":  # files hand over every frame: wait until the last one was taken
            while self._slot is not None and not self._stop.is_set():
                self._taken.wait(0.05)
                self._taken.clear()
        frame = Frame(self._index, time.monotonic() - self._t0, image, self.name)
        self._index += 1
        self.read += 1
        with self._lock:
            if self._slot is not None:
                self.dropped += 1
            self._slot = frame
        self.new_frame.set()

    def _run(self) -> None:
        """Reader thread body: on an unexpected exception log one masked line and end (the supervisor restarts)."""
        try:
            self._reopen_loop()
        except Exception as exc:  # noqa: BLE001 - any failure: say so, end, let the supervisor restart the reader
            self.up = False
            log.error("source %s: reader thread failed on %s: %s: %s", self.name, self.display_uri,
                      type(exc).__name__, self._masked(str(exc)))
            log.debug("source %s: reader traceback:\n%s", self.name, self._masked("".join(traceback.format_exc())))

    def _masked(self, text: str) -> str:
        """``text`` with the configured URI replaced by :attr:`display_uri` (no password in a log line)."""
        uri = str(self.uri)
        return text.replace(uri, self.display_uri) if uri != self.display_uri else text

    def _reopen_loop(self) -> None:
        delay = self.options.reconnect_initial_s
        first = True
        while not self._stop.is_set():
            if not first:
                self.reconnects += 1
            first = False
            log.debug("source %s: opening %s (%s, reconnects so far %d)", self.name, self.display_uri, self.kind,
                      self.reconnects)
            cap = open_capture(self.uri, self.kind, self.options)
            try:
                if cap.isOpened():
                    if self._read_loop(cap):
                        delay = self.options.reconnect_initial_s
                else:
                    log.warning("source %s: cannot open %s; retrying in %.1f s", self.name, self.display_uri, delay)
            finally:
                cap.release()
                self.up = False
            if self._stop.wait(delay):
                break
            delay = min(delay * 2.0, self.options.reconnect_max_s)

    def _read_loop(self, cap: cv2.VideoCapture) -> bool:
        """Read until error, timeout or stop; returns True if any frame arrived."""
        got_any = False
        fps = cap.get(cv2.CAP_PROP_FPS) if self.kind == "file" else 0.0
        period = 1.0 / fps if fps and fps > 0 else 0.0
        next_t = time.monotonic()
        while not self._stop.is_set():
            ok, image = cap.read()
            if not ok:
                if self.kind == "file" and self.options.loop and got_any:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                log.warning("source %s: %s ended or read failed; reopening", self.name, self.display_uri)
                return got_any
            if not got_any:
                log.info("source %s: receiving frames from %s", self.name, self.display_uri)
            got_any, self.up = True, True
            self._offer(image)
            if period:  # files play at their own frame rate, as a camera would
                next_t += period
                self._stop.wait(max(0.0, next_t - time.monotonic()))
        return got_any

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the reader thread to end and wait up to ``timeout`` seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
