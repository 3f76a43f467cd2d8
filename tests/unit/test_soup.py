"""training.soup: uniform weight averaging and batch-norm re-estimation."""

import keras
import numpy as np
import pytest

from training.models import build_model
from training.soup import average_weights, make_soup, reestimate_batchnorm


def _saved_edge_models(tmp_path, n=2):
    paths = []
    for seed in range(n):
        keras.utils.set_random_seed(seed)
        model = build_model("edge", width=0.25)
        paths.append(tmp_path / f"m{seed}.keras")
        model.save(paths[-1])
    return paths


def test_average_weights_is_the_elementwise_mean(tmp_path):
    paths = _saved_edge_models(tmp_path, 3)
    originals = [keras.models.load_model(p, compile=False).get_weights() for p in paths]
    soup = average_weights(paths)
    for got, *parts in zip(soup.get_weights(), *originals):
        np.testing.assert_allclose(got, np.mean(parts, axis=0), rtol=1e-6, atol=1e-7)


def test_average_weights_refuses_different_architectures(tmp_path):
    paths = _saved_edge_models(tmp_path, 1)
    build_model("edge", width=0.5).save(tmp_path / "wide.keras")
    with pytest.raises(ValueError, match="architectures differ"):
        average_weights([paths[0], tmp_path / "wide.keras"])


def test_reestimated_statistics_are_the_mean_and_variance_of_the_layer_inputs():
    inputs = keras.Input((48, 48, 1))
    conv = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(conv))
    faces = np.random.default_rng(0).uniform(0, 1, (64, 48, 48)).astype(np.float32)
    assert reestimate_batchnorm(model, faces, batch_size=16) == 1
    feats = keras.Model(inputs, conv)(faces[..., None]).numpy().reshape(4, -1, 4)  # 4 batches of 16 faces
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), feats.mean(axis=(0, 1)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), feats.var(axis=1).mean(axis=0), rtol=1e-3, atol=1e-5)
    assert bn.momentum == pytest.approx(0.99)  # restored


def test_make_soup_saves_a_model_that_predicts(tmp_path):
    paths = _saved_edge_models(tmp_path, 2)
    faces = np.random.default_rng(1).integers(0, 256, (32, 48, 48)).astype(np.float32) / 255
    summary = make_soup(paths, tmp_path / "soup.keras", faces)
    assert summary["batchnorm_layers"] > 0 and summary["faces"] == 32
    probs = keras.models.load_model(tmp_path / "soup.keras", compile=False).predict(faces[..., None], verbose=0)
    assert probs.shape == (32, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
