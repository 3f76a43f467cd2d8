"""TFLite interpreter loading (ai-edge-litert, falling back to tflite_runtime) and third-party log noise.

ai-edge-litert is the maintained LiteRT (ex-TFLite) runtime; ``tflite_runtime``
is the older package still found on some boards.

The LiteRT C++ runtime prints ``INFO: Created TensorFlow Lite XNNPACK delegate
for CPU.`` straight to file descriptor 2 when an interpreter is created
(``TF_CPP_MIN_LOG_LEVEL`` does not silence it in ai-edge-litert 2.x), and
OpenCV's bundled FFmpeg prints container/codec messages (``moov atom not
found``, ``Invalid NAL unit size``) the same way. Both are shown only when the
``edge`` logger is at DEBUG.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("edge.runtime")

#: ``AV_LOG_QUIET`` of libavutil/log.h; OpenCV reads ``OPENCV_FFMPEG_LOGLEVEL`` when it opens its first video.
_AV_LOG_QUIET = "-8"


class ModelError(Exception):
    """A model file is missing, unreadable, or not what the stage expects."""


class MissingDependency(Exception):
    """An optional package or program is not installed; the message names the install command."""


def _debug() -> bool:
    return logging.getLogger("edge").isEnabledFor(logging.DEBUG)


def quiet_third_party(debug: bool | None = None) -> None:
    """Hide FFmpeg's and OpenCV's own log lines unless ``debug`` (default: the ``edge`` logger is at DEBUG).

    Sets ``OPENCV_FFMPEG_LOGLEVEL=-8`` (FFmpeg quiet) and ``OPENCV_LOG_LEVEL=ERROR``;
    at DEBUG leaves FFmpeg at its default (errors, on stderr) and OpenCV at INFO.
    Call before the first video is opened; values already in the environment are kept.
    """
    debug = _debug() if debug is None else debug
    if not debug:
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", _AV_LOG_QUIET)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "INFO" if debug else "ERROR")


@contextlib.contextmanager
def native_stderr_filtered(prefix: str | tuple[str, ...] = "INFO: ") -> Iterator[None]:
    """Drop native-code stderr lines starting with ``prefix`` (or one of them) while the block runs (kept at DEBUG).

    File descriptor 2 is pointed at a temporary file for the duration; other
    lines written meanwhile are copied back to stderr afterwards, so no error
    is lost.
    """
    if _debug():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode(errors="replace").splitlines(keepends=True)
                    if not line.startswith(prefix)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


#: ``mallopt`` parameter numbers of glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Allocations below this many bytes come from the heap (a 1920x1080 BGR frame is 6.2 MB).
FRAME_MMAP_THRESHOLD = 16 * 1024 * 1024
#: Free bytes at the top of a heap before glibc gives them back to the kernel.
FRAME_TRIM_THRESHOLD = 8 * 1024 * 1024


@functools.cache
def reuse_freed_frames() -> bool:
    """Let glibc reuse the memory of freed frames instead of unmapping and faulting it in again per frame.

    A decoded frame is one allocation (a 480x480 BGR frame is 0.7 MB) made in
    the decoder thread and freed in another a few frames later. With glibc's
    defaults (dynamic ``M_MMAP_THRESHOLD``, ``M_TRIM_THRESHOLD`` twice that)
    the freed memory is returned to the kernel and the next frame faults it
    back in page by page: ~55 minor page faults a frame, ~0.1 ms of CPU a
    frame at 480x480 (measured with ``/usr/bin/time``, ``edge-fer --video``).
    Fixed thresholds (``mallopt``, as the ``MALLOC_MMAP_THRESHOLD_`` and
    ``MALLOC_TRIM_THRESHOLD_`` environment variables would) keep up to
    :data:`FRAME_TRIM_THRESHOLD` bytes of freed heap for the next frames; the
    peak RSS is the same (the frames in flight are bounded by the queues).
    Process-wide; called once, by :class:`edge.capture.FileSource`.

    Returns:
        True if applied; False where the C library has no ``mallopt`` (musl, macOS, Windows).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # TypeError: Windows has no CDLL(None)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, FRAME_MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, FRAME_TRIM_THRESHOLD))


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

    The runtime's ``INFO: Created TensorFlow Lite XNNPACK delegate`` line is
    shown only when the ``edge`` logger is at DEBUG.

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
    cls = _interpreter_class()
    try:
        with native_stderr_filtered():
            interpreter = cls(model_path=str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load model {path}: {str(exc).splitlines()[0]}") from exc
    return interpreter
