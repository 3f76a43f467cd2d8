"""Shipped emotion models by name (``classifier.model: ferplus``) and the default.

Each shipped model is an int8 ``.tflite`` in ``edge/models/`` with a JSON
sidecar (labels, crop margin, calibration and parity figures) and a model
card (``<file>.md``). How the default is chosen is written in the model card
``edge/models/MODELS.md``.
"""

from __future__ import annotations

from pathlib import Path

from edge.runtime import ModelError

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

#: Shipped model name -> file in ``edge/models``.
SHIPPED_MODELS: dict[str, str] = {
    "ferplus": "ferplus_int8.tflite",
    "fer2013": "emotion_int8.tflite",
    "fer2013-fast": "emotion_int8_fast.tflite",
}

#: The model used when ``classifier.model`` is not set (rule: ``edge/models/MODELS.md``).
DEFAULT_MODEL_NAME = "ferplus"


def resolve_model(model: str | Path | None) -> Path:
    """The ``.tflite`` file of a shipped model name or a path.

    Args:
        model: A shipped name (``ferplus``, ``fer2013``, ``fer2013-fast``), a
            path to a ``.tflite`` file, or None for the default model.

    Returns:
        The model file's path (not checked for existence when given as a path:
        loading reports a missing file).

    Raises:
        ModelError: ``model`` is neither a shipped name nor looks like a file path.
    """
    if model is None:
        model = DEFAULT_MODEL_NAME
    text = str(model)
    if text in SHIPPED_MODELS:
        return MODELS_DIR / SHIPPED_MODELS[text]
    path = Path(text)
    if path.suffix or path.exists() or "/" in text:
        return path
    names = ", ".join(SHIPPED_MODELS)
    raise ModelError(f"unknown model {text!r}: expected a shipped model name ({names}) or a .tflite path")
