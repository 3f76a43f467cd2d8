"""Per-track emotion timeline PNG from ``frames.csv`` (matplotlib, optional extra ``[plot]``)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from edge.labels import EMOTIONS


def plot_timeline(frames_csv: Path, png: Path) -> None:
    """One row per track: the smoothed current emotion over time, with the raw top score as a line.

    Raises:
        ImportError: with an install hint when matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'edge-fer[plot]'") from exc
    series: dict[int, list[tuple[float, int, list[float]]]] = defaultdict(list)
    with open(frames_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            series[int(row["track_id"])].append(
                (float(row["time_s"]), EMOTIONS.index(row["emotion"]), [float(row[e]) for e in EMOTIONS]))
    n = max(1, len(series))
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.2 * n), squeeze=False, sharex=True)
    for ax, (tid, rows) in zip(axes[:, 0], sorted(series.items())):
        t = [r[0] for r in rows]
        ax.step(t, [r[1] for r in rows], where="post", color="black", lw=2, label="current (smoothed)")
        for k, name in enumerate(EMOTIONS):
            ax.plot(t, [k - 0.4 + 0.8 * r[2][k] for r in rows], lw=0.8, alpha=0.7)
        ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
        ax.set_ylim(-0.6, len(EMOTIONS) - 0.4)
        ax.set_title(f"track {tid}", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
