"""TFLite interpreter loading: ai-edge-litert, falling back to tflite_runtime.

ai-edge-litert is the maintained LiteRT (ex-TFLite) runtime; ``tflite_runtime``
is the older package still found on some boards.
"""

from __future__ import annotations

from pathlib import Path


class ModelError(Exception):
    """A model file is missing, unreadable, or not what the stage expects."""


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on the board's install
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError("no TFLite runtime: pip install ai-edge-litert (or tflite-runtime)") from exc
    return Interpreter


def load_interpreter(path: str | Path, num_threads: int = 1):
    """Load a ``.tflite`` file and allocate its tensors.

    Args:
        path: Model file.
        num_threads: CPU threads for the XNNPACK delegate / kernels.

    Returns:
        A ready ``Interpreter``.

    Raises:
        ModelError: if the file is missing or not a valid TFLite model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        interpreter = _interpreter_class()(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load model {path}: {str(exc).splitlines()[0]}") from exc
    return interpreter
