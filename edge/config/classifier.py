"""``classifier`` config section (owned apart from :mod:`edge.config.schema`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ClassifierConfig(BaseModel):
    """Emotion model settings."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="shipped model name (ferplus, fer2013, fer2013-fast) or a .tflite "
                              "path; None = the default shipped model")
    num_threads: int = Field(1, ge=1, le=16)
    margin: float | None = Field(None, ge=0, le=1, description="crop margin per side; None = model's")
    align: bool = Field(True, description="rotate crops to level the eyes (FER2013 faces are registered)")
    tta_flip: bool = Field(False, description="average face and mirror-image scores (about 2x classifier time)")
    flip_margin: float | None = Field(None, ge=0, le=1, description="mirror-image pass only for faces whose top-1 "
                                      "minus top-2 score is below this; 0 = never; None = the model's sidecar value "
                                      "(ferplus 0.10)")
