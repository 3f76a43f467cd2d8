"""``config.yaml`` schema (pydantic v2; unknown keys rejected).

Every option of ``edge-fer --video`` and of the daemon lives here; CLI flags
override the file. Validation errors are reported all at once, each with its
key path (``sources.0.uri: ...``). Every number is bounded and finite (so a
value accepted here cannot break at run time: ``keepalive_s: 70000`` would kill
paho's thread, ``reconnect_max_s: .inf`` would overflow), and a YAML mapping
that repeats a key is refused with both lines instead of "last one wins".
Rules that hold only for the daemon (at least one source) are in
:func:`daemon_problems`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.config.classifier import ClassifierConfig
from edge.config.smoothing import SmoothingConfig
from edge.web.config import WebConfig


class ConfigError(Exception):
    """The configuration is unusable; ``str()`` lists every problem, one per line."""


# Upper bounds (sources: MQTT 3.1.1 §3.1.2.10 keep alive is a 16-bit field; TCP ports are 16-bit;
# one hour is the longest wait any timer of the daemon has a use for).
MAX_PORT = 65535
MAX_KEEPALIVE_S = 65535
MAX_WAIT_S = 3600.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SourceConfig(_Strict):
    """One input: V4L2 device (index or /dev/videoN), RTSP/HTTP URL, or a file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="MQTT-safe source name")
    uri: str | int = Field(description="0, /dev/video0, rtsp://..., http://..., or a file path")
    loop: bool = Field(False, description="files only: restart at the end (demos)")
    fps: float | None = Field(None, gt=0, le=1000, description="process at most this many frames per second")
    width: int | None = Field(None, gt=0, le=16384, description="V4L2: requested capture width (pixels)")
    height: int | None = Field(None, gt=0, le=16384, description="V4L2: requested capture height (pixels)")


class DetectorConfig(_Strict):
    """BlazeFace settings."""

    variant: Literal["short", "full"] = "short"
    min_score: float | None = Field(None, gt=0, lt=1, description="None: MediaPipe default (0.5/0.6)")
    min_face_px: int = Field(24, ge=1, le=16384, description="drop faces smaller than this (pixels, longer side)")
    max_faces: int = Field(8, ge=1, le=64)
    num_threads: int = Field(1, ge=1, le=16)


class TrackerConfig(_Strict):
    """IoU tracker settings."""

    iou_threshold: float = Field(0.3, gt=0, le=1)
    max_missed: int = Field(10, ge=0, le=10000, description="detection rounds a track survives unmatched")
    min_hits: int = Field(2, ge=1, le=1000, description="matches before a track is reported")


class OutputConfig(_Strict):
    """Offline outputs of --video / --image."""

    dir: str | None = Field(None, description="output folder; None = edge-fer-out/<input name>")
    annotate: str | None = Field(None, description="--video: annotated MP4 path; --image: folder")
    plot: bool = Field(False, description="write timeline.png (needs matplotlib)")
    progress: bool = Field(True, description="progress bar on stderr")


class TLSConfig(_Strict):
    """MQTT TLS files (PEM)."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False


class MQTTConfig(_Strict):
    """MQTT connection and topics."""

    enabled: bool = True
    host: str = "localhost"
    port: int = Field(1883, ge=1, le=MAX_PORT)
    topic_prefix: str = Field("edge-fer", pattern=r"^[^#+]+$")
    client_id: str | None = None
    username: str | None = None
    password: str | None = Field(None, description="prefer password_env or password_file")
    password_env: str | None = Field("EDGE_FER_MQTT_PASSWORD", description="env var holding the password")
    password_file: str | None = Field(None, description="file whose first line is the password")
    tls: TLSConfig | None = None
    keepalive_s: int = Field(30, ge=5, le=MAX_KEEPALIVE_S, description="MQTT keep alive (16-bit field)")
    qos: Literal[0, 1, 2] = Field(1, description="events: 1 = at least once; 2 = exactly once from the daemon to "
                                  "the broker across broker restarts (persistent MQTT 5 session; needs a broker "
                                  "with QoS 2 and persistence, e.g. mosquitto)")
    state_interval_s: float = Field(2.0, gt=0, le=MAX_WAIT_S, description="min seconds between retained state updates")
    queue_path: str | None = Field(None, description="SQLite file of unacknowledged events")
    queue_max: int = Field(100000, ge=10, le=100_000_000, description="events kept while the broker is away")
    reconnect_max_s: float = Field(30.0, gt=0, le=MAX_WAIT_S, description="broker reconnect backoff cap, seconds")
    homeassistant_discovery: bool = False
    homeassistant_prefix: str = Field("homeassistant", pattern=r"^[^#+]+$")
    command_token: str | None = Field(None, min_length=1, description="shared token required in commands; "
                                      "prefer command_token_file")
    command_token_file: str | None = Field(None, description="file whose first line is the command token")
    command_max_bytes: int = Field(4096, ge=64, le=1_048_576, description="larger command payloads are rejected")


class MetricsConfig(_Strict):
    """Prometheus exporter."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=MAX_PORT, description="0: any free port")


class PrivacyConfig(_Strict):
    """Nothing visual leaves the device unless asked for here."""

    save_crops_dir: str | None = Field(None, description="write face crops here (off by default)")


class Config(_Strict):
    """The whole ``config.yaml``."""

    device_id: str = Field("edge-1", pattern=r"^[A-Za-z0-9_-]+$")
    sources: list[SourceConfig] = Field(default_factory=list)
    detect_every: int = Field(1, ge=1, le=100, description="run the detector every N-th frame")
    detector: DetectorConfig = DetectorConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    tracker: TrackerConfig = TrackerConfig()
    smoothing: SmoothingConfig = SmoothingConfig()
    output: OutputConfig = OutputConfig()
    mqtt: MQTTConfig = MQTTConfig()
    metrics: MetricsConfig = MetricsConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    web: WebConfig = WebConfig()
    reconnect_initial_s: float = Field(1.0, ge=0.01, le=MAX_WAIT_S, description="first source reopen delay, seconds")
    reconnect_max_s: float = Field(30.0, ge=0.01, le=MAX_WAIT_S, description="cap of the source reopen backoff")
    read_timeout_s: float = Field(10.0, ge=0.1, le=MAX_WAIT_S, description="a live source silent this long is reopened")
    state_dir: str = Field("/var/lib/edge-fer", description="event queue and other state")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"



def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``key.path: message``."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{path}: {err['msg']}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no Python objects) whose documents are checked for repeated keys."""


def _key_text(node: yaml.Node) -> str:
    # every PyYAML node class has ``id`` ("sequence", "mapping"); types-PyYAML declares it on the subclasses only
    return str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{node.id}>"  # type: ignore[attr-defined]


def _duplicate_keys(node: yaml.Node, path: str, seen: set[int]) -> Iterator[str]:
    """Yield ``key.path: duplicate key ...`` for every mapping of ``node`` that repeats a key.

    Each node is visited once (``seen`` holds node ids), so aliases, even an
    alias bomb or a recursive alias, cost one visit.
    """
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":  # "<<: *defaults": overriding merged keys is YAML's rule
                continue
            ident = (key.tag, _key_text(key))
            child = f"{path}.{ident[1]}" if path else ident[1]
            if ident in first:
                yield (f"{child}: duplicate key on line {key.start_mark.line + 1} "
                       f"(first on line {first[ident]}); each key may appear once")
            else:
                first[ident] = key.start_mark.line + 1
            yield from _duplicate_keys(value, child, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}.{index}" if path else str(index), seen)


def _yaml_error(p: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{p}: not valid YAML ({problem}{where})"


def read_yaml(path: str | Path) -> dict:
    """Parse a YAML config file into a dict, refusing repeated keys.

    Args:
        path: YAML file.

    Returns:
        The top-level mapping (``{}`` for an empty file).

    Raises:
        ConfigError: missing/unreadable file, bad YAML, a non-mapping top
            level, or repeated keys (all listed, one per line, with key path and lines).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        loader = _UniqueKeyLoader(p.read_text())
        try:
            node = loader.get_single_node()
            dupes = list(_duplicate_keys(node, "", set())) if node is not None else []
            if dupes:
                raise ConfigError("\n".join(dupes))
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(p, exc)) from exc
    except RecursionError as exc:
        raise ConfigError(f"{p}: not valid YAML (nested too deeply)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read ({type(exc).__name__})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return data


def _merge(data: dict, overrides: dict | None) -> dict:
    """Overrides (CLI flags) over the file; a section that is not a mapping is left for validation to report."""
    for key, value in (overrides or {}).items():
        current = data.get(key)
        if isinstance(value, dict) and current is not None and not isinstance(current, dict):
            continue  # ``classifier: 5`` stays, so the error names the key instead of a TypeError
        data[key] = {**(current or {}), **value} if isinstance(value, dict) else value
    return data


def _non_finite(model: BaseModel, path: str = "") -> Iterator[str]:
    """Key paths of every float in ``model`` (any section, whoever defines it) that is inf or NaN."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{path}.{name}" if path else name
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            where = key if index is None else f"{key}.{index}"
            if isinstance(item, BaseModel):
                yield from _non_finite(item, where)
            elif isinstance(item, float) and not math.isfinite(item):
                yield f"{where}: Input should be a finite number"


def _cross_field_problems(cfg: Config) -> list[str]:
    """Rules between keys (each reported with the key path it concerns)."""
    problems = list(_non_finite(cfg))
    names = [s.name for s in cfg.sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"sources: source names must be unique: {', '.join(dupes)}")
    if cfg.reconnect_initial_s > cfg.reconnect_max_s:
        problems.append(f"reconnect_initial_s: {cfg.reconnect_initial_s:g} must not exceed "
                        f"reconnect_max_s ({cfg.reconnect_max_s:g})")
    if cfg.mqtt.command_token and cfg.mqtt.command_token_file:
        problems.append("mqtt.command_token: give command_token or command_token_file, not both")
    return problems


def load_config(path: str | Path | None, overrides: dict | None = None) -> Config:
    """Read and validate a YAML config (or defaults when ``path`` is None).

    Args:
        path: YAML file; None for defaults.
        overrides: Nested dict merged over the file (CLI flags).

    Raises:
        ConfigError: missing/unreadable file, bad YAML, repeated keys, or
            validation errors (all listed, one per line, with key paths).
    """
    data = _merge(read_yaml(path) if path is not None else {}, overrides)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc
    problems = _cross_field_problems(cfg)
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg


def daemon_problems(cfg: Config) -> list[str]:
    """Rules that hold only when ``cfg`` runs the daemon (not for ``--video``/``--image``).

    ``edge-fer --config ... --check-config`` and the daemon's start call this
    after :func:`load_config`, so a config that the check accepts also starts.

    Args:
        cfg: A validated configuration.

    Returns:
        One ``key.path: message`` line per problem; empty when the daemon can run.
    """
    problems = []
    if not cfg.sources:
        problems.append("sources: at least one source is needed to run the daemon")
    return problems


def mqtt_password(cfg: MQTTConfig) -> str | None:
    """The MQTT password from, in order: ``password_file``, ``password_env``, ``password``.

    Raises:
        ConfigError: if ``password_file`` is set but unreadable.
    """
    if cfg.password_file:
        try:
            return Path(cfg.password_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError) as exc:
            raise ConfigError(f"mqtt.password_file: cannot read {cfg.password_file}") from exc
    if cfg.password_env and os.environ.get(cfg.password_env):
        return os.environ[cfg.password_env]
    return cfg.password


def command_token(cfg: MQTTConfig) -> str | None:
    """The shared command token from ``command_token_file`` (first line) or ``command_token``.

    Returns:
        The token, or None when commands need no token by configuration.

    Raises:
        ConfigError: if ``command_token_file`` is set but unreadable or its first line is empty.
    """
    if cfg.command_token_file:
        try:
            token = Path(cfg.command_token_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError) as exc:
            raise ConfigError(f"mqtt.command_token_file: cannot read {cfg.command_token_file}") from exc
        if not token:
            raise ConfigError(f"mqtt.command_token_file: first line of {cfg.command_token_file} is empty")
        return token
    return cfg.command_token
