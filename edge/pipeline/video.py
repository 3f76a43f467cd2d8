"""``edge-fer --video``: a whole clip through the pipeline, with its offline outputs."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from edge.capture import FileSource
from edge.config import Config
from edge.pipeline.annotate import AnnotatedVideo
from edge.pipeline.factory import build_pipeline
from edge.pipeline.outputs import EventsJsonl, FramesCsv, build_summary
from edge.pipeline.timing import StageTimer, process_age_s

log = logging.getLogger(__name__)


@dataclass
class VideoRun:
    """Result of :func:`run_video`: the summary dict and where the outputs went."""

    summary: dict
    out_dir: Path


class _Outputs:
    """The files one run writes; closed (flushed) whatever happens."""

    def __init__(self, out_dir: Path, annotate: str | None, fps: float) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.frames = FramesCsv(out_dir / "frames.csv")
        self.events = EventsJsonl(out_dir / "events.jsonl")
        self.video = AnnotatedVideo(Path(annotate), fps) if annotate else None
        self.ended = []

    def write(self, frame, result) -> None:
        self.frames.write(result)
        self.write_events(result.events)
        if self.video:
            self.video.write(frame.image, result.faces)

    def write_events(self, events) -> None:
        self.events.write(events)
        self.ended.extend(e for e in events if e.type == "track_ended")

    def close(self) -> None:
        self.frames.close()
        self.events.close()
        if self.video:
            self.video.close()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total or None, unit="frame", desc="edge-fer", disable=not enabled, dynamic_ncols=True)


def run_video(path: str | Path, cfg: Config, out_dir: Path) -> VideoRun:
    """Process every frame of a video file.

    Args:
        path: Video file.
        cfg: Validated configuration (detector, classifier, tracker, smoothing, output).
        out_dir: Folder for frames.csv, events.jsonl, summary.json (and timeline.png).

    Returns:
        The run's summary (also written to ``summary.json``).

    Raises:
        SourceError: missing or unreadable video (outputs so far are flushed).
        ModelError: a model cannot be loaded.
    """
    t_start = time.perf_counter()
    timer = StageTimer()
    source = FileSource(path, name="video")  # fails fast on a missing or unreadable file
    try:
        pipeline = build_pipeline(cfg, "video", timer=timer)
    except Exception:
        source.close()
        raise
    outputs = _Outputs(out_dir, cfg.output.annotate, source.fps)
    frames, last_t, first_frame_s = 0, 0.0, None
    bar = _progress(source.declared_frames, cfg.output.progress)
    try:
        t_wait = time.perf_counter()
        for frame in source:
            timer.add("decode", time.perf_counter() - t_wait)  # time blocked on the decoder thread
            result = pipeline.process(frame)
            if first_frame_s is None:
                first_frame_s = process_age_s() or time.perf_counter() - t_start
            with timer.stage("write"):
                outputs.write(frame, result)
            frames, last_t = frames + 1, frame.time_s
            bar.update(1)
            t_wait = time.perf_counter()
        with timer.stage("write"):
            outputs.write_events(pipeline.finish())
    finally:
        bar.close()
        source.close()
        outputs.close()
    elapsed = time.perf_counter() - t_start
    summary = build_summary(outputs.ended, {
        "input": str(path), "frames": frames, "declared_frames": source.declared_frames,
        "duration_s": round(last_t + (1.0 / source.fps if source.fps and frames else 0.0), 3),
        "face_rows": outputs.frames.rows, "events": outputs.events.count,
        "processing_s": round(elapsed, 3), "processing_fps": frames / elapsed if elapsed > 0 else 0.0,
        "first_frame_s": round(first_frame_s or 0.0, 3), "detect_every": cfg.detect_every,
        "stage_ms_per_frame": {k: round(v, 4) for k, v in timer.mean_ms(per=max(1, frames)).items()},
        "decoder_error": source.error,
    })
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return VideoRun(summary, out_dir)
