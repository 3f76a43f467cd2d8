"""training.recover: reading the shipped int8 graph back (runtime only, no TensorFlow)."""

import numpy as np
import pytest

from edge.classify import DEFAULT_MODEL
from edge.runtime import load_interpreter
from training.recover import dequantize, edge_ops


@pytest.fixture(scope="module")
def interpreter():
    return load_interpreter(DEFAULT_MODEL)


def test_ops_grouped_as_build_edge_makes_its_layers(interpreter):
    ops = edge_ops(interpreter)
    assert (len(ops.stem), len(ops.shortcut), len(ops.separable), len(ops.dense)) == (2, 4, 8, 1)
    for dw, pw in ops.separable:  # each pointwise conv reads its depthwise conv's output
        assert dw["op_name"] == "DEPTHWISE_CONV_2D" and pw["inputs"][0] == dw["outputs"][0]


def test_per_channel_dequantisation_uses_each_channels_scale(interpreter):
    conv = edge_ops(interpreter).stem[1]
    index = conv["inputs"][1]
    detail = next(t for t in interpreter.get_tensor_details() if t["index"] == index)
    scales = detail["quantization_parameters"]["scales"]
    w = dequantize(interpreter, index)
    q = interpreter.get_tensor(index)
    assert w.dtype == np.float32 and w.shape == q.shape and len(scales) == q.shape[0] > 1
    # Symmetric per-channel int8: each output channel's largest |q| is 127, so its largest |w| is 127 * scale.
    assert np.allclose(np.abs(w).reshape(len(scales), -1).max(1), 127 * scales, rtol=1e-6)
    assert np.array_equal(np.sign(w), np.sign(q))
    bias = dequantize(interpreter, conv["inputs"][2])
    assert bias.shape == (q.shape[0],) and np.isfinite(bias).all() and np.abs(bias).max() > 0
