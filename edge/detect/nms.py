"""Weighted non-maximum suppression, as MediaPipe's ``NonMaxSuppressionCalculator``.

Its ``algorithm: WEIGHTED`` (mediapipe/calculators/util/non_max_suppression_calculator.cc):
overlapping candidates are not thrown away: the kept detection's box and
keypoints are the score-weighted mean of every candidate whose IoU with the
best one exceeds the threshold; the score stays the best one's.
"""

from __future__ import annotations

import numpy as np


def iou_matrix(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each row of ``boxes`` (N, 4)."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float,
                 max_out: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Weighted NMS over candidates.

    Args:
        boxes: float32 (N, 4) corners (x0, y0, x1, y1), any consistent unit.
        keypoints: float32 (N, K, 2) keypoints in the same unit.
        scores: float32 (N,) confidences.
        iou_threshold: Candidates overlapping the best by more than this merge into it.
        max_out: Maximum detections returned.

    Returns:
        Up to ``max_out`` (box (4,), keypoints (K, 2), score) tuples, best first.
    """
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out: list[tuple[np.ndarray, np.ndarray, float]] = []
    while len(scores) and len(out) < max_out:
        overlap = iou_matrix(boxes[0], boxes) > iou_threshold
        overlap[0] = True
        w = scores[overlap][:, None]
        box = (boxes[overlap] * w).sum(0) / w.sum()
        kps = (keypoints[overlap] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, kps, float(scores[0])))
        keep = ~overlap
        boxes, keypoints, scores = boxes[keep], keypoints[keep], scores[keep]
    return out
