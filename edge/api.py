"""Python API: ``from edge import Analyzer``.

The same code path as ``edge-fer --image`` and ``edge-fer --video``::

    from edge import Analyzer

    with Analyzer() as fer:                          # shipped int8 model, BlazeFace short range
        for face in fer.analyze_image(cv2.imread("photo.jpg")):
            print(face.bbox, face.emotion, face.scores)

    with Analyzer(detect_every=3) as fer:
        clip = fer.analyze_video("clip.mp4")
        for frame in clip:                           # FrameAnalysis, in frame order
            print(frame.time_s, [(f.track_id, f.emotion) for f in frame.faces])
        print(clip.summary.tracks)                   # RunSummary, once the clip is exhausted

Units: boxes in pixels of the analysed image (top-left x, y, width, height),
times in seconds, scores are probabilities in [0, 1] keyed by the
classifier's labels (``Analyzer.labels``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.config import Config, load_config
from edge.pipeline.core import FrameResult
from edge.pipeline.summary import RunSummary
from edge.types import BBox, EmotionEvent

__all__ = ["Analyzer", "Face", "FrameAnalysis", "VideoAnalysis"]


@dataclass(frozen=True)
class Face:
    """One face and its emotion.

    Attributes:
        bbox: Face box in pixels of the analysed image (top-left x, y, width w, height h).
        emotion: For an image, the label of the highest score; in a video, the
            track's current emotion after smoothing (EMA over seconds plus hysteresis).
        scores: {label: probability in [0, 1]} of this image/frame (raw model
            output, sums to ~1), in the classifier's label order.
        detector_score: BlazeFace confidence in [0, 1]; None in a video (boxes
            may be carried between detections).
        track_id: Video only: id of the face's track, stable across frames.
        smoothed: Video only: the track's smoothed scores {label: probability}.
    """

    bbox: BBox
    emotion: str
    scores: dict[str, float]
    detector_score: float | None = None
    track_id: int | None = None
    smoothed: dict[str, float] | None = None

    @property
    def confidence(self) -> float:
        """Score of ``emotion`` (smoothed in a video, raw for an image), in [0, 1]."""
        return (self.smoothed or self.scores)[self.emotion]

    def to_dict(self) -> dict:
        """JSON-ready dict: ``bbox`` as [x, y, w, h] in pixels (1 decimal), the other fields as they are."""
        d: dict[str, Any] = {"bbox": [round(v, 1) for v in self.bbox.as_tuple()], "emotion": self.emotion,
                             "scores": self.scores}
        if self.detector_score is not None:
            d["detector_score"] = round(self.detector_score, 4)
        if self.track_id is not None:
            d.update(track_id=self.track_id, smoothed=self.smoothed)
        return d


@dataclass(frozen=True)
class FrameAnalysis:
    """What one video or camera frame produced.

    Attributes:
        index: 0-based frame number in the clip or stream.
        time_s: Container timestamp (files) or seconds since the stream started (cameras).
        width, height: Frame size in pixels.
        detected: True when the detector ran on this frame (every ``detect_every``-th).
        faces: Tracked faces of this frame (confirmed tracks only, after ``tracker.min_hits``).
        events: ``track_started`` / ``emotion_changed`` / ``track_ended`` events of this frame.
    """

    index: int
    time_s: float
    width: int
    height: int
    detected: bool
    faces: list[Face] = field(default_factory=list)
    events: list[EmotionEvent] = field(default_factory=list)


def frame_analysis(result: FrameResult) -> FrameAnalysis:
    """The public view of a pipeline :class:`~edge.pipeline.core.FrameResult`."""
    faces = [Face(f.bbox, f.emotion, f.scores.as_dict(), None, f.track_id, f.smoothed.as_dict())
             for f in result.faces]
    return FrameAnalysis(result.frame_index, result.time_s, result.width, result.height, result.detected,
                         faces, list(result.events))


class VideoAnalysis:
    """Iterator over the :class:`FrameAnalysis` of a clip, then its summary (single use).

    Iterate it (or call :meth:`run`); afterwards :attr:`end_events` holds the
    ``track_ended`` events of the tracks open at the end, and :attr:`summary` the run
    facts as a :class:`~edge.pipeline.summary.RunSummary` (``frames``, ``duration_s``,
    ``processing_fps``, ``tracks`` with each track's ``stats.dominant_emotion`` and
    ``stats.seconds_per_emotion``, ...; ``summary.to_dict()`` is the ``summary.json``
    of ``edge-fer --video``). Close it (or use ``with``) to stop early.
    """

    def __init__(self, job) -> None:
        self._job = job

    def __iter__(self) -> Iterator[FrameAnalysis]:
        for _, result in self._job:
            yield frame_analysis(result)

    def __enter__(self) -> VideoAnalysis:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def summary(self) -> RunSummary:
        """Run facts; available once every frame has been iterated.

        Raises:
            RuntimeError: the clip has not been read to its end.
        """
        if self._job.summary is None:
            raise RuntimeError("summary is available once the clip has been iterated to its end")
        return self._job.summary

    @property
    def end_events(self) -> list[EmotionEvent]:
        """``track_ended`` events of the tracks still open when the clip ended (after iteration)."""
        return list(self._job.end_events)

    def run(self) -> RunSummary:
        """Process every frame without returning them; returns :attr:`summary`."""
        return self._job.run()

    def close(self) -> None:
        """Stop decoding and close any output files."""
        self._job.close()


class Analyzer:
    """Face detection (BlazeFace) and emotion classification (int8 TFLite), loaded once.

    Usable as a context manager. Not thread-safe: use one Analyzer per thread.
    """

    def __init__(self, model: str | Path | None = None, detect_every: int | None = None,
                 config: Config | dict | str | Path | None = None, num_threads: int | None = None) -> None:
        """Load the detector and the emotion model.

        Args:
            model: Emotion model: a shipped name (``edge.classify``) or a ``.tflite`` path;
                None keeps ``classifier.model`` of ``config`` (default: the shipped default model).
            detect_every: Videos and streams: run the detector on every N-th frame (N >= 1);
                the tracker carries boxes in between. None keeps ``config``'s (default 1).
            config: A :class:`edge.config.Config` (or its dict), a ``config.yaml`` path, or None for defaults
                (detector, classifier, tracker and smoothing sections apply).
            num_threads: Inference threads of both models (None: ``config``'s, default 1).

        Raises:
            edge.config.ConfigError: invalid config file or values (every problem, one per line).
            edge.runtime.ModelError: a model file is missing or invalid.
        """
        overrides: dict = {}
        if detect_every is not None:
            overrides["detect_every"] = detect_every
        if model is not None:
            overrides["classifier"] = {"model": str(model)}
        if num_threads is not None:
            overrides.setdefault("classifier", {})["num_threads"] = num_threads
            overrides["detector"] = {"num_threads": num_threads}
        given = config.model_dump() if isinstance(config, Config) else config
        self.config: Config
        if isinstance(given, dict):  # validated again, with the overrides merged over it
            base = {k: v for k, v in given.items() if v is not None}
            self.config = load_config(None, {**base, **{k: {**base.get(k, {}), **v} if isinstance(v, dict) else v
                                                       for k, v in overrides.items()}})
        else:
            self.config = load_config(given, overrides)
        from edge.pipeline.factory import build_classifier, build_detector

        self.detector = build_detector(self.config)
        self.classifier = build_classifier(self.config)

    @property
    def labels(self) -> tuple[str, ...]:
        """The emotion model's labels, in its output order (the keys of every ``scores``)."""
        return self.classifier.labels

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the interpreters (the Analyzer is unusable afterwards)."""
        self.detector = self.classifier = None  # type: ignore[assignment]

    def _check_open(self) -> None:
        if self.detector is None:
            raise RuntimeError("this Analyzer is closed")

    def analyze_image(self, image_bgr: np.ndarray) -> list[Face]:
        """Detect every face of one image and classify its emotion (no tracking, no smoothing).

        Args:
            image_bgr: uint8 array (H, W, 3) in OpenCV's BGR order (``cv2.imread``);
                a (H, W) grey or (H, W, 4) BGRA image is converted.

        Returns:
            One :class:`Face` per detected face (at most ``detector.max_faces``), boxes
            in pixels of ``image_bgr``, ``detector_score`` set, ``track_id`` None.

        Raises:
            ValueError: not a uint8 image of 2 or 3 dimensions with 1, 3 or 4 channels.
            RuntimeError: the Analyzer is closed.
        """
        self._check_open()
        image = _as_bgr(image_bgr)
        detections = self.detector.detect(image)
        scores = self.classifier.classify(image, detections, self.config.classifier.align)
        return [Face(d.bbox, s.top, s.as_dict(), float(d.score)) for d, s in zip(detections, scores)]

    def analyze_video(self, path: str | Path, *, out_dir: str | Path | None = None,
                      annotate: str | Path | None = None, plot: bool = False,
                      progress: bool = False) -> VideoAnalysis:
        """Analyse a video file frame by frame (tracking and smoothing included).

        Args:
            path: Video file (any container/codec OpenCV's FFmpeg decodes).
            out_dir: Also write ``frames.csv``, ``events.jsonl`` and ``summary.json`` there.
            annotate: Also write an annotated H.264 MP4 here (needs the ``ffmpeg`` program).
            plot: Also write ``out_dir/timeline.png`` (needs matplotlib and ``out_dir``).
            progress: Progress bar on stderr.

        Returns:
            A single-use :class:`VideoAnalysis`: iterate it for :class:`FrameAnalysis`
            values, then read ``.summary``.

        Raises:
            edge.capture.SourceError: missing (``kind == "missing"``) or unreadable video.
            edge.runtime.MissingDependency: ``plot`` without matplotlib, ``annotate`` without ffmpeg.
            OSError: ``out_dir`` or ``annotate`` not writable.
        """
        from edge.pipeline.video import VideoJob

        self._check_open()
        job = VideoJob(path, self.config, self.detector, self.classifier,
                       out_dir=Path(out_dir) if out_dir is not None else None,
                       annotate=Path(annotate) if annotate is not None else None, plot=plot, progress=progress)
        return VideoAnalysis(job)

    def analyze_stream(self, source: int | str = 0, *, max_frames: int | None = None,
                       max_seconds: float | None = None, read_timeout_s: float = 10.0) -> Iterator[FrameAnalysis]:
        """Analyse a live camera or stream, newest frame first (frames that arrive while busy are dropped).

        Args:
            source: V4L2 device index or ``/dev/videoN``, an ``rtsp://`` / ``http://`` URL,
                or a file (played at its own frame rate, as a camera would be).
            max_frames: Stop after this many processed frames (None: until closed).
            max_seconds: Stop after this many seconds (None: no limit).
            read_timeout_s: A silent source is reopened after this many seconds.

        Yields:
            :class:`FrameAnalysis` per processed frame; ``time_s`` counts from the stream start.
            Stop early with ``break`` (or ``close()`` the generator): the reader thread stops.
        """
        from edge.capture.live import LiveOptions, LiveSource
        from edge.pipeline.factory import build_pipeline

        self._check_open()
        pipeline = build_pipeline(self.config, "stream", self.detector, self.classifier)
        src = LiveSource("stream", source, LiveOptions(read_timeout_s=read_timeout_s))
        src.start()
        deadline = time.monotonic() + max_seconds if max_seconds is not None else None
        count = 0
        try:
            while (max_frames is None or count < max_frames) and (deadline is None or time.monotonic() < deadline):
                src.new_frame.wait(0.1)
                src.new_frame.clear()
                frame = src.latest()
                if frame is None:
                    continue
                count += 1
                yield frame_analysis(pipeline.process(frame))
        finally:
            src.stop()


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) BGR from a BGR, grey or BGRA uint8 array.

    Raises:
        ValueError: other dtypes or shapes.
    """
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"expected a uint8 numpy image (H, W, 3) in BGR order, got {got}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an image of shape (H, W, 3), got {image.shape}")
