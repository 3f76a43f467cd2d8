"""``edge-fer-convert --keras PATH --out model.tflite --quantize int8|float16|none``.

Exit codes: 0 success, 2 bad arguments or dataset, 3 Keras model missing/unreadable.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-fer-convert", description=__doc__.splitlines()[0])
    p.add_argument("--keras", required=True, type=Path, help="trained .keras model")
    p.add_argument("--out", required=True, type=Path, help="output .tflite path")
    p.add_argument("--quantize", default="int8", choices=["int8", "float16", "none"])
    p.add_argument("--calib-data", default="../shared/datasets/fer2013/train",
                   help="training images for int8 calibration (any edge-fer-train layout)")
    p.add_argument("--calib-n", type=int, default=1000, help="calibration images (>= 500)")
    parity = p.add_mutually_exclusive_group()
    parity.add_argument("--parity-data", default=None,
                        help="labelled images for the float-vs-converted parity report (default: --calib-data)")
    p.add_argument("--parity-n", type=int, default=2000, help="images in the parity report (0 = all)")
    p.add_argument("--dataset-name", default="FER2013 train (Kaggle image folders)")
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "edge-fer"))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--tta-flip", action="store_true", help="average the scores of the face and its mirror image")
    parity.add_argument("--val-of", default=None,
                        help="fit run folder: use its validation split (carved from training data) for the parity report")
    return p


def _sample(data, n: int, seed: int):
    if n <= 0 or n >= len(data.x):
        return data
    idx = np.sort(np.random.default_rng(seed).permutation(len(data.x))[:n])
    return data.subset(idx)


def _parity_source(args, calib):
    """Images of the parity report: the validation split of ``--val-of``, ``--parity-data`` or the calibration set."""
    if args.val_of:
        from training.fit import validation_split_of

        return validation_split_of(args.val_of)
    if args.parity_data:
        from training.data import load_dataset

        return load_dataset(args.parity_data, cache_dir=args.cache)
    return calib


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    from convert.convert import convert_model, parity_report, sidecar
    from training.data import DataError, load_dataset

    if not args.keras.is_file():
        print(f"edge-fer-convert: Keras model not found: {args.keras}", file=sys.stderr)
        return 3
    try:
        calib = _sample(load_dataset(args.calib_data, cache_dir=args.cache), args.calib_n, args.seed)
        parity_src = _parity_source(args, calib)
    except DataError as exc:
        print(f"edge-fer-convert: {exc}", file=sys.stderr)
        return 2
    if args.quantize == "int8" and len(calib.x) < 500:
        logging.warning("only %d calibration images (>= 500 advised)", len(calib.x))
    blob = convert_model(args.keras, args.quantize, calib.x, tta_flip=args.tta_flip)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)
    parity = _sample(parity_src, args.parity_n, args.seed + 1)
    report = parity_report(args.keras, args.out, parity.x, parity.hard_labels, tta_flip=args.tta_flip)
    report["data"] = f"validation split of {args.val_of}" if args.val_of else (args.parity_data or args.calib_data)
    meta = sidecar(args.out, args.quantize, args.dataset_name,
                   {"calibration_images": int(len(calib.x)), "parity": report, "bytes": len(blob),
                    "tta_flip": bool(args.tta_flip)})
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({"out": str(args.out), "bytes": len(blob), "parity": report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
