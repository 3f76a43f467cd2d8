"""Shared helpers for the benchmark scripts (not tests: they print tables)."""

from __future__ import annotations

import platform
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def machine() -> str:
    """One line naming the CPU and core count."""
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def concat_clip(src: Path, min_frames: int, out: Path) -> Path:
    """``src`` repeated (ffmpeg concat demuxer, stream copy, no re-encode) to >= ``min_frames`` frames."""
    import cv2

    if out.exists():
        return out
    n = int(cv2.VideoCapture(str(src)).get(cv2.CAP_PROP_FRAME_COUNT))
    reps = -(-min_frames // n)
    lst = out.with_suffix(".txt")
    lst.write_text("".join(f"file '{src.resolve()}'\n" for _ in range(reps)))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy",
                    str(out)], check=True)
    return out


def table(rows: list[list], header: list[str]) -> str:
    """A Markdown table."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def span(values: list[float], fmt: str) -> str:
    """``median (min-max)`` of the values, or the one value."""
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def timeit(fn, repeat: int) -> float:
    """Mean seconds per call of ``fn`` over ``repeat`` calls (after 10 warm-up calls)."""
    for _ in range(10):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat
