"""Batch augmentation for training (tf.data, CPU-friendly).

Flip, shift, rotation and zoom (one random affine per image via Keras
preprocessing layers), brightness/contrast jitter, and optional mixup
(Zhang et al., 2018, arXiv:1710.09412).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


def build_augmenter(shift: float = 0.1, rotation_deg: float = 10.0, zoom: float = 0.1,
                    brightness: float = 0.2, contrast: float = 0.2, seed: int = 0) -> keras.Sequential:
    """Random geometric + photometric jitter for float (N, 48, 48, 1) batches in [0, 1].

    Args:
        shift: Max translation as a fraction of the side.
        rotation_deg: Max in-plane rotation in degrees.
        zoom: Max zoom in/out fraction.
        brightness, contrast: Max brightness shift and contrast factor (fractions).
        seed: Seed of the random layers.
    """
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 1),
        layers.RandomRotation(rotation_deg / 360.0, fill_mode="reflect", seed=seed + 2),
        layers.RandomZoom(zoom, zoom, fill_mode="reflect", seed=seed + 3),
        layers.RandomBrightness(brightness, value_range=(0.0, 1.0), seed=seed + 4),
        layers.RandomContrast(contrast, seed=seed + 5),
    ], name="augment")


def mixup(x: tf.Tensor, y: tf.Tensor, alpha: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Mix each sample with a shuffled partner, lambda ~ Beta(alpha, alpha)."""
    n = tf.shape(x)[0]
    g1 = tf.random.gamma([n], alpha)
    g2 = tf.random.gamma([n], alpha)
    lam = g1 / (g1 + g2)
    perm = tf.random.shuffle(tf.range(n))
    lx = tf.reshape(lam, [-1, 1, 1, 1])
    ly = tf.reshape(lam, [-1, 1])
    return lx * x + (1 - lx) * tf.gather(x, perm), ly * y + (1 - ly) * tf.gather(y, perm)


def make_dataset(x, y, batch_size: int, *, train: bool, seed: int, mixup_alpha: float = 0.0,
                 augmenter: keras.Sequential | None = None) -> tf.data.Dataset:
    """tf.data pipeline over in-memory arrays.

    Args:
        x: float32 (N, 48, 48) preprocessed faces.
        y: float32 (N, C) targets.
        batch_size: Images per batch.
        train: Shuffle, augment and mix when True.
        seed: Shuffle seed.
        mixup_alpha: 0 disables mixup.
        augmenter: Augmentation model (default :func:`build_augmenter`).
    """
    ds = tf.data.Dataset.from_tensor_slices((x[..., None], y))
    if not train:
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    aug = augmenter or build_augmenter(seed=seed)
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda a, b: (tf.clip_by_value(aug(a, training=True), 0.0, 1.0), b),
                num_parallel_calls=tf.data.AUTOTUNE)
    if mixup_alpha > 0:
        ds = ds.map(lambda a, b: mixup(a, b, mixup_alpha), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
