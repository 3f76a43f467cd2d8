"""Stage parallelism: the detector of frame t+1 runs while frame t is tracked, classified and smoothed.

:class:`ParallelRunner` runs the three steps of :class:`~edge.pipeline.core.FramePipeline`
in a chain of threads joined by bounded queues:

* **detect** thread - :meth:`FramePipeline.detect_step`: reads the frame
  iterator (for a file, the decoder thread's queue) and runs BlazeFace on
  each detection round (every ``detect_every``-th frame; frames in between
  pass straight through). LiteRT's ``invoke()`` and OpenCV release the GIL,
  so it runs on the other core while the caller works.
* with ``detect_threads`` N > 1, a **dispatch** thread reads the frames and
  decides the detection rounds, and N **detect-k** threads, each with its own
  detector, take frames i, i + N, ... in turn (for 4+ cores when the detector
  is the bottleneck); their results are read back in frame order.
* optional **classify** thread (``classify_thread=True``) -
  :meth:`FramePipeline.classify_step`: tracker update/carry, crops, batched
  classification. Worth it with 3 or more cores; on 2 cores the decoder,
  detector and caller already fill both.
* the **caller's** thread - the classify step (unless it has a thread of its
  own), then :meth:`FramePipeline.smooth_step`: smoothing, events, stage
  timer, and whatever the caller does with the result (writing outputs).

Each step keeps its own state and sees every frame in order, so frame order,
timestamps, track ids, scores and events are exactly those of
:meth:`FramePipeline.process` called frame by frame. Each queue holds at most
``depth`` frames, so memory stays flat however fast the source is; a live
source (latest-frame slot) keeps dropping frames while the chain is busy,
because the detect thread takes a new frame only once it has handed over the
previous one.

A step that raises stops the chain: the exception (with a note naming the
thread and frame) is raised in the caller's thread, the threads are stopped
and joined; with ``on_error`` the frame is reported and skipped instead.

On a host with at most 2 CPUs, a single pipeline that detects on every
2nd frame or less often (``ParallelOptions.inline_detect_every``) runs all
its steps in the caller's thread, behind the frame iterator's own thread (a
file's decoder): the detect thread would be idle half the time or more, and
its hand-offs and wake-ups cost more than it saves when two threads already
fill both cores (measured: docs/pipeline.md, 5-12% faster at 2, 3, 4 and 5).
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.detect import BlazeFace
from edge.pipeline.core import BETWEEN_ROUNDS, ClassifiedFrame, DetectStep, FramePipeline, FrameResult
from edge.types import Frame

log = logging.getLogger(__name__)

_END = object()
_POLL_S = 0.05  # how often a blocked put/get looks at the stop flag (seconds)


#: ``detect_every`` from which a pipeline on a host of at most 2 CPUs runs without a detect thread (measured with
#: ``benchmarks/bench_pipeline.py --every 1 2 3 4 5``: faster without it from 2 on, slower at 1; docs/pipeline.md).
INLINE_DETECT_EVERY = 2


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_inline_detect_every() -> int | None:
    """:data:`INLINE_DETECT_EVERY` on a host of at most 2 usable CPUs; None (always a detect thread) otherwise."""
    return INLINE_DETECT_EVERY if usable_cpus() <= 2 else None


@dataclass(frozen=True)
class ParallelOptions:
    """Thread layout of a :class:`ParallelRunner`.

    Attributes:
        depth: Frames each queue between two threads may hold (>= 1). With
            ``depth`` d, at most d + 1 frames are between the frame iterator
            and the caller per thread (1 is enough for live sources; 2 absorbs
            jitter for files).
        classify_thread: Track + crop + classify in a thread of its own
            (three-stage chain) instead of in the caller's thread.
        detect_threads: Detector threads. 1: one detect thread reads the
            frames. N > 1: a dispatch thread reads the frames and decides the
            detection rounds, and N threads, each with its own detector
            (:meth:`BlazeFace.replica`, ~3 MB each), detect frames i, i + N,
            ... in turn; results are collected in frame order. For 4+ cores
            with detection on every frame.
        join_timeout_s: Seconds to wait for each thread when the run ends.
        inline_detect_every: A single pipeline whose ``detect_every`` is at
            least this runs every step in the caller's thread (no detect
            thread) when the run has no ``idle_s`` and the layout is the
            plain one (one detector, no classify thread); None: never.
            Default: :func:`default_inline_detect_every` (2 on hosts of at
            most 2 CPUs, where the decoder and the caller fill both cores).
    """

    depth: int = 2
    classify_thread: bool = False
    detect_threads: int = 1
    join_timeout_s: float = 2.0
    inline_detect_every: int | None = field(default_factory=default_inline_detect_every)


@dataclass(frozen=True, slots=True)
class ProcessedFrame:
    """One frame and what the pipeline made of it."""

    frame: Frame
    result: FrameResult


@dataclass(frozen=True, slots=True)
class _Planned:
    """A frame and whether it is a detection round (dispatch thread -> detector threads)."""

    frame: Frame
    due: bool


@dataclass(frozen=True, slots=True)
class _Detected:
    frame: Frame
    step: DetectStep


@dataclass(frozen=True, slots=True)
class _Chain:
    """Threads of a run (start order), the queues the next reader takes in turn, and their producers."""

    threads: list[threading.Thread]
    results: list[queue.Queue]
    producers: list[threading.Thread]


@dataclass(frozen=True, slots=True)
class _Failed:
    """A step raised on ``frame`` (None: the frame iterator itself raised)."""

    frame: Frame | None
    error: BaseException


class _Upstream(Exception):
    """Carries a :class:`_Failed` out of a queue reader."""

    def __init__(self, failed: _Failed) -> None:
        super().__init__(repr(failed.error))
        self.failed = failed


def _put(out: queue.Queue | _Spread, item: Any, stop: threading.Event) -> bool:
    """Put ``item``, waiting for room; False once ``stop`` is set."""
    while not stop.is_set():
        try:
            out.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


class _Spread:
    """Queue-like: item i goes to ``queues[i % N]``; the end mark goes to every queue."""

    def __init__(self, queues: list[queue.Queue]) -> None:
        self.queues = queues
        self._next = 0  # index of the next item
        self._ended = 0  # queues that already hold the end mark

    def put(self, item: Any, timeout: float) -> None:
        """Route ``item`` (raises ``queue.Full`` after ``timeout`` s, keeping its progress for a retry)."""
        if item is _END:
            while self._ended < len(self.queues):
                self.queues[self._ended].put(_END, timeout=timeout)
                self._ended += 1
            return
        self.queues[self._next % len(self.queues)].put(item, timeout=timeout)
        self._next += 1


def _take(sources: list[queue.Queue], producers: list[threading.Thread], stop: threading.Event,
          skip_errors: bool, idle_s: float | None = None) -> Iterator[Any]:
    """Items of the queues, taken in turn (item i from ``sources[i % N]``), until an end mark.

    ``producers[k]`` fills ``sources[k]``. With ``idle_s``, None is yielded
    after each ``idle_s`` seconds without an item.

    Raises:
        _Upstream: a producer reported a failure (passed through as an item with ``skip_errors``).
        RuntimeError: a producer thread ended without an end mark.
    """
    waited, index, poll = 0.0, 0, min(_POLL_S, idle_s) if idle_s else _POLL_S
    while True:
        source, producer = sources[index % len(sources)], producers[index % len(producers)]
        try:
            item = source.get(timeout=poll)
        except queue.Empty:
            if stop.is_set():
                return
            if not producer.is_alive() and source.empty():
                raise RuntimeError(f"pipeline thread {producer.name} ended without a result") from None
            waited += poll
            if idle_s is not None and waited >= idle_s:
                waited = 0.0
                yield None
            continue
        waited, index = 0.0, index + 1
        if item is _END:
            return
        if isinstance(item, _Failed) and (item.frame is None or not skip_errors):
            raise _Upstream(item)
        yield item


def _noted(error: BaseException, thread: str, frame: Frame | None) -> BaseException:
    where = f"frame {frame.index} of {frame.source!r}" if frame is not None else "reading frames"
    error.add_note(f"edge.pipeline.parallel: raised in the {thread} thread ({where})")
    return error


def _work(name: str, items: Iterator[Any], step: Callable[[Any], Any], out: queue.Queue | _Spread,
          stop: threading.Event, cpu_s: dict[str, float]) -> None:
    """Thread body: ``step`` on every item in order, results to ``out``, then an end mark.

    A failure of ``step`` goes downstream as a :class:`_Failed` item for that
    frame (the thread goes on; the reader decides whether to stop); a failure
    of the item iterator ends the thread. The thread's CPU seconds go to
    ``cpu_s[name]`` when it ends.
    """
    try:
        _steps(name, items, step, out, stop)
    finally:
        cpu_s[name] = time.thread_time()


def _steps(name: str, items: Iterator[Any], step: Callable[[Any], Any], out: queue.Queue | _Spread,
           stop: threading.Event) -> None:
    try:
        for item in items:
            if stop.is_set():
                return
            if isinstance(item, _Failed):  # an upstream frame failure passed through (skip_errors)
                result: Any = item
            else:
                try:
                    result = step(item)
                except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
                    frame = item if isinstance(item, Frame) else item.frame
                    result = _Failed(frame, _noted(exc, name, frame))
            if not _put(out, result, stop):
                return
    except _Upstream as up:
        _put(out, up.failed, stop)
        return
    except BaseException as exc:  # noqa: BLE001 - the frame iterator failed: handed to the caller
        _put(out, _Failed(None, _noted(exc, name, None)), stop)
        return
    _put(out, _END, stop)


class ParallelRunner:
    """Runs :class:`FramePipeline` steps of consecutive frames in parallel threads (see module doc).

    One runner may serve several sources (as the daemon's single processing
    loop does): give a mapping ``{source name: pipeline}``; frames are routed by
    ``Frame.source`` and one detect thread serves them all, so a shared
    detector is only ever used by one thread.
    """

    def __init__(self, pipelines: FramePipeline | Mapping[str, FramePipeline],
                 options: ParallelOptions = ParallelOptions()) -> None:
        """Keep the pipelines; threads start with each :meth:`run`.

        Args:
            pipelines: The pipeline, or one per source name.
            options: Queue depth, classify thread, join timeout.

        Raises:
            ValueError: ``depth`` or ``detect_threads`` < 1.
        """
        if options.depth < 1 or options.detect_threads < 1:
            raise ValueError(f"depth and detect_threads must be >= 1, got {options.depth}, {options.detect_threads}")
        self._single = pipelines if isinstance(pipelines, FramePipeline) else None
        self._pipelines: Mapping[str, FramePipeline] = {} if self._single else pipelines  # type: ignore[assignment]
        self.options = options
        #: CPU seconds (user + system) of each pipeline thread (``detect``, ``classify``) of the latest
        #: run, filled as the threads end: what each would need of a core of its own.
        self.thread_cpu_s: dict[str, float] = {}
        self._replicas: dict[int, list[BlazeFace]] = {}  # id(detector) -> one detector per detect thread

    def _pipeline(self, frame: Frame) -> FramePipeline:
        return self._single or self._pipelines[frame.source]

    def _detect(self, frame: Frame) -> _Detected:
        return _Detected(frame, self._pipeline(frame).detect_step(frame))

    def _plan(self, frame: Frame) -> _Planned:
        return _Planned(frame, self._pipeline(frame).next_is_detection())

    def _detect_planned(self, thread: int, item: _Planned) -> _Detected:
        pipeline = self._pipeline(item.frame)
        if not item.due:
            return _Detected(item.frame, BETWEEN_ROUNDS)
        detector = self._replicas[id(pipeline.detector)][thread]
        return _Detected(item.frame, pipeline.detect_with(detector, item.frame))

    def _prepare_replicas(self) -> None:
        """One detector per detect thread for every distinct detector of the pipelines (the first is the original)."""
        n = self.options.detect_threads
        for pipeline in ([self._single] if self._single else list(self._pipelines.values())):
            detectors = self._replicas.setdefault(id(pipeline.detector), [pipeline.detector])
            detectors.extend(pipeline.detector.replica() for _ in range(n - len(detectors)))

    def _classify(self, item: _Detected) -> ClassifiedFrame:
        return self._pipeline(item.frame).classify_step(item.frame, item.step)

    def run(self, frames: Iterable[Frame], on_error: Callable[[Frame, BaseException], None] | None = None,
            idle_s: float | None = None) -> Iterator[ProcessedFrame | None]:
        """Process ``frames`` in order; a generator (threads start on first ``next``, stop when it ends).

        Args:
            frames: Frames in order (a file source, or a generator of live
                frames); read by the detect thread only.
            on_error: Called in the caller's thread with a frame and the
                exception a step raised on it; the frame is then skipped
                (no result) and the run goes on. None: the run stops and the
                exception is raised.
            idle_s: When no frame has come through for this many seconds,
                yield None (a daemon loop does its housekeeping then); None
                never yields None.

        Yields:
            One :class:`ProcessedFrame` per frame, in input order (and None
            while idle, with ``idle_s``).

        Raises:
            Exception: whatever a step or the frame iterator raised (the same
                object, with a note naming the thread and frame); the threads
                are stopped first.
        """
        if self._inline(idle_s):
            yield from self._run_inline(frames, on_error)
            return
        stop = threading.Event()
        chain = self._start(iter(frames), stop, skip_errors=on_error is not None)
        failure: BaseException | None = None
        try:
            for item in _take(chain.results, chain.producers, stop, on_error is not None, idle_s):
                if item is None:
                    yield None
                    continue
                processed = self._finish(item, on_error)
                if processed is not None:
                    yield processed
        except _Upstream as up:
            failure = up.failed.error
        finally:
            stop.set()
            self._join(chain.threads)
        if failure is not None:
            raise failure

    def _inline(self, idle_s: float | None) -> bool:
        """Whether a run steps every frame in the caller's thread (see ``ParallelOptions.inline_detect_every``)."""
        o, single = self.options, self._single
        if single is None or idle_s is not None or o.classify_thread or o.detect_threads > 1:
            return False
        return o.inline_detect_every is not None and single.options.detect_every >= o.inline_detect_every

    def _run_inline(self, frames: Iterable[Frame],
                    on_error: Callable[[Frame, BaseException], None] | None) -> Iterator[ProcessedFrame]:
        """:meth:`FramePipeline.process` on every frame, in the caller's thread (same results as the threads)."""
        self.thread_cpu_s = {}
        pipeline = self._single
        assert pipeline is not None
        for frame in frames:
            try:
                result = pipeline.process(frame)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(frame, exc)
                continue
            yield ProcessedFrame(frame, result)

    def _thread(self, name: str, items: Iterator[Any], step: Callable[[Any], Any], out: queue.Queue | _Spread,
                stop: threading.Event) -> threading.Thread:
        return threading.Thread(target=_work, name=f"edge-{name}", daemon=True,
                                args=(name, items, step, out, stop, self.thread_cpu_s))

    def _start(self, frames: Iterator[Frame], stop: threading.Event, skip_errors: bool) -> _Chain:
        """Start the detect thread(s) (and the classify thread); returns the chain the caller reads."""
        self.thread_cpu_s = {}
        chain = self._detect_stage(frames, stop, skip_errors)
        if self.options.classify_thread:
            classified: queue.Queue = queue.Queue(maxsize=self.options.depth)
            items = _take(chain.results, chain.producers, stop, skip_errors)
            thread = self._thread("classify", items, self._classify, classified, stop)
            chain = _Chain([*chain.threads, thread], [classified], [thread])
        for thread in chain.threads:
            thread.start()
        return chain

    def _detect_stage(self, frames: Iterator[Frame], stop: threading.Event, skip_errors: bool) -> _Chain:
        """One detect thread reading the frames, or a dispatch thread feeding ``detect_threads`` detectors."""
        depth, n = self.options.depth, self.options.detect_threads
        if n == 1:
            detected: queue.Queue = queue.Queue(maxsize=depth)
            thread = self._thread("detect", frames, self._detect, detected, stop)
            return _Chain([thread], [detected], [thread])
        self._prepare_replicas()
        spread = _Spread([queue.Queue(maxsize=depth) for _ in range(n)])
        dispatcher = self._thread("dispatch", frames, self._plan, spread, stop)
        outs: list[queue.Queue] = [queue.Queue(maxsize=depth) for _ in range(n)]
        workers = [self._thread(f"detect-{k}", _take([spread.queues[k]], [dispatcher], stop, skip_errors),
                                functools.partial(self._detect_planned, k), outs[k], stop) for k in range(n)]
        return _Chain([dispatcher, *workers], outs, workers)

    def _finish(self, item: _Detected | ClassifiedFrame | _Failed,
                on_error: Callable[[Frame, BaseException], None] | None) -> ProcessedFrame | None:
        """Smooth one frame in the caller's thread (classifying it first without a classify thread)."""
        if isinstance(item, _Failed):  # only with on_error
            on_error(item.frame, item.error)  # type: ignore[misc, arg-type]
            return None
        try:
            classified = item if isinstance(item, ClassifiedFrame) else self._classify(item)
            return ProcessedFrame(classified.frame, self._pipeline(classified.frame).smooth_step(classified))
        except Exception as exc:
            if on_error is None:
                raise
            on_error(item.frame, exc)
            return None

    def _join(self, threads: list[threading.Thread]) -> None:
        for thread in threads:
            thread.join(self.options.join_timeout_s)
            if thread.is_alive():  # blocked inside the frame iterator (e.g. a silent live source)
                log.warning("pipeline thread %s still running %.1f s after the run ended (daemon thread)",
                            thread.name, self.options.join_timeout_s)
