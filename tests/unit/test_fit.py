"""training.fit: wall-clock cosine schedule and distillation targets."""

import math

import numpy as np
import pytest

from training.data import DataError, FaceDataset
from training.fit import TimeBudgetCosine, distilled, teacher_scores


def test_time_budget_cosine_warms_up_then_decays_to_alpha():
    cb = TimeBudgetCosine(lr=1e-3, budget_s=100.0, warmup_epochs=2, alpha=0.01)
    assert cb.rate(0, 0.0) == pytest.approx(5e-4) and cb.rate(1, 3.0) == pytest.approx(1e-3)
    assert cb.rate(5, 0.0) == pytest.approx(1e-3)
    assert cb.rate(5, 50.0) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
    assert cb.rate(5, 100.0) == pytest.approx(1e-5) and cb.rate(5, 500.0) == pytest.approx(1e-5)
    rates = [cb.rate(9, t) for t in range(0, 101, 10)]
    assert all(a >= b for a, b in zip(rates, rates[1:])) and not math.isnan(sum(rates))


def _data(n=10):
    y = np.eye(7, dtype=np.float32)[np.arange(n) % 7]
    return FaceDataset(np.zeros((n, 48, 48), np.float32), y)


def test_distilled_targets_blend_labels_and_teacher_scores():
    data = _data()
    scores = np.full((10, 7), 1 / 7, np.float32)
    blended = distilled(data, scores, 0.8)
    assert np.allclose(blended.y.sum(axis=1), 1.0)
    assert blended.y[0, 0] == pytest.approx(0.2 + 0.8 / 7) and blended.y[0, 1] == pytest.approx(0.8 / 7)
    assert np.array_equal(blended.x, data.x)


def test_teacher_scores_from_an_ensemble_file_are_the_mean(tmp_path):
    data = _data()
    a, b = np.eye(7, dtype=np.float32)[np.zeros(10, int)], np.eye(7, dtype=np.float32)[np.ones(10, int)]
    np.savez(tmp_path / "ens.npz", a=a, b=b)
    assert np.allclose(teacher_scores(str(tmp_path / "ens.npz"), data), (a + b) / 2)
    np.save(tmp_path / "short.npy", a[:5])
    with pytest.raises(DataError, match=r"expected teacher scores of shape \(10, 7\)"):
        teacher_scores(str(tmp_path / "short.npy"), data)


def test_weight_average_sets_the_mean_of_the_epochs_from_start():
    import keras

    from training.fit import WeightAverage

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    swa = WeightAverage(start=2)
    swa.set_model(model)
    kernels = []
    for epoch, value in enumerate((1.0, 2.0, 4.0, 6.0)):
        model.set_weights([np.full((3, 2), value, np.float32), np.zeros(2, np.float32)])
        kernels.append(value)
        swa.on_epoch_end(epoch)
    swa.on_train_end()
    assert swa.count == 3 and np.allclose(model.get_weights()[0], np.mean(kernels[1:]))
