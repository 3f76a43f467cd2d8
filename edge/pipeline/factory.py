"""Build the stages from a validated :class:`edge.config.Config`."""

from __future__ import annotations

from edge.classify import EmotionClassifier
from edge.config import Config
from edge.detect import BlazeFace, DetectorOptions
from edge.pipeline.core import FramePipeline, PipelineOptions
from edge.pipeline.timing import StageTimer
from edge.smooth import SmoothingOptions
from edge.track import TrackerOptions


def build_detector(cfg: Config) -> BlazeFace:
    """The face detector of ``cfg.detector``. Raises ``ModelError`` if its model cannot load."""
    return BlazeFace(DetectorOptions(**cfg.detector.model_dump()))


def build_classifier(cfg: Config) -> EmotionClassifier:
    """The emotion classifier of ``cfg.classifier``. Raises ``ModelError`` if its model cannot load."""
    c = cfg.classifier
    return EmotionClassifier(c.model, num_threads=c.num_threads,
                             max_batch=cfg.detector.max_faces, margin=c.margin, tta_flip=c.tta_flip,
                             flip_margin=c.flip_margin)


def build_pipeline(cfg: Config, source: str, detector: BlazeFace | None = None,
                   classifier: EmotionClassifier | None = None, timer: StageTimer | None = None) -> FramePipeline:
    """A :class:`FramePipeline` for one source (stages may be shared between sources)."""
    return FramePipeline(
        detector or build_detector(cfg), classifier or build_classifier(cfg), source,
        PipelineOptions(detect_every=cfg.detect_every, align=cfg.classifier.align),
        TrackerOptions(**cfg.tracker.model_dump()),
        SmoothingOptions(**cfg.smoothing.model_dump()), timer)
