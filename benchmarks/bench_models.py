"""Per-stage model costs at 1 thread: BlazeFace (with pre/post), crop+preprocess, every shipped int8 classifier.

Classifier rows: one d18 face (batch 1 and 4), always flipped (``tta_flip``),
and the model's default inference (its sidecar ``flip_margin``: a mirror pass
for unsure faces only) over 1,000 real FER+ ``FER2013Valid`` faces one at a
time, whose mean cost depends on how many faces are unsure.

.venv/bin/python benchmarks/bench_models.py
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED, machine, table, timeit  # noqa: E402
from edge.classify import SHIPPED_MODELS, EmotionClassifier, resolve_model  # noqa: E402
from edge.classify.classifier import top2_margin  # noqa: E402
from edge.detect import BlazeFace, DetectorOptions  # noqa: E402


def real_faces(n: int) -> np.ndarray:
    """The first ``n`` FER+ ``FER2013Valid`` faces (majority labels).

    Args:
        n: Number of faces.

    Returns:
        float32 (n, 48, 48) in [0, 1], as ``preprocess_face`` gives.
    """
    from training.data import load_dataset

    return load_dataset(SHARED / "datasets" / "ferplus" / "FER2013Valid", "auto", ferplus_mode="majority").x[:n]


def _ms_per_face(clf: EmotionClassifier, faces: np.ndarray) -> float:
    """Mean ms of ``predict_batch`` on each face alone (after 10 warm-up faces), float32 faces (N, 48, 48)."""
    for f in faces[:10]:
        clf.predict_batch(f[None])
    t0 = time.perf_counter()
    for f in faces:
        clf.predict_batch(f[None])
    return (time.perf_counter() - t0) / len(faces) * 1e3


def default_inference_row(name: str, model: str, faces: np.ndarray) -> list[str]:
    """Mean ms per face of the model's default inference (sidecar ``flip_margin``) vs one pass, same faces.

    Args:
        name: Shipped model name.
        model: Its label in the table.
        faces: float32 (N, 48, 48) real faces, classified one at a time.

    Returns:
        The table row: label (with the share of faces mirrored) and "default (one pass)" in ms,
        the fastest of three passes over the faces each.
    """
    clf = EmotionClassifier(name, num_threads=1)
    if clf.flip_margin <= 0:
        return [f"{model} per face, default inference (one pass)", "as batch 1"]
    single = EmotionClassifier(name, num_threads=1, flip_margin=0)
    mirrored = float(np.mean(top2_margin(single.predict_batch(faces)) < clf.flip_margin))
    ms_single = [_ms_per_face(single, faces) for _ in range(3)]
    ms_default = [_ms_per_face(clf, faces) for _ in range(3)]
    return [f"{model} per face, default inference (flip_margin {clf.flip_margin:g}: {100 * mirrored:.1f}% of "
            f"{len(faces)} FER2013Valid faces mirrored, one at a time; one pass on the same faces)",
            f"{min(ms_default):.3f} ({min(ms_single):.3f})"]


def main() -> None:
    """Print the table of per-stage costs (ms) on this machine at 1 thread."""
    cap = cv2.VideoCapture(str(SHARED / "videos" / "liveportrait_d18.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    frame = cap.read()[1]
    big = cv2.resize(frame, (640, 480))
    rows = []
    for variant in ("short", "full"):
        det = BlazeFace(DetectorOptions(variant=variant, num_threads=1))
        for name, img in (("480x480", frame), ("640x480", big)):
            ms = timeit(lambda: det.detect(img), 300) * 1e3
            rows.append([f"BlazeFace {variant} ({name}, pre+invoke+post)", f"{ms:.3f}"])
    det = BlazeFace()
    d = det.detect(frame)[0]
    clf = EmotionClassifier(num_threads=1)
    for align in (False, True):
        ms = timeit(lambda: clf.crop(frame, d, align), 2000) * 1e3
        rows.append([f"crop+preprocess per face (275 px face, align={align})", f"{ms:.4f}"])
    face = clf.crop(frame, d, True)[None]
    valid_faces = real_faces(1000)
    faces4 = np.repeat(face, 4, axis=0)
    for name in SHIPPED_MODELS:
        if not resolve_model(name).is_file():
            continue
        model = f"{name} ({resolve_model(name).name})"
        clf = EmotionClassifier(name, num_threads=1, flip_margin=0)  # one pass; the default inference: below
        ms1 = timeit(lambda: clf.predict_batch(face), 2000) * 1e3
        ms4 = timeit(lambda: clf.predict_batch(faces4), 500) / 4 * 1e3
        rows.append([f"{model} per face, one pass (batch 1)", f"{ms1:.3f}"])
        rows.append([f"{model} per face, one pass (batch 4)", f"{ms4:.3f}"])
        tta = EmotionClassifier(name, num_threads=1, tta_flip=True)
        ms_tta = timeit(lambda: tta.predict_batch(face), 2000) * 1e3
        rows.append([f"{model} per face, tta_flip (1 face + mirror)", f"{ms_tta:.3f}"])
        rows.append(default_inference_row(name, model, valid_faces))
    print(f"machine: {machine()}; 1 inference thread\n")
    print(table(rows, ["stage", "ms"]))


if __name__ == "__main__":
    main()
