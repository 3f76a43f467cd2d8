"""Batch augmentation for training, in NumPy and OpenCV (any Keras backend).

Flip, one random affine per image (shift, rotation, zoom), brightness and
contrast jitter, optional random erasing (Zhong et al., 2017,
arXiv:1708.04896) and optional mixup (Zhang et al., 2018, arXiv:1710.09412).
The batches are built on the CPU by a :class:`keras.utils.PyDataset`, so the
same pipeline feeds TensorFlow on a 2-core board and JAX or PyTorch on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import keras
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random jitter.

    Attributes:
        shift: Max translation as a fraction of the side.
        rotation_deg: Max in-plane rotation in degrees.
        zoom: Max zoom in/out fraction.
        brightness: Max additive brightness shift (image range is [0, 1]).
        contrast: Max contrast factor deviation from 1.
        erase: Probability of erasing one random rectangle (0 disables).
        mixup: Beta(alpha, alpha) parameter of mixup (0 disables).
    """

    shift: float = 0.1
    rotation_deg: float = 10.0
    zoom: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.2
    erase: float = 0.0
    mixup: float = 0.0


def random_affine(images: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One random shift/rotation/zoom per image, borders reflected.

    Args:
        images: float32 (N, H, W) in [0, 1].
        cfg: Jitter ranges.
        rng: Random generator.

    Returns:
        float32 (N, H, W) warped copies.
    """
    n, h, w = images.shape
    angles = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg, (n,))
    scales = 1.0 + rng.uniform(-cfg.zoom, cfg.zoom, (n,))
    shifts = rng.uniform(-cfg.shift, cfg.shift, (n, 2)) * (w, h)
    out = np.empty_like(images)
    for i in range(n):
        m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angles[i], scales[i])
        m[:, 2] += shifts[i]
        out[i] = cv2.warpAffine(images[i], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return out


def random_erase(images: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Random erasing: with probability ``p`` fill one rectangle with uniform noise, in place.

    Area 2-25% of the image and aspect ratio 0.3-3.3, as in Zhong et al. (2017).

    Args:
        images: float32 (N, H, W) in [0, 1].
        p: Probability per image.
        rng: Random generator.
    """
    n, h, w = images.shape
    for i in np.flatnonzero(rng.random(n) < p):
        area = rng.uniform(0.02, 0.25) * h * w
        aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
        eh, ew = min(h, int(round(np.sqrt(area * aspect)))), min(w, int(round(np.sqrt(area / aspect))))
        y0, x0 = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
        images[i, y0:y0 + eh, x0:x0 + ew] = rng.random((eh, ew), dtype=np.float32)
    return images


def mixup(x: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mix each sample with a shuffled partner, lambda ~ Beta(alpha, alpha) per sample.

    Args:
        x: float32 (N, ...) inputs.
        y: float32 (N, C) targets.
        alpha: Beta distribution parameter (> 0).
        rng: Random generator.
    """
    lam = rng.beta(alpha, alpha, len(x)).astype(np.float32)
    perm = rng.permutation(len(x))
    lx = lam.reshape((-1,) + (1,) * (x.ndim - 1))
    return lx * x + (1 - lx) * x[perm], lam[:, None] * y + (1 - lam[:, None]) * y[perm]


def augment_batch(x: np.ndarray, y: np.ndarray, cfg: AugmentConfig,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Apply every enabled jitter to one batch.

    Args:
        x: float32 (N, 48, 48) preprocessed faces in [0, 1].
        y: float32 (N, C) targets.
        cfg: Jitter ranges.
        rng: Random generator.

    Returns:
        (x, y): float32 (N, 48, 48, 1) in [0, 1] and float32 (N, C).
    """
    n = len(x)
    x = np.where((rng.random(n) < 0.5)[:, None, None], x[:, :, ::-1], x)
    x = random_affine(x, cfg, rng)
    x = x + rng.uniform(-cfg.brightness, cfg.brightness, (n, 1, 1)).astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    x = (x - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, (n, 1, 1)).astype(np.float32) + mean
    x = np.clip(x, 0.0, 1.0)
    if cfg.erase > 0:
        x = random_erase(x, cfg.erase, rng)
    if cfg.mixup > 0:
        x, y = mixup(x, y, cfg.mixup, rng)
    return x[..., None].astype(np.float32), y.astype(np.float32)


class FaceBatches(keras.utils.PyDataset):
    """Shuffled, augmented batches over in-memory arrays (or plain batches for evaluation).

    Args:
        x: float32 (N, 48, 48) preprocessed faces.
        y: float32 (N, C) targets.
        batch_size: Images per batch.
        train: Shuffle each epoch, drop the last partial batch and augment when True.
        seed: Seed of shuffling and jitter.
        augment: Jitter ranges (default :class:`AugmentConfig`).
        workers: Threads building batches (OpenCV releases the GIL).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, *, train: bool, seed: int,
                 augment: AugmentConfig | None = None, workers: int = 2):
        super().__init__(workers=workers if train else 1, use_multiprocessing=False, max_queue_size=16)
        self.x, self.y, self.batch_size, self.train = x, y, batch_size, train
        self.augment = augment or AugmentConfig()
        self._seed, self._epoch = seed, 0
        self._order = np.arange(len(x))
        self.on_epoch_end()

    def __len__(self) -> int:
        if self.train:
            return max(1, len(self.x) // self.batch_size)
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index: int):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        x, y = self.x[idx], self.y[idx]
        if not self.train:
            return x[..., None], y
        rng = np.random.default_rng((self._seed, self._epoch, index))
        return augment_batch(x, y, self.augment, rng)

    def on_epoch_end(self) -> None:
        """Reshuffle for the next epoch (training batches only)."""
        if self.train:
            self._order = np.random.default_rng((self._seed, self._epoch)).permutation(len(self.x))
            self._epoch += 1
