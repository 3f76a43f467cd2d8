"""Per-stage cost of one frame, split into inference (bare ``invoke()``) and everything around it.

The floor of each model is the runtime's bare ``Interpreter.invoke()`` on an
already filled input tensor: no pre- or post-processing can make a stage
faster than that. Each row is timed in ``--blocks`` blocks of repeated calls
(single thread, 1 inference thread); the table gives the median and the
minimum block mean, in microseconds, so a host shared with other work shows
as a spread between the two.

    .venv/bin/python benchmarks/bench_stages.py [--blocks 7] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED, machine, table  # noqa: E402
from edge.classify import DEFAULT_MODEL, EmotionClassifier  # noqa: E402
from edge.detect import BlazeFace, DetectorOptions  # noqa: E402
from edge.pipeline.core import FramePipeline, PipelineOptions  # noqa: E402
from edge.preprocess import face_grey, preprocess_face  # noqa: E402
from edge.types import Frame  # noqa: E402


class Timer:
    """Times callables in blocks; collects table rows."""

    def __init__(self, blocks: int, scale: float) -> None:
        self.blocks, self.scale, self.rows = blocks, scale, []

    def us(self, fn: Callable[[], object], calls: int) -> tuple[float, float]:
        """(median, min) over blocks of the mean microseconds per call (after 20 warm-up calls)."""
        calls = max(5, int(calls * self.scale))
        for _ in range(20):
            fn()
        means = []
        for _ in range(self.blocks):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            means.append((time.perf_counter() - t0) / calls * 1e6)
        return statistics.median(means), min(means)

    def row(self, stage: str, part: str, fn: Callable[[], object], calls: int, per: int = 1) -> float:
        """Time ``fn`` and add a row (``per``: divide by this many faces); returns the median."""
        med, low = self.us(fn, calls)
        self.rows.append([stage, part, f"{med / per:.1f}", f"{low / per:.1f}"])
        return med / per


def letterbox_before(det: BlazeFace, image: np.ndarray) -> None:
    """The letterbox as it was before (canvas cleared every frame, two NumPy passes for [-1, 1]), for comparison."""
    h, w = image.shape[:2]
    scale = det.size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    ox, oy = (det.size - nw) // 2, (det.size - nh) // 2
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    det._canvas.fill(0)
    det._canvas[oy:oy + nh, ox:ox + nw] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    np.multiply(det._canvas, 1.0 / 127.5, out=det._tensor[0], casting="unsafe")
    det._tensor -= 1.0


def detector_rows(t: Timer, frame: np.ndarray) -> None:
    """BlazeFace short/full: letterbox + tensor fill, bare invoke, outputs + decode + NMS, whole call."""
    for variant in ("short", "full"):
        det = BlazeFace(DetectorOptions(variant=variant))
        name = f"BlazeFace {variant} ({det.size}x{det.size}), 480x480 frame"
        t.row(name, "letterbox + tensor fill", lambda: det._letterbox(frame), 500)
        t.row(name, "  (before: letterbox + tensor fill)", lambda: letterbox_before(det, frame), 500)
        det.interpreter.set_tensor(det._input_index, det._tensor)
        t.row(name, "set_tensor", lambda: det.interpreter.set_tensor(det._input_index, det._tensor), 2000)
        t.row(name, "bare invoke() (floor)", det.interpreter.invoke, 300)
        scale, ox, oy = det._letterbox(frame)

        def post() -> object:
            logits = det.interpreter.tensor(det._scores_index)()[0, :, 0]
            keep = np.flatnonzero(logits > det._min_logit)
            kept = logits[keep]
            del logits
            raw = det.interpreter.tensor(det._boxes_index)()[0, keep]
            return det._decode(raw, det.anchors[keep], 1.0 / (1.0 + np.exp(-np.clip(kept, -100, 100))), scale, ox, oy)

        t.row(name, "outputs + decode + weighted NMS", post, 1000)
        t.row(name, "  (before: outputs copied by get_tensor)",
              lambda: (det.interpreter.get_tensor(det._scores_index), det.interpreter.get_tensor(det._boxes_index)),
              1000)
        t.row(name, "detect() whole", lambda: det.detect(frame), 300)


def classifier_rows(t: Timer, frame: np.ndarray, det) -> None:
    """Crops (uint8 runtime path vs float path), quantisation, bare invoke per batch, whole classify."""
    clf = EmotionClassifier(DEFAULT_MODEL)
    bbox, eyes, m = det.bbox.as_tuple(), det.eyes, clf.margin
    t.row("crop per face (~250 px face)", "face_grey, align=False", lambda: face_grey(frame, bbox, margin=m), 2000)
    t.row("crop per face (~250 px face)", "face_grey, align=True", lambda: face_grey(frame, bbox, margin=m, eyes=eyes),
          2000)
    t.row("crop per face (~250 px face)", "preprocess_face (float, training path), align=True",
          lambda: preprocess_face(frame, bbox, margin=m, eyes=eyes), 2000)
    for n in (1, 4):
        dets = [det] * n
        grey = clf.grey_batch(frame, dets, True)
        floats = np.stack([clf.crop(frame, d, True) for d in dets])
        name = f"{DEFAULT_MODEL.name}, batch {n} (per face)"
        t.row(name, "grey_batch (runtime crops)", lambda: clf.grey_batch(frame, dets, True), 1000, n)
        t.row(name, "LUT quantise (runtime)", lambda: cv2.LUT(grey.reshape(-1, 48), clf._grey_lut), 2000, n)
        t.row(name, "float quantise (before)", lambda: clf._quantise(floats), 2000, n)
        runner = clf._runner(n)
        runner.interpreter.set_tensor(runner.inp["index"], clf._quantise(floats)[..., None])
        t.row(name, "bare invoke() (floor)", runner.interpreter.invoke, 500, n)
        t.row(name, "predict_grey whole (runtime)", lambda: clf.predict_grey(grey), 500, n)
        t.row(name, "predict_batch whole (float path)", lambda: clf.predict_batch(floats), 500, n)


def pipeline_rows(t: Timer, frame: np.ndarray) -> None:
    """Whole FramePipeline.process per frame (one face), detect every 1 and 5, and its stage timer's split."""
    det, clf = BlazeFace(), EmotionClassifier()
    for every in (1, 5):
        pipe = FramePipeline(det, clf, options=PipelineOptions(detect_every=every))
        counter = iter(range(10**9))
        name = f"FramePipeline.process, detect every {every}"
        t.row(name, "whole frame (1 face)", lambda: pipe.process(Frame(next(counter), next(counter) / 60, frame)), 300)
        for stage, ms in sorted(pipe.timer.mean_ms(per=pipe._planned).items()):
            t.rows.append([name, f"  stage timer: {stage} (mean per frame)", f"{ms * 1000:.1f}", "-"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the calls per block (0.2 for a quick look)")
    args = ap.parse_args()
    cap = cv2.VideoCapture(str(SHARED / "videos" / "liveportrait_d18.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    frame = cap.read()[1]
    t = Timer(args.blocks, args.scale)
    detector_rows(t, frame)
    classifier_rows(t, frame, BlazeFace().detect(frame)[0])
    pipeline_rows(t, frame)
    print(f"machine: {machine()}; OpenCV {cv2.__version__}, NumPy {np.__version__}; 1 inference thread; "
          f"{args.blocks} blocks: median and min of the block means (us)\n")
    print(table(t.rows, ["stage", "part", "us median", "us min"]))


if __name__ == "__main__":
    main()
