"""One frame through detect -> track -> classify -> smooth -> events.

:class:`FramePipeline` runs the stages of one source in three steps, each
owning part of the state, so that :mod:`edge.pipeline.parallel` can run them
in different threads with results identical to :meth:`FramePipeline.process`:

1. :meth:`~FramePipeline.detect_step` - the detector (and the detection-round
   counter): pure per frame, may run ahead of the others;
2. :meth:`~FramePipeline.classify_step` - tracker update or carry, crops,
   batched classification (owns the tracker; frames in order);
3. :meth:`~FramePipeline.smooth_step` - smoothing, events, timer (owns the
   smoother and the reported tracks; frames in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.classify import EmotionClassifier
from edge.detect import BlazeFace
from edge.pipeline.events import make_event, track_ended_event
from edge.pipeline.timing import FrameTimes, StageTimer
from edge.smooth import EmotionSmoother, SmoothingOptions
from edge.track import IoUTracker, TrackerOptions
from edge.types import BBox, Detection, EmotionEvent, EmotionScores, FaceResult, Frame, Track, TrackedFace


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


@dataclass(frozen=True, slots=True)
class DetectStep:
    """What the detect step produced for one frame.

    Attributes:
        detections: Faces found (frame pixels) on a detection round; None
            between rounds (the tracker carries the boxes).
        seconds: Wall time of the detector on this frame (0 between rounds).
    """

    detections: list[Detection] | None
    seconds: float = 0.0


#: The detect step of every frame between detection rounds (immutable, shared).
BETWEEN_ROUNDS = DetectStep(None)


@dataclass(slots=True)
class ClassifiedFrame:
    """A frame after tracking and classification, before smoothing.

    Attributes:
        frame: The frame.
        detected: True on a detection round.
        faces: Confirmed tracks' faces in this frame (detected or carried).
        scores: Raw class probabilities, one per face, same order.
        removed: Tracks ended in this round (unmatched for too long).
        times: Seconds per stage spent on this frame so far.
    """

    frame: Frame
    detected: bool
    faces: list[TrackedFace]
    scores: list[EmotionScores]
    removed: list[Track]
    times: FrameTimes


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
        self._planned = 0  # frames through detect_step (its thread only)
        self._started: set[int] = set()
        self._last_box: dict[int, BBox] = {}
        self._frame_size = (1, 1)

    def detect_step(self, frame: Frame) -> DetectStep:
        """Detect faces if ``frame`` is a detection round (every ``detect_every``-th frame through this step).

        Call from one thread at a time, frames in order (the detector's
        buffers and the round counter are not shared).

        Args:
            frame: The decoded frame (uint8 BGR).

        Returns:
            The detections (None between rounds) and the detector's seconds.
        """
        if self._planned % self.options.detect_every:
            self._planned += 1
            return BETWEEN_ROUNDS
        step = self.detect_with(self.detector, frame)
        self._planned += 1  # after the detector: a frame it failed on is not counted, as before
        return step

    def next_is_detection(self) -> bool:
        """Count one more frame for the detection rounds; True if it is one.

        For runners that decide the rounds in one thread and detect in
        several (:class:`edge.pipeline.parallel.ParallelOptions` ``detect_threads``);
        unlike :meth:`detect_step`, a frame counts even if its detection fails.
        """
        due = self._planned % self.options.detect_every == 0
        self._planned += 1
        return due

    def detect_with(self, detector: BlazeFace, frame: Frame) -> DetectStep:
        """Detect faces in a detection-round frame with ``detector`` (this pipeline's, or a replica in another thread).

        Args:
            detector: A detector with this pipeline's options, used by one thread at a time.
            frame: The frame (uint8 BGR).

        Returns:
            The detections and the detector's wall seconds.
        """
        times = FrameTimes()
        with times.stage("detect"):
            detections = detector.detect(frame.image)
        return DetectStep(detections, times.seconds["detect"])

    def _locate(self, frame: Frame, step: DetectStep, times: FrameTimes) -> tuple[list[TrackedFace], list[Track]]:
        """Track update on detection rounds, carried boxes otherwise: (faces to classify, removed tracks)."""
        if step.detections is None:
            with times.stage("track"):
                carried = self.tracker.carry(frame.time_s)
            # a box carried out of the picture has nothing left to classify
            w, h = frame.width, frame.height
            return [f for f in carried if f.detection.bbox.clipped(w, h).area > 0], []
        with times.stage("track"):
            update = self.tracker.update(step.detections, frame.time_s)
        return [f for f in update.seen if f.track.confirmed], update.removed

    def classify_step(self, frame: Frame, step: DetectStep) -> ClassifiedFrame:
        """Track and classify one frame (frames in order, one thread at a time).

        Args:
            frame: The frame ``step`` was computed on.
            step: Its :meth:`detect_step` output.

        Returns:
            Faces with raw scores, removed tracks and the stage seconds so far.
        """
        times = FrameTimes()
        if step.detections is not None:
            times.add("detect", step.seconds)
        faces, removed = self._locate(frame, step, times)
        scores: list[EmotionScores] = []
        if faces:
            with times.stage("preprocess"):
                grey = self.classifier.grey_batch(frame.image, [f.detection for f in faces], self.options.align)
            with times.stage("classify"):
                probs = self.classifier.predict_grey(grey)
            scores = [EmotionScores(p, self.classifier.labels) for p in probs]
        return ClassifiedFrame(frame, step.detections is not None, faces, scores, removed, times)

    def smooth_step(self, classified: ClassifiedFrame) -> FrameResult:
        """Smooth the scores, emit events and commit the frame's stage times (frames in order).

        Args:
            classified: :meth:`classify_step` output.

        Returns:
            Faces (raw and smoothed scores, current emotion) and events of the frame.
        """
        frame, times = classified.frame, classified.times
        self._frame_size = (frame.width, frame.height)
        result = FrameResult(frame.index, frame.time_s, frame.width, frame.height, classified.detected)
        with times.stage("smooth"):
            for face, score in zip(classified.faces, classified.scores, strict=True):
                result.faces.append(self._smooth(face, score, frame.time_s, result.events))
            for track in classified.removed:
                result.events.extend(self._end(track.track_id))
        self.timer.commit(times)
        return result

    def process(self, frame: Frame, step: DetectStep | None = None) -> FrameResult:
        """Run every stage on one frame.

        Args:
            frame: The decoded frame (BGR, time in seconds).
            step: Its :meth:`detect_step` output when already computed
                (another thread); None runs the detector here when due.

        Returns:
            Faces (raw and smoothed scores, current emotion) and events of this frame.
        """
        if step is None:
            step = self.detect_step(frame)
        return self.smooth_step(self.classify_step(frame, step))

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
        if state is None or box is None or track_id not in self._started:
            return []
        self._started.discard(track_id)
        return [track_ended_event(state, track_id, self.source, box, self._frame_size, self.classifier.labels)]

    def finish(self) -> list[EmotionEvent]:
        """End every open track (end of stream); returns their ``track_ended`` events.

        With :mod:`edge.pipeline.parallel`, call only after its run has ended
        (it touches the tracker).
        """
        events = []
        for track in self.tracker.remove_all():
            events.extend(self._end(track.track_id))
        return events

    @property
    def open_tracks(self) -> dict[int, str]:
        """{track_id: current emotion} of reported tracks."""
        return {tid: self.smoother.states[tid].current for tid in self._started if tid in self.smoother.states}
