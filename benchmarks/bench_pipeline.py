"""Whole ``edge-fer --video`` process vs a bare ``cv2.VideoCapture`` read loop: before and after, in one run.

``liveportrait_d18.mp4`` (H.264 480x480, one face) is concatenated without
re-encoding (``ffmpeg -f concat -c copy``) to >= 10,000 frames. Each pipeline
run is a separate ``edge-fer --video`` process, timed from start to exit
(start-up included, no ``--annotate``); peak RSS, CPU time and minor page
faults from ``wait4`` (that child's own ``rusage``). Each round runs a
decode-only loop, then every variant at ``--detect-every`` 1 and 5 in an
order rotated per round, so every ratio compares numbers taken within a few
seconds of each other; ``--runs`` rounds give the range (the host may be
shared: say so when reporting).

Variants:

* ``before``: this tree with the files of ``--paths`` as they were at commit
  ``--before`` (default: the pipeline performance work of issue 15's second
  pass, and the commit before it), so only those changes are compared;
* ``after``: this tree;
* ``after, detect thread`` (with ``--detect-thread``): this tree with a
  detect thread at every ``--detect-every`` (``ParallelOptions.inline_detect_every``
  None), to compare the two layouts of the same code;
* ``original`` (with ``--original REV``): the whole tree of ``REV``, e.g.
  ``7e76698``, the last commit with the one-thread pipeline.

Every tree runs from a temporary copy (``git archive``) with the same virtual
environment, through a small wrapper that also records the CPU seconds of the
pipeline's threads (:class:`edge.pipeline.parallel.ParallelRunner`).

    .venv/bin/python benchmarks/bench_pipeline.py [--frames 10000] [--runs 3] [--before REV] [--original REV]
                                                  [--every 1 5] [--detect-thread] [--model M] [--tta-flip]
                                                  [--flip-margin X]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The commit before the second performance pass (reuse of freed frames, one OpenBLAS thread, no detect thread
#: at --detect-every 5 on 2 CPUs).
BEFORE = "61da7ee"
#: The files that pass changed: ``before`` takes them from ``--before``, everything else from this tree.
PERF_PATHS = ("edge/cli/__init__.py", "edge/capture/file.py", "edge/runtime.py", "edge/classify/classifier.py",
              "edge/pipeline/core.py", "edge/pipeline/parallel.py", "edge/pipeline/timing.py", "edge/track/tracker.py")


@dataclass
class Samples:
    """Measurements of one variant at one ``detect_every`` over the rounds."""

    ratio: list[float] = field(default_factory=list)
    fps: list[float] = field(default_factory=list)
    first_s: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    faults: list[float] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    threads: list[dict] = field(default_factory=list)


def child(tree: str, argv: list[str]) -> int:
    """``edge-fer`` of ``tree`` in this process; the pipeline threads' CPU seconds go to ``$EDGE_FER_BENCH_THREADS``.

    Imports nothing but the standard library before ``edge`` (the child's
    memory is that of ``edge-fer``).
    """
    sys.path.insert(0, tree)
    from edge.cli.main import main

    try:
        from edge.pipeline import parallel
    except ImportError:  # the one-thread pipeline of an original tree
        return main(argv)
    run = parallel.ParallelRunner.run

    def timed(self, *args, **kwargs):
        cpu0, frames = time.thread_time(), 0
        for item in run(self, *args, **kwargs):
            frames += item is not None
            yield item
        cpu = {"main loop": time.thread_time() - cpu0, "main total": time.thread_time(), **self.thread_cpu_s}
        Path(os.environ["EDGE_FER_BENCH_THREADS"]).write_text(json.dumps({"frames": frames, "cpu_s": cpu}))

    parallel.ParallelRunner.run = timed  # type: ignore[method-assign]
    if os.environ.get("EDGE_FER_BENCH_DETECT_THREAD"):  # the 'after, detect thread' variant
        parallel.ParallelRunner.__init__.__defaults__ = (parallel.ParallelOptions(inline_detect_every=None),)
    return main(argv)


def decode_fps(path: Path) -> tuple[float, int]:
    """(frames per second, frames) of a bare OpenCV read loop over the clip (OpenCV's default FFmpeg threads)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n, t0 = 0, time.perf_counter()
    while cap.read()[0]:
        n += 1
    return n / (time.perf_counter() - t0), n


@dataclass(frozen=True)
class Run:
    """One ``edge-fer --video`` process: wall s, summary.json, peak RSS MB, CPU s (all threads), minor faults."""

    wall_s: float
    summary: dict
    rss_mb: float
    cpu_s: float
    minflt: int


def run_pipeline(variant: str, tree: Path, clip: Path, out: Path, every: int, extra: list[str]) -> Run:
    """Run ``edge-fer --video`` of ``tree`` once (a child process) and measure it."""
    args = ["--video", str(clip), "--out", str(out), "--no-progress", "--detect-every", str(every), *extra]
    cmd = [sys.executable, __file__, "--child", str(tree), json.dumps(args)]
    env = {**os.environ, "EDGE_FER_BENCH_THREADS": str(out.parent / f"{out.name}.threads.json")}
    if variant.endswith("detect thread"):
        env["EDGE_FER_BENCH_DETECT_THREAD"] = "1"
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w+") as log:
        proc = subprocess.Popen(cmd, cwd=tree, stdout=log, stderr=log, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (peak RSS in KiB)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise SystemExit(f"{variant}: exit {os.waitstatus_to_exitcode(status)}: {log.read().strip()[-500:]}")
    return Run(wall, json.loads((out / "summary.json").read_text()), usage.ru_maxrss / 1024,
               usage.ru_utime + usage.ru_stime, usage.ru_minflt)


def archive(rev: str, dest: Path) -> Path:
    """``git archive`` of ``rev`` unpacked into ``dest`` (models included)."""
    dest.mkdir(parents=True)
    tar = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    return dest


def worktree_copy(dest: Path) -> Path:
    """This working tree's ``edge`` package (committed or not) and models, copied to ``dest``."""
    shutil.copytree(ROOT / "edge", dest / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def before_tree(rev: str, paths: list[str], dest: Path) -> Path:
    """This tree with ``paths`` as they were at ``rev`` (a path absent there is removed)."""
    worktree_copy(dest)
    for path in paths:
        shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True)
        target = dest / path
        if shown.returncode == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(shown.stdout)
        elif target.exists():
            target.unlink()
    return dest


def events_of(path: Path) -> list[dict]:
    """``events.jsonl`` without the fields that differ between runs (wall-clock ``ts``, ``boot_id``, ``seq``)."""
    return [{k: v for k, v in json.loads(line).items() if k not in ("ts", "boot_id", "seq")}
            for line in path.read_text().splitlines()]


def same_outputs(tmp: Path, runs: int, variants: list[str], everies: list[int]) -> str:
    """Whether the ``after`` variants wrote the ``frames.csv`` (byte for byte) and events of ``before``, every round."""
    differ = []
    for r in range(runs):
        for every in everies:
            ref = tmp / f"out-{r}-{variants.index('before')}-{every}"
            for v in (v for v in variants if v.startswith("after")):
                out = tmp / f"out-{r}-{variants.index(v)}-{every}"
                if ((out / "frames.csv").read_bytes() != (ref / "frames.csv").read_bytes()
                        or events_of(out / "events.jsonl") != events_of(ref / "events.jsonl")):
                    differ.append(f"round {r + 1}, {v}, detect every {every}")
    return "after identical to before in every round" if not differ else "DIFFER: " + "; ".join(differ)


def _record(s: Samples, run: Run, n: int, dec: float, threads: Path) -> None:
    s.fps.append(n / run.wall_s)
    s.ratio.append(n / run.wall_s / dec)
    s.first_s.append(run.summary["first_frame_s"])
    s.rss_mb.append(run.rss_mb)
    s.cpu_ms.append(run.cpu_s / n * 1000)
    s.faults.append(run.minflt / n)
    s.stages.append(run.summary["stage_ms_per_frame"])
    if threads.exists():
        t = json.loads(threads.read_text())["cpu_s"]
        rest = run.cpu_s - t["main total"] - t.get("detect", 0.0) - t.get("classify", 0.0)
        s.threads.append({"main thread (loop)": t["main loop"] / n * 1e3,
                          "detect thread": t.get("detect", 0.0) / n * 1e3,
                          "other threads (decode, FFmpeg)": rest / n * 1e3})


def measure(args, clip: Path, tmp: Path, trees: dict[str, Path], extra: list[str]):
    """Every round: decode-only, then each variant at detect every 1 and 5 (order rotated per round)."""
    variants = list(trees)
    samples = {(v, e): Samples() for v in variants for e in args.every}
    decode, n = [], 0
    keys = list(samples)
    for r in range(args.runs):
        dec, n = decode_fps(clip)
        decode.append(dec)
        for variant, every in keys[r % len(keys):] + keys[:r % len(keys)]:
            out = tmp / f"out-{r}-{variants.index(variant)}-{every}"
            run = run_pipeline(variant, trees[variant], clip, out, every, extra)
            assert run.summary["frames"] == n, (variant, run.summary["frames"], n)
            _record(samples[(variant, every)], run, n, dec, out.parent / f"{out.name}.threads.json")
        print(f"round {r + 1}/{args.runs} done", file=sys.stderr)
    return decode, n, samples


def report(args, decode: list[float], n: int, samples: dict) -> None:
    """Print the tables (medians and ranges over the rounds)."""
    from benchmarks.common import machine, span, table

    print(f"machine: {machine()}; clip: {n} frames of liveportrait_d18.mp4 (480x480 H.264); "
          f"model: {args.model or 'default'}; tta_flip: {args.tta_flip}; "
          f"flip_margin: {'each tree sidecar' if args.flip_margin is None else args.flip_margin}; {args.runs} rounds, "
          f"median (min-max); before = this tree with {', '.join(args.paths)} of commit {args.before}"
          + (f"; original = commit {args.original}" if args.original else "") + "\n")
    rows = [["bare cv2.VideoCapture read loop", "-", span(decode, ".0f"), "1.000", "-", "-", "-", "-"]]
    for (variant, every), s in samples.items():
        rows.append([f"edge-fer --video, {variant}", str(every), span(s.fps, ".0f"), span(s.ratio, ".3f"),
                     span(s.first_s, ".2f"), span(s.rss_mb, ".1f"), span(s.cpu_ms, ".3f"), span(s.faults, ".1f")])
    print(table(rows, ["run", "detect every", "fps", "x decode-only (same round)", "start->first classified (s)",
                       "peak RSS (MB)", "CPU ms/frame (all threads, start-up incl.)", "minor page faults/frame"]))
    thread_report(samples)
    names = sorted({k for s in samples.values() for st in s.stages for k in st})
    print("\nper-stage ms per frame, median over rounds (wait = time the main thread waited for its input):\n")
    head = [f"{v}, every {e}" for v, e in samples]
    rows = [[name, *(span([st.get(name, 0.0) for st in s.stages], ".3f") for s in samples.values())] for name in names]
    print(table(rows, ["stage", *head]))


def thread_report(samples: dict) -> None:
    """CPU ms per frame of each thread of the parallel runs, and the fps they allow on 2 free cores.

    On a shared host the wall-clock ratios above depend on what else runs;
    CPU time per thread does not. With two free cores the pipeline cannot go
    faster than its busiest thread nor than half its total CPU per frame.
    """
    from benchmarks.common import span, table

    rows, head = [], []
    for (variant, every), s in samples.items():
        if not s.threads:
            continue
        head = list(s.threads[0])
        per = {k: [t[k] for t in s.threads] for k in head}
        bound = [max(max(t.values()), sum(t.values()) / 2) for t in s.threads]
        rows.append([f"{variant}, every {every}", *(span(per[k], ".3f") for k in head), span(bound, ".3f"),
                     span([1000 / b for b in bound], ".0f")])
    if rows:
        print("\nCPU ms per frame by thread (start-up excluded from the main thread):\n")
        print(table(rows, ["run", *head, "bound ms/frame on 2 free cores", "fps that allows"]))


def main() -> None:
    """Parse the arguments, build the trees, measure, print."""
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2], json.loads(sys.argv[3])))
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3, help="rounds (each: decode-only + every variant)")
    ap.add_argument("--before", default=BEFORE, help="git revision of the 'before' files")
    ap.add_argument("--paths", nargs="+", default=list(PERF_PATHS), help="files taken from --before")
    ap.add_argument("--original", default=None, help="also run the whole tree of this revision (e.g. 7e76698)")
    ap.add_argument("--every", type=int, nargs="+", default=[1, 5], help="--detect-every values to run")
    ap.add_argument("--detect-thread", action="store_true",
                    help="also run this tree with a detect thread at every setting ('after, detect thread')")
    ap.add_argument("--model", default=None, help="emotion .tflite (default: the shipped default)")
    ap.add_argument("--tta-flip", action="store_true", help="classifier.tta_flip: true (config.yaml otherwise)")
    ap.add_argument("--flip-margin", type=float, default=None,
                    help="classifier.flip_margin (default: each tree's model sidecar, as config.yaml)")
    args = ap.parse_args()
    import yaml

    sys.path.insert(0, str(ROOT))
    from benchmarks.common import SHARED, concat_clip

    tmp = Path(tempfile.mkdtemp(prefix="edge-fer-bench-"))
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["classifier"]["tta_flip"] = args.tta_flip
    cfg["classifier"].pop("flip_margin", None)  # the sidecar's; an --original tree's schema may not know the key
    if args.flip_margin is not None:
        cfg["classifier"]["flip_margin"] = args.flip_margin
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    model = ["--model", str(Path(args.model).resolve())] if args.model else []
    extra = ["--config", str(tmp / "config.yaml"), *model]
    trees = {"before": before_tree(args.before, args.paths, tmp / "before"),
             "after": worktree_copy(tmp / "after")}
    if args.detect_thread:
        trees["after, detect thread"] = trees["after"]
    if args.original:
        trees["original"] = archive(args.original, tmp / "original")
    clip = concat_clip(SHARED / "videos" / "liveportrait_d18.mp4", args.frames, tmp / "d18_long.mp4")
    decode, n, samples = measure(args, clip, tmp, trees, extra)
    report(args, decode, n, samples)
    same = same_outputs(tmp, args.runs, list(trees), args.every)
    print(f"\nframes.csv and events.jsonl (without ts, boot_id, seq): {same}")


if __name__ == "__main__":
    main()
