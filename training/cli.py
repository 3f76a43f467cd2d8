"""edge-fer-train: fit, evaluate, pack and recover emotion models.

Building the parser and ``evaluate`` on a ``.tflite`` need no TensorFlow/Keras
(the runtime dependencies plus the ``[eval]`` extra); ``fit``, ``recover`` and
``evaluate`` of a ``.keras`` model say in one line when TensorFlow is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import textwrap

from edge import exit_codes as codes
from edge.runtime import MissingDependency

DESCRIPTION = """\
Train, evaluate, pack and recover emotion models.

evaluate on a .tflite model and --help need no TensorFlow (the runtime plus the
[eval] extra); fit, recover and evaluate of a .keras model need TensorFlow and
say so in one line when it is missing."""

TRAIN_INSTALL = ".venv/bin/pip install -e '.[train]'"
EVAL_INSTALL = ".venv/bin/pip install -e '.[eval]'"
#: Start-up lines TensorFlow 2.x prints to stderr from C++ (absl INFO, CPU feature notes); hidden unless DEBUG.
TF_NOISE = ("I0000 ", "WARNING: All log messages before absl::InitializeLog()", "To enable the following instructions")
LAYOUT_CHOICES = ["auto", "folder", "csv", "ferplus", "packed"]

EXIT_TABLE = codes.table_text((
    (codes.OK, "success"),
    (codes.INTERNAL, "unexpected internal error (one line)"),
    (codes.USAGE, "bad arguments, dataset input or output folder; a missing package (TensorFlow: "
                  f"{TRAIN_INSTALL}; scikit-learn/matplotlib for evaluate: {EVAL_INSTALL})"),
    (codes.MODEL, "model file missing or unreadable"),
    (codes.INTERRUPTED, "interrupted (Ctrl-C)"),
))

EXAMPLES = """\
examples:
  edge-fer-train fit --data ../shared/datasets/fer2013/train --labels fer2013 --epochs 85 --out runs/edge
  edge-fer-train fit --data ../shared/datasets/ferplus/FER2013Train --labels ferplus --init runs/rec.keras \\
      --width 1.25 --lr 5e-4 --time-budget 2400 --out runs/ferplus
  edge-fer-train evaluate --model edge/models/emotion_int8.tflite --data ../shared/datasets/fer2013/test
  edge-fer-train evaluate --model runs/edge/model.keras --val-of runs/edge --json
  edge-fer-train pack --data ../shared/datasets/fer2013/train --out fer2013_train.npz
  edge-fer-train recover --tflite edge/models/emotion_int8.tflite --data ../shared/datasets/fer2013/train \\
      --out runs/rec.keras
  edge-fer-train soup runs/a/fit/best.keras runs/b/fit/best.keras --bn-of runs/a/fit --out runs/soup.keras"""

#: Help of every ``fit`` option, keyed by :class:`training.fit_config.FitConfig` field.
FIT_HELP: dict[str, str] = {
    "data": "training data: FER2013 image folders or CSV, a FER+ folder (label.csv), any emotion-folder dataset, "
            "or a .npz from pack",
    "out": "run folder: model.keras, checkpoints (re-run the same command to resume), history.csv, curves.png, "
           "fit.json",
    "labels": "label set of --data: fer2013 (one label per face) or ferplus (10 annotators' votes)",
    "layout": "how --data is stored (auto: detected from the path)",
    "crop": "folder layout: none (images are face crops), detect (crop the largest face with the runtime "
            "detector), auto (detect only in images larger than 96 px)",
    "contempt": "--labels ferplus: map FER+ contempt votes to neutral (7 labels, the runtime's default) or keep "
                "them as an 8th label (the model's sidecar then lists contempt)",
    "ferplus_mode": "--labels ferplus: majority (one-hot of the most voted emotion) or soft (vote distributions)",
    "model": "network: edge (residual depthwise-separable, ~0.75 M parameters at width 1) or baseline "
             "(VGG-style, ~5.9 M)",
    "width": "width multiplier of the edge network's channels (1.25: the shipped default model)",
    "epochs": "maximum epochs (early stopping may end sooner)",
    "batch_size": "images per training step",
    "lr": "peak learning rate of AdamW (after warm-up; cosine decay over epochs or --time-budget)",
    "weight_decay": "AdamW decoupled weight decay",
    "warmup_epochs": "epochs of linear learning-rate warm-up",
    "label_smoothing": "label smoothing of the cross-entropy targets, 0-1",
    "mixup": "mixup alpha (Beta distribution parameter); 0 = off",
    "erase": "random-erasing probability per image, 0-1",
    "teacher": "distillation teacher: a .keras or .tflite model (scored with flip averaging) or saved scores "
               "(.npy; .npz = an ensemble's mean) (default: none)",
    "distill": "weight of the teacher's scores in the targets, 0-1 (with --teacher)",
    "workers": "threads building augmented batches",
    "init": ".keras model of the same architecture to start from, e.g. from recover (default: random init)",
    "swa_start": "average the weights of epochs N.. (1-based) into the final model; 0 = off",
    "time_budget": "seconds of training: cosine schedule over wall-clock time, stops when spent; 0 = use --epochs",
    "class_weight": "weight the loss by inverse class frequency",
    "val_fraction": "fraction of --data carved as the stratified validation split, 0-1",
    "patience": "early stopping: epochs without validation improvement",
    "seed": "random seed (split, augmentation, initialisation)",
    "split_seed": "seed of the validation split only, e.g. to train a second model for a soup or an ensemble on "
                  "the same split as a first run (default: --seed; --kfold folds always use --seed)",
    "limit": "use only N training images (smoke tests); 0 = all",
    "cache": "folder for decoded .npy arrays (never inside the repository)",
    "test": "held-out dataset evaluated at the end (default: none)",
    "kfold": "k-fold cross-validation with K folds instead of one fit when K > 1; 0 = off",
}

FIT_CHOICES: dict[str, list[str]] = {
    "labels": ["fer2013", "ferplus"], "layout": LAYOUT_CHOICES, "crop": ["auto", "detect", "none"],
    "ferplus_mode": ["majority", "soft"], "contempt": ["neutral", "keep"], "model": ["edge", "baseline"],
}


def _wrap(text: str) -> str:
    """A sub-command description wrapped to 79 columns (the formatter keeps line breaks)."""
    return textwrap.fill(text, 79)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default and keeps the epilog's line breaks."""

    def _get_help_string(self, action):  # no "(default: None)" / "(default: False)" noise
        if action.default in (None, False) or action.required:
            return action.help
        return super()._get_help_string(action)


def _fit_parser(sub) -> None:
    from training.fit_config import FitConfig

    p = sub.add_parser("fit", help="train a model (needs TensorFlow)", formatter_class=HelpFormatter,
                       description=_wrap("Train a model with a validation split carved from the training data. "
                                   f"Needs TensorFlow/Keras: {TRAIN_INSTALL}"))
    for f in dataclasses.fields(FitConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        required = f.default is dataclasses.MISSING
        help_text = FIT_HELP.get(f.name, "")
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            kind = {"int": int, "float": float, "int | None": int}.get(str(f.type), str)
            p.add_argument(flag, type=kind, default=default, required=required, help=help_text,
                           choices=FIT_CHOICES.get(f.name))


def _dataset_options(p) -> None:
    """Options naming how a dataset is read, shared by ``evaluate``, ``pack`` and ``recover``."""
    p.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES, help="how --data is stored (auto: detected)")
    p.add_argument("--usage", default=None, help="FER2013 CSV Usage filter, e.g. PublicTest or Training (default: all)")
    p.add_argument("--crop", default="auto", choices=["auto", "detect", "none"],
                   help="folder layout: crop faces with the runtime detector (auto: only images larger than 96 px)")
    p.add_argument("--cache", default=None, help="folder for cached decoded arrays (default: no cache)")


def _eval_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a .tflite (no TensorFlow needed) or .keras model",
                       formatter_class=HelpFormatter,
                       description=_wrap("Accuracy, per-class precision/recall/F1, macro-F1 and confusion matrix. "
                                         "A .tflite model runs through edge.classify (no TensorFlow; scikit-learn "
                                         f"needed: {EVAL_INSTALL}); a .keras model needs TensorFlow: "
                                         f"{TRAIN_INSTALL}"))
    p.add_argument("--model", required=True, help="model.tflite or model.keras")
    p.add_argument("--data", help="labelled dataset: folder, FER2013 CSV, FER+ folder or .npz (or use --val-of)")
    _dataset_options(p)
    p.add_argument("--contempt", default="neutral", choices=["neutral", "keep"],
                   help="FER+ contempt votes: counted as neutral, or kept as their own class")
    p.add_argument("--out", default=None,
                   help="folder for metrics.json and confusion.png (needs matplotlib) (default: none)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--tta-flip", action="store_true", help="average each face's and its mirror image's scores")
    p.add_argument("--flip-margin", type=unit_interval, default=None,
                   help="flip averaging only for faces whose top-1 minus top-2 score is below this, as "
                        "classifier.flip_margin (0 = one pass) (default: a .tflite sidecar's flip_margin, as the "
                        "daemon; 0 for .keras)")
    p.add_argument("--val-of", default=None,
                   help="fit run folder: evaluate on its validation split instead of --data")


def _pack_parser(sub) -> None:
    p = sub.add_parser("pack", help="decode a dataset once into one compressed .npz (to train elsewhere)",
                       formatter_class=HelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder, FER2013 CSV or FER+ folder")
    p.add_argument("--out", required=True, help="output .npz file")
    _dataset_options(p)
    p.add_argument("--ferplus-mode", default="majority", choices=["majority", "soft"],
                   help="FER+ targets: one-hot majority or vote distributions")


def _recover_parser(sub) -> None:
    p = sub.add_parser("recover", help="rebuild a trainable .keras edge model from its int8 .tflite "
                                       "(needs TensorFlow)", formatter_class=HelpFormatter,
                       description=_wrap("Rebuild a trainable float edge model from a shipped int8 .tflite, to "
                                   f"fine-tune with fit --init. Needs TensorFlow/Keras: {TRAIN_INSTALL}"))
    p.add_argument("--tflite", required=True, help="int8 .tflite of an edge model (edge/models/emotion_int8.tflite)")
    p.add_argument("--data", required=True, help="training faces for the BatchNorm statistics (folder, CSV or .npz)")
    p.add_argument("--out", required=True, help="output .keras file")
    p.add_argument("--n", type=int, default=4096, help="faces drawn for the statistics")
    p.add_argument("--seed", type=int, default=1234, help="random seed of the draw")
    _dataset_options(p)


def _soup_parser(sub) -> None:
    p = sub.add_parser("soup", help="average fine-tuned models' weights into one (needs TensorFlow)",
                       formatter_class=HelpFormatter,
                       description=_wrap("A uniform model soup (Wortsman et al., 2022): the mean of the weights of "
                                         "models fine-tuned from the same weights, with the batch-norm statistics "
                                         "re-estimated on training faces of a fit run. Compare it with its "
                                         f"ingredients on the validation split (evaluate --val-of). {TRAIN_INSTALL}"))
    p.add_argument("models", nargs="+", help="two or more .keras models of one architecture")
    p.add_argument("--out", required=True, help="output .keras file")
    p.add_argument("--bn-of", default=None,
                   help="fit run folder whose training split (never its validation split) re-estimates the "
                        "batch-norm statistics (default: keep the averaged statistics)")
    p.add_argument("--n", type=_positive_int, default=8192, help="training faces drawn for the batch-norm statistics")
    p.add_argument("--seed", type=int, default=1234, help="random seed of the draw")


def unit_interval(text: str) -> float:
    """A number in [0, 1] (an argparse type; NaN refused), e.g. ``--flip-margin``."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def _positive_int(text: str) -> int:
    """An integer > 0 (an argparse type)."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``edge-fer-train`` parser (imports neither Keras nor TensorFlow)."""
    parser = argparse.ArgumentParser(prog="edge-fer-train", description=DESCRIPTION, formatter_class=HelpFormatter,
                                     epilog=f"{EXAMPLES}\n\n{EXIT_TABLE}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{fit,evaluate,pack,recover,soup}")
    _fit_parser(sub)
    _eval_parser(sub)
    _pack_parser(sub)
    _recover_parser(sub)
    _soup_parser(sub)
    return parser


def require_keras(what: str) -> None:
    """Import Keras (and its backend) now, or raise :class:`MissingDependency` naming the install command."""
    from edge.runtime import native_stderr_filtered

    try:
        with native_stderr_filtered(TF_NOISE):
            import keras  # noqa: F401
    except ImportError:
        raise MissingDependency(f"{what} needs TensorFlow/Keras, which is not installed: {TRAIN_INSTALL}") from None


def _require_eval(out: str | None) -> None:
    """scikit-learn (metrics) and, with ``--out``, matplotlib (confusion.png), or :class:`MissingDependency`."""
    needed = [("sklearn", "scikit-learn")] + ([("matplotlib", "matplotlib (for --out)")] if out else [])
    for module, name in needed:
        try:
            __import__(module)
        except ImportError:
            raise MissingDependency(f"evaluate needs {name}: {EVAL_INSTALL}") from None


def _preflight(args) -> None:
    """Every optional package and input model the command needs, checked before any work.

    Raises:
        MissingDependency: a package is missing.
        ModelError: a named model file does not exist.
    """
    from pathlib import Path

    from edge.runtime import ModelError

    models = {"evaluate": [args.model] if args.command == "evaluate" else [],
              "recover": [getattr(args, "tflite", None)],
              "fit": [getattr(args, "init", None), getattr(args, "teacher", None)],
              "soup": getattr(args, "models", [])}.get(args.command, [])
    for model in filter(None, models):
        if not Path(model).is_file():
            raise ModelError(f"model file not found: {model}")
    if args.command in ("fit", "recover", "soup"):
        require_keras(args.command)
    elif args.command == "evaluate":
        _require_eval(args.out)
        if not str(args.model).endswith(".tflite"):
            require_keras(f"evaluate of {args.model} (a Keras model)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``edge-fer-train``; returns the process exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "evaluate" and not (args.data or args.val_of):
        parser.error("evaluate needs --data or --val-of")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from edge.runtime import ModelError
    from training.data import DataError

    run = {"fit": _fit, "evaluate": _evaluate, "pack": lambda a: json.dumps(_pack(a)),
           "recover": lambda a: json.dumps(_recover(a)), "soup": lambda a: json.dumps(_soup(a))}[args.command]
    try:
        _preflight(args)
        print(run(args))
    except (DataError, MissingDependency) as exc:
        return _fail(codes.USAGE, str(exc))
    except ModelError as exc:
        return _fail(codes.MODEL, str(exc))
    except OSError as exc:
        return _fail(codes.USAGE, f"cannot read or write {exc.filename or ''}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        return _fail(codes.INTERRUPTED, "interrupted")
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback for users
        logging.getLogger("edge-fer-train").debug("unexpected error", exc_info=True)
        return _fail(codes.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
    return codes.OK


def _fail(code: int, message: str) -> int:
    return codes.fail(code, message, prog="edge-fer-train")


def _recover(args) -> dict:
    from pathlib import Path

    import numpy as np

    from training.data import load_dataset
    from training.evaluate import predict_probs
    from training.recover import recover_edge

    data = load_dataset(args.data, args.layout, cache_dir=args.cache, usage=args.usage, crop=args.crop)
    faces = data.x[np.random.default_rng(args.seed).permutation(len(data.x))[:args.n]]
    model = recover_edge(args.tflite, faces)
    model.save(args.out)
    recovered = model.predict(faces[..., None], batch_size=256, verbose=0)
    int8 = predict_probs(Path(args.tflite), faces, flip_margin=0)[0]
    return {"out": args.out, "params": model.count_params(), "n": len(faces),
            "top1_agreement": float((recovered.argmax(1) == int8.argmax(1)).mean()),
            "mean_abs_score_diff": float(np.abs(recovered - int8).mean())}


def _soup(args) -> dict:
    from pathlib import Path

    import numpy as np

    from training.data import DataError
    from training.fit_config import splits_of
    from training.soup import make_soup

    if len(args.models) < 2:
        raise DataError("soup needs two or more models")
    faces = None
    if args.bn_of:
        train = splits_of(args.bn_of)[0]
        faces = train.x[np.random.default_rng(args.seed).permutation(len(train.x))[:args.n]]
    return make_soup([Path(m) for m in args.models], Path(args.out), faces)


def _pack(args) -> dict:
    from training.data import load_dataset, save_packed

    data = load_dataset(args.data, args.layout, cache_dir=args.cache, usage=args.usage,
                        ferplus_mode=args.ferplus_mode, crop=args.crop)
    path = save_packed(data, args.out)
    return {"out": str(path), "n": len(data.x), "labels": list(data.labels), "bytes": path.stat().st_size}


def _fit(args) -> str:
    from training.fit import FitConfig, run_fit

    cfg = FitConfig(**{k: v for k, v in vars(args).items() if k != "command"})
    return json.dumps(run_fit(cfg), indent=2, default=str)


def _evaluate(args) -> str:
    from training.evaluate import evaluate_path

    dataset = None
    if args.val_of:
        from training.fit_config import validation_split_of

        dataset = validation_split_of(args.val_of)
        args.data = f"validation split of {args.val_of}"
    report = evaluate_path(args.model, args.data, layout=args.layout, usage=args.usage,
                           contempt=args.contempt, out_dir=args.out, cache_dir=args.cache,
                           crop=args.crop, tta_flip=args.tta_flip, flip_margin=args.flip_margin, dataset=dataset)
    return json.dumps(report) if args.json else format_report(report)


def format_report(report: dict) -> str:
    """Human-readable table of an evaluation report."""
    margin = report.get("flip_margin", 0.0)
    flip = ("every face" if margin is None else "none (one pass)" if not margin
            else f"faces under a margin of {margin:g}")
    lines = [f"n={report['n']}  accuracy={report['accuracy']:.4f}  macro_f1={report['macro_f1']:.4f}  "
             f"flip averaging: {flip}",
             f"{'class':<10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:<10}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9d}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
