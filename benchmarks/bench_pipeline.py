"""Whole ``edge-fer --video`` process vs a bare ``cv2.VideoCapture`` read loop, in one run.

``liveportrait_d18.mp4`` (H.264 480x480, one face) is concatenated without
re-encoding (``ffmpeg -f concat -c copy``) to >= 10,000 frames. Each
pipeline run is a separate process, timed from start to exit (start-up
included, no --annotate); peak RSS from ``getrusage(RUSAGE_CHILDREN)``.

    .venv/bin/python benchmarks/bench_pipeline.py [--frames 10000] [--model M.tflite] [--tta-flip]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, SHARED, concat_clip, machine, table  # noqa: E402


def decode_fps(path: Path) -> tuple[float, int]:
    cap = cv2.VideoCapture(str(path))
    n, t0 = 0, time.perf_counter()
    while cap.read()[0]:
        n += 1
    return n / (time.perf_counter() - t0), n


def run_pipeline(path: Path, out: Path, detect_every: int, extra: list[str]) -> tuple[float, dict, float]:
    """(wall seconds, summary.json, peak RSS MB of this child); ``extra``: more ``edge-fer`` options."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edge.cli", "--video", str(path), "--out", str(out), "--no-progress",
                    "--detect-every", str(detect_every), *extra],
                   cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far (KiB)
    return wall, json.loads((out / "summary.json").read_text()), max(peak, before) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--model", default=None, help="emotion .tflite (default: the shipped default)")
    ap.add_argument("--tta-flip", action="store_true", help="classifier.tta_flip: true (config.yaml otherwise)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edge-fer-bench-"))
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["classifier"]["tta_flip"] = args.tta_flip
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    extra = ["--config", str(tmp / "config.yaml"), *(["--model", args.model] if args.model else [])]
    clip = concat_clip(SHARED / "videos" / "liveportrait_d18.mp4", args.frames, tmp / "d18_long.mp4")
    dec_fps, n = decode_fps(clip)
    rows, stages = [], {}
    for every in (1, 5):
        wall, summary, rss = run_pipeline(clip, tmp / f"out{every}", every, extra)
        assert summary["frames"] == n
        fps = n / wall
        rows.append([f"edge-fer --video, detect every {every}", f"{fps:.1f}", f"{fps / dec_fps:.3f}",
                     f"{summary['first_frame_s']:.3f}", f"{rss:.0f}"])
        stages[every] = summary["stage_ms_per_frame"]
    rows.insert(0, ["bare cv2.VideoCapture read loop", f"{dec_fps:.1f}", "1.000", "-", "-"])
    print(f"machine: {machine()}; clip: {n} frames of liveportrait_d18.mp4 (480x480 H.264); "
          f"model: {args.model or 'default'}; tta_flip: {args.tta_flip}\n")
    print(table(rows, ["run", "fps", "x decode-only", "start->first frame classified (s)", "peak RSS (MB)"]))
    names = sorted(set(stages[1]) | set(stages[5]))
    print("\nper-stage ms per frame (decode = time the pipeline waited for the decoder thread):\n")
    print(table([[s, f"{stages[1].get(s, 0):.3f}", f"{stages[5].get(s, 0):.3f}"] for s in names],
                ["stage", "detect every 1", "detect every 5"]))


if __name__ == "__main__":
    main()
