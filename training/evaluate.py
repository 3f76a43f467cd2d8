"""``edge-fer-train evaluate``: accuracy, per-class P/R/F1, macro-F1, confusion matrix.

Works on a Keras model (needs TensorFlow) and on a ``.tflite`` file (runtime
dependencies plus scikit-learn only, through ``edge.classify``, the exact
path the daemon uses).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge.runtime import ModelError
from training.data import load_dataset


def predict_probs(model_path: Path, x: np.ndarray, num_threads: int = 2, tta_flip: bool = False,
                  flip_margin: float | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Probabilities (N, C) and label names for preprocessed faces (N, 48, 48).

    ``tta_flip`` averages the scores of each face and its mirror image: for a
    Keras model as ``edge-fer-convert --tta-flip`` bakes into a ``.tflite``,
    for a ``.tflite`` as the daemon's ``classifier.tta_flip`` does.
    ``flip_margin`` does so only for faces whose top-1 minus top-2 score is
    below it (:func:`edge.classify.classifier.flip_gated`), as the daemon's
    ``classifier.flip_margin``; None: a ``.tflite`` sidecar's value (the
    daemon's default), 0 for a Keras model.

    Raises:
        ModelError: missing file or unsupported extension.
    """
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    if model_path.suffix == ".tflite":
        from edge.classify import EmotionClassifier

        clf = EmotionClassifier(model_path, num_threads=num_threads, max_batch=64, tta_flip=tta_flip,
                                flip_margin=flip_margin)
        return clf.predict_batch(x), clf.labels
    if model_path.suffix in (".keras", ".h5"):
        import keras

        from edge.labels import labels_for_outputs
        from training.models_flip import with_flip_tta

        model = keras.models.load_model(model_path, compile=False)
        labels = labels_for_outputs(int(model.output_shape[-1]))
        if tta_flip:
            model = with_flip_tta(model)
        probs = model.predict(x[..., None], batch_size=256, verbose=0)
        if flip_margin and not tta_flip:
            from edge.classify.classifier import flip_gated

            mirror = lambda rows: model.predict(x[rows, :, ::-1, None], batch_size=256, verbose=0)  # noqa: E731
            probs = flip_gated(probs, flip_margin, mirror)
        return probs, labels
    raise ModelError(f"{model_path}: expected a .tflite or .keras model")


def _flip_margin_used(model_path: Path, flip_margin: float | None) -> float:
    """The flip margin :func:`predict_probs` applies: the given one, else a ``.tflite`` sidecar's, else 0."""
    if flip_margin is not None or model_path.suffix != ".tflite":
        return float(flip_margin or 0.0)
    from edge.classify import EmotionClassifier

    return EmotionClassifier(model_path).flip_margin


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
    probs, model_labels = predict_probs(Path(model), ds.x, tta_flip=tta_flip, flip_margin=flip_margin)
    y_true = [ds.labels[i] for i in ds.hard_labels]
    y_pred = [model_labels[i] for i in probs.argmax(1)]
    labels = list(dict.fromkeys([*model_labels, *ds.labels]))
    report = {"model": str(model), "data": str(data), "tta_flip": tta_flip,
              "flip_margin": None if tta_flip else _flip_margin_used(Path(model), flip_margin),
              **metrics_report(y_true, y_pred, labels), "skipped_images": ds.skipped}
    if out_dir:
        from training.plots import plot_confusion

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        plot_confusion(np.array(report["confusion_matrix"]), labels, out / "confusion.png",
                       f"{Path(model).name} on {Path(data).name}: acc {report['accuracy']:.3f}")
    return report
