"""``edge-fer-train fit``: train a model with a validation split carved from training data."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class FitConfig:
    """Training recipe; every field is a CLI option of ``edge-fer-train fit``."""

    data: str
    out: str
    labels: str = "fer2013"          # fer2013 | ferplus
    layout: str = "auto"
    crop: str = "auto"               # folder layout: none | detect | auto (whole photos > 96 px)
    ferplus_mode: str = "soft"       # majority | soft (FER+ only)
    model: str = "edge"
    width: float = 1.0
    epochs: int = 60
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-3
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    mixup: float = 0.0
    class_weight: bool = False
    val_fraction: float = 0.1
    patience: int = 15
    seed: int = 1234
    limit: int = 0                   # use only the first N training images (smoke tests)
    cache: str = str(Path.home() / ".cache" / "edge-fer")
    test: str | None = None          # optional held-out folder evaluated at the end
    kfold: int = 0                   # k-fold CV instead of one fit when > 1


class EpochTimer(keras.callbacks.Callback):
    """Keras callback that records seconds per epoch into the logs as ``epoch_s``."""

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_s"] = time.perf_counter() - self._t


def _compile(model, cfg: FitConfig, steps_per_epoch: int) -> None:
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(total - 1, cfg.warmup_epochs * steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr / 10, decay_steps=total - warmup, alpha=0.01,
        warmup_target=cfg.lr, warmup_steps=warmup)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=cfg.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"])


def _callbacks(cfg: FitConfig, out: Path, n_train: int):
    from tqdm.keras import TqdmCallback

    return [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_accuracy", save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=cfg.patience, restore_best_weights=True),
        EpochTimer(),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        TqdmCallback(epochs=cfg.epochs, data_size=n_train, batch_size=cfg.batch_size, verbose=1),
    ]


def _class_weights(train) -> dict[int, float] | None:
    from sklearn.utils.class_weight import compute_class_weight

    ids = train.hard_labels
    classes = np.unique(ids)
    weights = compute_class_weight("balanced", classes=classes, y=ids)
    return {int(c): float(w) for c, w in zip(classes, weights)}


def fit_once(cfg: FitConfig, train, val, out: Path) -> dict:
    """Train one model on ``train``, early-stopping on ``val``; saves ``model.keras`` in ``out``.

    Returns:
        Summary dict: validation accuracy, epochs run, mean seconds per epoch.
    """
    from training.augment import make_dataset
    from training.models import build_model

    keras.utils.set_random_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = {"width": cfg.width} if cfg.model == "edge" else {}
    model = build_model(cfg.model, num_classes=train.y.shape[1], **kwargs)
    steps = len(train.x) // cfg.batch_size
    _compile(model, cfg, steps)
    train_ds = make_dataset(train.x, train.y, cfg.batch_size, train=True, seed=cfg.seed, mixup_alpha=cfg.mixup)
    val_ds = make_dataset(val.x, val.y, 256, train=False, seed=cfg.seed)
    history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=0,
                        class_weight=_class_weights(train) if cfg.class_weight else None,
                        callbacks=_callbacks(cfg, out, steps * cfg.batch_size))
    model.save(out / "model.keras")
    epoch_s = [s for s in history.history.get("epoch_s", [])]
    return {"val_accuracy": float(max(history.history["val_accuracy"])), "epochs_run": len(epoch_s),
            "seconds_per_epoch": float(np.mean(epoch_s)) if epoch_s else None, "params": model.count_params()}


def load_training_data(cfg: FitConfig):
    """Load the training set named by ``cfg`` (FER2013 layouts or FER+)."""
    from training.data import load_dataset

    mode = cfg.ferplus_mode if cfg.labels == "ferplus" else "majority"
    data = load_dataset(cfg.data, cfg.layout, cache_dir=cfg.cache, usage="Training" if cfg.layout == "csv" else None,
                        ferplus_mode=mode, contempt="neutral", crop=cfg.crop)
    if cfg.limit:
        rng = np.random.default_rng(cfg.seed)
        data = data.subset(np.sort(rng.permutation(len(data.x))[: cfg.limit]))
    return data


def run_fit(cfg: FitConfig) -> dict:
    """Full ``fit`` command: load, split, train (or k-fold), plot curves, evaluate, write ``fit.json``.

    Returns:
        The summary written to ``OUT/fit.json``.
    """
    from training.data import split_validation
    from training.plots import plot_history

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_training_data(cfg)
    summary: dict = {"config": asdict(cfg), "n_images": len(data.x), "labels": list(data.labels)}
    if cfg.kfold > 1:
        summary["kfold"] = run_kfold(cfg, data, out)
    train, val = split_validation(data, cfg.val_fraction, cfg.seed)
    summary.update(n_train=len(train.x), n_val=len(val.x))
    summary.update(fit_once(cfg, train, val, out))
    plot_history(out / "history.csv", out / "curves.png")
    if cfg.test:
        from training.evaluate import evaluate_path

        summary["test"] = evaluate_path(out / "model.keras", cfg.test, out_dir=out / "test_eval")
    (out / "fit.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def validation_split_of(run_dir: str | Path):
    """The validation split a finished ``fit`` run carved (same data, seed and fraction, from ``fit.json``)."""
    from training.data import split_validation

    saved = json.loads((Path(run_dir) / "fit.json").read_text())["config"]
    cfg = FitConfig(**{k: v for k, v in saved.items() if k in FitConfig.__dataclass_fields__})
    return split_validation(load_training_data(cfg), cfg.val_fraction, cfg.seed)[1]


def run_kfold(cfg: FitConfig, data, out: Path) -> dict:
    """Stratified k-fold cross-validation (scikit-learn); returns per-fold validation accuracy."""
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(cfg.kfold, shuffle=True, random_state=cfg.seed)
    accs = []
    for k, (tr, va) in enumerate(folds.split(data.x, data.hard_labels)):
        res = fit_once(cfg, data.subset(tr), data.subset(va), out / f"fold{k}")
        accs.append(res["val_accuracy"])
    return {"val_accuracy": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs))}
