"""``edge-fer --image PATH``: faces and emotions of one image or a folder of images."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from edge.capture import SourceError
from edge.config import Config
from edge.pipeline.annotate import draw_faces
from edge.pipeline.factory import build_classifier, build_detector
from edge.types import FaceResult

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


@dataclass
class ImageRun:
    """Counts of an image run."""

    images: int = 0
    unreadable: int = 0
    faces: int = 0
    without_face: int = 0


def list_images(path: Path) -> list[Path]:
    """The image files at ``path`` (a file, or a folder's images sorted by name).

    Raises:
        SourceError: path missing, or a folder with no image files.
    """
    if not path.exists():
        raise SourceError(f"no such file or folder: {path}", kind="missing")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _face_lines(file: Path, image, detector, classifier, align: bool) -> Iterator[tuple[dict, FaceResult]]:
    detections = detector.detect(image)
    h, w = image.shape[:2]
    for i, (det, scores) in enumerate(zip(detections, classifier.classify(image, detections, align))):
        face = FaceResult(i, det.bbox, scores, scores, scores.top)
        line = {"file": str(file), "face_index": i, "bbox": [round(v, 1) for v in det.bbox.as_tuple()],
                "bbox_norm": det.bbox.normalised(w, h), "detector_score": round(det.score, 4),
                "scores": scores.as_dict(), "emotion": scores.top}
        yield line, face


def run_images(path: str | Path, cfg: Config, out=sys.stdout) -> ImageRun:
    """Detect and classify every face; print one JSON line per face (or per face-less image).

    Args:
        path: Image file or folder of images.
        cfg: Validated configuration; ``output.annotate`` is a folder for annotated copies.
        out: Text stream for the JSON lines.

    Raises:
        SourceError: missing path, folder without images, or a single unreadable image.
        ModelError: a model cannot be loaded.
    """
    files = list_images(Path(path))
    detector, classifier = build_detector(cfg), build_classifier(cfg)
    annotate = Path(cfg.output.annotate) if cfg.output.annotate else None
    run = ImageRun()
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            run.unreadable += 1
            log.warning("%s: unreadable image, skipped", file)
            out.write(json.dumps({"file": str(file), "error": "unreadable image"}) + "\n")
            continue
        run.images += 1
        faces = []
        for line, face in _face_lines(file, image, detector, classifier, cfg.classifier.align):
            out.write(json.dumps(line) + "\n")
            faces.append(face)
        run.faces += len(faces)
        if not faces:
            run.without_face += 1
            out.write(json.dumps({"file": str(file), "face_index": None, "faces": 0, "note": "no face found"}) + "\n")
        if annotate:
            annotate.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(annotate / file.name), draw_faces(image, faces))
    out.flush()
    if run.images == 0:
        raise SourceError(f"{path}: no readable image")
    return run

