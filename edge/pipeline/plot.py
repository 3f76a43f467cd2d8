"""Per-track emotion timeline PNG from ``frames.csv`` (matplotlib, optional extra ``[plot]``)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from edge.runtime import MissingDependency

#: The command that installs matplotlib into this repository's virtual environment.
PLOT_INSTALL = ".venv/bin/pip install -e '.[plot]'"
_COLOURS = {"angry": "#d62728", "disgust": "#2ca02c", "fear": "#9467bd", "happy": "#ff9f0e",
            "neutral": "#7f7f7f", "sad": "#1f77b4", "surprise": "#e377c2", "contempt": "#8c564b"}


def require_matplotlib():
    """``matplotlib.pyplot`` on the Agg backend.

    Raises:
        MissingDependency: matplotlib is not installed (message gives the install command).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependency(f"--plot needs matplotlib: {PLOT_INSTALL}") from None
    return plt


def _read(frames_csv: Path) -> tuple[list[str], dict[int, list[tuple[float, str, list[float]]]]]:
    """Labels (score columns) and per-track rows (time_s, current emotion, raw scores) of ``frames.csv``."""
    series: dict[int, list[tuple[float, str, list[float]]]] = defaultdict(list)
    with open(frames_csv, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        labels = list(fields[fields.index("h") + 1:fields.index("emotion")])
        for row in reader:
            series[int(row["track_id"])].append((float(row["time_s"]), row["emotion"],
                                                 [float(row[e]) for e in labels]))
    return labels, series


def plot_timeline(frames_csv: Path, png: Path, title: str | None = None) -> None:
    """One panel per track: the smoothed current emotion over time, and each label's raw score.

    Each panel has one lane per label; the black step line jumps to the lane of
    the track's current (smoothed) emotion, and the thin coloured line in each
    lane rises from its bottom (score 0) to its top (score 1) with that label's
    raw model probability of the frame.

    Args:
        frames_csv: ``frames.csv`` of a run (its header names the labels).
        png: Output image.
        title: Figure title (the clip name).

    Raises:
        MissingDependency: matplotlib is missing.
    """
    plt = require_matplotlib()
    from matplotlib.lines import Line2D

    labels, series = _read(frames_csv)
    n = max(1, len(series))
    panel_in, header_in = 0.5 + 0.32 * len(labels), 0.8
    fig, axes = plt.subplots(n, 1, figsize=(11, header_in + panel_in * n), squeeze=False, sharex=True)
    for ax, (tid, rows) in zip(axes[:, 0], sorted(series.items())):
        t = [r[0] for r in rows]
        for k, name in enumerate(labels):
            ax.axhspan(k - 0.45, k + 0.45, color=_COLOURS.get(name, "#bbbbbb"), alpha=0.06, lw=0)
            ax.plot(t, [k - 0.45 + 0.9 * r[2][k] for r in rows], lw=0.9, color=_COLOURS.get(name, "#555555"))
        marker = "o" if len(rows) < 5 else None  # a track seen on a few frames is still visible
        ax.step(t, [labels.index(r[1]) if r[1] in labels else -1 for r in rows], where="post", color="black", lw=2,
                marker=marker, markersize=4)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.set_ylabel(f"track {tid}", fontsize=10, fontweight="bold")
        ax.grid(axis="x", alpha=0.3)
    if not series:
        axes[0, 0].text(0.5, 0.5, "no face tracked", ha="center", va="center", transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 0].set_xlim(left=0)
    handles = [Line2D([], [], color="black", lw=2, label="current emotion (smoothed)"),
               Line2D([], [], color="#555555", lw=0.9, label="raw score of the lane's label (lane bottom 0, top 1)")]
    top = 1 - 0.12 / (header_in + panel_in * n)
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.995, top), ncol=1, fontsize=9, frameon=False)
    fig.suptitle(f"{title or frames_csv.parent.name}: emotion per tracked face", x=0.01, y=top, ha="left",
                 va="top", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / (header_in + panel_in * n)))
    fig.savefig(png, dpi=100)
    plt.close(fig)
