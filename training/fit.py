"""``edge-fer-train fit``: train a model with a validation split carved from training data."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from training.fit_config import FitConfig, load_training_data, validation_split_of  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


class EpochTimer(keras.callbacks.Callback):
    """Keras callback that records seconds per epoch into the logs as ``epoch_s``."""

    def on_epoch_begin(self, epoch, logs=None):
        """Start the epoch's clock."""
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        """Add ``epoch_s`` (wall-clock seconds of the epoch) to ``logs``."""
        if logs is not None:
            logs["epoch_s"] = time.perf_counter() - self._t


class TimeBudgetCosine(keras.callbacks.Callback):
    """Cosine learning-rate decay over wall-clock time instead of steps; stops when the budget is spent.

    For leased machines whose speed is not known in advance: the rate warms up
    linearly for ``warmup_epochs``, then follows a cosine (Loshchilov & Hutter,
    2017, arXiv:1608.03983) of the elapsed fraction of ``budget_s``, and
    training stops before an epoch that would overrun the budget.

    Args:
        lr: Peak learning rate.
        budget_s: Training wall-clock budget in seconds.
        warmup_epochs: Epochs of linear warm-up.
        alpha: Final rate as a fraction of ``lr``.
    """

    def __init__(self, lr: float, budget_s: float, warmup_epochs: int, alpha: float = 0.01):
        super().__init__()
        self.lr, self.budget_s, self.warmup_epochs, self.alpha = lr, budget_s, warmup_epochs, alpha
        self._t0 = self._start = self._epoch_s = 0.0

    def on_train_begin(self, logs=None):
        """Start the budget's clock."""
        self._t0 = time.perf_counter()

    def rate(self, epoch: int, elapsed_s: float) -> float:
        """Learning rate for ``epoch`` after ``elapsed_s`` seconds."""
        if epoch < self.warmup_epochs:
            return self.lr * (epoch + 1) / self.warmup_epochs
        progress = min(1.0, elapsed_s / self.budget_s)
        return self.lr * (self.alpha + (1 - self.alpha) * 0.5 * (1 + np.cos(np.pi * progress)))

    def on_epoch_begin(self, epoch, logs=None):
        """Set the optimizer's learning rate to :meth:`rate` of this epoch and the elapsed time."""
        self._start = time.perf_counter()
        self.model.optimizer.learning_rate.assign(self.rate(epoch, self._start - self._t0))

    def on_epoch_end(self, epoch, logs=None):
        """Log ``lr``; stop training when one more epoch (as long as this one) would overrun the budget."""
        now = time.perf_counter()
        self._epoch_s = now - self._start if epoch else 0.0  # the first epoch includes compilation
        if logs is not None:
            logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if now - self._t0 + self._epoch_s > self.budget_s:
            self.model.stop_training = True


class WeightAverage(keras.callbacks.Callback):
    """Stochastic weight averaging (Izmailov et al., 2018, arXiv:1803.05407).

    Sums the weights after every epoch from ``start`` (1-based) on and sets
    their mean at the end of training. Batch-norm statistics are averaged
    like the weights instead of being re-estimated, which holds when the
    averaged epochs come from a low-learning-rate phase.

    Args:
        start: First epoch (1-based) to include.
    """

    def __init__(self, start: int):
        super().__init__()
        self.start, self.count, self._sum = start, 0, None

    def on_epoch_end(self, epoch, logs=None):
        """Add the weights to the running sum from epoch ``start`` on."""
        if epoch + 1 < self.start:
            return
        weights = self.model.get_weights()
        self._sum = weights if self._sum is None else [a + b for a, b in zip(self._sum, weights)]
        self.count += 1

    def on_train_end(self, logs=None):
        """Set the model's weights to the mean of the summed ones (if any epoch was summed)."""
        if self.count:
            self.model.set_weights([a / self.count for a in self._sum])


def _compile(model, cfg: FitConfig, steps_per_epoch: int) -> None:
    schedule = cfg.lr if cfg.time_budget > 0 else _step_cosine(cfg, steps_per_epoch)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=cfg.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"])


def _step_cosine(cfg: FitConfig, steps_per_epoch: int):
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(total - 1, cfg.warmup_epochs * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr / 10, decay_steps=total - warmup, alpha=0.01,
        warmup_target=cfg.lr, warmup_steps=warmup)


def _callbacks(cfg: FitConfig, out: Path, n_train: int):
    from tqdm.keras import TqdmCallback

    budget = [TimeBudgetCosine(cfg.lr, cfg.time_budget, cfg.warmup_epochs)] if cfg.time_budget > 0 else []
    return budget + [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_accuracy", save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=cfg.patience, restore_best_weights=True),
        EpochTimer(),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        TqdmCallback(epochs=cfg.epochs, data_size=n_train, batch_size=cfg.batch_size, verbose=1),
    ] + ([WeightAverage(cfg.swa_start)] if cfg.swa_start > 0 else [])  # after EarlyStopping's restore


def _class_weights(train) -> dict[int, float] | None:
    from sklearn.utils.class_weight import compute_class_weight

    ids = train.hard_labels
    classes = np.unique(ids)
    weights = compute_class_weight("balanced", classes=classes, y=ids)
    return {int(c): float(w) for c, w in zip(classes, weights)}


def fit_once(cfg: FitConfig, train, val, out: Path) -> dict:
    """Train one model on ``train``, early-stopping on ``val``; saves ``model.keras`` in ``out``.

    Returns:
        Summary dict: best per-epoch validation accuracy, validation accuracy
        of the saved model (``final_val_accuracy``: restored best epoch, or
        the weight average), epochs run, mean seconds per epoch.
    """
    from training.augment import AugmentConfig, FaceBatches
    from training.models import build_model

    keras.utils.set_random_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = {"width": cfg.width} if cfg.model == "edge" else {}
    model = build_model(cfg.model, num_classes=train.y.shape[1], **kwargs)
    if cfg.init:
        model.set_weights(keras.models.load_model(cfg.init, compile=False).get_weights())
    steps = len(train.x) // cfg.batch_size
    _compile(model, cfg, steps)
    train_ds = FaceBatches(train.x, train.y, cfg.batch_size, train=True, seed=cfg.seed, workers=cfg.workers,
                           augment=AugmentConfig(erase=cfg.erase, mixup=cfg.mixup))
    val_ds = FaceBatches(val.x, val.y, 256, train=False, seed=cfg.seed)
    history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=0,
                        class_weight=_class_weights(train) if cfg.class_weight else None,
                        callbacks=_callbacks(cfg, out, steps * cfg.batch_size))
    model.save(out / "model.keras")
    final = model.evaluate(val_ds, verbose=0, return_dict=True)
    epoch_s = [s for s in history.history.get("epoch_s", [])]
    return {"val_accuracy": float(max(history.history["val_accuracy"])),
            "final_val_accuracy": float(final["accuracy"]), "epochs_run": len(epoch_s),
            "seconds_per_epoch": float(np.mean(epoch_s)) if epoch_s else None, "params": model.count_params()}


def teacher_scores(teacher: str, data) -> np.ndarray:
    """Teacher scores for every face of the full training data (before the validation split).

    Args:
        teacher: ``.keras`` model (its scores are averaged over each face and
            its mirror image), ``.npy`` float32 (N, C) scores saved earlier
            for the same data in the same order, or ``.npz`` of several such
            arrays (an ensemble: their mean is used, e.g. the
            ``teacher_scores.npz`` of ``scripts/device_fit.sh``).
        data: The full training dataset.

    Returns:
        float32 (N, C) scores.

    Raises:
        DataError: if a ``.npy`` file does not match the data's shape.
    """
    from training.data import DataError

    if teacher.endswith((".npy", ".npz")):
        loaded = np.load(teacher)
        scores = (np.mean([loaded[k] for k in loaded.files], axis=0) if teacher.endswith(".npz")
                  else loaded).astype(np.float32)
        if scores.shape != data.y.shape:
            raise DataError(f"{teacher}: expected teacher scores of shape {data.y.shape}, got {scores.shape}")
        return scores
    from training.evaluate import predict_probs

    return predict_probs(Path(teacher), data.x, tta_flip=True)[0].astype(np.float32)


def distilled(train, scores: np.ndarray, weight: float):
    """Knowledge distillation by target blending (Hinton et al., 2015, arXiv:1503.02531, T = 1).

    Args:
        train: Training rows (targets y float32 (N, C)).
        scores: float32 (N, C) teacher scores for the same rows.
        weight: Teacher weight in [0, 1]: ``y = (1 - weight) * y + weight * scores``.

    Returns:
        A dataset with the same faces and blended targets.
    """
    from training.data import FaceDataset

    y = (1 - weight) * train.y + weight * scores
    return FaceDataset(train.x, y.astype(np.float32), train.labels)


def run_fit(cfg: FitConfig) -> dict:
    """Full ``fit`` command: load, split, train (or k-fold), plot curves, evaluate, write ``fit.json``.

    Returns:
        The summary written to ``OUT/fit.json``.
    """
    from training.data import split_indices
    from training.plots import plot_history

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_training_data(cfg)
    summary: dict = {"config": asdict(cfg), "n_images": len(data.x), "labels": list(data.labels)}
    if cfg.kfold > 1:
        summary["kfold"] = run_kfold(cfg, data, out)
    train_idx, val_idx = split_indices(data, cfg.val_fraction, cfg.split_seed_or_seed)
    train, val = data.subset(train_idx), data.subset(val_idx)
    if cfg.teacher:
        train = distilled(train, teacher_scores(cfg.teacher, data)[train_idx], cfg.distill)
    summary.update(n_train=len(train.x), n_val=len(val.x))
    summary.update(fit_once(cfg, train, val, out))
    plot_history(out / "history.csv", out / "curves.png")
    if cfg.test:
        from training.evaluate import evaluate_path

        summary["test"] = evaluate_path(out / "model.keras", cfg.test, out_dir=out / "test_eval")
    (out / "fit.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def run_kfold(cfg: FitConfig, data, out: Path) -> dict:
    """Stratified k-fold cross-validation (scikit-learn); returns per-fold validation accuracy."""
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(cfg.kfold, shuffle=True, random_state=cfg.seed)
    accs = []
    for k, (tr, va) in enumerate(folds.split(data.x, data.hard_labels)):
        res = fit_once(cfg, data.subset(tr), data.subset(va), out / f"fold{k}")
        accs.append(res["val_accuracy"])
    return {"val_accuracy": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs))}
