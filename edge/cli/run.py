"""The three commands behind ``edge-fer``, mapping failures to exit codes."""

from __future__ import annotations

import logging
from pathlib import Path

from edge.capture import SourceError
from edge.cli import exit_codes as codes
from edge.config import Config
from edge.runtime import ModelError

log = logging.getLogger("edge-fer")


def _source_code(exc: SourceError) -> int:
    return codes.INPUT_MISSING if exc.kind == "missing" else codes.INPUT_UNREADABLE


def run_video_cmd(path: str, cfg: Config) -> int:
    """``edge-fer --video``: process, write outputs, print the summary table."""
    from edge.pipeline.outputs import format_summary
    from edge.pipeline.video import run_video

    out_dir = Path(cfg.output.dir or Path("edge-fer-out") / Path(path).stem)
    try:
        run = run_video(path, cfg, out_dir)
    except SourceError as exc:
        return codes.fail(_source_code(exc), str(exc))
    except ModelError as exc:
        return codes.fail(codes.MODEL, str(exc))
    except OSError as exc:
        return codes.fail(codes.OUTPUT, f"cannot write outputs: {exc}")
    summary = run.summary
    if summary["frames"] == 0:
        return codes.fail(codes.INPUT_UNREADABLE, f"{path}: no decodable frames (empty or corrupt video)")
    if summary["declared_frames"] and summary["frames"] < summary["declared_frames"]:
        log.warning("%s: decoded %d of %d declared frames (truncated or corrupt file)", path,
                    summary["frames"], summary["declared_frames"])
    if summary["face_rows"] == 0:
        log.warning("%s: no faces found", path)
    if cfg.output.plot:
        from edge.pipeline.plot import plot_timeline

        plot_timeline(out_dir / "frames.csv", out_dir / "timeline.png")
    print(format_summary(summary))
    print(f"outputs: {out_dir}/")
    return codes.OK


def run_images_cmd(path: str, cfg: Config) -> int:
    """``edge-fer --image``: JSON lines on stdout."""
    from edge.pipeline.images import run_images

    try:
        run = run_images(path, cfg)
    except SourceError as exc:
        return codes.fail(_source_code(exc), str(exc))
    except ModelError as exc:
        return codes.fail(codes.MODEL, str(exc))
    log.info("%d images, %d faces, %d without a face, %d unreadable", run.images, run.faces,
             run.without_face, run.unreadable)
    return codes.OK


def run_daemon_cmd(cfg: Config) -> int:
    """``edge-fer --config``: the long-lived service."""
    from edge.pipeline.service import run_daemon

    try:
        return run_daemon(cfg)
    except ModelError as exc:
        return codes.fail(codes.MODEL, str(exc))
    except OSError as exc:
        return codes.fail(codes.USAGE, f"cannot start: {exc}")
