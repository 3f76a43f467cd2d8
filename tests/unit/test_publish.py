"""edge.publish (outbox queue, topics) and edge.pipeline commands/state/events."""

import json

import numpy as np

from edge.daemon.commands import CommandTargets, handle_command
from edge.daemon.state import ha_discovery, source_state
from edge.labels import EMOTIONS
from edge.pipeline.events import SCHEMA_VERSION, event_to_dict, make_event, track_ended_event
from edge.publish.queue import MessageQueue
from edge.publish.topics import Topics
from edge.smooth import EmotionSmoother
from edge.types import BBox, EmotionScores


def test_outbox_is_fifo_persistent_and_bounded(tmp_path):
    path = tmp_path / "q.sqlite"
    q = MessageQueue(path, max_messages=5)
    ids = [q.put("t", f"m{i}".encode()) for i in range(7)]
    assert len(q) == 5 and q.dropped["queue_full"] == 2
    assert [m.payload for m in q.peek()] == [b"m2", b"m3", b"m4", b"m5", b"m6"]
    q.delete(ids[2])
    q.close()
    q2 = MessageQueue(path)
    assert [m.payload for m in q2.peek()] == [b"m3", b"m4", b"m5", b"m6"]
    assert [m.payload for m in q2.peek(after_id=ids[4])] == [b"m5", b"m6"]


def test_topics():
    t = Topics("edge-fer", "pi1")
    assert t.status == "edge-fer/pi1/status" and t.event("cam0") == "edge-fer/pi1/cam0/event"
    assert t.state("cam0") == "edge-fer/pi1/cam0/state" and t.cmd_result == "edge-fer/pi1/cmd/result"


def _targets(log):
    return CommandTargets(lambda s, p: log.append(("pause" if p else "resume", s)),
                          lambda s: log.append(("state", s)), lambda: ["cam0"])


def test_commands_and_malformed_payloads():
    log = []
    t = _targets(log)
    assert handle_command(b'{"cmd":"pause","source":"cam0","id":7}', t).reply == {"id": 7, "cmd": "pause", "ok": True}
    assert handle_command(b'{"cmd":"resume","source":"cam0"}', t).reply["ok"]
    assert handle_command(b'{"cmd":"publish_state"}', t).reply["ok"]
    assert log == [("pause", "cam0"), ("resume", "cam0"), ("state", None)]
    for bad, why in [(b"\xff\xfe", "malformed"), (b"[1,2]", "JSON object"), (b'{"cmd":"reboot"}', "unknown cmd"),
                     (b'{"cmd":"pause","source":"cam9"}', "unknown source"), (b'{"cmd":"pause"}', "needs")]:
        reply = handle_command(bad, t).reply
        assert reply["ok"] is False and why in reply["error"]


def test_event_schema_fields():
    sm = EmotionSmoother()
    state, _ = sm.update(3, EmotionScores(np.eye(7, dtype=np.float32)[EMOTIONS.index("happy")]), 1.0)
    sm.update(3, EmotionScores(np.eye(7, dtype=np.float32)[EMOTIONS.index("happy")]), 2.0)
    ev = event_to_dict(make_event("track_started", state, 3, "cam0", 1.0, BBox(10, 20, 30, 40), (100, 200), EMOTIONS))
    assert ev["schema_version"] == SCHEMA_VERSION and ev["ts"].endswith("Z")
    assert ev["bbox"] == {"x": 0.1, "y": 0.1, "w": 0.3, "h": 0.2}
    assert set(ev["scores"]) == set(EMOTIONS) and ev["emotion"] == "happy" and ev["confidence"] == 1.0
    end = event_to_dict(track_ended_event(state, 3, "cam0", BBox(0, 0, 10, 10), (100, 100), EMOTIONS))
    assert end["duration_s"] == 1.0 and end["dominant_emotion"] == "happy"
    assert end["seconds_per_emotion"]["happy"] == 1.0
    json.dumps(end)


def test_state_and_home_assistant_discovery():
    s = source_state("cam0", {1: "happy", 2: "happy", 5: "sad"}, True, False)
    assert s["faces"] == 3 and s["dominant_emotion"] == "happy" and s["tracks"] == {"1": "happy", "2": "happy",
                                                                                     "5": "sad"}
    assert source_state("cam0", {}, False, True)["dominant_emotion"] is None
    cfgs = ha_discovery(Topics("edge-fer", "pi1"), "homeassistant", "cam0")
    assert set(cfgs) == {"homeassistant/sensor/pi1_cam0_emotion/config", "homeassistant/sensor/pi1_cam0_faces/config"}
    assert all(c["state_topic"] == "edge-fer/pi1/cam0/state" for c in cfgs.values())


def test_fps_limiter_keeps_the_rate_on_a_faster_source():
    from edge.daemon.limiter import FpsLimiter

    for src_fps, limit in ((30.0, 15.0), (29.97, 15.0), (25.0, 10.0), (60.0, 15.0)):
        lim = FpsLimiter(limit)
        rng = np.random.default_rng(0)
        times = np.arange(int(src_fps * 20)) / src_fps + rng.normal(0, 0.002, int(src_fps * 20))  # 2 ms jitter
        admitted = sum(lim.admit(t) for t in np.sort(times))
        assert abs(admitted / 20 - min(limit, src_fps)) <= 0.05 * limit, (src_fps, admitted / 20)
    slow = FpsLimiter(15.0)  # a slower source is not held back
    assert all(slow.admit(t / 10) for t in range(50))
    assert all(FpsLimiter(None).admit(t / 1000) for t in range(100))


def test_events_are_numbered_once_per_boot():
    from edge.pipeline.events import EventCounter, restart_ended_dict

    counter = EventCounter()
    sm = EmotionSmoother()
    state, _ = sm.update(1, EmotionScores(np.eye(7, dtype=np.float32)[0]), 1.0)
    events = [make_event("track_started", state, i, "cam0", 1.0, BBox(0, 0, 5, 5), (10, 10), EMOTIONS)
              for i in range(3)]
    dicts = [event_to_dict(e, counter=counter) for e in events]
    assert [d["seq"] for d in dicts] == [1, 2, 3] and {d["boot_id"] for d in dicts} == {counter.boot_id}
    assert event_to_dict(events[0], counter=counter)["seq"] == 1  # serialised again: same number
    ended = restart_ended_dict("old-boot", "cam0", 4, 1.0, 3.5, "happy", counter)
    assert ended["seq"] == 4 and ended["reason"] == "restart" and ended["previous_boot_id"] == "old-boot"
    assert ended["type"] == "track_ended" and ended["duration_s"] == 2.5
    json.dumps(ended, allow_nan=False)


def test_supervisor_restarts_a_dead_source_or_gives_up_with_a_reason():
    import threading

    from edge.daemon.supervise import MAX_RESTARTS, Supervisor
    from edge.metrics import Metrics

    class Src:
        def __init__(self, restartable):
            self._thread = threading.Thread(target=lambda: None)
            self._thread.start()
            self._thread.join()  # its reader ended
            if restartable:
                self.restart = self._restart
            self.restarts = 0

        def _restart(self):
            self.restarts += 1

    m = Metrics()
    ok = Src(True)
    sup = Supervisor(m, None, {"cam0": ok})
    for _ in range(MAX_RESTARTS):
        sup.check()
    assert ok.restarts == MAX_RESTARTS and sup.fatal is None and sup.healthy()
    assert m.thread_restarts.labels("source")._value.get() == MAX_RESTARTS
    sup.check()  # one too many within the window: give up, exit non-zero
    assert sup.fatal and "source" in sup.fatal and not sup.healthy()
    dead = Supervisor(Metrics(), None, {"cam1": Src(False)})
    dead.check()
    assert dead.fatal and "cam1" in dead.fatal


def test_one_set_of_exit_codes(capsys):
    from edge import exit_codes as codes
    from edge.cli import exit_codes as cli_codes
    from edge.config import Config
    from edge.daemon import service

    assert service.codes is codes  # the daemon keeps no copy of its own
    assert not [n for n in vars(service) if n.startswith("EXIT_")]
    assert {n: getattr(cli_codes, n) for n in cli_codes.__all__} == {n: getattr(codes, n) for n in cli_codes.__all__}
    assert [c for c, _ in codes.TABLE] == [0, 1, 2, 3, 4, 5, 6, 7, 130]
    assert service.run_daemon(Config(sources=[])) == codes.USAGE
    err = capsys.readouterr().err
    assert err.startswith("edge-fer: config: sources:") and err.count("\n") == 1


def _qos2_publisher(tmp_path):
    """A QoS 2 (persistent session) publisher that is never started: its bookkeeping is called directly."""
    from edge.config.schema import MQTTConfig
    from edge.publish.mqtt import MqttPublisher

    cfg = MQTTConfig(host="127.0.0.1", port=1, keepalive_s=5, reconnect_max_s=1, qos=2)
    return MqttPublisher(cfg, Topics("edge-fer", "t1"), MessageQueue(tmp_path / "outbox.sqlite"))


def _handed(pub, rows: int) -> list:
    """Store ``rows`` QoS 2 messages and record them as handed to paho (packet ids 1..rows)."""
    import paho.mqtt.client as mqtt

    from edge.publish.queue import OutgoingMessage

    ids = pub.outbox.put_many([OutgoingMessage("t/e", b"x", 2) for _ in range(rows)])
    infos = [mqtt.MQTTMessageInfo(mid) for mid in range(1, rows + 1)]
    pub._inflight.update(zip(ids, infos))
    pub._last_handed = ids[-1]
    return infos


def test_a_new_session_dropped_before_its_first_completion_is_not_discarded(tmp_path):
    pub = _qos2_publisher(tmp_path)
    _handed(pub, 3)
    pub._fresh, pub.resumed = False, False  # a brand-new session (or one just discarded)
    pub._check_session(pub.client)
    assert not pub._fresh, "a flaky link would cause a discard and whole resends (duplicates)"
    pub.resumed = True  # a resumed session that completed nothing is stalled
    pub._check_session(pub.client)
    assert pub._fresh


def test_a_refused_reconnect_during_a_discard_leaves_no_refused_flag(tmp_path):
    pub = _qos2_publisher(tmp_path)
    pub._refused = True
    pub._discarding.set()
    pub._on_disconnect(pub.client, None, None, None, None)
    assert not pub._refused and not pub.connected.is_set()


def test_a_discard_that_keeps_failing_resumes_the_old_session(tmp_path, caplog):
    import logging

    from edge.publish.mqtt import DISCARD_ATTEMPTS

    pub = _qos2_publisher(tmp_path)
    caplog.set_level(logging.WARNING, logger="edge.publish.mqtt")
    for _ in range(DISCARD_ATTEMPTS - 1):
        pub._discard_failed(ConnectionError("not authorised"))
    assert pub._fresh
    pub._discard_failed(ConnectionError("not authorised"))
    assert not pub._fresh and pub._discard_failures == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "at least once" in errors[0]


def test_refusals_keep_or_drop_the_row_by_reason(tmp_path, caplog):
    """A PUBACK/PUBCOMP refusal also ends paho's delivery (``is_published``): quota exceeded keeps the row to
    hand it again, not authorised drops it with a WARNING, success deletes it."""
    import logging

    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    pub = _qos2_publisher(tmp_path)
    caplog.set_level(logging.WARNING, logger="edge.publish.mqtt")
    infos = _handed(pub, 3)
    rows = sorted(pub._inflight)
    for info, code in zip(infos, (0x97, 0x87, 0x00)):
        if code:
            pub._on_publish(pub.client, None, info.mid, ReasonCode(PacketTypes.PUBACK, identifier=code), None)
        info._set_as_published()
    pub._reap()
    assert [m.id for m in pub.outbox.peek(0, 10)] == [rows[0]]
    assert pub._last_handed == rows[0] - 1 and not pub._inflight
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1 and "0x87" in dropped[0]


def test_paho_is_the_version_whose_internals_the_publisher_overrides():
    """edge/publish/mqtt.py overrides paho 2.2 internals (pinned paho-mqtt>=2.2,<2.3 in pyproject.toml)."""
    import paho.mqtt
    from paho.mqtt import _packet, client

    assert paho.mqtt.__version__.startswith("2.2.")
    for name in ("_handle_publish", "_handle_pubrec", "_messages_reconnect_reset_out", "_send_puback",
                 "_handle_on_message", "_easy_log", "_do_on_publish"):
        assert hasattr(client.Client, name), name
    assert hasattr(_packet, "MalformedPacket") and hasattr(_packet, "DECODE_ERRORS")
