"""Configuration: pydantic models for ``config.yaml``."""

from edge.config.schema import Config, ConfigError, load_config

__all__ = ["Config", "ConfigError", "load_config"]
