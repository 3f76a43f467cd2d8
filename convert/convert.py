"""``edge-fer-convert``: Keras model -> ``.tflite`` with a metadata sidecar and a parity report.

Full-int8 follows the TensorFlow post-training integer quantization guide
(https://www.tensorflow.org/lite/performance/post_training_integer_quant):
``Optimize.DEFAULT``, a representative dataset, ``TFLITE_BUILTINS_INT8`` only,
int8 input and output tensors. Calibration images go through
``edge.preprocess.preprocess_face`` exactly as at run time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from edge.labels import labels_for_outputs
from edge.preprocess import DEFAULT_CROP_MARGIN, INPUT_SIZE, PIXEL_SCALE
from training.models_flip import with_flip_tta

QUANT_MODES = ("int8", "float16", "none")


def _converter(keras_path: Path, tta_flip: bool = False):
    import keras
    import tensorflow as tf

    model = keras.models.load_model(keras_path, compile=False)
    if tta_flip:
        model = with_flip_tta(model)
    export_dir = Path(tempfile.mkdtemp(prefix="edge-fer-export-"))
    model.export(str(export_dir), format="tf_saved_model", verbose=False)
    return model, tf, tf.lite.TFLiteConverter.from_saved_model(str(export_dir))


def convert_model(keras_path: Path, quantize: str, calibration: np.ndarray | None, tta_flip: bool = False) -> bytes:
    """Convert a Keras model to TFLite bytes.

    Args:
        keras_path: ``.keras`` file.
        quantize: ``int8`` (full integer, int8 in/out), ``float16`` or ``none``.
        calibration: float32 (N, 48, 48) preprocessed faces for int8 calibration (N >= 500 advised).
        tta_flip: Bake horizontal-flip test-time augmentation into the model (2x compute).

    Raises:
        ValueError: int8 without calibration data, or an unknown mode.
    """
    if quantize not in QUANT_MODES:
        raise ValueError(f"unknown quantization {quantize!r}; expected one of {QUANT_MODES}")
    _, tf, conv = _converter(keras_path, tta_flip)
    if quantize == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if calibration is None or len(calibration) == 0:
            raise ValueError("int8 needs calibration images")

        def representative():
            for face in calibration:
                yield [face[None, :, :, None].astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def sidecar(tflite_path: Path, quantize: str, dataset: str, extra: dict,
            labels: tuple[str, ...] | None = None) -> dict:
    """Metadata written next to the model as ``<model>.json``: labels, input, scaling, provenance.

    Args:
        tflite_path: The converted model (already written).
        quantize: ``int8``, ``float16`` or ``none``.
        dataset: Free-text training-data description.
        extra: Further keys (parity report, calibration size).
        labels: Output labels; None derives them from the model's output size (:func:`edge.labels.labels_for_outputs`).
    """
    from edge import __version__
    from edge.runtime import load_interpreter

    if labels is None:
        labels = labels_for_outputs(int(load_interpreter(tflite_path).get_output_details()[0]["shape"][-1]))

    return {
        "model": tflite_path.name, "format": "tflite", "quantization": quantize,
        "labels": list(labels), "input": {"size": [INPUT_SIZE, INPUT_SIZE], "channels": 1,
                                             "color": "grey (BT.601)", "scale": PIXEL_SCALE,
                                             "range": [0.0, 1.0],
                                             "preprocess": "edge.preprocess.preprocess_face"},
        "crop_margin": DEFAULT_CROP_MARGIN,
        "dataset": dataset, "edge_fer_version": __version__,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra,
    }


def parity_report(keras_path: Path, tflite_path: Path, x: np.ndarray, y: np.ndarray, tta_flip: bool = False) -> dict:
    """Float (Keras) vs converted top-1 agreement, accuracy and score error on the same images.

    Args:
        keras_path: The float ``.keras`` model.
        tflite_path: The converted ``.tflite`` model.
        x: float32 (N, 48, 48) preprocessed faces.
        y: int (N,) true class ids.
        tta_flip: Average the Keras model's face and mirror-image scores, as a model converted
            with ``--tta-flip`` does inside the ``.tflite`` (which is run as it is).

    Returns:
        ``n``, ``float_accuracy``, ``tflite_accuracy``, ``top1_agreement`` and
        ``mean_abs_score_diff`` (mean |float - converted| over all scores).
    """
    from training.evaluate import predict_probs

    float_scores = predict_probs(Path(keras_path), x, tta_flip=tta_flip)[0]
    lite_scores = predict_probs(Path(tflite_path), x, flip_margin=0)[0]  # one pass; a baked-in flip is in the file
    float_pred, lite_pred = float_scores.argmax(1), lite_scores.argmax(1)
    return {"n": int(len(x)), "float_accuracy": float((float_pred == y).mean()),
            "tflite_accuracy": float((lite_pred == y).mean()),
            "top1_agreement": float((float_pred == lite_pred).mean()),
            "mean_abs_score_diff": float(np.abs(float_scores - lite_scores).mean())}
