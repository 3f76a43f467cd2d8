"""``web`` config section (pydantic only: importable without the ``[web]`` extra)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

LOOPBACK_NAMES = ("localhost", "ip6-localhost", "ip6-loopback")


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, ``localhost``).

    ``0.0.0.0``, ``::`` and every other name or address count as reachable from
    the network.
    """
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WebConfig(BaseModel):
    """Opt-in local web page: dashboard, JSON API, photo upload."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="serve the local web page (needs the [web] extra)")
    host: str = Field("127.0.0.1", min_length=1,
                      description="bind address; a non-loopback address needs a password")
    port: int = Field(8080, ge=1, le=65535)
    live_view: bool = Field(False, description="show the latest annotated frame (frames leave the process)")
    password: str | None = Field(None, min_length=1, description="HTTP basic-auth password (prefer password_file)")
    password_file: str | None = Field(None, min_length=1,
                                      description="file whose first line is the basic-auth password")

    @model_validator(mode="after")
    def _password_off_loopback(self) -> WebConfig:
        if not is_loopback(self.host) and not (self.password or self.password_file):
            raise ValueError(f"host {self.host} is reachable from the network: set password_file "
                             "(or password) for HTTP basic auth, or use host 127.0.0.1")
        return self


def web_password(cfg: WebConfig) -> str | None:
    """The basic-auth password: first line of ``password_file``, else ``password``, else None (no auth).

    Raises:
        ConfigError: ``password_file`` is set but unreadable or its first line is empty.
    """
    if cfg.password_file:
        from edge.config.schema import ConfigError  # late: edge.config.schema imports this module

        try:
            lines = Path(cfg.password_file).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"web.password_file: cannot read {cfg.password_file} ({exc.__class__.__name__})") from exc
        if not lines or not lines[0].strip():
            raise ConfigError(f"web.password_file: {cfg.password_file} has an empty first line")
        return lines[0].strip()
    return cfg.password
