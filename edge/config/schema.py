"""``config.yaml`` schema (pydantic v2; unknown keys rejected).

Every option of ``edge-fer --video`` and of the daemon lives here; CLI flags
override the file. Validation errors are reported all at once, each with its
key path (``sources.0.uri: ...``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.config.classifier import ClassifierConfig
from edge.config.smoothing import SmoothingConfig
from edge.web.config import WebConfig


class ConfigError(Exception):
    """The configuration is unusable; ``str()`` lists every problem, one per line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    """One input: V4L2 device (index or /dev/videoN), RTSP/HTTP URL, or a file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="MQTT-safe source name")
    uri: str | int = Field(description="0, /dev/video0, rtsp://..., http://..., or a file path")
    loop: bool = Field(False, description="files only: restart at the end (demos)")
    fps: float | None = Field(None, gt=0, description="process at most this many frames per second")
    width: int | None = Field(None, gt=0, description="V4L2: requested capture width (pixels)")
    height: int | None = Field(None, gt=0, description="V4L2: requested capture height (pixels)")


class DetectorConfig(_Strict):
    """BlazeFace settings."""

    variant: Literal["short", "full"] = "short"
    min_score: float | None = Field(None, gt=0, lt=1, description="None: MediaPipe default (0.5/0.6)")
    min_face_px: int = Field(24, ge=1, description="drop faces smaller than this (pixels, longer side)")
    max_faces: int = Field(8, ge=1, le=64)
    num_threads: int = Field(1, ge=1, le=16)


class TrackerConfig(_Strict):
    """IoU tracker settings."""

    iou_threshold: float = Field(0.3, gt=0, le=1)
    max_missed: int = Field(10, ge=0, description="detection rounds a track survives unmatched")
    min_hits: int = Field(2, ge=1, description="matches before a track is reported")


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
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = Field("edge-fer", pattern=r"^[^#+]+$")
    client_id: str | None = None
    username: str | None = None
    password: str | None = Field(None, description="prefer password_env or password_file")
    password_env: str | None = Field("EDGE_FER_MQTT_PASSWORD", description="env var holding the password")
    password_file: str | None = Field(None, description="file whose first line is the password")
    tls: TLSConfig | None = None
    keepalive_s: int = Field(30, ge=5)
    qos: Literal[0, 1, 2] = 1
    state_interval_s: float = Field(2.0, gt=0, description="min seconds between retained state updates")
    queue_path: str | None = Field(None, description="SQLite file of unacknowledged events")
    queue_max: int = Field(100000, ge=10, description="events kept while the broker is away")
    reconnect_max_s: float = Field(30.0, gt=0)
    homeassistant_discovery: bool = False
    homeassistant_prefix: str = "homeassistant"


class MetricsConfig(_Strict):
    """Prometheus exporter."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535)


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
    reconnect_initial_s: float = Field(1.0, gt=0, description="first source reopen delay, seconds")
    reconnect_max_s: float = Field(30.0, gt=0, description="cap of the source reopen backoff")
    read_timeout_s: float = Field(10.0, gt=0, description="a live source silent this long is reopened")
    state_dir: str = Field("/var/lib/edge-fer", description="event queue and other state")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _unique_sources(self) -> Config:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique: {', '.join(dupes)}")
        return self


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``key.path: message``."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{path}: {err['msg']}")
    return "\n".join(lines)


def load_config(path: str | Path | None, overrides: dict | None = None) -> Config:
    """Read and validate a YAML config (or defaults when ``path`` is None).

    Args:
        path: YAML file; None for defaults.
        overrides: Nested dict merged over the file (CLI flags).

    Raises:
        ConfigError: missing/unreadable file, bad YAML, or validation errors
            (all listed, one per line, with key paths).
    """
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            data[key] = {**(data.get(key) or {}), **value}
        else:
            data[key] = value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc


def mqtt_password(cfg: MQTTConfig) -> str | None:
    """The MQTT password from, in order: ``password_file``, ``password_env``, ``password``.

    Raises:
        ConfigError: if ``password_file`` is set but unreadable.
    """
    if cfg.password_file:
        try:
            return Path(cfg.password_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ConfigError(f"mqtt.password_file: cannot read {cfg.password_file}") from exc
    if cfg.password_env and os.environ.get(cfg.password_env):
        return os.environ[cfg.password_env]
    return cfg.password
