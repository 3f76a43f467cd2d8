"""``edge-fer``: offline clips (``--video``), images (``--image``), the local web page (``--serve``) or the daemon.

Errors from bad input are one line on stderr with a distinct exit code
(:mod:`edge.exit_codes`); tracebacks only with ``--log-level DEBUG``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from edge import __version__
from edge import exit_codes as codes
from edge.config import Config, ConfigError, load_config

log = logging.getLogger("edge-fer")

DESCRIPTION = """\
Facial-emotion recognition on the edge: detects faces (BlazeFace), tracks them,
classifies each face's emotion with an int8 model, smooths it over time and
reports emotion events.

modes:
  --video CLIP     analyse a clip offline: frames.csv, events.jsonl, summary.json
  --image PATH     analyse an image or a folder of images: one JSON line per face
  --serve          local web page to analyse photos and clips (needs the [web] extra)
  --config FILE    without --video/--image/--serve: run the daemon (cameras, RTSP, MQTT)"""

EXAMPLES = """\
examples:
  edge-fer --video clip.mp4 --out out/clip --plot --annotate out/clip/annotated.mp4
  edge-fer --video clip.mp4 --detect-every 5 --model fer2013-fast
  edge-fer --image photos/ --annotate annotated/ > faces.jsonl
  edge-fer --config /etc/edge-fer/config.yaml --check-config
  edge-fer --config /etc/edge-fer/config.yaml
  edge-fer --serve --config config.yaml"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of the description and epilog (examples, exit-code table)."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (every option's help gives its default, choices and units)."""
    p = argparse.ArgumentParser(prog="edge-fer", description=DESCRIPTION, formatter_class=HelpFormatter,
                                epilog=f"{EXAMPLES}\n\n{codes.table_text()}")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--video", metavar="CLIP", help="analyse a video file offline (any container/codec FFmpeg reads)")
    mode.add_argument("--image", metavar="PATH", help="analyse an image file or every image of a folder")
    mode.add_argument("--serve", action="store_true",
                      help="serve the local web page (host/port from the web section of --config, "
                           "default 127.0.0.1:8080)")
    p.add_argument("--config", metavar="FILE",
                   help="config.yaml; without --video/--image/--serve: run the daemon (default: built-in defaults)")
    p.add_argument("--check-config", action="store_true",
                   help="check the config and everything the daemon needs at start (models, file sources, "
                        "state_dir, ports), print each problem with its key path, and exit")
    p.add_argument("--out", metavar="DIR", help="--video: output folder (default: edge-fer-out/<clip name>)")
    p.add_argument("--annotate", metavar="PATH",
                   help="--video: write an annotated H.264 MP4 to PATH (needs the ffmpeg program); "
                        "--image: folder for annotated copies (default: none)")
    p.add_argument("--plot", action="store_true", default=None,
                   help="--video: also write timeline.png in --out (needs matplotlib) (default: off)")
    p.add_argument("--detect-every", type=int, metavar="N",
                   help="run the face detector on every N-th frame, N >= 1; the tracker carries boxes in between "
                        "(default: detect_every of the config, 1)")
    p.add_argument("--model", metavar="NAME_OR_PATH",
                   help="emotion model: a shipped name (ferplus, fer2013, fer2013-fast) or a .tflite path "
                        "(default: classifier.model of the config, else the shipped default)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="inference threads for the detector and the classifier, 1-16 (default: 1)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="daemon state folder (event outbox) (default: state_dir of the config, /var/lib/edge-fer)")
    p.add_argument("--no-progress", action="store_true", help="--video: no progress bar on stderr (default: shown)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log level on stderr; DEBUG also shows FFmpeg's and LiteRT's own messages and tracebacks "
                        "(default: log_level of the config, INFO)")
    p.add_argument("--version", action="version", version=f"edge-fer {__version__}")
    return p


def _overrides(args: argparse.Namespace) -> dict:
    """CLI flags as a nested config dict (only the flags that were given)."""
    o: dict = {}
    if args.detect_every is not None:
        o["detect_every"] = args.detect_every
    if args.model:
        o["classifier"] = {"model": args.model}
    if args.threads is not None:
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
    from edge.cli.run import run_daemon_cmd, run_images_cmd, run_serve_cmd, run_video_cmd

    if args.check_config:
        from edge.cli.check import run_check_cmd

        return run_check_cmd(cfg, daemon=not (args.video or args.image or args.serve))
    if args.video:
        return run_video_cmd(args.video, cfg)
    if args.image:
        return run_images_cmd(args.image, cfg)
    if args.serve:
        return run_serve_cmd(cfg)
    return run_daemon_cmd(cfg)


def _load(args: argparse.Namespace) -> Config | int:
    """The validated config, or the exit code after printing every problem (one line each)."""
    try:
        return load_config(args.config, _overrides(args))
    except ConfigError as exc:
        lines = str(exc).splitlines() or ["invalid"]
        for line in lines[1:]:
            print(f"edge-fer: config: {line}", file=sys.stderr)
        return codes.fail(codes.USAGE, f"config: {lines[0]}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``edge-fer``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not (args.video or args.image or args.config or args.serve):
        return codes.fail(codes.USAGE, "nothing to do: give --video CLIP, --image PATH, --serve or --config FILE "
                                       "(see edge-fer --help)")
    cfg = _load(args)
    if isinstance(cfg, int):
        return cfg
    logging.basicConfig(level=cfg.log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from edge.runtime import quiet_third_party

    quiet_third_party(cfg.log_level == "DEBUG")
    try:
        return _dispatch(args, cfg)
    except KeyboardInterrupt:
        return codes.fail(codes.INTERRUPTED, "interrupted")
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback for users
        log.debug("unexpected error", exc_info=True)
        return codes.fail(codes.INTERNAL, f"internal error: {type(exc).__name__}: {exc} (details: --log-level DEBUG)")


if __name__ == "__main__":
    sys.exit(main())
