"""FER2013 labels for the FER+ images, so one packed file carries both label sets.

FER+ (Barsoum et al., 2016, arXiv:1608.01041) re-labels the FER2013 images,
but its ``FER2013Train`` PNGs and the FER2013 image-folder JPEGs are named
differently. Each FER+ face is matched to the FER2013 face whose 16x16
mean-removed, unit-norm thumbnail of the histogram-equalised face correlates
best with it (the two releases differ by a grey-level mapping); faces whose
best correlation is below ``MATCH_MIN_CORR`` get no FER2013 label. A leased GPU machine then needs one ~50 MB pack
instead of two.

Usage: python -m training.joint --ferplus-pack ferplus.npz --fer2013 DIR --out fer2013_labels.npz
"""

from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np

MATCH_MIN_CORR = 0.95


def thumbnails(x: np.ndarray, size: int = 16) -> np.ndarray:
    """float32 (N, size*size) mean-removed, unit-norm thumbnails of faces x float32 (N, 48, 48).

    Each face is histogram-equalised first: the two releases of the same photo
    differ by a monotone grey-level mapping (contrast), not by content.
    """
    grey = [cv2.equalizeHist(np.round(f * 255).astype(np.uint8)).astype(np.float32) for f in x]
    t = np.stack([cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA) for g in grey]).reshape(len(x), -1)
    t = t - t.mean(axis=1, keepdims=True)
    return (t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-6)).astype(np.float32)


def match_rows(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For every face of ``a``, the row of ``b`` with the most correlated thumbnail.

    Args:
        a: float32 (N, 48, 48) faces to label.
        b: float32 (M, 48, 48) labelled faces.
        chunk: Rows of ``a`` per matrix product (memory: chunk x M floats).

    Returns:
        (index int64 (N,) into ``b``, correlation float32 (N,) in [-1, 1]).
    """
    ta, tb = thumbnails(a), thumbnails(b)
    index, corr = np.empty(len(a), np.int64), np.empty(len(a), np.float32)
    for i in range(0, len(a), chunk):
        sim = ta[i:i + chunk] @ tb.T
        index[i:i + chunk] = sim.argmax(axis=1)
        corr[i:i + chunk] = sim[np.arange(len(sim)), index[i:i + chunk]]
    return index, corr


def fer2013_targets(ferplus_x: np.ndarray, fer2013) -> tuple[np.ndarray, dict]:
    """One-hot FER2013 targets float32 (N, 7) for FER+ faces (all-zero rows: no match).

    Args:
        ferplus_x: float32 (N, 48, 48) FER+ faces.
        fer2013: FER2013 training dataset (``training.data.FaceDataset``).

    Returns:
        (targets, report with ``n``, ``matched`` and the correlation quantiles).
    """
    index, corr = match_rows(ferplus_x, fer2013.x)
    ok = corr >= MATCH_MIN_CORR
    y = np.where(ok[:, None], fer2013.y[index], 0.0).astype(np.float32)
    report = {"n": int(len(ferplus_x)), "matched": int(ok.sum()), "min_corr": MATCH_MIN_CORR,
              "corr_quantiles": [round(float(q), 4) for q in np.quantile(corr, [0.001, 0.01, 0.5])]}
    return y, report


def main(argv: list[str] | None = None) -> int:
    """Write ``--out`` (.npz with ``y`` (N, 7) and ``labels``) for the rows of ``--ferplus-pack``."""
    from training.data import DataError, load_dataset, load_packed

    ap = argparse.ArgumentParser(prog="python -m training.joint", description=__doc__.splitlines()[0])
    ap.add_argument("--ferplus-pack", required=True, help="FER+ pack from `edge-fer-train pack --layout ferplus`")
    ap.add_argument("--fer2013", required=True, help="FER2013 train folder (or pack) giving the labels")
    ap.add_argument("--out", required=True, help="output .npz with y (N, 7) one-hot FER2013 targets, zero = no match")
    args = ap.parse_args(argv)
    try:
        ferplus, fer2013 = load_packed(args.ferplus_pack), load_dataset(args.fer2013)
    except DataError as exc:
        print(f"training.joint: {exc}", file=sys.stderr)
        return 2
    y, report = fer2013_targets(ferplus.x, fer2013)
    np.savez_compressed(args.out, y=y, labels=np.asarray(fer2013.labels))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
