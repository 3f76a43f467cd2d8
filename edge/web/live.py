"""Live view: the latest frame of a source, annotated and JPEG-encoded for MJPEG clients.

Encoding happens here, in the web server's worker threads, only while a client
watches, at most ``MAX_FPS`` times a second per source, and once per frame
whatever the number of clients. The processing path only hands over a frame
reference (:meth:`edge.web.state.WebState.frame_processed`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from edge.pipeline.annotate import DrawnFace
from edge.web.draw import annotated_jpeg
from edge.web.state import WebState

MAX_FPS = 5.0            # live-view frames per second per source (issue 16 asks >= 2)
MAX_SIDE = 640           # pixels: longer side of the live image
JPEG_QUALITY = 70
BOUNDARY = "edgeferframe"


@dataclass(frozen=True, slots=True)
class Jpeg:
    """One encoded live frame: ``number`` is the source's processed-frame count it shows."""

    number: int
    data: bytes


class LiveEncoder:
    """Per-source cache of the newest annotated JPEG, shared by every client.

    Args:
        state: Where the daemon leaves its latest frames.
        max_fps: Encodes per second per source at most.
    """

    def __init__(self, state: WebState, max_fps: float = MAX_FPS) -> None:
        self.state = state
        self.period_s = 1.0 / max_fps
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Jpeg]] = {}
        self.encoded = 0

    def get(self, source: str) -> Jpeg | None:
        """The newest JPEG of ``source``, encoding the latest frame if the cached one is older than the period.

        Blocking (annotation + ``cv2.imencode``, a few ms): call from a worker thread.
        """
        with self._lock:
            now = time.monotonic()
            cached = self._cache.get(source)
            if cached and now - cached[0] < self.period_s:
                return cached[1]
            latest = self.state.latest_frame(source)
            if latest is None:
                return cached[1] if cached else None
            if cached and cached[1].number == latest.number:
                return cached[1]
            drawn = [DrawnFace(f.bbox, f"#{f.track_id} {f.emotion}", f.emotion, f.scores.as_dict())
                     for f in latest.faces]
            jpeg = Jpeg(latest.number, annotated_jpeg(latest.image, drawn, MAX_SIDE, JPEG_QUALITY))
            self._cache[source] = (now, jpeg)
            self.encoded += 1
            return jpeg


def mjpeg_part(jpeg: bytes) -> bytes:
    """One ``multipart/x-mixed-replace`` part carrying a JPEG."""
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
    return head + jpeg + b"\r\n"
