"""What makes up the resident memory of ``edge-fer --video``: a step-by-step breakdown, and its peak under settings.

Each configuration runs in a fresh child process that goes through the steps
of ``edge-fer --video`` (imports, models, opening the clip, processing it with
the sequential or the parallel pipeline) and reads ``/proc/self/status`` after
each step: ``VmRSS`` = ``RssAnon`` (heap, thread stacks, arenas: private) +
``RssFile`` (mapped library code and model files: shared, reclaimable),
and ``VmHWM`` (peak RSS so far). The settings compared are environment
variables read by glibc, OpenCV and FFmpeg at start:

* ``MALLOC_ARENA_MAX=2``: glibc gives each thread that allocates its own
  64 MB-reserved heap arena (up to 8 per core); 2 caps them.
* ``OPENCV_FFMPEG_CAPTURE_OPTIONS=threads;1``: FFmpeg's decoder otherwise
  starts one frame thread per core, each holding reference frames.
* ``OPENCV_NUM_THREADS`` / ``cv2.setNumThreads``: OpenCV's worker pool.

    .venv/bin/python benchmarks/bench_memory.py [--clip ../shared/videos/liveportrait_d18.mp4] [--frames 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, SHARED, concat_clip, machine, table  # noqa: E402

#: Environment settings compared (name -> variables added to the child's environment).
SETTINGS: dict[str, dict[str, str]] = {
    "defaults": {},
    "MALLOC_ARENA_MAX=2": {"MALLOC_ARENA_MAX": "2"},
    "FFmpeg threads;1": {"OPENCV_FFMPEG_CAPTURE_OPTIONS": "threads;1"},
    "both + OPENCV_NUM_THREADS=1": {"MALLOC_ARENA_MAX": "2", "OPENCV_FFMPEG_CAPTURE_OPTIONS": "threads;1",
                                    "OPENCV_NUM_THREADS": "1"},
    "proposed FileSource (queue 2, 1 decoder thread)": {"EDGE_FER_BENCH_PROPOSED_SOURCE": "1"},
}


def _proposed_source() -> None:
    """The change proposed for edge/capture/file.py, applied in this child process only.

    ``FileSource(queue_size=2)`` (the parallel runner already buffers ahead)
    and ``cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])``:
    one FFmpeg decoding thread instead of one per core plus one (the
    ``threads;1`` capture option above is not honoured by OpenCV's FFmpeg
    back-end for this property; the open parameter is).
    """
    import cv2

    from edge.capture import file as capture_file

    def _open(path: Path) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        if not cap.isOpened():
            raise capture_file.SourceError(f"{path}: not a readable video")
        return cap

    init = capture_file.FileSource.__init__

    def __init__(self, path, name="video", queue_size=8, loop=False):  # noqa: N807 - patched constructor
        init(self, path, name, 2, loop)

    capture_file._open = _open
    capture_file.FileSource.__init__ = __init__


def status_mb() -> dict[str, float]:
    """VmRSS, RssAnon, RssFile, VmHWM of this process in MB (``/proc/self/status``, Linux)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def mappings_mb(top: int = 12) -> list[tuple[str, float]]:
    """Resident MB per mapped file (``[anon]``/``[heap]`` for private memory), largest first (``/proc/self/smaps``)."""
    import re
    from collections import Counter

    resident: Counter = Counter()
    name = "[anon]"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split()
            name = Path(parts[5]).name if len(parts) > 5 and parts[5].startswith("/") else (
                parts[5] if len(parts) > 5 else "[anon]")
        elif line.startswith("Rss:"):
            resident[name] += int(line.split()[1]) / 1024
    return resident.most_common(top)


def child(clip: str, mode: str) -> None:
    """The steps of ``edge-fer --video`` in this process; prints one JSON list of (step, status)."""
    steps = [("python", status_mb())]
    import cv2  # noqa: F401
    import numpy  # noqa: F401

    steps.append(("import numpy, cv2", status_mb()))
    from edge.cli.main import build_parser  # noqa: F401
    from edge.config import Config
    from edge.pipeline.factory import build_classifier, build_detector, build_pipeline
    from edge.pipeline.parallel import ParallelRunner

    steps.append(("import edge (cli, config, pipeline, litert)", status_mb()))
    if os.environ.get("EDGE_FER_BENCH_PROPOSED_SOURCE"):
        _proposed_source()
    cfg = Config()
    detector, classifier = build_detector(cfg), build_classifier(cfg)
    steps.append(("load BlazeFace + emotion model", status_mb()))
    from edge.capture import FileSource

    source = FileSource(clip)
    steps.append(("open the clip (FFmpeg)", status_mb()))
    pipe = build_pipeline(cfg, "video", detector, classifier)
    frames = ((f, pipe.process(f)) for f in source) if mode == "sequential" else (
        (p.frame, p.result) for p in ParallelRunner(pipe).run(source))
    n = 0
    for n, _ in enumerate(frames, 1):
        if n == 100:
            steps.append(("after 100 frames", status_mb()))
    source.close()
    steps.append((f"after {n} frames", status_mb()))
    print(json.dumps({"steps": steps, "mappings": mappings_mb()}))


def run_child(clip: Path, mode: str, env: dict[str, str]) -> list:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--clip", str(clip)], cwd=ROOT, check=True,
                         capture_output=True, text=True, env={**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])["steps"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default=str(SHARED / "videos" / "liveportrait_d18.mp4"))
    ap.add_argument("--frames", type=int, default=3000, help="loop the clip (stream copy) to at least this many")
    ap.add_argument("--child", choices=["sequential", "parallel"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.clip, args.child)
        return
    clip = concat_clip(Path(args.clip), args.frames, Path(tempfile.mkdtemp(prefix="edge-fer-mem-")) / "long.mp4")
    print(f"machine: {machine()}; clip: {clip.name} (>= {args.frames} frames of {Path(args.clip).name})\n")
    out = subprocess.run([sys.executable, __file__, "--child", "parallel", "--clip", str(clip)], cwd=ROOT,
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    steps = result["steps"]
    rows, prev = [], 0.0
    for name, st in steps:
        rows.append([name, f"{st['VmRSS']:.1f}", f"{st['VmRSS'] - prev:+.1f}", f"{st['RssAnon']:.1f}",
                     f"{st['RssFile']:.1f}", f"{st['VmHWM']:.1f}"])
        prev = st["VmRSS"]
    print("step by step (parallel pipeline, default settings), MB:\n")
    print(table(rows, ["step", "RSS", "delta", "anon", "file", "peak so far"]))
    print("\nlargest resident mappings at the end (MB; files are shared, clean library pages):\n")
    print(table([[name, f"{mb:.1f}"] for name, mb in result["mappings"]], ["mapping", "resident MB"]))
    rows = []
    for name, env in SETTINGS.items():
        for mode in ("sequential", "parallel"):
            t0 = time.perf_counter()
            end = run_child(clip, mode, env)[-1][1]
            rows.append([name, mode, f"{end['VmHWM']:.1f}", f"{end['VmRSS']:.1f}", f"{end['RssAnon']:.1f}",
                         f"{end['RssFile']:.1f}", f"{time.perf_counter() - t0:.1f}"])
    print("\npeak and final RSS by setting, MB (wall s includes start-up):\n")
    print(table(rows, ["setting", "pipeline", "peak RSS", "final RSS", "anon", "file", "wall s"]))


if __name__ == "__main__":
    main()
