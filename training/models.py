"""Model definitions, selectable by name: ``edge`` (default) and ``baseline``.

``baseline`` is the seed VGG-style network (conv 64-64 / 128-128 / 256-256 /
512-512 with BatchNorm, max-pool and dropout; dense 512-256-128; softmax 7;
about 5.9M parameters), as in Khaire & Sharma-style FER2013 VGG variants.

``edge`` is a residual depthwise-separable network in the spirit of
Xception (Chollet, 2017, arXiv:1610.02357) and mini-Xception (Arriaga et al.,
2017, arXiv:1710.07557): a strided stem brings 48x48 to 24x24, then four
separable residual stages (64/128/256/512 channels) and global average
pooling. About 0.7M parameters and 20M MACs, so that a full-int8 copy is
<1 MB and runs well under 0.5 ms per face on one core.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from edge.labels import EMOTIONS
from edge.preprocess import INPUT_SIZE


def _conv_bn(x, filters: int, kernel: int = 3, strides: int = 1, separable: bool = False, act: bool = True):
    conv = layers.SeparableConv2D if separable else layers.Conv2D
    x = conv(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x) if act else x


def _sep_residual_block(x, filters: int, dropout: float):
    """Two separable 3x3 convs + 3x3/2 max-pool, with a strided 1x1 projection shortcut."""
    shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
    shortcut = layers.BatchNormalization()(shortcut)
    x = _conv_bn(x, filters, separable=True)
    x = _conv_bn(x, filters, separable=True, act=False)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.ReLU()(layers.Add()([x, shortcut]))
    return layers.SpatialDropout2D(dropout)(x) if dropout else x


def build_edge(num_classes: int = len(EMOTIONS), width: float = 1.0, dropout: float = 0.4) -> keras.Model:
    """The default edge model.

    Args:
        num_classes: Output classes (7 for FER2013 labels).
        width: Channel multiplier for all stages.
        dropout: Dropout before the classifier head.

    Returns:
        An uncompiled ``keras.Model`` mapping float32 (N, 48, 48, 1) in [0, 1]
        to softmax scores (N, num_classes).
    """
    c = lambda n: max(8, int(round(n * width)))  # noqa: E731
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="face")
    x = _conv_bn(inputs, c(32))
    x = _conv_bn(x, c(64), strides=2)
    for i, filters in enumerate((64, 128, 256, 512)):
        x = _sep_residual_block(x, c(filters), dropout=0.1 if i >= 2 else 0.0)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="edge_fer")


def build_baseline(num_classes: int = len(EMOTIONS)) -> keras.Model:
    """The seed VGG-style baseline (~5.9M parameters).

    Args:
        num_classes: Output classes.

    Returns:
        An uncompiled ``keras.Model`` with the same input/output contract as
        :func:`build_edge`.
    """
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="face")
    x = inputs
    for filters in (64, 128, 256, 512):
        x = _conv_bn(x, filters)
        x = _conv_bn(x, filters)
        # 48 -> 24 -> 12 -> 6, then a 3x3/2 pool to 2x2: flatten 2048 -> dense 512 gives the seed's ~5.9M
        x = layers.MaxPooling2D(3, strides=2)(x) if filters == 512 else layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    for units in (512, 256, 128):
        x = layers.Dense(units, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="baseline_vgg")


MODELS: dict[str, Callable[..., keras.Model]] = {"edge": build_edge, "baseline": build_baseline}


def build_model(name: str, num_classes: int = len(EMOTIONS), **kwargs) -> keras.Model:
    """Build a model by name.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](num_classes=num_classes, **kwargs)
