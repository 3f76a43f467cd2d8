"""edge-fer-convert: a trained Keras model to a .tflite (int8, float16 or float32) with a sidecar and a parity report.

Exit codes: 0 success, 1 unexpected error, 2 bad arguments, dataset or missing
TensorFlow, 3 Keras model missing/unreadable, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from edge import exit_codes as codes
from training.cli import TRAIN_INSTALL, unit_interval

DESCRIPTION = """\
Convert a trained Keras model to a .tflite file for the edge-fer runtime, write
its sidecar <out>.json (labels, input size and scale, dataset, parity report)
and print the float-vs-converted top-1 agreement and mean absolute score
difference. Needs TensorFlow: """ + TRAIN_INSTALL

EPILOG = """\
quantize modes:
  int8     full integer: int8 input and output, TFLITE_BUILTINS_INT8 only,
           calibrated on --calib-n images of --calib-data (the shipped models)
  float16  float16 weights, float32 input and output
  none     float32 throughout

examples:
  edge-fer-convert --keras runs/edge/model.keras --out edge/models/emotion_int8.tflite --quantize int8 \\
      --calib-data ../shared/datasets/fer2013/train --calib-n 1000 --val-of runs/edge --parity-n 0
  edge-fer-convert --keras runs/edge/model.keras --out /tmp/model_f16.tflite --quantize float16

""" + codes.table_text((
    (codes.OK, "success"),
    (codes.INTERNAL, "unexpected internal error (one line)"),
    (codes.USAGE, f"bad arguments or dataset, output not writable, or TensorFlow missing ({TRAIN_INSTALL})"),
    (codes.MODEL, "Keras model missing or unreadable"),
    (codes.INTERRUPTED, "interrupted (Ctrl-C)"),
))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default and keeps the epilog's line breaks."""

    def _get_help_string(self, action):  # no "(default: None)" / "(default: False)" noise
        if action.default in (None, False) or action.required:
            return action.help
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-fer-convert", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=HelpFormatter)
    p.add_argument("--keras", required=True, type=Path, help="trained .keras model (from edge-fer-train fit)")
    p.add_argument("--out", required=True, type=Path, help="output .tflite path (the sidecar goes beside it)")
    p.add_argument("--quantize", default="int8", choices=["int8", "float16", "none"],
                   help="weight/activation format (see quantize modes below)")
    p.add_argument("--calib-data", default="../shared/datasets/fer2013/train",
                   help="training images for int8 calibration (any edge-fer-train layout)")
    p.add_argument("--calib-n", type=int, default=1000, help="calibration images drawn from --calib-data (>= 500)")
    parity = p.add_mutually_exclusive_group()
    parity.add_argument("--parity-data", default=None,
                        help="labelled images for the float-vs-converted parity report (default: --calib-data)")
    p.add_argument("--parity-n", type=int, default=2000, help="images in the parity report (0 = all)")
    p.add_argument("--dataset-name", default="FER2013 train (Kaggle image folders)",
                   help="training-data name written to the sidecar")
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "edge-fer"), help="folder for decoded arrays")
    p.add_argument("--seed", type=int, default=1234, help="random seed of the calibration and parity draws")
    p.add_argument("--tta-flip", action="store_true",
                   help="bake flip averaging in: the model averages the face's and its mirror image's scores")
    p.add_argument("--flip-margin", type=unit_interval, default=0.0,
                   help="written to the sidecar: the runtime adds a mirror-image pass for faces whose top-1 minus "
                        "top-2 score is below this (classifier.flip_margin; 0 = never; chosen on a validation split)")
    parity.add_argument("--val-of", default=None,
                        help="fit run folder: its validation split (carved from the training data) is the parity set")
    return p


def _sample(data, n: int, seed: int):
    if n <= 0 or n >= len(data.x):
        return data
    idx = np.sort(np.random.default_rng(seed).permutation(len(data.x))[:n])
    return data.subset(idx)


def _parity_source(args, calib):
    """Images of the parity report: the validation split of ``--val-of``, ``--parity-data`` or the calibration set."""
    if args.val_of:
        from training.fit_config import validation_split_of

        return validation_split_of(args.val_of)
    if args.parity_data:
        from training.data import load_dataset

        return load_dataset(args.parity_data, cache_dir=args.cache)
    return calib


def _convert(args) -> dict:
    """Load data, convert, write the model and its sidecar; returns the printed report."""
    from convert.convert import convert_model, parity_report, sidecar
    from training.data import load_dataset

    calib = _sample(load_dataset(args.calib_data, cache_dir=args.cache), args.calib_n, args.seed)
    parity_src = _parity_source(args, calib)
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
                    "tta_flip": bool(args.tta_flip), "flip_margin": float(args.flip_margin)})
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return {"out": str(args.out), "bytes": len(blob), "parity": report}


def _fail(code: int, message: str) -> int:
    return codes.fail(code, message, prog="edge-fer-convert")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = _parser()
    args = parser.parse_args(argv)
    if args.tta_flip and args.flip_margin > 0:
        parser.error("--flip-margin has no effect with --tta-flip (the flip is baked in for every face)")
    from edge.runtime import native_stderr_filtered
    from training.cli import TF_NOISE

    try:
        with native_stderr_filtered(TF_NOISE):  # TensorFlow's start-up INFO lines ignore TF_CPP_MIN_LOG_LEVEL
            import tensorflow  # noqa: F401
    except ImportError:
        return _fail(codes.USAGE, f"needs TensorFlow, which is not installed: {TRAIN_INSTALL}")
    if not args.keras.is_file():
        return _fail(codes.MODEL, f"Keras model not found: {args.keras}")
    import zipfile

    if args.keras.suffix == ".keras" and not zipfile.is_zipfile(args.keras):
        return _fail(codes.MODEL, f"{args.keras}: not a Keras model (a .keras file is a zip archive)")
    from training.data import DataError

    try:
        print(json.dumps(_convert(args), indent=2))
    except DataError as exc:
        return _fail(codes.USAGE, str(exc))
    except OSError as exc:
        return _fail(codes.USAGE, f"cannot read or write {exc.filename or ''}: {exc.strerror or exc}")
    except (ValueError, RuntimeError) as exc:  # Keras refuses the file
        logging.getLogger("edge-fer-convert").debug("conversion failed", exc_info=True)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _fail(codes.MODEL, f"cannot convert {args.keras}: {reason}")
    except KeyboardInterrupt:
        return _fail(codes.INTERRUPTED, "interrupted")
    return codes.OK


if __name__ == "__main__":
    sys.exit(main())
