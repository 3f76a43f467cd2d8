"""What the web page shows, pushed by the daemon's processing thread (thread-safe, cheap).

The processing thread calls :meth:`WebState.frame_processed` once per frame,
:meth:`WebState.add_event` with each event dict it publishes, and
:meth:`WebState.source_status` / :meth:`WebState.mqtt_status` from its
housekeeping. Each call takes one lock for a few attribute assignments: no
copy of the frame (only a reference to the latest one, and only with
``live_view``), no JPEG encoding, no JSON. The web server reads snapshots.

Needs the standard library only (importable without the ``[web]`` extra).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from edge.pipeline.core import FrameResult
    from edge.types import FaceResult, Frame

MAX_EVENTS = 50          # events kept for the page and /api/events (issue 16)
FPS_WINDOW_S = 1.0       # processed fps is measured over windows of this length


@dataclass(frozen=True, slots=True)
class LatestFrame:
    """The newest processed frame of a source (kept only with ``live_view``).

    Attributes:
        number: Count of frames processed by this source when it was kept (1-based).
        image: uint8 BGR (H, W, 3) array as decoded: a reference, never drawn on.
        faces: Results of that frame (boxes in its pixels).
    """

    number: int
    image: np.ndarray
    faces: list[FaceResult]


@dataclass(slots=True)
class _Source:
    up: bool = False
    paused: bool = False
    dropped: int = 0
    processed: int = 0
    last_frame_t: float | None = None
    fps: float = 0.0
    window_t: float | None = None
    window_count: int = 0
    faces: list = field(default_factory=list)
    latest: LatestFrame | None = None


class WebState:
    """Thread-safe store of the daemon's latest results for the web server.

    Args:
        sources: Source names, in config order.
        live_view: Keep a reference to each source's latest frame for the live image.
        read_timeout_s: A source with no processed frame for this long is unhealthy
            (``read_timeout_s`` of the config).
        device_id: Shown on the page.
        clock: Monotonic clock in seconds (tests pass their own).
    """

    def __init__(self, sources: Iterable[str] = (), live_view: bool = False, read_timeout_s: float = 10.0,
                 device_id: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self.live_view = live_view
        self.read_timeout_s = read_timeout_s
        self.device_id = device_id
        self._clock = clock
        self._lock = threading.Lock()
        self._sources: dict[str, _Source] = {name: _Source() for name in sources}
        self._events: deque[dict] = deque(maxlen=MAX_EVENTS)
        self._seq = 0
        self._mqtt: dict | None = None
        self.started_t = clock()

    # --- pushed by the processing thread ---
    def frame_processed(self, source: str, frame: Frame, result: FrameResult) -> None:
        """Record one processed frame: counters, fps, faces now, and (``live_view``) the frame reference.

        Args:
            source: Source name (unknown names are added).
            frame: The frame as decoded; its image is referenced, not copied.
            result: The pipeline's result of that frame.
        """
        now = self._clock()
        with self._lock:
            s = self._sources.get(source) or self._sources.setdefault(source, _Source())
            s.processed += 1
            s.last_frame_t = now
            s.up = True
            s.faces = result.faces
            if self.live_view:
                s.latest = LatestFrame(s.processed, frame.image, result.faces)
            if s.window_t is None:
                s.window_t, s.window_count = now, s.processed
            elif now - s.window_t >= FPS_WINDOW_S:
                s.fps = (s.processed - s.window_count) / (now - s.window_t)
                s.window_t, s.window_count = now, s.processed

    def source_status(self, source: str, up: bool, dropped: int, paused: bool = False) -> None:
        """Record a source's reader state (``LiveSource.up``, ``.dropped``, ``.paused``)."""
        with self._lock:
            s = self._sources.get(source) or self._sources.setdefault(source, _Source())
            s.up, s.dropped, s.paused = up, dropped, paused
            if not up:
                s.faces, s.latest = [], None

    def add_events(self, events: Iterable[dict]) -> None:
        """Append published event dicts (``event_to_dict``); keeps the last ``MAX_EVENTS``.

        An event's own integer ``seq`` (numbered by the daemon) is kept as it is;
        an event without one is stored as a copy numbered after the highest
        ``seq`` seen. Readers ask for events with ``seq`` above a number, so the
        numbers must rise in the order events are added (one processing thread
        adds them).
        """
        with self._lock:
            for event in events:
                seq = event.get("seq")
                if isinstance(seq, int) and not isinstance(seq, bool):
                    self._seq = max(self._seq, seq)
                else:
                    self._seq += 1
                    event = {**event, "seq": self._seq}
                self._events.append(event)

    def add_event(self, event: dict) -> None:
        """One event dict: :meth:`add_events` for an ``EventSink`` listener (``sink.listeners.append``)."""
        self.add_events((event,))

    def mqtt_status(self, connected: bool, queued: int) -> None:
        """Record the MQTT connection state and the outbox depth (events not yet acknowledged)."""
        with self._lock:
            self._mqtt = {"enabled": True, "connected": connected, "queued": queued}

    # --- read by the web server ---
    def latest_frame(self, source: str) -> LatestFrame | None:
        """The newest kept frame of ``source`` (None without ``live_view`` or before the first frame)."""
        with self._lock:
            s = self._sources.get(source)
            return s.latest if s else None

    def has_source(self, source: str) -> bool:
        """Whether ``source`` is known."""
        with self._lock:
            return source in self._sources

    def events_after(self, seq: int = 0) -> list[dict]:
        """Kept events with ``seq`` greater than ``seq``, oldest first."""
        with self._lock:
            return [e for e in self._events if e["seq"] > seq]

    @property
    def last_seq(self) -> int:
        """The highest event sequence number seen (0 before any event)."""
        with self._lock:
            return self._seq

    def health(self) -> tuple[bool, dict]:
        """(ok, details): ok when every source processed a frame within ``read_timeout_s`` (paused ones count as ok).

        Details: ``{"ok", "read_timeout_s", "sources": {name: {"ok", "age_s", "paused"}}}``,
        ``age_s`` being seconds since the last processed frame (None: never).
        """
        now = self._clock()
        with self._lock:
            sources = {}
            for name, s in self._sources.items():
                age = None if s.last_frame_t is None else round(now - s.last_frame_t, 3)
                ok = s.paused or (age is not None and age <= self.read_timeout_s)
                sources[name] = {"ok": ok, "age_s": age, "paused": s.paused}
        ok = all(v["ok"] for v in sources.values())
        return ok, {"ok": ok, "read_timeout_s": self.read_timeout_s, "sources": sources}

    def snapshot(self) -> dict:
        """The page's state as JSON-ready data (``/api/state``, schema in the README)."""
        now = self._clock()
        with self._lock:
            sources = [{"name": name, "up": s.up, "paused": s.paused, "fps": round(s.fps, 1),
                        "processed": s.processed, "dropped": s.dropped,
                        "last_frame_age_s": None if s.last_frame_t is None else round(now - s.last_frame_t, 3),
                        "faces": [_face_json(f) for f in s.faces]}
                       for name, s in self._sources.items()]
            mqtt = dict(self._mqtt) if self._mqtt else {"enabled": False, "connected": False, "queued": 0}
            last_seq = self._seq
        return {"device_id": self.device_id, "uptime_s": round(now - self.started_t, 1), "live_view": self.live_view,
                "sources": sources, "mqtt": mqtt, "last_seq": last_seq}


def _face_json(face: FaceResult) -> dict:
    """``{"track_id", "emotion", "score"}``: the track's current emotion and its smoothed score."""
    smoothed = face.smoothed
    score = float(smoothed.probs[smoothed.labels.index(face.emotion)]) if face.emotion in smoothed.labels else 0.0
    return {"track_id": face.track_id, "emotion": face.emotion, "score": round(score, 3)}
