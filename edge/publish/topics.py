"""MQTT topic names (README "MQTT topics")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """Topics under ``{prefix}/{device_id}``."""

    prefix: str
    device_id: str

    @property
    def base(self) -> str:
        """``{prefix}/{device_id}``, the root of every topic of this device."""
        return f"{self.prefix}/{self.device_id}"

    @property
    def status(self) -> str:
        """Retained ``online`` / ``offline`` (also the Last Will)."""
        return f"{self.base}/status"

    @property
    def cmd(self) -> str:
        """Control messages in (JSON)."""
        return f"{self.base}/cmd"

    @property
    def cmd_result(self) -> str:
        """Replies to control messages (JSON)."""
        return f"{self.base}/cmd/result"

    def event(self, source: str) -> str:
        """QoS 1 emotion events of one source."""
        return f"{self.base}/{source}/event"

    def state(self, source: str) -> str:
        """Retained current summary of one source."""
        return f"{self.base}/{source}/state"

    def ha_config(self, ha_prefix: str, source: str, sensor: str) -> str:
        """Home Assistant MQTT discovery config topic of one sensor."""
        return f"{ha_prefix}/sensor/{self.device_id}_{source}_{sensor}/config"
