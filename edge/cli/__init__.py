"""The ``edge-fer`` command line.

Before anything imports NumPy or OpenCV, OpenBLAS is limited to one thread
(unless ``OPENBLAS_NUM_THREADS`` is already set): NumPy's and OpenCV's
OpenBLAS otherwise start a thread per core at import, which costs ~60 ms of
start-up on a 2-core host (``import numpy, cv2``: 0.14 -> 0.08 s) while
``edge-fer`` runs no BLAS routine worth a thread (inference is LiteRT's;
crops and colour conversions are OpenCV's own code).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from edge.cli.main import main  # noqa: E402 - after the environment above

__all__ = ["main"]
