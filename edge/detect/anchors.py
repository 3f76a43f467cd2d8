"""SSD anchors for BlazeFace, as MediaPipe's ``SsdAnchorsCalculator`` builds them.

Source: mediapipe/calculators/tflite/ssd_anchors_calculator.cc and the
face_detection_{short,full}_range graphs (mediapipe/modules/face_detection/),
Apache-2.0. With ``fixed_anchor_size`` every anchor has w = h = 1, so only the
centres matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SsdOptions:
    """Anchor and decoding options of one BlazeFace variant (MediaPipe graph values)."""

    input_size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    min_score: float
    anchor_offset: float = 0.5


#: face_detection_short_range.pbtxt: 128x128, 896 anchors, min_score_thresh 0.5.
SHORT_RANGE = SsdOptions(128, (8, 16, 16, 16), 1.0, 0.5)
#: face_detection_full_range.pbtxt: 192x192, 2304 anchors, min_score_thresh 0.6.
FULL_RANGE = SsdOptions(192, (4,), 0.0, 0.6)


def ssd_anchor_centres(opts: SsdOptions) -> np.ndarray:
    """Anchor centres in [0, 1] input coordinates.

    Consecutive layers with the same stride share one grid; each grid cell
    gets one anchor per aspect ratio (1.0) plus one interpolated-scale anchor
    when ``interpolated_scale_aspect_ratio`` > 0.

    Returns:
        float32 (num_anchors, 2) array of (x_centre, y_centre).
    """
    centres = []
    layer = 0
    n = len(opts.strides)
    while layer < n:
        stride = opts.strides[layer]
        per_cell = 0
        while layer < n and opts.strides[layer] == stride:
            per_cell += 1 + (1 if opts.interpolated_scale_aspect_ratio > 0 else 0)
            layer += 1
        side = int(np.ceil(opts.input_size / stride))
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        grid = np.stack([(xs + opts.anchor_offset) / side, (ys + opts.anchor_offset) / side], axis=-1)
        centres.append(np.repeat(grid.reshape(-1, 2), per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)
