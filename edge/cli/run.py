"""The commands behind ``edge-fer``, mapping failures to exit codes.

``--video`` and ``--image`` go through :class:`edge.api.Analyzer`, the same
code path as the Python API. Missing optional packages/programs (matplotlib
for ``--plot``, ffmpeg for ``--annotate``, starlette/uvicorn for ``--serve``)
are detected before any work starts.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edge import exit_codes as codes
from edge.capture import SourceError
from edge.config import Config
from edge.runtime import MissingDependency, ModelError

if TYPE_CHECKING:
    from edge.pipeline.summary import RunSummary

log = logging.getLogger("edge-fer")

#: The command that installs the ``[web]`` extra into this repository's virtual environment.
WEB_INSTALL = ".venv/bin/pip install -e '.[web]'"


def _source_code(exc: SourceError) -> int:
    return codes.INPUT_MISSING if exc.kind == "missing" else codes.INPUT_UNREADABLE


def _check_video_deps(cfg: Config) -> None:
    """Raise :class:`MissingDependency` now rather than after the whole clip."""
    if cfg.output.plot:
        from edge.pipeline.plot import require_matplotlib

        require_matplotlib()
    if cfg.output.annotate:
        from edge.pipeline.annotate import require_ffmpeg

        require_ffmpeg()


def _analyzer(cfg: Config):
    from edge.api import Analyzer

    return Analyzer(config=cfg)


def _report(path: str, summary: RunSummary) -> int:
    """Warnings for odd clips; the exit code of a finished run."""
    if summary.frames == 0:
        return codes.fail(codes.INPUT_UNREADABLE, f"{path}: no decodable frames (empty or corrupt video)")
    if summary.declared_frames and summary.frames < summary.declared_frames:
        log.warning("%s: decoded %d of %d declared frames (truncated or corrupt file)", path,
                    summary.frames, summary.declared_frames)
    if summary.face_rows == 0:
        log.warning("%s: no faces found", path)
    return codes.OK


def _fail_run(exc: Exception) -> int:
    """One line and the exit code of an error of an ``--video`` or ``--image`` run."""
    if isinstance(exc, MissingDependency):
        return codes.fail(codes.USAGE, str(exc))
    if isinstance(exc, SourceError):
        return codes.fail(_source_code(exc), str(exc))
    if isinstance(exc, ModelError):
        return codes.fail(codes.MODEL, str(exc))
    return codes.fail(codes.OUTPUT, f"cannot write outputs: {exc}")


def run_video_cmd(path: str, cfg: Config) -> int:
    """``edge-fer --video``: process, write outputs, print the summary table."""
    out_dir = Path(cfg.output.dir or Path("edge-fer-out") / Path(path).stem)
    try:
        _check_video_deps(cfg)
        analyzer = _analyzer(cfg)
        with analyzer.analyze_video(path, out_dir=out_dir, annotate=cfg.output.annotate, plot=cfg.output.plot,
                                    progress=cfg.output.progress) as clip:
            summary = clip.run()
    except (MissingDependency, SourceError, ModelError, OSError) as exc:
        return _fail_run(exc)
    code = _report(path, summary)
    if code == codes.OK:
        print(summary.table())
        print(f"outputs: {out_dir}/")
    return code


def run_images_cmd(path: str, cfg: Config) -> int:
    """``edge-fer --image``: JSON lines on stdout."""
    from edge.pipeline.images import run_images

    annotate = Path(cfg.output.annotate) if cfg.output.annotate else None
    try:
        run = run_images(path, _analyzer(cfg), annotate)
    except (SourceError, ModelError, OSError) as exc:
        return _fail_run(exc)
    log.info("%d images, %d faces, %d without a face, %d unreadable", run.images, run.faces,
             run.without_face, run.unreadable)
    return codes.OK


def _importable(module: str) -> bool:
    """True when ``module`` imports (a broken or absent package is False)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def run_serve_cmd(cfg: Config) -> int:
    """``edge-fer --serve``: the local web page (``edge.web.run.serve_offline``)."""
    missing = [m for m in ("starlette", "uvicorn") if not _importable(m)]
    if missing:
        return codes.fail(codes.USAGE, f"--serve needs {' and '.join(missing)}: {WEB_INSTALL}")
    try:
        from edge.web.run import serve_offline
    except ImportError as exc:
        return codes.fail(codes.USAGE, f"--serve unavailable ({exc}): {WEB_INSTALL}")
    return _mapped(lambda: serve_offline(cfg), f"cannot serve on {cfg.web.host}:{cfg.web.port}")


def run_daemon_cmd(cfg: Config) -> int:
    """``edge-fer --config``: the long-lived service."""
    from edge.config.schema import daemon_problems
    from edge.daemon.service import run_daemon

    problems = daemon_problems(cfg)
    if problems:
        for line in problems[1:]:
            codes.fail(codes.USAGE, f"config: {line}")
        return codes.fail(codes.USAGE, f"config: {problems[0]}")
    return _mapped(lambda: run_daemon(cfg), "cannot start")


def _mapped(run: Callable[[], int], what: str) -> int:
    """Run a long-lived command; a model error is exit 3, an OS error (busy port, no permission) exit 2."""
    try:
        return run()
    except ModelError as exc:
        return codes.fail(codes.MODEL, str(exc))
    except OSError as exc:
        return codes.fail(codes.USAGE, f"{what}: {exc}")
