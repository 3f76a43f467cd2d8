"""training.augment: NumPy/OpenCV batch jitter and the PyDataset that feeds fit."""

import numpy as np

from training.augment import AugmentConfig, FaceBatches, augment_batch, mixup, random_erase

STILL = AugmentConfig(shift=0.0, rotation_deg=0.0, zoom=0.0, brightness=0.0, contrast=0.0)


def _faces(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 48, 48), dtype=np.float32)
    y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, n)]
    return x, y


def test_without_jitter_each_face_is_kept_or_mirrored():
    x, y = _faces()
    out, ty = augment_batch(x, y, STILL, np.random.default_rng(1))
    assert out.shape == (32, 48, 48, 1) and out.dtype == np.float32 and np.array_equal(ty, y)
    same = [np.allclose(out[i, ..., 0], x[i], atol=1e-6) for i in range(32)]
    mirrored = [np.allclose(out[i, ..., 0], x[i, :, ::-1], atol=1e-6) for i in range(32)]
    assert all(s or m for s, m in zip(same, mirrored)) and 4 < sum(mirrored) < 28


def test_default_jitter_stays_in_range_and_changes_faces():
    x, y = _faces()
    out, _ = augment_batch(x, y, AugmentConfig(), np.random.default_rng(2))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.mean([np.abs(out[i, ..., 0] - x[i]).mean() > 0.01 for i in range(32)]) > 0.9


def test_random_erase_fills_one_rectangle_of_the_stated_area():
    x = np.zeros((200, 48, 48), np.float32)
    out = random_erase(x.copy(), 1.0, np.random.default_rng(3))
    areas = (out > 0).sum(axis=(1, 2)) / (48 * 48)
    assert np.all(areas > 0.005) and np.all(areas <= 0.26)
    none = random_erase(x.copy(), 0.0, np.random.default_rng(3))
    assert not none.any()


def test_mixup_targets_are_convex_combinations():
    x, y = _faces(64)
    mx, my = mixup(x, y, 0.4, np.random.default_rng(4))
    assert np.allclose(my.sum(axis=1), 1.0) and my.min() >= 0
    assert (my.max(axis=1) < 0.99).sum() > 10 and mx.shape == x.shape


def test_training_batches_reshuffle_each_epoch_and_evaluation_batches_cover_all_rows():
    x, y = _faces(100)
    train = FaceBatches(x, y, 32, train=True, seed=5)
    assert len(train) == 3
    first = train[0][1].copy()
    train.on_epoch_end()
    assert not np.array_equal(first, train[0][1])
    val = FaceBatches(x, y, 32, train=False, seed=5)
    assert len(val) == 4
    got = np.concatenate([val[i][0] for i in range(len(val))])
    assert got.shape == (100, 48, 48, 1) and np.array_equal(got[..., 0], x)


def test_batches_are_reproducible_for_a_seed():
    x, y = _faces(64)
    a = FaceBatches(x, y, 32, train=True, seed=7, augment=AugmentConfig(erase=0.5, mixup=0.2))[1]
    b = FaceBatches(x, y, 32, train=True, seed=7, augment=AugmentConfig(erase=0.5, mixup=0.2))[1]
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = FaceBatches(x, y, 32, train=True, seed=8, augment=AugmentConfig(erase=0.5, mixup=0.2))[1]
    assert not np.array_equal(a[0], c[0])
