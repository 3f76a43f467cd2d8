"""Weight averaging of fine-tuned models: a "model soup" (needs Keras).

Models fine-tuned from the same initial weights with different seeds tend
to lie in one basin of the loss, where the average of their weights is as
good as or better than each of them, at the cost of one model (Wortsman et
al., 2022, "Model soups", arXiv:2203.05482, the *uniform soup*). Averaged
weights change the activation statistics, so the batch-norm moving mean and
variance are re-estimated afterwards on training faces, with a cumulative
average over batches as ``torch.optim.swa_utils.update_bn`` does (Izmailov
et al., 2018, "Averaging weights leads to wider optima", arXiv:1803.05407).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def average_weights(paths: list[Path]):
    """Load ``.keras`` models of one architecture and set the first to the mean of all their weights.

    Args:
        paths: Two or more ``.keras`` files with identical architectures.

    Returns:
        The first model, holding the element-wise mean of every weight
        (kernels, biases and batch-norm statistics).

    Raises:
        ValueError: if the models' weight shapes differ.
    """
    import keras

    models = [keras.models.load_model(p, compile=False) for p in paths]
    weights = [m.get_weights() for m in models]
    shapes = {tuple(w.shape for w in ws) for ws in weights}
    if len(shapes) != 1:
        raise ValueError(f"{', '.join(map(str, paths))}: the models' architectures differ")
    models[0].set_weights([np.mean(ws, axis=0) for ws in zip(*weights)])
    return models[0]


def reestimate_batchnorm(model, faces: np.ndarray, batch_size: int = 256) -> int:
    """Recompute every batch-norm layer's moving mean and variance on ``faces``.

    Each layer's statistics are reset and then updated in training mode with
    momentum ``k / (k + 1)`` at batch ``k``, i.e. the plain mean of the
    per-batch statistics (as ``torch.optim.swa_utils.update_bn``). The
    forward passes run in training mode, so dropout layers are active, as in
    ``update_bn``.

    Args:
        model: A Keras model with ``BatchNormalization`` layers.
        faces: float32 (N, 48, 48) preprocessed faces in [0, 1], as the
            model's input takes them (``FaceDataset.x``).
        batch_size: Faces per forward pass.

    Returns:
        The number of batch-norm layers updated.
    """
    import keras

    layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))
    if faces.dtype == np.uint8:
        raise ValueError("faces must be float32 in [0, 1] (FaceDataset.x), not uint8")
    x = faces[..., None].astype(np.float32)
    for k, start in enumerate(range(0, len(x), batch_size)):
        for layer in layers:
            layer.momentum = k / (k + 1)
        model(x[start:start + batch_size], training=True)
    for layer, momentum in zip(layers, saved):
        layer.momentum = momentum
    return len(layers)


def _all_layers(model) -> list:
    """Every layer of ``model``, nested models included."""
    found = []
    for layer in model.layers:
        found.extend(_all_layers(layer) if hasattr(layer, "layers") else [layer])
    return found


def make_soup(paths: list[Path], out: Path, faces: np.ndarray | None) -> dict:
    """Average ``paths`` into one model, re-estimate its batch-norm statistics, save it.

    Args:
        paths: Two or more ``.keras`` models fine-tuned from the same weights.
        out: The ``.keras`` file written.
        faces: float32 (N, 48, 48) training faces in [0, 1] for the batch-norm
            statistics (never validation or test faces); None keeps the averaged
            statistics.

    Returns:
        Summary: models averaged, batch-norm layers re-estimated, faces used.
    """
    model = average_weights(paths)
    n_bn = reestimate_batchnorm(model, faces) if faces is not None and len(faces) else 0
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return {"out": str(out), "models": [str(p) for p in paths], "batchnorm_layers": n_bn,
            "faces": 0 if faces is None else len(faces)}
