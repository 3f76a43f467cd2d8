"""``edge-fer --check-config``: everything the daemon would fail on at start, checked without starting it.

Checks, in order: the config itself (already validated by the caller), the
daemon-only rules (:func:`edge.config.daemon_problems`), both models load
(through the same factory the daemon uses, so shipped model names resolve),
file sources exist and open, ``state_dir`` (and the outbox's folder) can be
created and written, the metrics address and, with ``web.enabled``, the web
address can be bound. Each problem is one line with its key path.
"""

from __future__ import annotations

import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge import exit_codes as codes
from edge.config import Config


@dataclass(frozen=True)
class Problem:
    """One reason the daemon would not start.

    Attributes:
        key: Config key path (``sources.0.uri``).
        message: What is wrong, one line.
        code: Exit code it maps to (2 config/environment, 3 model).
    """

    key: str
    message: str
    code: int = codes.USAGE


def _models(cfg: Config) -> list[Problem]:
    from edge.pipeline.factory import build_classifier, build_detector
    from edge.runtime import ModelError

    problems = []
    for key, build in (("detector.variant", build_detector), ("classifier.model", build_classifier)):
        try:
            build(cfg)
        except ModelError as exc:
            problems.append(Problem(key, str(exc), codes.MODEL))
    return problems


def _sources(cfg: Config) -> list[Problem]:
    from edge.capture import SourceError, probe_video
    from edge.capture.live import classify_uri

    problems = []
    for i, src in enumerate(cfg.sources):
        if classify_uri(src.uri) != "file":
            continue
        try:
            probe_video(str(src.uri))  # a "file" uri is a path (device indices are ints)
        except SourceError as exc:
            problems.append(Problem(f"sources.{i}.uri", f"source {src.name}: {exc}"))
    return problems


def _writable_dir(key: str, folder: Path) -> list[Problem]:
    """``folder`` exists or can be created (as the daemon would), and a file can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".edge-fer-check-"):
            pass
    except OSError as exc:
        return [Problem(key, f"{folder} is not writable ({exc.strerror or exc})")]
    return []


def _state(cfg: Config) -> list[Problem]:
    problems = _writable_dir("state_dir", Path(cfg.state_dir))
    if cfg.mqtt.enabled and cfg.mqtt.queue_path:
        problems += _writable_dir("mqtt.queue_path", Path(cfg.mqtt.queue_path).parent)
    if cfg.privacy.save_crops_dir:
        problems += _writable_dir("privacy.save_crops_dir", Path(cfg.privacy.save_crops_dir))
    return problems


def _bindable(key: str, host: str, port: int) -> list[Problem]:
    """A TCP listener can be bound on ``host:port`` right now (then released)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(address)
    except OSError as exc:
        return [Problem(key, f"cannot bind {host}:{port} ({exc.strerror or exc})")]
    return []


def _ports(cfg: Config) -> list[Problem]:
    problems = []
    if cfg.metrics.enabled:
        problems += _bindable("metrics.port", cfg.metrics.host, cfg.metrics.port)
    if cfg.web.enabled:
        problems += _bindable("web.port", cfg.web.host, cfg.web.port)
    return problems


def check_config(cfg: Config, daemon: bool = True) -> list[Problem]:
    """Every problem that would stop ``cfg`` at start.

    Args:
        cfg: A validated configuration.
        daemon: Also apply the daemon-only rules, sources, state_dir and ports
            (False for ``--check-config`` with ``--video``/``--image``: models only).

    Returns:
        The problems, in config order of their checks; empty when all is well.
    """
    problems: list[Problem] = []
    if daemon:
        from edge.config import daemon_problems

        for line in daemon_problems(cfg):
            key, _, message = line.partition(": ")
            problems.append(Problem(key, message or line))
    problems += _models(cfg)
    if daemon:
        problems += _sources(cfg) + _state(cfg) + _ports(cfg)
    return problems


def run_check_cmd(cfg: Config, daemon: bool = True) -> int:
    """Print each problem as ``edge-fer: config: key: message``; exit 3 if only models fail, else 2, or 0."""
    problems = check_config(cfg, daemon)
    for p in problems:
        codes.fail(p.code, f"config: {p.key}: {p.message}")
    if not problems:
        what = f"{len(cfg.sources)} source(s), device_id {cfg.device_id}" if daemon else "models load"
        print(f"edge-fer: config OK ({what})")
        return codes.OK
    return codes.MODEL if all(p.code == codes.MODEL for p in problems) else codes.USAGE
