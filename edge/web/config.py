"""``web`` config section (pydantic only: importable without the ``[web]`` extra)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebConfig(BaseModel):
    """Opt-in local web page: dashboard, JSON API, photo upload."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="serve the local web page (needs the [web] extra)")
    host: str = Field("127.0.0.1", description="bind address; a non-loopback address needs a password")
    port: int = Field(8080, ge=1, le=65535)
    live_view: bool = Field(False, description="show the latest annotated frame (frames leave the process)")
    password: str | None = Field(None, description="HTTP basic-auth password (prefer password_file)")
    password_file: str | None = Field(None, description="file whose first line is the basic-auth password")
