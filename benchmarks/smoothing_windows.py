"""Smoothing defaults measured on the labelled windows of the shared clips (not a test: prints a table).

Each model runs once over every clip of ``clip_windows.csv`` (detection and
classification of every frame, the real pipeline); the raw scores of the
clip's main track are then replayed through :class:`edge.smooth.EmotionSmoother`
for every smoothing setting of a small grid. Per setting:

* ``max_chg``: most ``emotion_changed`` events inside one labelled window
  (target: at most 1);
* ``match``: fraction of the windows' frames whose smoothed emotion is the label;
* ``onsets``: labelled onsets whose emotion became current before the window
  ended, of all labelled onsets;
* ``delay_s``: median over those onsets of (first frame at or after the
  previous window's end whose current emotion is the label) - onset;
* ``step_s``: delay of a clean, full-confidence change (scores jump from one
  label to another): ``tau_s * ln(2 / (1 - switch_margin)) + min_hold_s``.

Usage: python benchmarks/smoothing_windows.py [--models ferplus fer2013] [--top 12]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, machine  # noqa: E402
from edge.classify import EmotionClassifier  # noqa: E402
from edge.detect import BlazeFace, DetectorOptions  # noqa: E402
from edge.pipeline.core import FramePipeline  # noqa: E402
from edge.smooth import EmotionSmoother, SmoothingOptions  # noqa: E402
from edge.types import EmotionScores, Frame  # noqa: E402

WINDOWS_CSV = Path(__file__).with_name("clip_windows.csv")
GRID = {"tau_s": (0.2, 0.3, 0.5, 0.8), "min_hold_s": (0.3, 0.4, 0.5, 0.7, 1.0), "switch_margin": (0.0, 0.1, 0.2, 0.3)}


@dataclass(frozen=True)
class Window:
    """A labelled expression window of a clip (seconds)."""

    file: str
    start_s: float
    end_s: float
    emotion: str
    onset: bool


@dataclass(frozen=True)
class Sample:
    """Raw scores of the clip's main track at one frame."""

    time_s: float
    probs: np.ndarray


def read_windows(path: Path = WINDOWS_CSV) -> list[Window]:
    """The labelled windows (comment lines start with ``#``)."""
    rows = csv.DictReader(line for line in path.read_text().splitlines() if not line.startswith("#"))
    return [Window(r["file"], float(r["start_s"]), float(r["end_s"]), r["emotion"], r["onset"] == "1") for r in rows]


def main_track_samples(clip: Path, model: str) -> tuple[list[Sample], tuple[str, ...]]:
    """Raw scores of the longest track of ``clip`` under ``model`` (every frame detected)."""
    classifier = EmotionClassifier(model)
    pipeline = FramePipeline(BlazeFace(DetectorOptions()), classifier)
    cap = cv2.VideoCapture(str(clip))
    per_track: dict[int, list[Sample]] = {}
    index = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        time_s = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        result = pipeline.process(Frame(index=index, time_s=time_s, image=image))
        for face in result.faces:
            per_track.setdefault(face.track_id, []).append(Sample(time_s, face.scores.probs.copy()))
        index += 1
    longest = max(per_track.values(), key=len) if per_track else []
    return longest, classifier.labels


def replay(samples: list[Sample], labels: tuple[str, ...], options: SmoothingOptions) -> list[tuple[float, str, bool]]:
    """(time_s, current emotion, changed on this frame) for every sample."""
    smoother = EmotionSmoother(options, labels)
    out = []
    for s in samples:
        state, previous = smoother.update(1, EmotionScores(s.probs, labels), s.time_s)
        out.append((s.time_s, state.current, previous is not None))
    return out


def score(trace: list[tuple[float, str, bool]], windows: list[Window]) -> tuple[int, list[float], list[float]]:
    """(most changes in one window, per-window match fractions, onset delays) of one clip."""
    max_changes, matches, delays = 0, [], []
    previous_end = 0.0
    for w in sorted(windows, key=lambda w: w.start_s):
        inside = [(t, e, c) for t, e, c in trace if w.start_s <= t <= w.end_s]
        max_changes = max(max_changes, sum(c for _, _, c in inside))
        if inside:
            matches.append(sum(e == w.emotion for _, e, _ in inside) / len(inside))
        if w.onset:
            hit = next((t for t, e, _ in trace if min(previous_end, w.start_s) <= t <= w.end_s and e == w.emotion),
                       None)
            delays.append((hit - w.start_s) if hit is not None else float("inf"))
        previous_end = w.end_s
    return max_changes, matches, delays


def main(argv: list[str] | None = None) -> None:
    """Print, per model, the grid sorted by the selection rule."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["ferplus", "fer2013"])
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args(argv)
    windows = read_windows()
    clips = sorted({w.file for w in windows})
    print(f"# {machine()}")
    for model in args.models:
        traces = {clip: main_track_samples(SHARED / "videos" / clip, model) for clip in clips}
        rows = []
        for tau, hold, margin in itertools.product(*GRID.values()):
            opts = SmoothingOptions(tau_s=tau, min_hold_s=hold, switch_margin=margin)
            max_chg, matches, delays = 0, [], []
            for clip, (samples, labels) in traces.items():
                c, m, d = score(replay(samples, labels, opts), [w for w in windows if w.file == clip])
                max_chg, matches, delays = max(max_chg, c), matches + m, delays + d
            reached = [d for d in delays if d != float("inf")]
            delay = statistics.median(reached) if reached else float("inf")
            step = tau * math.log(2 / (1 - margin)) + hold
            rows.append((max_chg, -float(np.mean(matches)), delay, len(reached), len(delays), step, tau, hold, margin))
        rows.sort(key=lambda r: (r[0] > 1, -r[3], max(r[2], r[5]) > 0.7, r[1], r[5]))
        print(f"\nmodel {model}  (rule: max_chg <= 1, most onsets reached, delay_s and step_s <= 0.7, highest match)")
        print(f"{'tau_s':>6}{'hold_s':>7}{'margin':>7}{'max_chg':>8}{'match':>7}{'onsets':>7}{'delay_s':>8}{'step_s':>7}")
        for max_chg, neg_match, delay, hit, n, step, tau, hold, margin in rows[:args.top]:
            print(f"{tau:>6.1f}{hold:>7.1f}{margin:>7.2f}{max_chg:>8d}{-neg_match:>7.3f}{f'{hit}/{n}':>7}{delay:>8.2f}"
                  f"{step:>7.2f}")


if __name__ == "__main__":
    main()
