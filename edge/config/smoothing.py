"""``smoothing`` config section (owned apart from :mod:`edge.config.schema`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from edge.smooth.smoother import DEFAULT_MIN_HOLD_S, DEFAULT_SWITCH_MARGIN, DEFAULT_TAU_S


class SmoothingConfig(BaseModel):
    """Temporal smoothing of each track's scores (EMA on seconds + hysteresis)."""

    model_config = ConfigDict(extra="forbid")

    tau_s: float = Field(DEFAULT_TAU_S, ge=0, le=60, allow_inf_nan=False, description="EMA time constant, seconds")
    min_hold_s: float = Field(DEFAULT_MIN_HOLD_S, ge=0, le=60, allow_inf_nan=False,
                              description="hysteresis: seconds a new emotion must lead before it is reported")
    switch_margin: float = Field(DEFAULT_SWITCH_MARGIN, ge=0, lt=1, allow_inf_nan=False,
                                 description="smoothed-score lead (0-1) a new emotion needs over the current one")
