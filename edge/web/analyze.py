"""Photo uploads: decode from memory, detect and classify every face, draw the result.

The same code path as ``edge-fer --image`` (:meth:`edge.api.Analyzer.analyze_image`),
with the web server's own Analyzer (built on the first upload, never the
daemon's detector and classifier). Nothing is written to disk: the bytes are
decoded from memory with ``cv2.imdecode``.
"""

from __future__ import annotations

import base64
import threading

import cv2
import numpy as np

from edge.api import Face
from edge.config import Config
from edge.pipeline.annotate import DrawnFace
from edge.web.draw import annotated_jpeg
from edge.web.imagecheck import MAX_PIXELS, sniff

MAX_UPLOAD_BYTES = 10 * 1024 * 1024   # 10 MB (issue 16)
PREVIEW_MAX_SIDE = 1024               # pixels: longer side of the annotated preview sent back
PREVIEW_JPEG_QUALITY = 85


class UploadError(Exception):
    """The upload is not an image we can read; ``str()`` is the message for the user.

    Attributes:
        status: HTTP status to answer with (413 too large, 415 not an image, 422 undecodable).
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes) -> np.ndarray:
    """Decode uploaded bytes (JPEG, PNG, WebP or BMP) to uint8 BGR (H, W, 3), in memory.

    Raises:
        UploadError: empty, over ``MAX_UPLOAD_BYTES``, not an image, over ``MAX_PIXELS``, or undecodable.
    """
    if not data:
        raise UploadError("empty upload: choose a photo", 400)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"file too large: {len(data) / 1e6:.1f} MB (limit {MAX_UPLOAD_BYTES // 2**20} MB)", 413)
    header = sniff(data)
    if header is None:
        raise UploadError("not an image: upload a JPEG, PNG, WebP or BMP photo", 415)
    if header.width and header.height and header.width * header.height > MAX_PIXELS:
        raise UploadError(f"image too large: {header.width}x{header.height} pixels "
                          f"(limit {MAX_PIXELS // 1_000_000} megapixels)", 413)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0 or image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise UploadError(f"cannot decode this {header.format.upper()} file (corrupt or truncated?)", 422)
    return image


class UploadAnalyzer:
    """The web server's own :class:`edge.api.Analyzer` (never the daemon's), built on first use.

    It analyses one upload at a time (the interpreters are not thread-safe).

    Args:
        cfg: Validated configuration (detector and classifier sections).
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._analyzer = None

    def _get(self):
        if self._analyzer is None:
            from edge.api import Analyzer

            self._analyzer = Analyzer(config=self.cfg)
        return self._analyzer

    def load(self) -> None:
        """Load the models now (``--serve`` does, to fail at start on a bad model).

        Raises:
            ModelError: a model cannot be loaded.
        """
        with self._lock:
            self._get()

    def analyze(self, image: np.ndarray) -> list[Face]:
        """Every face of a uint8 BGR image, as ``edge-fer --image`` finds them (blocking: call from a worker thread).

        Raises:
            ModelError: a model cannot be loaded.
        """
        with self._lock:
            return self._get().analyze_image(image)


def annotated_preview(image: np.ndarray, faces: list[Face]) -> str:
    """A ``data:image/jpeg;base64,...`` URL of the photo with each face drawn.

    Args:
        image: uint8 BGR (H, W, 3), not modified; the preview's longer side is ≤ ``PREVIEW_MAX_SIDE``.
        faces: The faces found in ``image``; each is drawn with its box, an ``n emotion`` label
            (n = 1-based face number, as on the page) and score bars.

    Returns:
        The data URL (JPEG, quality ``PREVIEW_JPEG_QUALITY``).
    """
    drawn = [DrawnFace(f.bbox, f"{i + 1} {f.emotion}", f.emotion, f.scores) for i, f in enumerate(faces)]
    jpeg = annotated_jpeg(image, drawn, PREVIEW_MAX_SIDE, PREVIEW_JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def analyze_upload(analyzer: UploadAnalyzer, data: bytes) -> dict:
    """Decode, analyse and draw one uploaded photo (blocking; run in a worker thread).

    Returns:
        ``{"width", "height", "faces", "image"}``: ``faces`` as ``edge-fer --image`` prints them
        (``face_index``, ``bbox`` [x, y, w, h] pixels, ``bbox_norm``, ``detector_score``, ``scores``,
        ``emotion``; empty when no face is found), ``image`` a data URL of the annotated preview.

    Raises:
        UploadError: not a readable image (see :func:`decode_upload`).
        ModelError: a model cannot be loaded.
    """
    image = decode_upload(data)
    faces = analyzer.analyze(image)
    h, w = image.shape[:2]
    rows = [{"face_index": i, **f.to_dict(), "bbox_norm": f.bbox.normalised(w, h)} for i, f in enumerate(faces)]
    return {"width": w, "height": h, "faces": rows, "image": annotated_preview(image, faces)}
