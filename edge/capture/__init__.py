"""Frame sources: files (threaded decode, no drops) and live cameras/streams."""

from edge.capture.file import FileSource, SourceError, VideoInfo, probe_video

__all__ = ["FileSource", "SourceError", "VideoInfo", "probe_video"]
