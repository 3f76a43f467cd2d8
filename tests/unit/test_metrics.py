"""Metrics: every series exported from the start, drop counters, a busy port named in the error."""

import socket

import pytest
from prometheus_client import generate_latest

from edge.metrics import Metrics


def test_every_series_of_every_source_exists_at_zero_from_the_start():
    m = Metrics()
    m.init_series(["cam0", "cam1"], ("track_started",), ("queue_full", "disk_full"), ("too_large",), ("mqtt-sender",))
    text = generate_latest(m.registry).decode()
    for src in ("cam0", "cam1"):
        for name in ("frames_processed_total", "frames_dropped_total", "frame_errors_total", "faces_detected_total",
                     "source_reconnects_total", "source_up", "tracks_active"):
            assert f'edge_fer_{name}{{source="{src}"}} 0.0' in text, (name, src)
    for line in ('edge_fer_events_dropped_total{reason="disk_full"} 0.0',
                 'edge_fer_events_dropped_total{reason="queue_full"} 0.0',
                 'edge_fer_commands_rejected_total{reason="too_large"} 0.0',
                 'edge_fer_thread_restarts_total{thread="mqtt-sender"} 0.0',
                 'edge_fer_events_published_total{type="track_started"} 0.0'):
        assert line in text, line


def test_sync_dropped_adds_only_the_increase():
    m = Metrics()
    m.sync_dropped({"queue_full": 3, "disk_full": 0})
    m.sync_dropped({"queue_full": 5, "disk_full": 2})
    assert m.events_dropped.labels("queue_full")._value.get() == 5
    assert m.events_dropped.labels("disk_full")._value.get() == 2


def test_busy_port_error_names_host_and_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OSError) as err:
            Metrics().serve("127.0.0.1", port)
    assert f"127.0.0.1:{port}" in err.value.strerror and "in use" in err.value.strerror


def test_refusals_counted_by_reason_and_outcome_from_publisher_totals():
    from edge.publish.mqtt import Refusal

    m = Metrics()
    m.init_series(["cam0"])
    text = generate_latest(m.registry).decode()
    assert 'edge_fer_mqtt_refusals_total{outcome="resent",reason="0x97"} 0.0' in text
    assert 'edge_fer_mqtt_refusals_total{outcome="dropped",reason="0x87"} 0.0' in text
    m.sync_refusals({Refusal.of(0x97): 3, Refusal.of(0x90): 1})
    m.sync_refusals({Refusal.of(0x97): 5, Refusal.of(0x90): 1, Refusal.of(0x83): 2})
    text = generate_latest(m.registry).decode()
    assert 'edge_fer_mqtt_refusals_total{outcome="resent",reason="0x97"} 5.0' in text
    assert 'edge_fer_mqtt_refusals_total{outcome="dropped",reason="0x90"} 1.0' in text
    assert 'edge_fer_mqtt_refusals_total{outcome="resent",reason="0x83"} 2.0' in text
