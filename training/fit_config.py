"""The ``fit`` recipe (:class:`FitConfig`) and the data it names, without Keras.

Kept apart from :mod:`training.fit` so that ``edge-fer-train --help``,
``fit --help`` and ``evaluate --val-of`` work in an install without
TensorFlow/Keras (the runtime dependencies plus the ``[eval]`` extra).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class FitConfig:
    """Training recipe; every field is a CLI option of ``edge-fer-train fit``."""

    data: str
    out: str
    labels: str = "fer2013"          # fer2013 | ferplus
    layout: str = "auto"
    crop: str = "auto"               # folder layout: none | detect | auto (whole photos > 96 px)
    ferplus_mode: str = "soft"       # majority | soft (FER+ only)
    contempt: str = "neutral"        # FER+ only: neutral (7 labels, the runtime's) | keep (8 labels)
    model: str = "edge"
    width: float = 1.0
    epochs: int = 60
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-3
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    mixup: float = 0.0
    erase: float = 0.0               # random-erasing probability per image
    teacher: str | None = None       # .keras model or saved scores (.npy/.npz ensemble) blended into the targets
    distill: float = 0.5             # weight of the teacher's scores in the targets
    workers: int = 2                 # threads building augmented batches
    init: str | None = None          # .keras model of the same architecture to start from (fine-tuning)
    swa_start: int = 0               # > 0: average the weights of epochs swa_start.. (1-based) into the final model
    time_budget: float = 0.0         # seconds; > 0: cosine over wall-clock time, stop when spent
    class_weight: bool = False
    val_fraction: float = 0.1
    patience: int = 15
    seed: int = 1234
    split_seed: int | None = None    # seed of the validation split only (default: seed)
    limit: int = 0                   # use only the first N training images (smoke tests)
    cache: str = str(Path.home() / ".cache" / "edge-fer")
    test: str | None = None          # optional held-out folder evaluated at the end
    kfold: int = 0                   # k-fold CV instead of one fit when > 1

    @property
    def split_seed_or_seed(self) -> int:
        """Seed of the validation split: ``split_seed`` when given, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed


def load_training_data(cfg: FitConfig):
    """Load the training set named by ``cfg`` (FER2013 layouts or FER+)."""
    from training.data import load_dataset

    mode = cfg.ferplus_mode if cfg.labels == "ferplus" else "majority"
    data = load_dataset(cfg.data, cfg.layout, cache_dir=cfg.cache, usage="Training" if cfg.layout == "csv" else None,
                        ferplus_mode=mode, contempt=cfg.contempt, crop=cfg.crop)
    if cfg.limit:
        rng = np.random.default_rng(cfg.seed)
        data = data.subset(np.sort(rng.permutation(len(data.x))[: cfg.limit]))
    return data


def validation_split_of(run_dir: str | Path):
    """The validation split a finished ``fit`` run carved (same data, seed and fraction, from ``fit.json``).

    Raises:
        DataError: if ``run_dir`` holds no readable ``fit.json``.
    """
    return splits_of(run_dir)[1]


def splits_of(run_dir: str | Path):
    """The (training, validation) split of a finished ``fit`` run, rebuilt from its ``fit.json``.

    Raises:
        DataError: if ``run_dir`` holds no readable ``fit.json``.
    """
    from training.data import DataError, split_validation

    try:
        saved = json.loads((Path(run_dir) / "fit.json").read_text())["config"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{run_dir}: expected a fit run folder with fit.json ({exc})") from None
    cfg = FitConfig(**{k: v for k, v in saved.items() if k in FitConfig.__dataclass_fields__})
    return split_validation(load_training_data(cfg), cfg.val_fraction, cfg.split_seed_or_seed)
