"""``edge-fer-train``: ``fit``, ``evaluate``, ``pack`` and ``recover`` sub-commands.

Exit codes: 0 success, 2 bad arguments or dataset input (one-line message),
3 model file missing or unreadable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

import numpy as np

EXIT_BAD_INPUT = 2
EXIT_BAD_MODEL = 3


def _fit_parser(sub) -> None:
    from training.fit import FitConfig

    p = sub.add_parser("fit", help="train a model")
    for f in dataclasses.fields(FitConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        required = f.default is dataclasses.MISSING
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            p.add_argument(flag, type=kind, default=default, required=required)


def _dataset_options(p) -> None:
    """Options naming how a dataset is read, shared by ``evaluate`` and ``pack``."""
    p.add_argument("--layout", default="auto", choices=["auto", "folder", "csv", "ferplus"])
    p.add_argument("--usage", default=None, help="FER2013 CSV Usage filter, e.g. PublicTest or Training")
    p.add_argument("--crop", default="auto", choices=["auto", "detect", "none"],
                   help="folder layout: crop faces with the runtime detector (auto: images > 96 px)")
    p.add_argument("--cache", default=None, help="folder for cached arrays")


def _eval_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a .keras or .tflite model")
    p.add_argument("--model", required=True, help="model.keras or model.tflite")
    p.add_argument("--data", help="dataset folder or FER2013 CSV (or use --val-of)")
    _dataset_options(p)
    p.add_argument("--contempt", default="neutral", choices=["neutral", "keep"])
    p.add_argument("--out", default=None, help="folder for the confusion-matrix PNG and metrics JSON")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--tta-flip", action="store_true", help="average face and mirror-image scores (Keras or .tflite)")
    p.add_argument("--val-of", default=None, help="fit run folder: evaluate on its validation split (ignores --data)")


def _pack_parser(sub) -> None:
    p = sub.add_parser("pack", help="decode a dataset once into one compressed .npz (to train elsewhere)")
    p.add_argument("--data", required=True, help="dataset folder, FER2013 CSV or FER+ folder")
    p.add_argument("--out", required=True, help="output .npz file")
    _dataset_options(p)
    p.add_argument("--ferplus-mode", default="majority", choices=["majority", "soft"])


def _recover_parser(sub) -> None:
    p = sub.add_parser("recover", help="rebuild a trainable .keras edge model from its int8 .tflite (to fine-tune)")
    p.add_argument("--tflite", required=True, help="int8 .tflite of an edge model (edge/models/emotion_int8.tflite)")
    p.add_argument("--data", required=True, help="training faces for the BatchNorm statistics (folder, CSV or .npz)")
    p.add_argument("--out", required=True, help="output .keras file")
    p.add_argument("--n", type=int, default=4096, help="faces drawn for the statistics")
    p.add_argument("--seed", type=int, default=1234)
    _dataset_options(p)


def _recover(args) -> dict:
    from pathlib import Path

    from training.data import load_dataset
    from training.evaluate import predict_probs
    from training.recover import recover_edge

    data = load_dataset(args.data, args.layout, cache_dir=args.cache, usage=args.usage, crop=args.crop)
    faces = data.x[np.random.default_rng(args.seed).permutation(len(data.x))[:args.n]]
    model = recover_edge(args.tflite, faces)
    model.save(args.out)
    recovered = model.predict(faces[..., None], batch_size=256, verbose=0)
    int8 = predict_probs(Path(args.tflite), faces)[0]
    return {"out": args.out, "params": model.count_params(), "n": len(faces),
            "top1_agreement": float((recovered.argmax(1) == int8.argmax(1)).mean()),
            "mean_abs_score_diff": float(np.abs(recovered - int8).mean())}


def _pack(args) -> dict:
    from training.data import load_dataset, save_packed

    data = load_dataset(args.data, args.layout, cache_dir=args.cache, usage=args.usage,
                        ferplus_mode=args.ferplus_mode, crop=args.crop)
    path = save_packed(data, args.out)
    return {"out": str(path), "n": len(data.x), "labels": list(data.labels), "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``edge-fer-train``; returns the process exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="edge-fer-train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _fit_parser(sub)
    _eval_parser(sub)
    _pack_parser(sub)
    _recover_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "evaluate" and not (args.data or args.val_of):
        parser.error("evaluate needs --data or --val-of")
    from edge.runtime import ModelError
    from training.data import DataError

    run = {"fit": _fit, "evaluate": _evaluate, "pack": lambda a: json.dumps(_pack(a)),
           "recover": lambda a: json.dumps(_recover(a))}[args.command]
    try:
        print(run(args))
    except DataError as exc:
        print(f"edge-fer-train: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ModelError as exc:
        print(f"edge-fer-train: {exc}", file=sys.stderr)
        return EXIT_BAD_MODEL
    return 0


def _fit(args) -> str:
    from training.fit import FitConfig, run_fit

    cfg = FitConfig(**{k: v for k, v in vars(args).items() if k != "command"})
    return json.dumps(run_fit(cfg), indent=2, default=str)


def _evaluate(args) -> str:
    from training.evaluate import evaluate_path

    dataset = None
    if args.val_of:
        from training.fit import validation_split_of

        dataset = validation_split_of(args.val_of)
        args.data = f"validation split of {args.val_of}"
    report = evaluate_path(args.model, args.data, layout=args.layout, usage=args.usage,
                           contempt=args.contempt, out_dir=args.out, cache_dir=args.cache,
                           crop=args.crop, tta_flip=args.tta_flip, dataset=dataset)
    return json.dumps(report) if args.json else format_report(report)


def format_report(report: dict) -> str:
    """Human-readable table of an evaluation report."""
    lines = [f"n={report['n']}  accuracy={report['accuracy']:.4f}  macro_f1={report['macro_f1']:.4f}",
             f"{'class':<10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:<10}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9d}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
