"""The one face preprocessing function: crop -> resize -> grey (-> level eyes) -> scale.

Training (``training.data``), int8 calibration (``convert``) and the runtime
classifier (``edge.classify``) all call :func:`preprocess_face`, so the model
sees the same arrays in training and in service (no train/serve skew).

The crop is resized *before* the colour conversion: both steps are linear, so
the order changes nothing but the cost (converting 48x48 pixels instead of the
whole face crop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Side of the square model input in pixels (FER2013 crops are 48x48).
INPUT_SIZE = 48
#: Pixel scale: model input = grey / 255, in [0, 1].
PIXEL_SCALE = 1.0 / 255.0
#: Default crop margin around a BlazeFace box (fraction of its side, per side).
#: Measured: FER2013 validation faces (the split carved from train/) pasted
#: into larger images, re-detected by BlazeFace and re-cropped are classified
#: best at 0.10 (67.2% vs 66.0% at 0.00 and 64.7% at 0.15; 67.0% for the
#: original crops), i.e. 0.10 reproduces the FER2013 registration.
DEFAULT_CROP_MARGIN = 0.10


@dataclass(frozen=True, slots=True)
class CropBox:
    """A square crop window in pixels; may extend past the image borders."""

    x0: int
    y0: int
    side: int


def square_crop_box(x: float, y: float, w: float, h: float, margin: float) -> CropBox:
    """Square window centred on a bbox, enlarged by ``margin`` on each side.

    Args:
        x: Face bbox left edge in pixels.
        y: Face bbox top edge in pixels.
        w: Face bbox width in pixels.
        h: Face bbox height in pixels.
        margin: Fraction of the longer bbox side added on each side (0.1 = 10%).

    Returns:
        The square crop window in integer pixels (side >= 1).
    """
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    side_px = max(1, int(round(side)))
    return CropBox(int(math.floor(cx - side_px / 2.0)), int(math.floor(cy - side_px / 2.0)), side_px)


def crop_square(image: np.ndarray, box: CropBox) -> np.ndarray:
    """Cut ``box`` out of ``image``, replicating edge pixels where it leaves the frame.

    Raises:
        ValueError: if the window does not overlap the image.
    """
    h, w = image.shape[:2]
    x1, y1 = box.x0 + box.side, box.y0 + box.side
    cx0, cy0, cx1, cy1 = max(box.x0, 0), max(box.y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        raise ValueError(f"crop window {box} lies outside the {w}x{h} image")
    patch = image[cy0:cy1, cx0:cx1]
    pads = (cy0 - box.y0, y1 - cy1, cx0 - box.x0, x1 - cx1)
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, borderType=cv2.BORDER_REPLICATE)
    return patch


def _level_eyes(patch: np.ndarray, eyes: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    """Rotate a crop about its centre so the line between the eyes is horizontal."""
    (lx, ly), (rx, ry) = eyes
    angle = math.degrees(math.atan2(ry - ly, rx - lx))
    if abs(angle) > 90.0:  # eyes given right-to-left in image space
        angle -= math.copysign(180.0, angle)
    centre = (patch.shape[1] / 2.0, patch.shape[0] / 2.0)
    rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
    return cv2.warpAffine(patch, rot, (patch.shape[1], patch.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def preprocess_face(
    image: np.ndarray,
    bbox: tuple[float, float, float, float] | None = None,
    *,
    margin: float = 0.0,
    size: int = INPUT_SIZE,
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> np.ndarray:
    """Turn a face in an image into one model input.

    Steps: square crop around ``bbox`` (edge-replicated past the borders),
    resize to ``size`` x ``size`` (large crops: bilinear to 2x, then a 2x2
    ``INTER_AREA`` average, within ~0.5 grey levels of a full ``INTER_AREA``
    at a tenth of the cost; small crops: ``INTER_AREA`` when shrinking,
    ``INTER_LINEAR`` when growing), BGR -> grey (ITU-R BT.601 weights,
    OpenCV), optional in-plane rotation that levels the eyes, scale to [0, 1].
    The first steps are :func:`face_grey`; this function only scales its output.

    Args:
        image: uint8 image, grey (H, W) or BGR (H, W, 3) as OpenCV decodes it.
        bbox: Face bbox (x, y, w, h) in pixels; None uses the whole image
            (already-cropped dataset faces such as FER2013).
        margin: Fraction of the longer bbox side added on each side of the crop.
        size: Output side in pixels.
        eyes: Optional ((x, y) left eye, (x, y) right eye) in image pixels, as
            the detector's keypoints; when given the crop is rotated to level them.

    Returns:
        float32 array of shape (size, size), values in [0, 1] (``grey * float32(1/255)``).

    Raises:
        ValueError: if the image is empty, not uint8 grey/BGR, or the crop
            window does not overlap the image.
    """
    return face_grey(image, bbox, margin=margin, size=size, eyes=eyes).astype(np.float32) * np.float32(PIXEL_SCALE)


def face_grey(
    image: np.ndarray,
    bbox: tuple[float, float, float, float] | None = None,
    *,
    margin: float = 0.0,
    size: int = INPUT_SIZE,
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> np.ndarray:
    """:func:`preprocess_face` before the scaling: the uint8 grey face, (size, size).

    ``preprocess_face(...) == face_grey(...).astype(float32) * float32(1/255)``
    exactly; the runtime classifier quantises this array with a 256-entry
    table instead (:meth:`edge.classify.EmotionClassifier.predict_grey`).
    Arguments and errors as :func:`preprocess_face`.

    Returns:
        uint8 array (size, size); may be a view of ``image`` when no resize,
        colour conversion or rotation was needed (copy it before changing it).
    """
    if image.ndim not in (2, 3) or image.size == 0 or image.dtype != np.uint8:
        raise ValueError(f"expected a non-empty uint8 grey or BGR image, got {image.dtype} {image.shape}")
    if bbox is None:
        h, w = image.shape[:2]
        bbox = (0.0, 0.0, float(w), float(h))
        margin = 0.0
    box = square_crop_box(*bbox, margin=margin)
    patch = crop_square(image, box)
    if patch.shape[0] > 2 * size:  # bilinear to 2x first: INTER_AREA at odd ratios costs ~10x more
        patch = cv2.resize(patch, (2 * size, 2 * size), interpolation=cv2.INTER_LINEAR)
    if patch.shape[0] != size or patch.shape[1] != size:
        interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
        patch = cv2.resize(patch, (size, size), interpolation=interp)
    if patch.ndim == 3:
        patch = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    if eyes is not None:  # level the eyes on the final grey size x size crop: a few microseconds
        k = size / box.side
        shifted = tuple(((ex - box.x0) * k, (ey - box.y0) * k) for ex, ey in eyes)
        patch = _level_eyes(patch, shifted)  # type: ignore[arg-type]
    return patch
