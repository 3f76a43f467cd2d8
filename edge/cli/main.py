"""``edge-fer``: offline clips (``--video``), images (``--image``) or the daemon (``--config``).

Errors from bad input are one line on stderr with a distinct exit code
(:mod:`edge.cli.exit_codes`); tracebacks only with ``--log-level DEBUG``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge import __version__
from edge.cli import exit_codes as codes
from edge.config import Config, ConfigError, load_config

log = logging.getLogger("edge-fer")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(prog="edge-fer", description="Facial-emotion recognition on the edge.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--video", help="analyse a video file offline")
    mode.add_argument("--image", help="analyse an image or a folder of images")
    p.add_argument("--config", help="config.yaml (without --video/--image: run the daemon)")
    p.add_argument("--check-config", action="store_true", help="validate the config and exit")
    p.add_argument("--out", help="output folder for --video (default edge-fer-out/<clip name>)")
    p.add_argument("--annotate", help="--video: annotated MP4 path; --image: folder for annotated images")
    p.add_argument("--plot", action="store_true", default=None, help="--video: write timeline.png")
    p.add_argument("--detect-every", type=int, help="run the face detector on every N-th frame")
    p.add_argument("--model", help="emotion .tflite model (default: the shipped int8 model)")
    p.add_argument("--threads", type=int, help="inference threads for detector and classifier")
    p.add_argument("--state-dir", help="daemon state folder (event outbox); overrides state_dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--version", action="version", version=f"edge-fer {__version__}")
    return p


def _overrides(args: argparse.Namespace) -> dict:
    """CLI flags as a nested config dict (only the flags that were given)."""
    o: dict = {}
    if args.detect_every is not None:
        o["detect_every"] = args.detect_every
    if args.model:
        o["classifier"] = {"model": args.model}
    if args.threads:
        o.setdefault("classifier", {})["num_threads"] = args.threads
        o["detector"] = {"num_threads": args.threads}
    output = {k: v for k, v in (("dir", args.out), ("annotate", args.annotate), ("plot", args.plot)) if v is not None}
    if args.no_progress:
        output["progress"] = False
    if output:
        o["output"] = output
    if args.log_level:
        o["log_level"] = args.log_level
    if args.state_dir:
        o["state_dir"] = args.state_dir
    return o


def _dispatch(args: argparse.Namespace, cfg: Config) -> int:
    from edge.cli.run import run_daemon_cmd, run_images_cmd, run_video_cmd

    if args.video:
        return run_video_cmd(args.video, cfg)
    if args.image:
        return run_images_cmd(args.image, cfg)
    return run_daemon_cmd(cfg)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``edge-fer``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not (args.video or args.image or args.config):
        return codes.fail(codes.USAGE, "nothing to do: give --video PATH, --image PATH or --config config.yaml")
    try:
        cfg = load_config(args.config, _overrides(args))
    except ConfigError as exc:
        lines = str(exc).splitlines()
        for line in lines[1:]:
            print(f"edge-fer: config: {line}", file=sys.stderr)
        return codes.fail(codes.USAGE, f"config: {lines[0]}" if lines else "config: invalid")
    logging.basicConfig(level=cfg.log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.check_config:
        print(f"edge-fer: config OK ({len(cfg.sources)} source(s), device_id {cfg.device_id})")
        return codes.OK
    try:
        return _dispatch(args, cfg)
    except KeyboardInterrupt:
        return codes.fail(130, "interrupted")
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback for users
        log.debug("unexpected error", exc_info=True)
        return codes.fail(codes.INTERNAL, f"internal error: {type(exc).__name__}: {exc} (details: --log-level DEBUG)")


if __name__ == "__main__":
    sys.exit(main())
