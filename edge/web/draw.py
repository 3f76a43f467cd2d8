"""Annotated JPEGs for the page: a downscaled copy of a frame with ``draw_faces`` on it."""

from __future__ import annotations

import cv2
import numpy as np

from edge.pipeline.annotate import DrawnFace, draw_faces
from edge.types import BBox


def annotated_jpeg(image: np.ndarray, faces: list[DrawnFace], max_side: int, quality: int) -> bytes:
    """A copy of ``image`` scaled so its longer side is ≤ ``max_side``, faces drawn, JPEG-encoded.

    Each face's box, label and score bars are drawn as by ``--annotate``
    (``edge.pipeline.annotate.draw_faces``).

    Args:
        image: uint8 BGR (H, W, 3); not modified.
        faces: What to draw, boxes in ``image`` pixels.
        max_side: Pixels.
        quality: JPEG quality, 0-100.

    Returns:
        The JPEG bytes (empty if OpenCV cannot encode).
    """
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        faces = [DrawnFace(BBox(f.bbox.x * scale, f.bbox.y * scale, f.bbox.w * scale, f.bbox.h * scale),
                           f.title, f.emotion, f.scores) for f in faces]
    else:
        small = image.copy()
    ok, jpeg = cv2.imencode(".jpg", draw_faces(small, faces), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return jpeg.tobytes() if ok else b""
