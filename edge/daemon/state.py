"""Retained per-source state and Home Assistant discovery payloads."""

from __future__ import annotations

from collections import Counter

from edge.pipeline.events import SCHEMA_VERSION, utc_now_iso
from edge.publish.topics import Topics


def dominant_emotion(tracks: dict[int, str]) -> str | None:
    """The most common current emotion of ``tracks`` ({track_id: emotion}); None with no face."""
    counts = Counter(tracks.values())
    return counts.most_common(1)[0][0] if counts else None


def source_state(source: str, tracks: dict[int, str], up: bool, paused: bool) -> dict:
    """The retained ``state`` payload of a source.

    Args:
        source: Source name (as in the config).
        tracks: {track_id: current emotion} of the faces tracked now.
        up: Whether the source delivers frames.
        paused: Whether the source is paused (by an MQTT command).

    Returns:
        ``{schema_version, ts, source, faces, dominant_emotion, tracks, source_up, paused}``;
        ``dominant_emotion`` is the most common current emotion (None with no face).
    """
    return {"schema_version": SCHEMA_VERSION, "ts": utc_now_iso(), "source": source, "faces": len(tracks),
            "dominant_emotion": dominant_emotion(tracks), "tracks": {str(k): v for k, v in sorted(tracks.items())},
            "source_up": up, "paused": paused}


def ha_discovery(topics: Topics, ha_prefix: str, source: str) -> dict[str, dict]:
    """Home Assistant MQTT discovery configs (topic -> payload) for one source.

    Two sensors read the retained state topic: dominant emotion and face count
    (https://www.home-assistant.io/integrations/sensor.mqtt/).
    """
    device = {"identifiers": [f"edge-fer-{topics.device_id}"], "name": f"edge-fer {topics.device_id}",
              "manufacturer": "edge-fer"}
    common = {"state_topic": topics.state(source), "availability_topic": topics.status,
              "payload_available": "online", "payload_not_available": "offline", "device": device}
    return {
        topics.ha_config(ha_prefix, source, "emotion"): {
            **common, "name": f"{source} emotion", "unique_id": f"{topics.device_id}_{source}_emotion",
            "value_template": "{{ value_json.dominant_emotion | default('none', true) }}", "icon": "mdi:emoticon"},
        topics.ha_config(ha_prefix, source, "faces"): {
            **common, "name": f"{source} faces", "unique_id": f"{topics.device_id}_{source}_faces",
            "value_template": "{{ value_json.faces }}", "state_class": "measurement", "icon": "mdi:face-recognition"},
    }
