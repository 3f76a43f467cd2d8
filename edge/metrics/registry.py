"""Prometheus metrics (prometheus-client), named per the Prometheus naming conventions.

https://prometheus.io/docs/practices/naming/: ``edge_fer_`` prefix, base units
(seconds), ``_total`` for counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

if TYPE_CHECKING:  # the publisher imports paho; the metrics need only the key type
    from edge.publish.mqtt import Refusal

#: MQTT 5 refusals exported at 0 from the start (reason, outcome): quota exceeded (sent again), not authorised
#: (dropped; a broker ACL). Any other reason code appears at its first occurrence.
COMMON_REFUSALS = (("0x97", "resent"), ("0x87", "dropped"))

#: Latency buckets in seconds: 0.25 ms .. 1 s (per-stage costs on a Pi-class CPU).
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """Every metric of the daemon, on its own registry."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.frames_processed = Counter("edge_fer_frames_processed", "Frames run through the pipeline",
                                        ["source"], registry=r)
        self.frames_dropped = Counter("edge_fer_frames_dropped", "Live frames dropped because the pipeline was busy",
                                      ["source"], registry=r)
        self.frame_errors = Counter("edge_fer_frame_errors", "Frames skipped after a processing error",
                                    ["source"], registry=r)
        self.faces_detected = Counter("edge_fer_faces_detected", "Faces detected", ["source"], registry=r)
        self.stage_latency = Histogram("edge_fer_stage_latency_seconds", "Per-stage processing time per frame",
                                       ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.events_published = Counter("edge_fer_events_published", "Events queued for MQTT by type",
                                         ["type"], registry=r)
        self.source_up = Gauge("edge_fer_source_up", "1 while the source delivers frames", ["source"], registry=r)
        self.source_reconnects = Counter("edge_fer_source_reconnects", "Source reopen attempts", ["source"],
                                         registry=r)
        self.tracks_active = Gauge("edge_fer_tracks_active", "Faces tracked now", ["source"], registry=r)
        self.mqtt_connected = Gauge("edge_fer_mqtt_connected", "1 while connected to the MQTT broker", registry=r)
        self.mqtt_queued = Gauge("edge_fer_mqtt_queued_events", "Events stored and not yet acknowledged",
                                 registry=r)
        self.events_dropped = Counter("edge_fer_events_dropped", "Events not stored for MQTT, by reason "
                                      "(queue_full: oldest dropped at mqtt.queue_max; disk_full: new ones dropped)",
                                      ["reason"], registry=r)
        self.commands_rejected = Counter("edge_fer_commands_rejected", "MQTT commands rejected, by reason",
                                         ["reason"], registry=r)
        self.thread_restarts = Counter("edge_fer_thread_restarts", "Worker threads restarted after they ended "
                                       "unexpectedly", ["thread"], registry=r)
        self.mqtt_refusals = Counter("edge_fer_mqtt_refusals", "Published events (outbox rows) the broker refused "
                                     "(MQTT 5 PUBREC/PUBACK/PUBCOMP reason >= 0x80), by reason code and outcome "
                                     "(resent: kept and sent again; dropped: removed from the outbox)",
                                     ["reason", "outcome"], registry=r)
        self.model_info = Info("edge_fer_model", "Emotion model in use", registry=r)
        self._seen: dict[str, tuple[int, int]] = {}
        self._dropped_seen: dict[str, int] = {}
        self._refusals_seen: dict[Refusal, int] = {}

    def init_series(self, sources: list[str], event_types: tuple[str, ...] = (), drop_reasons: tuple[str, ...] = (),
                    reject_reasons: tuple[str, ...] = (), threads: tuple[str, ...] = ()) -> None:
        """Create every labelled series at 0, so that each is exported from the start (not at its first increase).

        Args:
            sources: Source names (per-source series).
            event_types: Event types of ``edge_fer_events_published_total``.
            drop_reasons: Reasons of ``edge_fer_events_dropped_total``.
            reject_reasons: Reasons of ``edge_fer_commands_rejected_total``.
            threads: Worker names of ``edge_fer_thread_restarts_total``.

        The common MQTT refusals (``0x97`` resent, ``0x87`` dropped) of ``edge_fer_mqtt_refusals_total`` are
        created too; other reason codes appear at their first occurrence.
        """
        for name in sources:
            for metric in (self.frames_processed, self.frames_dropped, self.frame_errors, self.faces_detected,
                           self.source_reconnects, self.source_up, self.tracks_active):
                metric.labels(name)
        for labels, metric in ((event_types, self.events_published), (drop_reasons, self.events_dropped),
                               (reject_reasons, self.commands_rejected), (threads, self.thread_restarts)):
            for label in labels:
                metric.labels(label)
        for reason, outcome in COMMON_REFUSALS:
            self.mqtt_refusals.labels(reason, outcome)

    def sync_dropped(self, dropped: dict[str, int]) -> None:
        """Copy the outbox's drop counters (by reason, totals since open) into ``events_dropped``."""
        for reason, total in dropped.items():
            last = self._dropped_seen.get(reason, 0)
            if total > last:
                self.events_dropped.labels(reason).inc(total - last)
            self._dropped_seen[reason] = total

    def sync_refusals(self, totals: Mapping[Refusal, int]) -> None:
        """Copy the publisher's refusal counts (``MqttPublisher.refusals``, totals since start) into ``mqtt_refusals``.

        Args:
            totals: Refusals by :class:`edge.publish.mqtt.Refusal` (reason code in hex, outcome ``resent`` or
                ``dropped``); only the increase since the last call is added.
        """
        for key, total in totals.items():
            last = self._refusals_seen.get(key, 0)
            if total > last:
                self.mqtt_refusals.labels(key.reason, key.outcome).inc(total - last)
            self._refusals_seen[key] = total

    def serve(self, host: str, port: int):
        """Start the HTTP exporter on ``host:port`` (thread); returns (server, thread).

        Raises:
            OSError: if the port cannot be bound; the message names ``host:port``
                and the reason (e.g. ``Address already in use``).
        """
        try:
            return start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise OSError(exc.errno, f"metrics: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc

    def sync_source(self, name: str, up: bool, dropped: int, reconnects: int) -> None:
        """Copy a source's counters (kept by its thread) into the metrics."""
        self.source_up.labels(name).set(1 if up else 0)
        last_dropped, last_reconnects = self._seen.get(name, (0, 0))
        if dropped > last_dropped:
            self.frames_dropped.labels(name).inc(dropped - last_dropped)
        if reconnects > last_reconnects:
            self.source_reconnects.labels(name).inc(reconnects - last_reconnects)
        self._seen[name] = (dropped, reconnects)

    def observe_stages(self, last: dict[str, float]) -> None:
        """Record the latest frame's per-stage seconds."""
        for stage, seconds in last.items():
            self.stage_latency.labels(stage).observe(seconds)
