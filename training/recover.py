"""Recover a trainable float Keras ``edge`` model from its full-int8 ``.tflite``.

The repository ships int8 models, not Keras checkpoints, so a later
fine-tune starts here. Each int8 weight is dequantised with its per-channel
scale (w = scale * (q - zero_point), TFLite quantization spec:
https://ai.google.dev/edge/litert/models/quantization_spec). The TFLite
converter folds every BatchNorm into the conv before it (kernel * gamma /
sigma, plus a bias), so the BatchNorm layers are rebuilt to compute the same
function: with the per-channel mean ``m`` and variance ``v`` of the conv
output on real faces, ``gamma = sqrt(v + eps)``, ``beta = m + bias``,
moving mean ``m`` and variance ``v``. Inference then reproduces the int8
model up to activation rounding, and training-mode BatchNorm (batch
statistics) starts where inference is instead of jumping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.runtime import ModelError, load_interpreter

STEM_CHANNELS = 32  # first conv of ``training.models.build_edge`` at width 1.0


def dequantize(interpreter, index: int) -> np.ndarray:
    """Float32 values of a constant int8/int32 tensor (per-tensor or per-channel)."""
    detail = next(t for t in interpreter.get_tensor_details() if t["index"] == index)
    q = interpreter.get_tensor(index).astype(np.float32)
    params = detail["quantization_parameters"]
    scales, zeros = params["scales"].astype(np.float32), params["zero_points"].astype(np.float32)
    if len(scales) == 0:
        return q
    shape = [1] * q.ndim
    if len(scales) > 1:
        shape[params["quantized_dimension"]] = -1
    return (q - zeros.reshape(shape)) * scales.reshape(shape)


@dataclass
class EdgeOps:
    """The weighted TFLite ops of an ``edge`` model, grouped as ``build_edge`` creates its layers."""

    stem: list = field(default_factory=list)        # 3x3 CONV_2D
    shortcut: list = field(default_factory=list)    # strided 1x1 CONV_2D projections
    separable: list = field(default_factory=list)   # (DEPTHWISE_CONV_2D, following 1x1 CONV_2D)
    dense: list = field(default_factory=list)       # FULLY_CONNECTED


def edge_ops(interpreter) -> EdgeOps:
    """Group the ops of an ``edge`` int8 graph, each group in graph order.

    Uses the interpreter's ``_get_ops_details`` (op names and tensor indices),
    the only op-level view LiteRT's Python API offers.

    Raises:
        ModelError: the graph is not an ``edge`` model.
    """
    ops = interpreter._get_ops_details()
    shape = {t["index"]: tuple(int(v) for v in t["shape"]) for t in interpreter.get_tensor_details()}
    grouped = EdgeOps()
    for op in ops:
        name = op["op_name"]
        if name == "CONV_2D":
            x, w = op["inputs"][:2]
            if shape[w][1] == 3:
                grouped.stem.append(op)
            elif shape[op["outputs"][0]][1] < shape[x][1]:
                grouped.shortcut.append(op)
        elif name == "DEPTHWISE_CONV_2D":
            pointwise = [p for p in ops if p["op_name"] == "CONV_2D" and p["inputs"][0] == op["outputs"][0]]
            if len(pointwise) != 1:
                raise ModelError("not an edge model: a depthwise conv without one pointwise conv after it")
            grouped.separable.append((op, pointwise[0]))
        elif name == "FULLY_CONNECTED":
            grouped.dense.append(op)
    return grouped


def _load_weights(model, interpreter, ops: EdgeOps) -> dict[str, np.ndarray]:
    """Set conv/dense weights from the int8 graph; returns each conv layer's folded bias by layer name."""
    from keras import layers

    convs = [layer for layer in model.layers if type(layer) is layers.Conv2D]
    stem = [layer for layer in convs if layer.kernel_size == (3, 3)]
    shortcut = [layer for layer in convs if layer.kernel_size == (1, 1)]
    separable = [layer for layer in model.layers if isinstance(layer, layers.SeparableConv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    counts = (len(stem), len(shortcut), len(separable), len(dense))
    if counts != (len(ops.stem), len(ops.shortcut), len(ops.separable), len(ops.dense)):
        raise ModelError(f"not an edge model of this width: layer counts {counts} differ from the graph's")
    bias = {}
    for layer, op in zip(stem + shortcut, ops.stem + ops.shortcut):
        kernel = dequantize(interpreter, op["inputs"][1]).transpose(1, 2, 3, 0)  # (out,kh,kw,in) -> (kh,kw,in,out)
        if kernel.shape != tuple(layer.kernel.shape):
            raise ModelError(f"not an edge model of this width: {layer.name} {layer.kernel.shape} vs {kernel.shape}")
        layer.set_weights([kernel])
        bias[layer.name] = dequantize(interpreter, op["inputs"][2])
    for layer, (dw, pw) in zip(separable, ops.separable):
        depthwise = dequantize(interpreter, dw["inputs"][1])[0][..., None]       # (1,kh,kw,C) -> (kh,kw,C,1)
        pointwise = dequantize(interpreter, pw["inputs"][1]).transpose(1, 2, 3, 0)
        layer.set_weights([depthwise, pointwise])
        depthwise_bias = dequantize(interpreter, dw["inputs"][2])  # passes linearly through the pointwise conv
        bias[layer.name] = dequantize(interpreter, pw["inputs"][2]) + depthwise_bias @ pointwise[0, 0]
    dense[0].set_weights([dequantize(interpreter, ops.dense[0]["inputs"][1]).T,
                          dequantize(interpreter, ops.dense[0]["inputs"][2])])
    return bias


def recover_edge(tflite_path: str | Path, faces: np.ndarray):
    """Rebuild the float Keras ``edge`` model of a full-int8 ``.tflite``.

    Args:
        tflite_path: int8 model made by ``edge-fer-convert`` from an ``edge`` model.
        faces: float32 (N, 48, 48) preprocessed training faces in [0, 1] for the
            BatchNorm statistics (a few thousand are plenty).

    Returns:
        An uncompiled ``keras.Model`` (architecture ``build_edge``; the width is
        read from the stem's channel count).

    Raises:
        ModelError: missing file, or a graph that is not an ``edge`` model.
    """
    import keras
    from keras import layers

    from training.models import build_model

    interpreter = load_interpreter(tflite_path, 2)
    ops = edge_ops(interpreter)
    if not ops.stem or not ops.dense:
        raise ModelError(f"{tflite_path}: not an edge model (no stem conv or classifier)")
    stem_channels = interpreter.get_tensor(ops.stem[0]["inputs"][1]).shape[0]
    model = build_model("edge", width=stem_channels / STEM_CHANNELS)
    bias = _load_weights(model, interpreter, ops)
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    sources = [norm.input._keras_history[0].name for norm in norms]
    for norm, src in zip(norms, sources):  # first the folded form (identity + bias), for the probe below
        b = bias[src]
        norm.set_weights([np.ones_like(b), b, np.zeros_like(b), np.full_like(b, 1 - norm.epsilon)])
    probe = keras.Model(model.input, [norm.input for norm in norms])
    for acts, norm, src in zip(probe.predict(faces[..., None], batch_size=256, verbose=0), norms, sources):
        flat = acts.reshape(-1, acts.shape[-1])
        mean, var = flat.mean(0), flat.var(0)
        norm.set_weights([np.sqrt(var + norm.epsilon), mean + bias[src], mean, var])
    return model
