"""Drawing boxes, track ids, labels and score bars on frames (``--annotate``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.types import FaceResult

_COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (0, 200, 255),
            "neutral": (200, 200, 200), "sad": (200, 120, 40), "surprise": (0, 140, 255)}


def draw_faces(image: np.ndarray, faces: list[FaceResult]) -> np.ndarray:
    """Draw each face's box, ``#id emotion`` label and raw score bars onto ``image`` (in place).

    Args:
        image: uint8 BGR frame (H, W, 3).
        faces: Results of this frame.

    Returns:
        The same array, annotated.
    """
    for face in faces:
        b = face.bbox
        colour = _COLOURS.get(face.emotion, (255, 255, 255))
        x0, y0, x1, y1 = int(b.x), int(b.y), int(b.x + b.w), int(b.y + b.h)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
        cv2.putText(image, f"#{face.track_id} {face.emotion}", (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, colour, 1, cv2.LINE_AA)
        for i, (name, p) in enumerate(zip(face.scores.labels, face.scores.probs)):
            y = y1 + 4 + i * 10
            cv2.putText(image, name[:3], (x0, y + 8), cv2.FONT_HERSHEY_PLAIN, 0.7, (255, 255, 255), 1)
            cv2.rectangle(image, (x0 + 24, y + 1), (x0 + 24 + int(60 * float(p)), y + 8),
                          _COLOURS.get(name, (255, 255, 255)), -1)
    return image


class AnnotatedVideo:
    """MP4 writer (``mp4v`` FourCC) opened on the first frame."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps if fps > 0 else 25.0
        self._writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray, faces: list[FaceResult]) -> None:
        """Annotate a copy of ``image`` and append it."""
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        self._writer.write(draw_faces(image.copy(), faces))

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()
