"""What makes up the resident memory of ``edge-fer --video``: a step-by-step breakdown, before and after, and settings.

Each measurement runs in a fresh child process that goes through the steps
of ``edge-fer --video`` (imports, models, opening the clip, processing it with
the sequential or the parallel pipeline) and reads ``/proc/self/status`` after
each step: ``VmRSS`` = ``RssAnon`` (heap, thread stacks, arenas, library
data: private) + ``RssFile`` (mapped library code and model files: shared,
clean, reclaimable; how much of a library is counted depends on the kernel's
page cache, e.g. whole large folios mapped at once, so it differs between
hosts and boots for the same code), and ``VmHWM`` (peak RSS so far).

``--before REV`` runs the same steps on this tree with the files of
``bench_pipeline.PERF_PATHS`` as they were at ``REV``, alternating with this
tree, ``--runs`` rounds (median and range). The settings compared are
environment variables read by glibc, OpenBLAS, OpenCV and FFmpeg at start:

* ``MALLOC_ARENA_MAX=2``: glibc gives each thread that allocates its own
  64 MB-reserved heap arena (up to 8 per core); 2 caps them.
* ``OPENBLAS_NUM_THREADS=1``: NumPy's and OpenCV's OpenBLAS start one thread
  per core at import.
* ``OPENCV_FFMPEG_CAPTURE_OPTIONS=threads;1``: FFmpeg's decoder otherwise
  starts one frame thread per core (``FileSource`` already asks for one).
* ``OPENCV_NUM_THREADS`` / ``cv2.setNumThreads``: OpenCV's worker pool.
* ``malloc_trim(0)`` after loading the models and after 100 frames (glibc,
  through ctypes): whether freed heap given back lowers the peak.

    .venv/bin/python benchmarks/bench_memory.py [--clip ../shared/videos/liveportrait_d18.mp4] [--frames 3000]
                                                [--before REV] [--runs 3] [--no-settings]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, os.environ.get("EDGE_FER_BENCH_TREE", str(ROOT)))  # the tree measured (child) or this one

#: Environment settings compared (name -> variables added to the child's environment).
SETTINGS: dict[str, dict[str, str]] = {
    "defaults": {},
    "MALLOC_ARENA_MAX=2": {"MALLOC_ARENA_MAX": "2"},
    "OPENBLAS_NUM_THREADS=1": {"OPENBLAS_NUM_THREADS": "1"},
    "FFmpeg threads;1 + OPENCV_NUM_THREADS=1": {"OPENCV_FFMPEG_CAPTURE_OPTIONS": "threads;1",
                                                "OPENCV_NUM_THREADS": "1"},
    "malloc_trim(0) after load and after 100 frames": {"EDGE_FER_BENCH_TRIM": "1"},
}


def _trim() -> None:
    """``malloc_trim(0)`` when the setting asks for it (glibc only)."""
    if os.environ.get("EDGE_FER_BENCH_TRIM"):
        ctypes.CDLL(None).malloc_trim(0)


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
    cfg = Config()
    detector, classifier = build_detector(cfg), build_classifier(cfg)
    _trim()
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
            _trim()
    source.close()
    steps.append((f"after {n} frames", status_mb()))
    print(json.dumps({"steps": steps, "mappings": mappings_mb()}))


def run_child(clip: Path, mode: str, env: dict[str, str], tree: Path = ROOT) -> list:
    """The steps of one child process (``tree``'s ``edge``): [(step, {VmRSS, RssAnon, RssFile, VmHWM})]."""
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--clip", str(clip)], cwd=tree, check=True,
                         capture_output=True, text=True,
                         env={**os.environ, **env, "EDGE_FER_BENCH_TREE": str(tree)})
    return json.loads(out.stdout.strip().splitlines()[-1])["steps"]


def compare(clip: Path, trees: dict[str, Path], runs: int) -> None:
    """Step by step, every tree in turn, ``runs`` rounds: RSS, anon and file MB (median and range)."""
    from benchmarks.common import span, table

    got: dict[str, list[list]] = {name: [] for name in trees}
    for r in range(runs):
        for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
            got[name].append(run_child(clip, "parallel", {}, trees[name]))
    rows = []
    for i, (step, _) in enumerate(next(iter(got.values()))[0]):
        step = "after all frames" if i == len(next(iter(got.values()))[0]) - 1 else step
        for name, rounds in got.items():
            rows.append([step, name, *(span([rd[i][1][k] for rd in rounds], ".1f")
                                       for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"))])
    print(f"step by step, parallel pipeline, {runs} rounds (median (min-max)), MB:\n")
    print(table(rows, ["step", "tree", "RSS", "anon (private)", "file (shared libraries)", "peak so far"]))


def settings(clip: Path) -> None:
    """Peak and final RSS of this tree under each of :data:`SETTINGS`, sequential and parallel pipeline."""
    from benchmarks.common import table

    rows = []
    for name, env in SETTINGS.items():
        for mode in ("sequential", "parallel"):
            t0 = time.perf_counter()
            end = run_child(clip, mode, env)[-1][1]
            rows.append([name, mode, f"{end['VmHWM']:.1f}", f"{end['VmRSS']:.1f}", f"{end['RssAnon']:.1f}",
                         f"{end['RssFile']:.1f}", f"{time.perf_counter() - t0:.1f}"])
    print("\npeak and final RSS by setting (this tree), MB (wall s includes start-up):\n")
    print(table(rows, ["setting", "pipeline", "peak RSS", "final RSS", "anon", "file", "wall s"]))


def main() -> None:
    """Parse the arguments; the breakdown (before and after with ``--before``), the mappings, the settings."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default=str(ROOT.parent / "shared" / "videos" / "liveportrait_d18.mp4"))
    ap.add_argument("--frames", type=int, default=3000, help="loop the clip (stream copy) to at least this many")
    ap.add_argument("--before", help="also measure this tree with bench_pipeline.PERF_PATHS of this revision")
    ap.add_argument("--runs", type=int, default=3, help="rounds of the step-by-step breakdown")
    ap.add_argument("--no-settings", action="store_true", help="skip the settings table")
    ap.add_argument("--child", choices=["sequential", "parallel"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.clip, args.child)
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_pipeline import PERF_PATHS, before_tree, worktree_copy
    from benchmarks.common import concat_clip, machine, table

    tmp = Path(tempfile.mkdtemp(prefix="edge-fer-mem-"))
    clip = concat_clip(Path(args.clip), args.frames, tmp / "long.mp4")
    print(f"machine: {machine()}; clip: {clip.name} (>= {args.frames} frames of {Path(args.clip).name})"
          + (f"; before = this tree with {', '.join(PERF_PATHS)} of commit {args.before}" if args.before else "")
          + "\n")
    trees = {"after": worktree_copy(tmp / "after")}
    if args.before:
        trees = {"before": before_tree(args.before, list(PERF_PATHS), tmp / "before"), **trees}
    compare(clip, trees, args.runs)
    out = subprocess.run([sys.executable, __file__, "--child", "parallel", "--clip", str(clip)], cwd=ROOT,
                         check=True, capture_output=True, text=True)
    mappings = json.loads(out.stdout.strip().splitlines()[-1])["mappings"]
    print("\nlargest resident mappings at the end (this tree; MB; files are shared, clean library pages):\n")
    print(table([[name, f"{mb:.1f}"] for name, mb in mappings], ["mapping", "resident MB"]))
    if not args.no_settings:
        settings(clip)


if __name__ == "__main__":
    main()
