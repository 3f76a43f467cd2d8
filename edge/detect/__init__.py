"""Face detection: MediaPipe BlazeFace on the LiteRT runtime."""

from edge.detect.blazeface import BlazeFace, DetectorOptions

__all__ = ["BlazeFace", "DetectorOptions"]
