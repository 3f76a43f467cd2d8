"""The daemon against a real mosquitto on 127.0.0.1, checked by a real MQTT subscriber."""

import json
import signal
import time

import pytest

from conftest import Mosquitto
from daemon_helpers import (
    Subscriber,
    kill_daemon,
    persistent_broker,
    scrape,
    start_daemon,
    wait_metric,
    write_config,
)
from edge.labels import EMOTIONS

pytestmark = pytest.mark.integration
EVENT = "edge-fer/t1/cam0/event"
STATE = "edge-fer/t1/cam0/state"
STATUS = "edge-fer/t1/status"



def test_status_events_state_commands_metrics_and_sigterm(mosquitto, d19, tmp_path):
    cfg, mport = write_config(tmp_path, mosquitto.port, str(d19), mqtt={"homeassistant_discovery": True})
    proc = start_daemon(cfg, tmp_path / "daemon.log")
    sub = Subscriber(mosquitto.port)
    try:
        sub.wait_for(lambda: b"online" in sub.on(STATUS), what="status online")
        events = sub.wait_for(lambda: sub.json_on(EVENT), what="an event")
        ev = events[0]
        assert ev["type"] == "track_started" and ev["schema_version"] == 1 and ev["source"] == "cam0"
        assert set(ev["scores"]) == set(EMOTIONS) and ev["emotion"] in EMOTIONS and ev["ts"].endswith("Z")
        assert set(ev["bbox"]) == {"x", "y", "w", "h"} and all(0 <= v <= 1 for v in ev["bbox"].values())
        sub.wait_for(lambda: any(s["faces"] == 1 for s in sub.json_on(STATE)), what="state with a face")

        late = Subscriber(mosquitto.port)  # retained status, state and HA discovery reach a late subscriber
        late.wait_for(lambda: late.on(STATE) and late.on(STATUS) == [b"online"], what="retained messages")
        ha = late.wait_for(lambda: late.json_on("homeassistant/sensor/t1_cam0_emotion/config"), what="HA discovery")
        assert ha[0]["state_topic"] == STATE and ha[0]["availability_topic"] == STATUS
        assert all(r for t, _, r in late.messages if t in (STATE, STATUS))
        late.close()

        sub.client.publish("edge-fer/t1/cmd", json.dumps({"cmd": "pause", "source": "cam0", "id": "p1"}), qos=1)
        sub.client.publish("edge-fer/t1/cmd", b"{not json", qos=1)
        sub.client.publish("edge-fer/t1/cmd", json.dumps({"cmd": "explode", "id": 9}), qos=1)
        results = sub.wait_for(lambda: len(sub.json_on("edge-fer/t1/cmd/result")) >= 3 and
                               sub.json_on("edge-fer/t1/cmd/result"), what="3 command results")
        by_id = {r["id"]: r for r in results}
        assert by_id["p1"]["ok"] is True and by_id[9]["ok"] is False and by_id[None]["ok"] is False
        sub.wait_for(lambda: any(s["paused"] for s in sub.json_on(STATE)), what="paused state")
        sub.client.publish("edge-fer/t1/cmd", json.dumps({"cmd": "resume", "source": "cam0"}), qos=1)

        m = scrape(mport)
        for key in ('edge_fer_frames_processed_total{source="cam0"}', 'edge_fer_source_up{source="cam0"}',
                    "edge_fer_mqtt_connected", "edge_fer_mqtt_queued_events",
                    'edge_fer_stage_latency_seconds_count{stage="detect"}',
                    'edge_fer_events_published_total{type="track_started"}'):
            assert key in m, key
        assert m["edge_fer_mqtt_connected"] == 1 and m['edge_fer_frames_processed_total{source="cam0"}'] > 10
        assert proc.poll() is None

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        assert time.monotonic() - t0 < 2.0
        sub.wait_for(lambda: sub.on(STATUS)[-1:] == [b"offline"], what="offline on SIGTERM")
        ended = sub.wait_for(lambda: [e for e in sub.json_on(EVENT) if e["type"] == "track_ended"], what="track_ended")
        assert ended[-1]["duration_s"] > 0 and ended[-1]["dominant_emotion"] in EMOTIONS
        events = sub.json_on(EVENT)  # countable: one boot, seq 1, 2, 3, ... with no gap
        assert len({e["boot_id"] for e in events}) == 1
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        final = Subscriber(mosquitto.port)  # the retained state after shutdown: source down, no face
        state = final.wait_for(lambda: final.json_on(STATE), what="retained state")[-1]
        assert state["source_up"] is False and state["faces"] == 0 and state["tracks"] == {}
        final.close()
    finally:
        kill_daemon(proc)
        sub.close()
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()


def test_last_will_after_kill_9(mosquitto, d19, tmp_path):
    cfg, _ = write_config(tmp_path, mosquitto.port, str(d19))
    proc = start_daemon(cfg, tmp_path / "daemon.log")
    sub = Subscriber(mosquitto.port)
    try:
        sub.wait_for(lambda: sub.on(STATUS)[-1:] == [b"online"], what="online")
        proc.kill()
        proc.wait(5)
        sub.wait_for(lambda: sub.on(STATUS)[-1:] == [b"offline"], timeout=15, what="LWT offline")
        late = Subscriber(mosquitto.port)
        late.wait_for(lambda: late.on(STATUS) == [b"offline"], what="retained LWT")
        late.close()
    finally:
        kill_daemon(proc)
        sub.close()


def _events_total(mport) -> float:
    m = scrape(mport)
    return sum(v for k, v in m.items() if k.startswith("edge_fer_events_published_total"))


def test_broker_down_10s_loses_no_event_and_duplicates_none(videos, tmp_path):
    broker = Mosquitto(tmp_path, persistent=True)
    broker.start()
    # faces come and go in this clip (and at every loop), so tracks start and end whatever the model says
    cfg, mport = write_config(tmp_path, broker.port, str(videos / "facerec_short_hamilton_clip.mp4"))
    proc = start_daemon(cfg, tmp_path / "daemon.log")
    sub = Subscriber(broker.port, client_id="edge-fer-test-sub", persistent=True)
    try:
        sub.wait_for(lambda: sub.json_on(EVENT), what="first event")
        before = _events_total(mport)
        broker.stop()
        time.sleep(10)
        during = _events_total(mport) - before
        queued = scrape(mport)["edge_fer_mqtt_queued_events"]
        broker.start()
        assert during > 0 and queued > 0, "no event was produced while the broker was down"
        wait_metric(mport, "edge_fer_mqtt_queued_events", lambda v: v == 0, timeout=20)
        total = _events_total(mport)
        sub.wait_for(lambda: len(sub.on(EVENT)) >= total, timeout=20, what=f"{total} events at the subscriber")
        received = sub.json_on(EVENT)
        keys = [(e["type"], e["track_id"], e["time_s"], e["ts"]) for e in received]
        assert len(keys) == len(set(keys)) == total  # none lost, none twice
        times = [e["ts"] for e in received]
        assert times == sorted(times)  # delivered in order
        assert proc.poll() is None
    finally:
        kill_daemon(proc)
        sub.close()
        broker.stop()


def test_events_queued_while_broker_is_down_survive_a_daemon_restart(d19, tmp_path):
    broker = Mosquitto(tmp_path, persistent=True)
    cfg, mport = write_config(tmp_path, broker.port, str(d19))  # broker not started yet
    proc = start_daemon(cfg, tmp_path / "daemon.log")
    try:
        queued = wait_metric(mport, "edge_fer_mqtt_queued_events", lambda v: v >= 1, timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        broker.start()
        sub = Subscriber(broker.port)
        proc = start_daemon(cfg, tmp_path / "daemon2.log")
        first = sub.wait_for(lambda: sub.json_on(EVENT), timeout=20, what="events from the previous run")
        assert first[0]["type"] == "track_started" and len(sub.json_on(EVENT)) >= queued
        sub.close()
    finally:
        kill_daemon(proc)
        broker.stop()


def test_a_topic_the_broker_refuses_is_counted_in_the_metrics(d19, tmp_path):
    """The broker's ACL refuses the event topic (MQTT 5 reason 0x87): the daemon keeps running, drops those events
    and counts them in edge_fer_mqtt_refusals_total{reason="0x87",outcome="dropped"}; status still arrives."""
    acl = tmp_path / "acl"
    acl.write_text(f"topic readwrite {STATUS}\ntopic readwrite {STATE}\ntopic readwrite edge-fer/t1/reply/#\n"
                   "topic read #\n")
    with persistent_broker(tmp_path, f"acl_file {acl}\n") as broker:
        cfg, mport = write_config(tmp_path, broker.port, str(d19))
        proc = start_daemon(cfg, tmp_path / "daemon.log")
        sub = Subscriber(broker.port)
        try:
            sub.wait_for(lambda: sub.on(STATUS)[-1:] == [b"online"], what="online")
            key = 'edge_fer_mqtt_refusals_total{outcome="dropped",reason="0x87"}'
            assert wait_metric(mport, key, lambda v: v >= 1, timeout=30) >= 1
            assert proc.poll() is None and not sub.on(EVENT)
            assert scrape(mport)['edge_fer_mqtt_refusals_total{outcome="resent",reason="0x97"}'] == 0
        finally:
            kill_daemon(proc)
            sub.close()
