"""edge-fer: facial-emotion recognition on the edge.

The runtime package. It depends only on the light runtime stack (ai-edge-litert,
OpenCV, NumPy, paho-mqtt, prometheus-client, pydantic) and never imports
TensorFlow, so it runs on a Raspberry Pi or a Jetson.

Python API (loaded on first use, so ``import edge`` stays light)::

    from edge import Analyzer
    faces = Analyzer().analyze_image(cv2.imread("photo.jpg"))

See :mod:`edge.api`.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Analyzer", "Face", "FrameAnalysis", "VideoAnalysis", "__version__"]
_API = {"Analyzer", "Face", "FrameAnalysis", "VideoAnalysis"}


def __getattr__(name: str):
    """Lazy re-export of :mod:`edge.api` (PEP 562)."""
    if name in _API:
        from edge import api

        return getattr(api, name)
    raise AttributeError(f"module 'edge' has no attribute {name!r}")
