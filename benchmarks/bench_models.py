"""Per-stage model costs at 1 thread: BlazeFace (with pre/post), crop+preprocess, every shipped int8 classifier.

.venv/bin/python benchmarks/bench_models.py
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED, machine, table, timeit  # noqa: E402
from edge.classify import SHIPPED_MODELS, EmotionClassifier, resolve_model  # noqa: E402
from edge.detect import BlazeFace, DetectorOptions  # noqa: E402


def main() -> None:
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
    faces4 = np.repeat(face, 4, axis=0)
    for name in SHIPPED_MODELS:
        if not resolve_model(name).is_file():
            continue
        model = f"{name} ({resolve_model(name).name})"
        clf = EmotionClassifier(name, num_threads=1)
        ms1 = timeit(lambda: clf.predict_batch(face), 2000) * 1e3
        ms4 = timeit(lambda: clf.predict_batch(faces4), 500) / 4 * 1e3
        rows.append([f"{model} per face (batch 1)", f"{ms1:.3f}"])
        rows.append([f"{model} per face (batch 4)", f"{ms4:.3f}"])
        tta = EmotionClassifier(name, num_threads=1, tta_flip=True)
        ms_tta = timeit(lambda: tta.predict_batch(face), 2000) * 1e3
        rows.append([f"{model} per face, tta_flip (1 face + mirror)", f"{ms_tta:.3f}"])
    print(f"machine: {machine()}; 1 inference thread\n")
    print(table(rows, ["stage", "ms"]))


if __name__ == "__main__":
    main()
