"""Batched emotion classification on the LiteRT runtime.

Inputs are quantised with the model's own int8 scale/zero-point
(q = round(x / scale) + zero_point, TFLite quantization spec:
https://ai.google.dev/edge/litert/models/quantization_spec) and outputs are
dequantised the same way, so a float or int8 model is used alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.classify.registry import resolve_model
from edge.labels import EMOTIONS
from edge.preprocess import DEFAULT_CROP_MARGIN, INPUT_SIZE, PIXEL_SCALE, face_grey, preprocess_face
from edge.runtime import ModelError, load_interpreter
from edge.types import Detection, EmotionScores

DEFAULT_MODEL = resolve_model(None)


def top2_margin(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability of every row: float32 (N,) for probabilities (N, C), C >= 2."""
    top2 = np.partition(probs, -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def flip_gated(probs: np.ndarray, margin: float, faces: np.ndarray,
               predict: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Confidence-gated flip averaging: unsure rows get the mean of their and their mirror image's scores.

    Horizontal-flip test-time augmentation (Krizhevsky et al., 2012) spent
    where the single pass is in doubt: rows whose top-1 minus top-2
    probability (:func:`top2_margin`) is below ``margin``.

    Args:
        probs: float32 (N, C) single-pass probabilities of ``faces``; changed in place and returned.
        margin: Probability margin in [0, 1]; 0 leaves every row as it is.
        faces: The model inputs (N, 48, 48) that gave ``probs`` (any dtype ``predict`` takes).
        predict: Probabilities (K, C) of model inputs (K, 48, 48); called once, with
            the mirror images of the unsure faces (a contiguous copy).

    Returns:
        ``probs``, with the unsure rows averaged.
    """
    if margin <= 0 or probs.shape[1] < 2 or len(probs) == 0:
        return probs
    unsure = np.flatnonzero(top2_margin(probs) < margin)
    if unsure.size:
        probs[unsure] = (probs[unsure] + predict(np.ascontiguousarray(faces[unsure, :, ::-1]))) / 2
    return probs


class _Runner:
    """One interpreter whose input is sized for a fixed batch."""

    def __init__(self, path: Path, batch: int, num_threads: int) -> None:
        self.interpreter = load_interpreter(path, num_threads)
        inp = self.interpreter.get_input_details()[0]
        if batch != int(inp["shape"][0]):
            self.interpreter.resize_tensor_input(inp["index"], [batch, INPUT_SIZE, INPUT_SIZE, 1])
            self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]
        self.out = self.interpreter.get_output_details()[0]


class EmotionClassifier:
    """Classifies preprocessed 48x48 faces into the 7 ``EMOTIONS``.

    One interpreter is kept per power-of-two batch size seen (1, 2, 4, 8),
    so a steady number of faces never re-allocates tensors.

    Attributes:
        labels: Class names of the model's outputs (sidecar ``labels``, else ``EMOTIONS``).
        margin: Face-crop margin used by :meth:`crop` / :meth:`grey_batch`.
        tta_flip: Every face is also classified as its mirror image.
        flip_baked: The model averages face and mirror image itself (sidecar ``tta_flip``,
            ``edge-fer-convert --tta-flip``).
        flip_margin: The gate applied: ``inf`` with ``tta_flip`` (always), 0 for
            one pass (and for a model with the flip baked in), else the
            top-1 minus top-2 margin below which a face is mirrored too.
    """

    def __init__(self, model_path: str | Path | None = None, num_threads: int = 1, max_batch: int = 8,
                 margin: float | None = None, tta_flip: bool = False, flip_margin: float | None = None) -> None:
        """Load the model and its sidecar metadata (``<model>.json``, optional).

        Args:
            model_path: ``.tflite`` file (int8 or float), a shipped model name
                (:data:`edge.classify.registry.SHIPPED_MODELS`) or None for the default.
            num_threads: Interpreter threads.
            max_batch: Largest batch given to one invocation; larger inputs are split.
            margin: Face-crop margin (fraction of the bbox side per side); None
                takes ``crop_margin`` from the sidecar, else ``DEFAULT_CROP_MARGIN``.
            tta_flip: Average the scores of each face and its mirror image
                (horizontal-flip test-time augmentation, as in Krizhevsky et al.,
                2012): one invocation of twice the batch, so about twice the
                classifier time. Ignored for a model whose sidecar says the flip
                is already baked in (``edge-fer-convert --tta-flip``).
            flip_margin: Confidence-gated flip averaging: a face whose top-1
                minus top-2 probability is below this also gets a mirror-image
                pass, and its scores become the mean of both (about 7% of faces
                at 0.10 with ``ferplus``); confident faces keep their single-pass
                scores. 0 never flips; None takes ``flip_margin`` from the
                sidecar, else 0. ``tta_flip`` (always flip) takes precedence; a
                baked-in flip disables both.

        Raises:
            ModelError: unknown name, missing/invalid file or an input shape other than (N, 48, 48, 1).
        """
        self.path = resolve_model(model_path)
        self.num_threads = num_threads
        self.max_batch = max(1, max_batch)
        self._runners: dict[int, _Runner] = {1: _Runner(self.path, 1, num_threads)}
        first = self._runners[1]
        shape = tuple(int(v) for v in first.inp["shape"][1:])
        if shape != (INPUT_SIZE, INPUT_SIZE, 1):
            raise ModelError(f"{self.path}: expected input (N, {INPUT_SIZE}, {INPUT_SIZE}, 1), got {shape}")
        self.meta = self._read_sidecar()
        self.labels: tuple[str, ...] = tuple(self.meta.get("labels", EMOTIONS))
        self.margin = margin if margin is not None else self._sidecar_fraction("crop_margin", DEFAULT_CROP_MARGIN)
        self.in_scale, self.in_zero = first.inp["quantization"]
        self.out_scale, self.out_zero = first.out["quantization"]
        self.input_dtype = first.inp["dtype"]
        self.flip_baked = bool(self.meta.get("tta_flip", False))
        self.tta_flip = bool(tta_flip) and not self.flip_baked
        gate = self._sidecar_fraction("flip_margin", 0.0) if flip_margin is None else float(flip_margin)
        self.flip_margin = 0.0 if self.flip_baked else math.inf if self.tta_flip else max(0.0, gate)
        # grey byte -> model input value: _quantise of each of the 256 values preprocess_face can give,
        # so predict_grey(g) == predict_batch(g * float32(1/255)) bit for bit
        self._grey_lut = self._quantise(np.arange(256, dtype=np.float32) * np.float32(PIXEL_SCALE)).reshape(1, 256)

    def _read_sidecar(self) -> dict:
        side = self.path.with_suffix(".json")
        if not side.is_file():
            return {}
        try:
            return json.loads(side.read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(f"{side}: invalid JSON sidecar ({exc.msg})") from exc

    def _sidecar_fraction(self, key: str, default: float) -> float:
        """A number in [0, 1] from the sidecar, or ``default`` when absent. Raises ``ModelError`` otherwise."""
        value = self.meta.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ModelError(f"{self.path.with_suffix('.json')}: {key} must be a number in [0, 1], got {value!r}")
        return float(value)

    def _runner(self, batch: int) -> _Runner:
        if batch not in self._runners:
            self._runners[batch] = _Runner(self.path, batch, self.num_threads)
        return self._runners[batch]

    def _quantise(self, faces: np.ndarray) -> np.ndarray:
        if self.input_dtype == np.int8:
            q = np.rint(faces / self.in_scale) + self.in_zero
            return np.clip(q, -128, 127).astype(np.int8)
        return faces.astype(np.float32)

    def _invoke_input(self, inputs: np.ndarray) -> np.ndarray:
        """Probabilities for inputs already in the model's dtype, (N, 48, 48).

        N is split into powers of two (7 = 4 + 2 + 1), so at most
        log2(max_batch) + 1 interpreters exist (1, 2, 4, 8: each costs ~3.5 MB
        of arena and weights; one per batch size 1..8 cost ~28 MB). Every
        sample is computed independently: int8 models give identical scores
        for any split (integer arithmetic), float models within rounding.
        """
        n, start, parts = len(inputs), 0, []
        while start < n:
            size = 1 << ((n - start).bit_length() - 1)  # the largest power of two that fits
            parts.append(self._invoke_exact(inputs[start:start + size]))
            start += size
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _invoke_exact(self, inputs: np.ndarray) -> np.ndarray:
        """One invocation of the interpreter sized for exactly ``len(inputs)``."""
        runner = self._runner(len(inputs))
        runner.interpreter.set_tensor(runner.inp["index"], inputs[..., None])
        runner.interpreter.invoke()
        raw = runner.interpreter.get_tensor(runner.out["index"])
        if runner.out["dtype"] == np.float32:
            return raw.astype(np.float32)
        return ((raw.astype(np.float32) - self.out_zero) * self.out_scale).astype(np.float32, copy=False)

    def predict_batch(self, faces: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities for preprocessed faces.

        Args:
            faces: float32 (N, 48, 48) in [0, 1], from ``preprocess_face``.
            batch_size: Faces per invocation (default ``max_batch``).

        Returns:
            float32 (N, 7) probabilities (rows sum to ~1; int8 steps of 1/256).
            With ``tta_flip`` (or below ``flip_margin``), the mean of the face's and its mirror image's.
        """
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        step = batch_size or self.max_batch
        return np.concatenate([self._scores(self._quantise(faces[i:i + step])) for i in range(0, len(faces), step)])

    def _scores(self, inputs: np.ndarray) -> np.ndarray:
        """Probabilities (N, C) for model inputs (N, 48, 48), with the flip averaging this classifier uses."""
        if self.flip_margin == math.inf:
            probs = self._invoke_input(np.concatenate([inputs, inputs[:, :, ::-1]]))  # one invocation of 2N
            return (probs[:len(inputs)] + probs[len(inputs):]) / 2
        return flip_gated(self._invoke_input(inputs), self.flip_margin, inputs, self._invoke_input)

    def predict_grey(self, grey: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities for uint8 grey faces, as ``predict_batch(grey * float32(1/255))``, bit for bit.

        The runtime path: one table look-up per pixel replaces scaling,
        rounding and clipping.

        Args:
            grey: uint8 (N, 48, 48), from :func:`edge.preprocess.face_grey` / :meth:`grey_batch`.
            batch_size: Faces per invocation (default ``max_batch``).

        Returns:
            float32 (N, 7) probabilities, as :meth:`predict_batch`.
        """
        if len(grey) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        n = len(grey)
        inputs = cv2.LUT(grey.reshape(n * INPUT_SIZE, INPUT_SIZE), self._grey_lut).reshape(n, INPUT_SIZE, INPUT_SIZE)
        step = batch_size or self.max_batch
        if n <= step:  # the usual case: one chunk, no list and no concatenated copy
            return self._scores(inputs)
        return np.concatenate([self._scores(inputs[i:i + step]) for i in range(0, n, step)])

    def grey_batch(self, image: np.ndarray, detections: list[Detection], align: bool = False) -> np.ndarray:
        """uint8 grey faces of one frame, (N, 48, 48): :func:`edge.preprocess.face_grey` with this model's margin."""
        out = np.empty((len(detections), INPUT_SIZE, INPUT_SIZE), np.uint8)
        for i, d in enumerate(detections):
            out[i] = face_grey(image, d.bbox.as_tuple(), margin=self.margin, eyes=d.eyes if align else None)
        return out

    def crop(self, image: np.ndarray, detection: Detection, align: bool = False) -> np.ndarray:
        """The model input for one detected face: float32 (48, 48) via ``preprocess_face``."""
        return preprocess_face(image, detection.bbox.as_tuple(), margin=self.margin,
                               eyes=detection.eyes if align else None)

    def crop_batch(self, image: np.ndarray, detections: list[Detection], align: bool = False) -> np.ndarray:
        """Model inputs of several faces of one frame: float32 (N, 48, 48), as ``np.stack`` of :meth:`crop`."""
        out = np.empty((len(detections), INPUT_SIZE, INPUT_SIZE), np.float32)
        for i, detection in enumerate(detections):
            out[i] = self.crop(image, detection, align)
        return out

    def classify(self, image: np.ndarray, detections: list[Detection], align: bool = False) -> list[EmotionScores]:
        """Scores for every detection of a frame, batched (one invocation per power-of-two part).

        Args:
            image: uint8 BGR frame (H, W, 3).
            detections: Faces in frame pixels.
            align: Level the eyes before classification (uses keypoints).
        """
        if not detections:
            return []
        probs = self.predict_grey(self.grey_batch(image, detections, align))  # == predict_batch(crop_batch(...))
        return [EmotionScores(p, self.labels) for p in probs]
