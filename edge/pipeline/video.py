"""A whole clip through the pipeline, with its optional offline outputs (``edge-fer --video``, ``Analyzer``).

:class:`VideoJob` is the one code path of ``edge-fer --video`` and of
:meth:`edge.Analyzer.analyze_video`: iterating it decodes, processes and
(optionally) writes every frame; once exhausted, :attr:`VideoJob.summary`
holds the run facts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from edge.capture import FileSource
from edge.classify import EmotionClassifier
from edge.config import Config
from edge.detect import BlazeFace
from edge.pipeline.annotate import AnnotatedVideo, DrawnFace
from edge.pipeline.core import FrameResult
from edge.pipeline.factory import build_pipeline
from edge.pipeline.outputs import EventsJsonl, FramesCsv
from edge.pipeline.parallel import ParallelRunner
from edge.pipeline.summary import RunSummary
from edge.pipeline.timing import StageTimer, process_age_s
from edge.types import EmotionEvent, Frame

log = logging.getLogger(__name__)


def drawn(result: FrameResult) -> list[DrawnFace]:
    """What ``--annotate`` draws for the faces of one processed frame (smoothed emotion, raw score bars)."""
    return [DrawnFace(f.bbox, f"#{f.track_id} {f.emotion}", f.emotion, f.scores.as_dict()) for f in result.faces]


class _Outputs:
    """Counts of a run and the files it writes (none without ``out_dir``); closed whatever happens."""

    def __init__(self, out_dir: Path | None, annotate: Path | None, fps: float, labels: tuple[str, ...]) -> None:
        self.video = AnnotatedVideo(annotate, fps) if annotate else None  # checks ffmpeg before any file
        self.frames = self.events = None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.frames = FramesCsv(out_dir / "frames.csv", labels)
            self.events = EventsJsonl(out_dir / "events.jsonl")
        self.face_rows = 0
        self.event_count = 0
        self.ended: list[EmotionEvent] = []

    def write(self, frame: Frame, result: FrameResult) -> None:
        self.face_rows += len(result.faces)
        if self.frames:
            self.frames.write(result)
        self.write_events(result.events)
        if self.video:
            self.video.write(frame.image, drawn(result))

    def write_events(self, events: list[EmotionEvent]) -> None:
        self.event_count += len(events)
        if self.events:
            self.events.write(events)
        self.ended.extend(e for e in events if e.type == "track_ended")

    def close(self) -> None:
        for part in (self.frames, self.events, self.video):
            if part is not None:
                part.close()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total or None, unit="frame", desc="edge-fer", disable=not enabled, dynamic_ncols=True)


class VideoJob:
    """Every frame of one video file through detect, track, classify, smooth (single use).

    Iterate it for ``(Frame, FrameResult)`` pairs in frame order; when the
    iteration ends (or :meth:`run` returns), :attr:`summary` holds the run facts
    and, with ``out_dir``, ``frames.csv``, ``events.jsonl``, ``summary.json``
    (and ``timeline.png`` with ``plot``) are written.
    """

    def __init__(self, path: str | Path, cfg: Config, detector: BlazeFace, classifier: EmotionClassifier, *,
                 out_dir: Path | None = None, annotate: Path | None = None, plot: bool = False,
                 progress: bool = False) -> None:
        """Open the clip and the outputs (nothing is decoded yet).

        Args:
            path: Video file (any container/codec OpenCV's FFmpeg reads).
            cfg: Validated configuration (``detect_every``, tracker, smoothing, classifier.align).
            detector: Loaded face detector (shared across clips; each job has its own tracks).
            classifier: Loaded emotion classifier (shared across clips).
            out_dir: Folder for frames.csv, events.jsonl, summary.json; None writes no files.
            annotate: H.264 MP4 with boxes and labels; None for none.
            plot: Write ``out_dir/timeline.png`` at the end (needs matplotlib and ``out_dir``).
            progress: tqdm progress bar on stderr.

        Raises:
            SourceError: missing or unreadable video.
            MissingDependency: ``plot`` without matplotlib, ``annotate`` without ffmpeg.
            OSError: outputs not writable.
        """
        if plot:
            from edge.pipeline.plot import require_matplotlib

            require_matplotlib()
        self.path, self.out_dir, self.plot = Path(path), out_dir, plot and out_dir is not None
        self.source = FileSource(path, name="video")  # fails fast on a missing or unreadable file
        try:
            self.timer = StageTimer()
            self.pipeline = build_pipeline(cfg, "video", detector, classifier, timer=self.timer)
            self.outputs = _Outputs(out_dir, annotate, self.source.fps, classifier.labels)
        except BaseException:
            self.source.close()
            raise
        self.detect_every = cfg.detect_every
        self.progress = progress
        self.summary: RunSummary | None = None
        self.end_events: list[EmotionEvent] = []  # track_ended of the tracks still open at the end
        self._used = False

    def __iter__(self) -> Iterator[tuple[Frame, FrameResult]]:
        if self._used:
            raise RuntimeError("a VideoJob can be iterated once")
        self._used = True
        t_start = time.perf_counter()
        frames, last_t, first_frame_s = 0, 0.0, None
        bar = _progress(self.source.declared_frames, self.progress)
        try:
            t_wait = time.perf_counter()
            for item in ParallelRunner(self.pipeline).run(self.source):  # detection runs a frame ahead
                if item is None:  # only yielded while idle with ``idle_s`` (not given here)
                    continue
                frame, result = item.frame, item.result
                self.timer.add("wait", time.perf_counter() - t_wait)  # blocked on the decoder and detect threads
                if first_frame_s is None:
                    first_frame_s = process_age_s() or time.perf_counter() - t_start
                with self.timer.stage("write"):
                    self.outputs.write(frame, result)
                frames, last_t = frames + 1, frame.time_s
                bar.update(1)
                yield frame, result
                t_wait = time.perf_counter()
            self.end_events = self.pipeline.finish()
            with self.timer.stage("write"):
                self.outputs.write_events(self.end_events)
        except BaseException:  # Ctrl-C, an early break, a failed stage: close, keep the original error
            bar.close()
            self.close(quiet=True)
            raise
        bar.close()
        self.close()
        self._finish(frames, last_t, first_frame_s or 0.0, time.perf_counter() - t_start)

    def _finish(self, frames: int, last_t: float, first_frame_s: float, elapsed: float) -> None:
        fps = self.source.fps
        self.summary = RunSummary(
            input=str(self.path), frames=frames, declared_frames=self.source.declared_frames,
            duration_s=round(last_t + (1.0 / fps if fps and frames else 0.0), 3),
            face_rows=self.outputs.face_rows, events=self.outputs.event_count,
            processing_s=round(elapsed, 3), processing_fps=frames / elapsed if elapsed > 0 else 0.0,
            first_frame_s=round(first_frame_s, 3), detect_every=self.detect_every,
            stage_ms_per_frame={k: round(v, 4) for k, v in self.timer.mean_ms(per=max(1, frames)).items()},
            decoder_error=self.source.error, tracks=RunSummary.tracks_of(self.outputs.ended))
        if self.out_dir is not None:
            (self.out_dir / "summary.json").write_text(self.summary.to_json())
            if self.plot and frames:
                from edge.pipeline.plot import plot_timeline

                plot_timeline(self.out_dir / "frames.csv", self.out_dir / "timeline.png", title=self.path.name)

    def run(self) -> RunSummary:
        """Process the whole clip without looking at the frames; returns :attr:`summary`."""
        for _ in self:
            pass
        if self.summary is None:  # set by a completed iteration
            raise RuntimeError(f"{self.path}: the run was stopped before its end, no summary")
        return self.summary

    def close(self, quiet: bool = False) -> None:
        """Stop decoding and close the outputs (safe to call twice; a stopped job has no summary).

        Args:
            quiet: Log instead of raising an output error (used while another error propagates).

        Raises:
            OSError: an output could not be finished (not with ``quiet``).
        """
        self.source.close()
        try:
            self.outputs.close()
        except OSError as exc:
            if not quiet:
                raise
            log.warning("%s", exc)
