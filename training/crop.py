"""Face crops for whole-photo datasets (CK+, JAFFE, RaFD) with the runtime detector.

Uses the same BlazeFace detector and the same ``preprocess_face`` (and crop
margin) as the daemon, so such datasets are cropped exactly as faces are at
run time.
"""

from __future__ import annotations

import numpy as np

from edge.preprocess import DEFAULT_CROP_MARGIN, INPUT_SIZE, preprocess_face

#: Images whose shorter side exceeds this many pixels are treated as whole photos in ``auto`` mode.
AUTO_CROP_MIN_SIDE = 2 * INPUT_SIZE


def detector_cropper(mode: str = "auto", margin: float = DEFAULT_CROP_MARGIN, variant: str = "full"):
    """A cropper for :func:`training.data.load_folder`, or None for ``mode == "none"``.

    Args:
        mode: ``none`` (images are face crops), ``detect`` (always detect), or
            ``auto`` (detect only in images larger than ``AUTO_CROP_MIN_SIDE``).
        margin: Crop margin, as the runtime classifier's.
        variant: BlazeFace variant (``full`` finds faces at any distance in photos).

    Returns:
        Callable image -> float32 (48, 48) face of the largest detection, or
        None when no face is found (the loader skips and counts it).
    """
    if mode == "none":
        return None
    from edge.detect import BlazeFace, DetectorOptions

    detector = BlazeFace(DetectorOptions(variant=variant, max_faces=4, min_face_px=20))

    def crop(image: np.ndarray) -> np.ndarray | None:
        if mode == "auto" and min(image.shape[:2]) <= AUTO_CROP_MIN_SIDE:
            return preprocess_face(image)
        bgr = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
        faces = detector.detect(bgr)
        if not faces:
            return None
        best = max(faces, key=lambda d: d.bbox.area)
        return preprocess_face(image, best.bbox.as_tuple(), margin=margin, eyes=best.eyes)

    return crop
