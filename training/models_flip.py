"""Horizontal-flip test-time augmentation as one Keras graph (used by evaluation and conversion)."""

from __future__ import annotations


def with_flip_tta(model):
    """Wrap a model so it averages its scores on the face and its mirror image.

    One graph, batch-concatenated (x and flip(x)), so the weights are stored
    once; output shape and meaning are unchanged.
    """
    import keras
    from keras import ops

    inputs = keras.Input(model.input_shape[1:], name="face")
    both = ops.concatenate([inputs, ops.flip(inputs, axis=2)], axis=0)
    scores = model(both)
    outputs = ops.mean(ops.reshape(scores, (2, -1, scores.shape[-1])), axis=0)
    return keras.Model(inputs, outputs, name=f"{model.name}_fliptta")
