"""ParallelRunner vs sequential FramePipeline on real clips; a failing stage never hangs the run."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import read_frame
from edge.capture import FileSource
from edge.classify import EmotionClassifier
from edge.detect import BlazeFace
from edge.pipeline.core import FramePipeline, PipelineOptions
from edge.pipeline.outputs import FramesCsv
from edge.pipeline.parallel import ParallelOptions, ParallelRunner
from edge.types import Frame

CLIPS = ["facerec_short_hamilton_clip.mp4", "liveportrait_d19.mp4"]  # several faces/tracks; emotion changes
THREADS = None  # inline_detect_every: always a detect thread, whatever the host's CPUs
LAYOUTS = {"detect-thread": ParallelOptions(inline_detect_every=THREADS),
           "detect+classify-threads": ParallelOptions(classify_thread=True, inline_detect_every=THREADS),
           "2-detect-threads": ParallelOptions(detect_threads=2, inline_detect_every=THREADS),
           "2-detect+classify-threads": ParallelOptions(detect_threads=2, classify_thread=True, depth=1,
                                                        inline_detect_every=THREADS),
           "inline": ParallelOptions(inline_detect_every=1)}  # every step in the caller's thread
HANG_S = 20.0  # a run that has not ended after this long is a hang


@pytest.fixture(scope="module")
def stages():
    return BlazeFace(), EmotionClassifier()


def _face_key(face) -> tuple:
    return (face.track_id, face.bbox, face.scores.probs.tobytes(), face.smoothed.probs.tobytes(), face.emotion)


def _event_key(event) -> tuple:
    """Every field of an event except the wall clock (``ts`` is set when serialised)."""
    return (event.type, event.time_s, event.source, event.track_id, event.emotion, event.confidence,
            event.scores, event.bbox, event.extra)


def _run(clip, stages, every: int, layout: ParallelOptions | None, csv_path):
    """(per-frame keys, events incl. end-of-stream) of one run; writes frames.csv like ``--video``."""
    pipe = FramePipeline(*stages, options=PipelineOptions(detect_every=every))
    source = FileSource(clip)
    out = FramesCsv(csv_path, pipe.classifier.labels)
    frames, events = [], []
    try:
        results = ((f, pipe.process(f)) for f in source) if layout is None else (
            (p.frame, p.result) for p in ParallelRunner(pipe, layout).run(source))
        for frame, result in results:
            assert (result.frame_index, result.time_s) == (frame.index, frame.time_s)
            out.write(result)
            frames.append((result.frame_index, result.time_s, result.detected, [_face_key(f) for f in result.faces]))
            events.extend(_event_key(e) for e in result.events)
        events.extend(_event_key(e) for e in pipe.finish())
    finally:
        source.close()
        out.close()
    return frames, events


@pytest.mark.integration
@pytest.mark.parametrize("every", [1, 5])
@pytest.mark.parametrize("clip", CLIPS)
def test_parallel_results_identical_to_sequential(videos, stages, tmp_path, clip, every):
    seq_frames, seq_events = _run(videos / clip, stages, every, None, tmp_path / "seq.csv")
    assert len(seq_frames) >= 250 and sum(len(f[3]) for f in seq_frames) > 200  # real faces were classified
    assert {e[0] for e in seq_events} >= {"track_started", "track_ended"}
    for name, layout in LAYOUTS.items():
        frames, events = _run(videos / clip, stages, every, layout, tmp_path / f"{name}.csv")
        assert [f[0] for f in frames] == list(range(len(seq_frames))), name  # every frame, in order
        assert frames == seq_frames, name
        assert events == seq_events, name
        assert (tmp_path / f"{name}.csv").read_bytes() == (tmp_path / "seq.csv").read_bytes(), name


class _FailingDetector(BlazeFace):
    """The real detector, failing on one frame (fault injection)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at, self.calls = fail_at, 0

    def replica(self):
        return _FailingDetector(self.fail_at)

    def detect(self, image):
        self.calls += 1
        if self.calls > self.fail_at:
            raise RuntimeError("detector exploded")
        return super().detect(image)


class _FailingClassifier(EmotionClassifier):
    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at, self.calls = fail_at, 0

    def predict_grey(self, grey, batch_size=None):
        self.calls += 1
        if self.calls > self.fail_at:
            raise ValueError("classifier exploded")
        return super().predict_grey(grey, batch_size)


def _consume_bounded(iterator) -> tuple[list, BaseException | None, bool]:
    """Drain ``iterator`` in a helper thread: (items, exception raised, finished within HANG_S)."""
    items, caught = [], []

    def body():
        try:
            items.extend(iterator)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
            caught.append(exc)

    helper = threading.Thread(target=body, daemon=True)
    helper.start()
    helper.join(HANG_S)
    return items, (caught[0] if caught else None), not helper.is_alive()


def _no_pipeline_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("edge-") and t.is_alive()]


def _frames_of(d19, n: int, fail_after: int | None = None):
    first = read_frame(d19, 10)
    for i in range(n):
        if fail_after is not None and i == fail_after:
            raise OSError("camera unplugged")
        yield Frame(i, i / 30, first)


@pytest.mark.integration
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("failing", ["detector", "classifier", "frames"])
def test_a_failing_stage_raises_in_the_caller_and_stops_the_threads(d19, stages, layout, failing):
    detector = _FailingDetector(fail_at=5) if failing == "detector" else stages[0]
    classifier = _FailingClassifier(fail_at=5) if failing == "classifier" else stages[1]
    pipe = FramePipeline(detector, classifier, options=PipelineOptions(detect_every=1))
    frames = _frames_of(d19, 200, fail_after=8 if failing == "frames" else None)
    items, error, finished = _consume_bounded(ParallelRunner(pipe, LAYOUTS[layout]).run(frames))
    assert finished, "the run hung"
    expected = {"detector": RuntimeError, "classifier": ValueError, "frames": OSError}[failing]
    assert isinstance(error, expected), error
    assert any("edge.pipeline.parallel" in note for note in getattr(error, "__notes__", [])) or (
        failing == "classifier" and not LAYOUTS[layout].classify_thread) or (
        layout == "inline")  # raised in the caller's thread: no note
    assert [p.frame.index for p in items] == list(range(len(items))) and len(items) <= 12
    assert _no_pipeline_threads()


@pytest.mark.integration
def test_on_error_skips_the_failing_frames_and_goes_on(d19, stages):
    pipe = FramePipeline(_FailingDetector(fail_at=3), stages[1], options=PipelineOptions(detect_every=1))
    failed: list[int] = []
    items, error, finished = _consume_bounded(
        ParallelRunner(pipe).run(_frames_of(d19, 10), on_error=lambda frame, exc: failed.append(frame.index)))
    assert finished and error is None
    assert [p.frame.index for p in items] == [0, 1, 2] and failed == list(range(3, 10))
    assert _no_pipeline_threads()


@pytest.mark.integration
def test_consumer_stopping_early_stops_the_threads(d19, stages):
    pipe = FramePipeline(*stages)
    run = ParallelRunner(pipe, ParallelOptions(depth=1, classify_thread=True)).run(_frames_of(d19, 1000))
    first = [next(run) for _ in range(3)]
    run.close()
    assert [p.frame.index for p in first] == [0, 1, 2]
    assert _no_pipeline_threads()


def test_inline_layout_by_detect_rate_and_cpus(stages):
    """On 2 CPUs or fewer, detection every 2nd frame or rarer runs without a detect thread; never with idle_s."""
    from edge.pipeline.parallel import INLINE_DETECT_EVERY, default_inline_detect_every, usable_cpus

    assert default_inline_detect_every() == (INLINE_DETECT_EVERY if usable_cpus() <= 2 else None)
    options = ParallelOptions(inline_detect_every=5)
    for every, inline in ((1, False), (4, False), (5, True), (10, True)):
        runner = ParallelRunner(FramePipeline(*stages, options=PipelineOptions(detect_every=every)), options)
        assert runner._inline(idle_s=None) is inline, every
        assert runner._inline(idle_s=0.1) is False  # a live loop needs its idle marks from the threads
    for threaded in (ParallelOptions(inline_detect_every=5, classify_thread=True),
                     ParallelOptions(inline_detect_every=5, detect_threads=2),
                     ParallelOptions(inline_detect_every=None)):
        runner = ParallelRunner(FramePipeline(*stages, options=PipelineOptions(detect_every=5)), threaded)
        assert runner._inline(idle_s=None) is False
    shared = ParallelRunner({"cam0": FramePipeline(*stages, options=PipelineOptions(detect_every=5))}, options)
    assert shared._inline(idle_s=None) is False  # one runner for several sources keeps its detect thread


@pytest.mark.integration
def test_inline_run_starts_no_thread(d19, stages):
    pipe = FramePipeline(*stages, options=PipelineOptions(detect_every=5))
    run = ParallelRunner(pipe, ParallelOptions(inline_detect_every=5)).run(_frames_of(d19, 12))
    first = next(run)
    assert first.frame.index == 0 and _no_pipeline_threads()
    assert [p.frame.index for p in run] == list(range(1, 12))


def test_depth_and_detect_threads_must_be_positive(stages):
    with pytest.raises(ValueError):
        ParallelRunner(FramePipeline(*stages), ParallelOptions(depth=0))
    with pytest.raises(ValueError):
        ParallelRunner(FramePipeline(*stages), ParallelOptions(detect_threads=0))


def test_frame_results_are_not_aliased(d19, stages):
    """Each yielded result owns its arrays (a later frame never changes an earlier one's scores)."""
    pipe = FramePipeline(*stages, options=PipelineOptions(detect_every=1))
    out = list(ParallelRunner(pipe).run(_frames_of(d19, 6)))
    probs = [p.result.faces[0].scores.probs for p in out if p.result.faces]
    assert len(probs) >= 4 and all(not np.shares_memory(a, b) for a, b in zip(probs, probs[1:], strict=False))


@pytest.mark.integration
def test_idle_source_yields_none_for_housekeeping_and_frames_stay_in_order(d19, stages):
    """A live source that pauses: the caller gets None every idle_s, then the next frames, in order."""
    import time

    image = read_frame(d19, 10)

    def live():
        for i in range(6):
            if i == 3:
                time.sleep(0.35)  # the camera stalls
            yield Frame(i, i / 30, image, "cam0")

    pipe = FramePipeline(*stages, source="cam0")
    items, error, finished = _consume_bounded(ParallelRunner({"cam0": pipe}, ParallelOptions(depth=1)).run(
        live(), idle_s=0.1))
    assert finished and error is None
    frames = [p.frame.index for p in items if p is not None]
    assert frames == list(range(6)) and items.count(None) >= 2
    position = {p.frame.index: i for i, p in enumerate(items) if p is not None}
    assert None in items[position[2]:position[3]]  # an idle mark falls in the stall


@pytest.mark.integration
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_frames_in_flight_stay_bounded_behind_a_slow_consumer(d19, stages, layout):
    """A fast source and a slow caller: the runner never holds more than its queues allow (memory stays flat)."""
    import time

    image = read_frame(d19, 10)
    generated = []

    def fast():
        for i in range(40):
            generated.append(i)
            yield Frame(i, i / 30, image)

    options = LAYOUTS[layout]
    d, n = options.depth, options.detect_threads
    # frames can sit in: the reading thread's hands; per detector thread (n > 1) its input queue, hands and
    # output queue (n = 1: output queue only); the classify thread's hands and queue; the one being yielded
    detectors = d if n == 1 else n * (2 * d + 1)
    allowed = 1 + detectors + (d + 1 if options.classify_thread else 0) + 1
    inline = layout == "inline"
    if inline:  # no thread reads ahead: the caller takes each frame when it wants the next
        allowed = 1
    pipe = FramePipeline(*stages, options=PipelineOptions(detect_every=5))
    ahead = []
    for consumed, item in enumerate(ParallelRunner(pipe, options).run(fast()), 1):
        time.sleep(0.01)  # the caller is slower than the source
        ahead.append(len(generated) - consumed)
        assert item.frame.index == consumed - 1
    assert consumed == 40 and max(ahead) <= allowed and (inline or max(ahead) >= options.depth)
