"""Configuration: pydantic models for ``config.yaml``."""

from edge.config.schema import (
    Config,
    ConfigError,
    command_token,
    daemon_problems,
    load_config,
    mqtt_password,
)

__all__ = ["Config", "ConfigError", "command_token", "daemon_problems", "load_config", "mqtt_password"]
