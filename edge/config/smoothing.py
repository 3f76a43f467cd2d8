"""``smoothing`` config section (owned apart from :mod:`edge.config.schema`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SmoothingConfig(BaseModel):
    """Temporal smoothing (seconds)."""

    model_config = ConfigDict(extra="forbid")

    tau_s: float = Field(0.3, ge=0, description="EMA time constant, seconds")
    min_hold_s: float = Field(0.3, ge=0, description="hysteresis: seconds a new emotion must lead")
