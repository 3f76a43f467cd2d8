"""Whole ``edge-fer --video`` process vs a bare ``cv2.VideoCapture`` read loop: before and after, in one run.

``liveportrait_d18.mp4`` (H.264 480x480, one face) is concatenated without
re-encoding (``ffmpeg -f concat -c copy``) to >= 10,000 frames. Each pipeline
run is a separate process, timed from start to exit (start-up included, no
``--annotate``); peak RSS from ``wait4`` (that child's ``ru_maxrss``).
Runs of one round follow each other (a decode-only loop first), so every
ratio compares numbers taken within seconds of each other; ``--runs`` rounds
give the range (the host may be shared: say so when reporting).

Variants (the ``before`` tree is ``git archive`` of ``--before``, run from a
temporary folder with the same virtual environment):

* ``before``: ``edge-fer --video`` of commit ``--before`` (sequential pipeline).
* ``after, sequential``: ``edge-fer --video`` of this tree, pipeline in one thread.
* ``after, parallel``: the same CLI with :class:`edge.pipeline.parallel.ParallelRunner`
  in :class:`edge.pipeline.video.VideoJob` (detect thread), as video.py uses it
  once wired (until then this script plugs it in, in the child process).
* ``after, parallel + FileSource change``: also the change proposed for
  ``edge/capture/file.py`` (decoder queue of 2, one FFmpeg decoding thread),
  applied in the child (``bench_memory._proposed_source``).

    .venv/bin/python benchmarks/bench_pipeline.py [--frames 10000] [--runs 3] [--before 7e76698]
                                                  [--model M] [--tta-flip]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, SHARED, concat_clip, machine, table  # noqa: E402

#: The last commit before issue 15's pipeline work (sequential pipeline, float preprocessing path).
BEFORE = "7e76698"
VARIANTS = ("before", "after, sequential", "after, parallel", "after, parallel + FileSource change")


@dataclass
class Samples:
    """Measurements of one variant at one ``detect_every`` over the rounds."""

    ratio: list[float] = field(default_factory=list)
    fps: list[float] = field(default_factory=list)
    first_s: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    threads: list[dict] = field(default_factory=list)


def decode_fps(path: Path) -> tuple[float, int]:
    """(frames per second, frames) of a bare OpenCV read loop over the clip."""
    cap = cv2.VideoCapture(str(path))
    n, t0 = 0, time.perf_counter()
    while cap.read()[0]:
        n += 1
    return n / (time.perf_counter() - t0), n


def child_parallel(argv: list[str]) -> int:
    """``edge-fer`` with ``VideoJob`` fed by a ParallelRunner (unless video.py already uses one)."""
    import inspect

    from edge.cli.main import main
    from edge.pipeline import video

    if "ParallelRunner" not in inspect.getsource(video):
        init = video.VideoJob.__init__

        def __init__(self, *args, **kwargs):  # noqa: N807 - patched constructor
            init(self, *args, **kwargs)
            feed = _RunnerFeed(self.source, self.pipeline)
            self.source, self.pipeline = feed, feed

        video.VideoJob.__init__ = __init__  # type: ignore[method-assign]
    if os.environ.get("EDGE_FER_BENCH_PROPOSED_SOURCE"):
        from benchmarks.bench_memory import _proposed_source

        _proposed_source()
    return main(argv)


class _RunnerFeed:
    """Stands in for a VideoJob's ``source`` and ``pipeline``: whatever VideoJob does with them stays the same.

    Iterating it yields the frames out of a :class:`ParallelRunner` over the
    real source; ``process(frame)`` then returns the runner's result for that
    frame. Every other attribute is the real source's or pipeline's. This is
    the effect of the change proposed for edge/pipeline/video.py
    (``for item in ParallelRunner(self.pipeline).run(self.source)``).
    """

    def __init__(self, source, pipeline) -> None:
        from edge.pipeline.parallel import ParallelRunner

        self._source, self._pipeline, self._pending = source, pipeline, None
        self.runner = ParallelRunner(pipeline)
        self._cpu0 = 0.0

    def __iter__(self):
        self._cpu0 = time.thread_time()
        frames = 0
        for item in self.runner.run(self._source):
            self._pending = item
            frames += 1
            yield item.frame
        threads = {"main loop": time.thread_time() - self._cpu0, "main total": time.thread_time(),
                   **self.runner.thread_cpu_s}
        Path(os.environ["EDGE_FER_BENCH_THREADS"]).write_text(json.dumps({"frames": frames, "cpu_s": threads}))

    def process(self, frame):
        assert self._pending is not None and self._pending.frame is frame
        return self._pending.result

    def __getattr__(self, name: str):
        source = self.__dict__["_source"]
        return getattr(source, name) if hasattr(source, name) else getattr(self.__dict__["_pipeline"], name)


def run_pipeline(variant: str, tree: Path, clip: Path, out: Path, every: int,
                 extra: list[str]) -> tuple[float, dict, float, float]:
    """(wall s, summary.json, peak RSS MB, CPU s (user + system, all threads)) of one ``edge-fer --video`` process."""
    args = ["--video", str(clip), "--out", str(out), "--no-progress", "--detect-every", str(every), *extra]
    if variant.startswith("after, parallel"):
        cmd = [sys.executable, __file__, "--child-parallel", json.dumps(args)]
    else:
        cmd = [sys.executable, "-m", "edge.cli", *args]
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w+") as log:
        env = {**os.environ, "EDGE_FER_BENCH_THREADS": str(out.parent / f"{out.name}.threads.json")}
        if variant.endswith("FileSource change"):
            env["EDGE_FER_BENCH_PROPOSED_SOURCE"] = "1"
        proc = subprocess.Popen(cmd, cwd=tree, stdout=log, stderr=log, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (peak RSS in KiB)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{variant}: exit {proc.returncode}: {log.read().strip()[-500:]}")
    peak = usage.ru_maxrss
    return wall, json.loads((out / "summary.json").read_text()), peak / 1024, usage.ru_utime + usage.ru_stime


def before_tree(rev: str, tmp: Path) -> Path:
    """``git archive`` of ``rev`` unpacked under ``tmp`` (models included)."""
    tree = tmp / f"before-{rev}"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def events_of(path: Path) -> list[dict]:
    """``events.jsonl`` without the fields that differ between runs (wall-clock ``ts``, ``boot_id``, ``seq``)."""
    return [{k: v for k, v in json.loads(line).items() if k not in ("ts", "boot_id", "seq")}
            for line in path.read_text().splitlines()]


def same_outputs(tmp: Path, runs: int) -> str:
    """Whether every run wrote the ``frames.csv`` (byte for byte) and events of the ``before`` run of its round."""
    differ = []
    for r in range(runs):
        for every in (1, 5):
            ref = tmp / f"out-{r}-0-{every}"
            for v, variant in enumerate(VARIANTS[1:], 1):
                out = tmp / f"out-{r}-{v}-{every}"
                if ((out / "frames.csv").read_bytes() != (ref / "frames.csv").read_bytes()
                        or events_of(out / "events.jsonl") != events_of(ref / "events.jsonl")):
                    differ.append(f"round {r + 1}, {variant}, detect every {every}")
    return "identical to 'before' in every run" if not differ else "DIFFER: " + "; ".join(differ)


def span(values: list[float], fmt: str) -> str:
    """``median (min-max)`` of the values, or the one value."""
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def measure(args, clip: Path, tmp: Path, trees: dict[str, Path], extra: list[str]):
    """Every round: decode-only, then each variant at detect every 1 and 5 (order rotated per round)."""
    samples = {(v, e): Samples() for v in VARIANTS for e in (1, 5)}
    decode, n = [], 0
    keys = list(samples)
    for r in range(args.runs):
        dec, n = decode_fps(clip)
        decode.append(dec)
        for variant, every in keys[r % len(keys):] + keys[:r % len(keys)]:
            out = tmp / f"out-{r}-{VARIANTS.index(variant)}-{every}"
            wall, summary, rss, cpu = run_pipeline(variant, trees[variant], clip, out, every, extra)
            assert summary["frames"] == n, (variant, summary["frames"], n)
            s = samples[(variant, every)]
            s.fps.append(n / wall)
            s.ratio.append(n / wall / dec)
            s.first_s.append(summary["first_frame_s"])
            s.rss_mb.append(rss)
            s.cpu_ms.append(cpu / n * 1000)
            threads = out.parent / f"{out.name}.threads.json"
            if variant.startswith("after, parallel") and threads.exists():
                t = json.loads(threads.read_text())["cpu_s"]
                rest = cpu - t["main total"] - t.get("detect", 0.0) - t.get("classify", 0.0)
                s.threads.append({"main thread (loop)": t["main loop"] / n * 1e3,
                                  "detect thread": t.get("detect", 0.0) / n * 1e3,
                                  "other threads (decode, FFmpeg)": rest / n * 1e3})
            s.stages.append(summary["stage_ms_per_frame"])
        print(f"round {r + 1}/{args.runs} done", file=sys.stderr)
    return decode, n, samples


def report(args, decode: list[float], n: int, samples: dict) -> None:
    print(f"machine: {machine()}; clip: {n} frames of liveportrait_d18.mp4 (480x480 H.264); "
          f"model: {args.model or 'default'}; tta_flip: {args.tta_flip}; {args.runs} rounds, "
          f"median (min-max); before = commit {args.before}\n")
    rows = [["bare cv2.VideoCapture read loop", "-", span(decode, ".0f"), "1.000", "-", "-", "-"]]
    for (variant, every), s in samples.items():
        rows.append([f"edge-fer --video, {variant}", str(every), span(s.fps, ".0f"), span(s.ratio, ".3f"),
                     span(s.first_s, ".2f"), span(s.rss_mb, ".0f"), span(s.cpu_ms, ".2f")])
    print(table(rows, ["run", "detect every", "fps", "x decode-only (same round)", "start->first classified (s)",
                       "peak RSS (MB)", "CPU ms/frame (all threads, start-up incl.)"]))
    thread_report(samples)
    names = sorted({k for s in samples.values() for st in s.stages for k in st})
    print("\nper-stage ms per frame, median over rounds (decode = time the main thread waited for its input):\n")
    head = [f"{v}, every {e}" for v, e in samples]
    rows = [[name, *(span([st.get(name, 0.0) for st in s.stages], ".3f") for s in samples.values())] for name in names]
    print(table(rows, ["stage", *head]))


def thread_report(samples: dict) -> None:
    """CPU ms per frame of each thread of the parallel runs, and the fps they allow on 2 free cores.

    On a shared host the wall-clock ratios above depend on what else runs;
    CPU time per thread does not. With two free cores the pipeline cannot go
    faster than its busiest thread nor than half its total CPU per frame.
    """
    rows = []
    for (variant, every), s in samples.items():
        if not s.threads:
            continue
        names = list(s.threads[0])
        per = {k: [t[k] for t in s.threads] for k in names}
        bound = [max(max(t.values()), sum(t.values()) / 2) for t in s.threads]
        rows.append([f"{variant}, every {every}", *(span(per[k], ".3f") for k in names), span(bound, ".3f"),
                     span([1000 / b for b in bound], ".0f")])
        head = names
    if rows:
        print("\nCPU ms per frame by thread (parallel runs; start-up excluded from the main thread):\n")
        print(table(rows, ["run", *head, "bound ms/frame on 2 free cores", "fps that allows"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3, help="rounds (each: decode-only + every variant)")
    ap.add_argument("--before", default=BEFORE, help="git revision of the 'before' rows")
    ap.add_argument("--model", default=None, help="emotion .tflite (default: the shipped default)")
    ap.add_argument("--tta-flip", action="store_true", help="classifier.tta_flip: true (config.yaml otherwise)")
    ap.add_argument("--child-parallel", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_parallel:
        sys.exit(child_parallel(json.loads(args.child_parallel)))
    tmp = Path(tempfile.mkdtemp(prefix="edge-fer-bench-"))
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["classifier"]["tta_flip"] = args.tta_flip
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    model = ["--model", str(Path(args.model).resolve())] if args.model else []
    extra = ["--config", str(tmp / "config.yaml"), *model]
    trees = {variant: ROOT for variant in VARIANTS} | {"before": before_tree(args.before, tmp)}
    clip = concat_clip(SHARED / "videos" / "liveportrait_d18.mp4", args.frames, tmp / "d18_long.mp4")
    decode, n, samples = measure(args, clip, tmp, trees, extra)
    report(args, decode, n, samples)
    print(f"\nframes.csv and events.jsonl (without ts, boot_id, seq): {same_outputs(tmp, args.runs)}")


if __name__ == "__main__":
    main()
