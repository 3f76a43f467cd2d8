"""Build the stages from a validated :class:`edge.config.Config`."""

from __future__ import annotations

from edge.classify import DEFAULT_MODEL, EmotionClassifier
from edge.config import Config
from edge.detect import BlazeFace, DetectorOptions
from edge.pipeline.core import FramePipeline, PipelineOptions
from edge.pipeline.timing import StageTimer
from edge.smooth import SmoothingOptions
from edge.track import TrackerOptions


def build_detector(cfg: Config) -> BlazeFace:
    """The face detector of ``cfg.detector``. Raises ``ModelError`` if its model cannot load."""
    d = cfg.detector
    return BlazeFace(DetectorOptions(d.variant, d.min_score, d.min_face_px, d.max_faces, d.num_threads))


def build_classifier(cfg: Config) -> EmotionClassifier:
    """The emotion classifier of ``cfg.classifier``. Raises ``ModelError`` if its model cannot load."""
    c = cfg.classifier
    return EmotionClassifier(c.model or DEFAULT_MODEL, num_threads=c.num_threads,
                             max_batch=cfg.detector.max_faces, margin=c.margin, tta_flip=c.tta_flip)


def build_pipeline(cfg: Config, source: str, detector: BlazeFace | None = None,
                   classifier: EmotionClassifier | None = None, timer: StageTimer | None = None) -> FramePipeline:
    """A :class:`FramePipeline` for one source (stages may be shared between sources)."""
    return FramePipeline(
        detector or build_detector(cfg), classifier or build_classifier(cfg), source,
        PipelineOptions(cfg.detect_every, cfg.classifier.align),
        TrackerOptions(cfg.tracker.iou_threshold, cfg.tracker.max_missed, cfg.tracker.min_hits),
        SmoothingOptions(cfg.smoothing.tau_s, cfg.smoothing.min_hold_s), timer)
