"""Drawing boxes, track ids, labels and score bars on frames, and the H.264 writer of ``--annotate``.

The annotated MP4 is encoded by the system ``ffmpeg`` program (libx264,
yuv420p, ``+faststart``), which every browser plays: OpenCV's pip wheel has
no H.264 encoder (its ``mp4v`` output is MPEG-4 Part 2, which browsers do
not play). Frames are piped to ffmpeg as raw BGR, one per input frame, so the
output has exactly the input's frame count.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.runtime import MissingDependency
from edge.types import BBox

_COLOURS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (0, 200, 255),
            "neutral": (200, 200, 200), "sad": (200, 120, 40), "surprise": (0, 140, 255),
            "contempt": (120, 120, 40)}
_PANEL = (32, 32, 32)  # dark grey label boxes: white text stays readable on any background
_WHITE = (255, 255, 255)
FFMPEG_INSTALL = "sudo apt-get install ffmpeg"


@dataclass(frozen=True)
class DrawnFace:
    """What is drawn for one face.

    Attributes:
        bbox: Face box in pixels.
        title: Label text above the box (e.g. ``#3 happy``).
        emotion: Emotion that picks the box colour.
        scores: {label: probability in [0, 1]} drawn as bars under the box.
    """

    bbox: BBox
    title: str
    emotion: str
    scores: dict[str, float]


def _text_box(image: np.ndarray, text: str, x: int, y: int, scale: float, thick: int) -> None:
    """White ``text`` on a dark filled box whose top-left corner is (x, y), kept inside the frame."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    h, w = image.shape[:2]
    x = int(min(max(0, x), max(0, w - tw - 6)))
    y = int(min(max(0, y), max(0, h - th - base - 6)))
    cv2.rectangle(image, (x, y), (x + tw + 6, y + th + base + 6), _PANEL, -1)
    cv2.putText(image, text, (x + 3, y + th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, _WHITE, thick, cv2.LINE_AA)


def _score_bars(image: np.ndarray, face: DrawnFace, x: int, y: int, scale: float) -> None:
    """One bar per label on a dark panel: 3-letter label in white, bar length = probability."""
    row = max(10, int(14 * scale))
    bar_w = max(40, int(70 * scale))
    label_w = int(30 * scale) + 8
    h, w = image.shape[:2]
    panel_h = row * len(face.scores) + 4
    x = int(min(max(0, x), max(0, w - label_w - bar_w - 6)))
    y = int(min(max(0, y), max(0, h - panel_h)))
    cv2.rectangle(image, (x, y), (x + label_w + bar_w + 6, y + panel_h), _PANEL, -1)
    for i, (name, p) in enumerate(face.scores.items()):
        top = y + 2 + i * row
        cv2.putText(image, name[:3], (x + 3, top + row - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, _WHITE, 1,
                    cv2.LINE_AA)
        cv2.rectangle(image, (x + label_w, top + 2), (x + label_w + int(bar_w * float(p)), top + row - 2),
                      _COLOURS.get(name, _WHITE), -1)


def draw_faces(image: np.ndarray, faces: list[DrawnFace]) -> np.ndarray:
    """Draw each face's box, label (white on a dark box) and score bars onto ``image`` (in place).

    Args:
        image: uint8 BGR frame (H, W, 3).
        faces: What to draw per face; sizes scale with the frame (readable from 240 px to 4K).

    Returns:
        The same array, annotated.
    """
    scale = max(0.5, min(image.shape[:2]) / 640)
    thick = max(1, int(round(scale * 1.5)))
    for face in faces:
        b = face.bbox
        x0, y0, x1, y1 = int(b.x), int(b.y), int(b.x + b.w), int(b.y + b.h)
        cv2.rectangle(image, (x0, y0), (x1, y1), _COLOURS.get(face.emotion, _WHITE), thick + 1)
        _, th = cv2.getTextSize(face.title, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thick)[0]
        _text_box(image, face.title, x0, y0 - th - 12, 0.6 * scale, thick)
        _score_bars(image, face, x0, y1 + 4, scale)
    return image


def require_ffmpeg() -> str:
    """Path of the ``ffmpeg`` program.

    Raises:
        MissingDependency: ffmpeg is not on PATH (message gives the install command).
    """
    exe = shutil.which("ffmpeg")
    if not exe:
        raise MissingDependency(f"--annotate needs the ffmpeg program for H.264 output: {FFMPEG_INSTALL}")
    return exe


class AnnotatedVideo:
    """H.264 MP4 writer (system ffmpeg, libx264, yuv420p, +faststart), opened on the first frame."""

    def __init__(self, path: Path, fps: float) -> None:
        """Check that ffmpeg exists (nothing is written yet).

        Args:
            path: Output ``.mp4``.
            fps: Frame rate of the input (frames per second; 25 when unknown).

        Raises:
            MissingDependency: no ffmpeg program.
        """
        self.path = path
        self.fps = fps if fps > 0 else 25.0
        self._exe = require_ffmpeg()
        self._proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    def _open(self, width: int, height: int) -> subprocess.Popen:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [self._exe, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
               "-r", f"{self.fps:.6f}", "-i", "-", "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
               "-movflags", "+faststart", str(self.path)]
        # own session: Ctrl-C stops edge-fer, which then closes the pipe so ffmpeg finishes a playable file
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                start_new_session=True)

    def write(self, image: np.ndarray, faces: list[DrawnFace]) -> None:
        """Annotate a copy of ``image`` (uint8 BGR, H x W x 3) and append it.

        Raises:
            OSError: ffmpeg stopped (e.g. the output folder is not writable).
        """
        if self._proc is None:
            self._proc = self._open(image.shape[1], image.shape[0])
        assert self._proc.stdin is not None  # opened with stdin=PIPE
        try:
            self._proc.stdin.write(np.ascontiguousarray(draw_faces(image.copy(), faces)).tobytes())
        except BrokenPipeError:
            raise OSError(f"ffmpeg stopped writing {self.path}: {self._error()}") from None

    def _error(self) -> str:
        if self._proc is not None:
            self._proc.wait(10)
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no message"

    def close(self) -> None:
        """Finish the file.

        Raises:
            OSError: ffmpeg failed.
        """
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        assert proc.stdin is not None  # opened with stdin=PIPE
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        if proc.wait(120) != 0:
            self._proc = proc
            raise OSError(f"ffmpeg could not write {self.path}: {self._error()}")
