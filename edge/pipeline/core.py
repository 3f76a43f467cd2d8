"""One frame through detect -> track -> classify -> smooth -> events."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.classify import EmotionClassifier
from edge.detect import BlazeFace
from edge.pipeline.events import make_event, track_ended_event
from edge.pipeline.timing import StageTimer
from edge.smooth import EmotionSmoother, SmoothingOptions
from edge.track import IoUTracker, TrackerOptions
from edge.types import EmotionEvent, EmotionScores, FaceResult, Frame, Track, TrackedFace


@dataclass(frozen=True)
class PipelineOptions:
    """Pipeline settings.

    Attributes:
        detect_every: Run the detector on every N-th processed frame; the
            tracker carries boxes in between.
        align: Level the eyes in face crops.
    """

    detect_every: int = 1
    align: bool = True


@dataclass
class FrameResult:
    """What one frame produced."""

    frame_index: int
    time_s: float
    width: int
    height: int
    detected: bool
    faces: list[FaceResult] = field(default_factory=list)
    events: list[EmotionEvent] = field(default_factory=list)


class FramePipeline:
    """Stateful per-source pipeline (tracks and smoothing persist across frames)."""

    def __init__(self, detector: BlazeFace, classifier: EmotionClassifier, source: str = "video",
                 options: PipelineOptions = PipelineOptions(), tracker: TrackerOptions = TrackerOptions(),
                 smoothing: SmoothingOptions = SmoothingOptions(), timer: StageTimer | None = None) -> None:
        self.detector = detector
        self.classifier = classifier
        self.source = source
        self.options = options
        self.tracker = IoUTracker(tracker)
        self.smoother = EmotionSmoother(smoothing, classifier.labels)
        self.timer = timer or StageTimer()
        self._processed = 0
        self._started: set[int] = set()
        self._last_box: dict[int, object] = {}
        self._frame_size = (1, 1)

    def _locate(self, frame: Frame) -> tuple[bool, list[TrackedFace], list[Track]]:
        """Detect + track on detection rounds, carry boxes otherwise."""
        detect = self._processed % self.options.detect_every == 0
        if not detect:
            with self.timer.stage("track"):
                carried = self.tracker.carry(frame.time_s)
            # a box carried out of the picture has nothing left to classify
            visible = [f for f in carried if f.detection.bbox.clipped(frame.width, frame.height).area > 0]
            return False, visible, []
        with self.timer.stage("detect"):
            detections = self.detector.detect(frame.image)
        with self.timer.stage("track"):
            update = self.tracker.update(detections, frame.time_s)
        return True, [f for f in update.seen if f.track.confirmed], update.removed

    def _classify(self, frame: Frame, faces: list[TrackedFace]) -> list[EmotionScores]:
        if not faces:
            return []
        with self.timer.stage("preprocess"):
            crops = np.stack([self.classifier.crop(frame.image, f.detection, self.options.align) for f in faces])
        with self.timer.stage("classify"):
            probs = self.classifier.predict_batch(crops)
        return [EmotionScores(p, self.classifier.labels) for p in probs]

    def process(self, frame: Frame) -> FrameResult:
        """Run every stage on one frame.

        Args:
            frame: The decoded frame (BGR, time in seconds).

        Returns:
            Faces (raw and smoothed scores, current emotion) and events of this frame.
        """
        self._frame_size = (frame.width, frame.height)
        self.timer.begin_frame()
        detected, faces, removed = self._locate(frame)
        self._processed += 1
        scores = self._classify(frame, faces)
        result = FrameResult(frame.index, frame.time_s, frame.width, frame.height, detected)
        with self.timer.stage("smooth"):
            for face, score in zip(faces, scores):
                result.faces.append(self._smooth(face, score, frame.time_s, result.events))
            for track in removed:
                result.events.extend(self._end(track.track_id))
        return result

    def _smooth(self, face: TrackedFace, score: EmotionScores, time_s: float,
                events: list[EmotionEvent]) -> FaceResult:
        tid, bbox = face.track.track_id, face.detection.bbox
        state, previous = self.smoother.update(tid, score, time_s)
        self._last_box[tid] = bbox
        labels = self.classifier.labels
        if tid not in self._started:
            self._started.add(tid)
            events.append(make_event("track_started", state, tid, self.source, time_s, bbox, self._frame_size, labels))
        elif previous is not None:
            events.append(make_event("emotion_changed", state, tid, self.source, time_s, bbox, self._frame_size,
                                     labels, previous_emotion=previous))
        return FaceResult(tid, bbox, score, EmotionScores(state.smoothed.copy(), labels), state.current)

    def _end(self, track_id: int) -> list[EmotionEvent]:
        state = self.smoother.pop(track_id)
        box = self._last_box.pop(track_id, None)
        if state is None or track_id not in self._started:
            return []
        self._started.discard(track_id)
        return [track_ended_event(state, track_id, self.source, box, self._frame_size, self.classifier.labels)]

    def finish(self) -> list[EmotionEvent]:
        """End every open track (end of stream); returns their ``track_ended`` events."""
        events = []
        for track in self.tracker.remove_all():
            events.extend(self._end(track.track_id))
        return events

    @property
    def open_tracks(self) -> dict[int, str]:
        """{track_id: current emotion} of reported tracks."""
        return {tid: self.smoother.states[tid].current for tid in self._started if tid in self.smoother.states}
