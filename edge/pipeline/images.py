"""``edge-fer --image PATH``: faces and emotions of one image or a folder of images."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

from edge.capture import SourceError
from edge.pipeline.annotate import DrawnFace, draw_faces

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


def image_lines(file: Path, faces: list, width: int, height: int) -> list[dict]:
    """The ``--image`` JSON objects of one image: one per face, or one ``no face found`` object.

    Args:
        file: The image file (named in every object).
        faces: :class:`edge.api.Face` values of the image.
        width: Image width in pixels (for ``bbox_norm``).
        height: Image height in pixels (for ``bbox_norm``).

    Returns:
        The JSON objects (dicts), in face order.
    """
    if not faces:
        return [{"file": str(file), "face_index": None, "faces": 0, "note": "no face found"}]
    return [{"file": str(file), "face_index": i, "bbox": [round(v, 1) for v in f.bbox.as_tuple()],
             "bbox_norm": f.bbox.normalised(width, height), "detector_score": round(f.detector_score, 4),
             "scores": f.scores, "emotion": f.emotion} for i, f in enumerate(faces)]


def run_images(path: str | Path, analyzer, annotate: Path | None = None, out=sys.stdout) -> ImageRun:
    """Detect and classify every face; print one JSON line per face (or per face-less image).

    Args:
        path: Image file or folder of images.
        analyzer: The :class:`edge.api.Analyzer` (models loaded).
        annotate: Folder for annotated copies (same file names), or None.
        out: Text stream for the JSON lines.

    Raises:
        SourceError: missing path, folder without images, or a single unreadable image.
        OSError: ``annotate`` not writable.
    """
    files = list_images(Path(path))
    if annotate:
        annotate.mkdir(parents=True, exist_ok=True)
    run = ImageRun()
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            run.unreadable += 1
            log.warning("%s: unreadable image, skipped", file)
            out.write(json.dumps({"file": str(file), "error": "unreadable image"}) + "\n")
            continue
        run.images += 1
        faces = analyzer.analyze_image(image)
        for line in image_lines(file, faces, image.shape[1], image.shape[0]):
            out.write(json.dumps(line) + "\n")
        run.faces += len(faces)
        run.without_face += not faces
        if annotate:
            drawn = [DrawnFace(f.bbox, f"{i} {f.emotion}", f.emotion, f.scores) for i, f in enumerate(faces)]
            if not cv2.imwrite(str(annotate / file.name), draw_faces(image, drawn)):
                raise OSError(f"cannot write {annotate / file.name}")
    out.flush()
    if run.images == 0:
        raise SourceError(f"{path}: no readable image")
    return run
