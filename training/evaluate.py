"""``edge-fer-train evaluate``: accuracy, per-class P/R/F1, macro-F1, confusion matrix.

Works on a Keras model (needs TensorFlow) and on a ``.tflite`` file (runtime
dependencies plus scikit-learn only, through ``edge.classify``, the exact
path the daemon uses).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from edge.runtime import ModelError
from training.data import load_dataset


@dataclass(frozen=True)
class Predictions:
    """A model's scores for a set of faces, and how they were computed.

    Attributes:
        probs: float32 (N, C) probabilities.
        labels: The C class names.
        flip_margin: Flip averaging applied: None = every face (``tta_flip`` or
            a flip baked into the ``.tflite``), 0 = one pass, else the top-1
            minus top-2 margin below which a face was mirrored too.
    """

    probs: np.ndarray
    labels: tuple[str, ...]
    flip_margin: float | None


def predict(model_path: Path, x: np.ndarray, num_threads: int = 2, tta_flip: bool = False,
            flip_margin: float | None = None) -> Predictions:
    """Scores of a ``.tflite`` or ``.keras`` model for preprocessed faces.

    ``tta_flip`` averages the scores of each face and its mirror image: for a
    Keras model as ``edge-fer-convert --tta-flip`` bakes into a ``.tflite``,
    for a ``.tflite`` as the daemon's ``classifier.tta_flip`` does.
    ``flip_margin`` does so only for faces whose top-1 minus top-2 score is
    below it (:func:`edge.classify.classifier.flip_gated`), as the daemon's
    ``classifier.flip_margin``; None: a ``.tflite`` sidecar's value (the
    daemon's default), 0 for a Keras model.

    Args:
        model_path: ``.tflite`` or ``.keras`` / ``.h5`` file.
        x: float32 (N, 48, 48) faces in [0, 1] from ``preprocess_face``.
        num_threads: Interpreter threads (``.tflite``).
        tta_flip: Always average face and mirror image.
        flip_margin: Gate in [0, 1], or None (see above).

    Raises:
        ModelError: missing file, unsupported extension or a bad sidecar.
        ValueError: ``flip_margin`` outside [0, 1].
    """
    if flip_margin is not None and not 0 <= flip_margin <= 1:
        raise ValueError(f"flip margin must be in [0, 1], got {flip_margin}")
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    if model_path.suffix == ".tflite":
        from edge.classify import EmotionClassifier

        clf = EmotionClassifier(model_path, num_threads=num_threads, max_batch=64, tta_flip=tta_flip,
                                flip_margin=flip_margin)
        used = None if clf.flip_baked or clf.flip_margin == math.inf else clf.flip_margin
        return Predictions(clf.predict_batch(x), clf.labels, used)
    if model_path.suffix in (".keras", ".h5"):
        return _keras_predictions(model_path, x, tta_flip, flip_margin or 0.0)
    raise ModelError(f"{model_path}: expected a .tflite or .keras model")


def predict_probs(model_path: Path, x: np.ndarray, num_threads: int = 2, tta_flip: bool = False,
                  flip_margin: float | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Probabilities (N, C) and label names: :func:`predict` without the flip-margin report."""
    result = predict(model_path, x, num_threads, tta_flip, flip_margin)
    return result.probs, result.labels


def _keras_predictions(model_path: Path, x: np.ndarray, tta_flip: bool, flip_margin: float) -> Predictions:
    import keras

    from edge.classify.classifier import flip_gated
    from edge.labels import labels_for_outputs
    from training.models_flip import with_flip_tta

    model = keras.models.load_model(model_path, compile=False)
    labels = labels_for_outputs(int(model.output_shape[-1]))
    if tta_flip:
        return Predictions(_keras_predict(with_flip_tta(model), x), labels, None)
    probs = flip_gated(_keras_predict(model, x), flip_margin, x, partial(_keras_predict, model))
    return Predictions(probs, labels, flip_margin)


def _keras_predict(model, faces: np.ndarray) -> np.ndarray:
    """float32 (N, C) scores of a Keras model for faces (N, 48, 48)."""
    return model.predict(faces[..., None], batch_size=256, verbose=0)


def metrics_report(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (scikit-learn)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": len(y_true), "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=[lab for lab, c in zip(labels, s) if c], average="macro",
                                   zero_division=0)),
        "per_class": {lab: {"precision": float(pp), "recall": float(rr), "f1": float(ff), "support": int(ss)}
                      for lab, pp, rr, ff, ss in zip(labels, p, r, f, s)},
        "labels": labels,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def evaluate_path(model: str | Path, data: str | Path, *, layout: str = "auto", usage: str | None = None,
                  contempt: str = "neutral", out_dir: str | Path | None = None,
                  cache_dir: str | Path | None = None, crop: str = "auto", tta_flip: bool = False,
                  flip_margin: float | None = None, dataset=None) -> dict:
    """Evaluate a model on a labelled dataset.

    Args:
        model: ``.keras`` or ``.tflite`` file.
        data: Dataset folder or FER2013 CSV (see ``training.data.load_dataset``);
            only a name in the report when ``dataset`` is given.
        layout: Dataset layout (``auto``, ``folder``, ``csv`` or ``ferplus``; FER+ is read in majority mode).
        usage: FER2013 CSV Usage filter.
        contempt: FER+ contempt votes, ``neutral`` or ``keep``.
        cache_dir: Folder for cached dataset arrays, or None.
        crop: Folder layout face cropping, ``none``, ``detect`` or ``auto``.
        out_dir: When set, writes ``metrics.json`` and ``confusion.png`` there.
        tta_flip: Average face and mirror-image scores.
        flip_margin: Flip averaging only below this top-1 minus top-2 margin
            (see :func:`predict_probs`; None: a ``.tflite`` sidecar's value).
        dataset: An already loaded ``FaceDataset`` (e.g. a ``fit`` run's validation split).

    Returns:
        The report dict (``accuracy``, ``macro_f1``, ``n``, ``per_class``, ``confusion_matrix`` ...).

    Raises:
        DataError, ModelError: bad dataset or model.
    """
    if dataset is None:
        dataset = load_dataset(data, layout, cache_dir=cache_dir, usage=usage, ferplus_mode="majority",
                               contempt=contempt, crop=crop)
    ds = dataset
    result = predict(Path(model), ds.x, tta_flip=tta_flip, flip_margin=flip_margin)
    probs, model_labels = result.probs, result.labels
    y_true = [ds.labels[i] for i in ds.hard_labels]
    y_pred = [model_labels[i] for i in probs.argmax(1)]
    labels = list(dict.fromkeys([*model_labels, *ds.labels]))
    report = {"model": str(model), "data": str(data), "tta_flip": tta_flip,
              "flip_margin": result.flip_margin,
              **metrics_report(y_true, y_pred, labels), "skipped_images": ds.skipped}
    if out_dir:
        from training.plots import plot_confusion

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        plot_confusion(np.array(report["confusion_matrix"]), labels, out / "confusion.png",
                       f"{Path(model).name} on {Path(data).name}: acc {report['accuracy']:.3f}")
    return report
