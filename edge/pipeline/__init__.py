"""The per-frame pipeline: detect -> track -> classify -> smooth -> events."""

from edge.pipeline.core import FramePipeline, FrameResult, PipelineOptions

__all__ = ["FramePipeline", "FrameResult", "PipelineOptions"]
