"""Exactly-once delivery (``mqtt.qos: 2``, persistent MQTT 5 session) against a real mosquitto on 127.0.0.1.

A subscriber with a persistent QoS 2 session counts every event by ``seq``: a broker stopped (SIGTERM,
mosquitto saves its state) and restarted during a drain must leave 0 lost and 0 duplicated.
"""

import json
import logging
import signal
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import generate_latest

from conftest import Mosquitto
from daemon_helpers import Subscriber, kill_daemon, persistent_broker, start_daemon, wait_until, write_config
from edge.config.schema import MQTTConfig
from edge.metrics import Metrics
from edge.publish.mqtt import MqttPublisher, Refusal
from edge.publish.queue import MessageQueue, OutgoingMessage
from edge.publish.topics import Topics

pytestmark = pytest.mark.integration
EVENT = "edge-fer/t1/cam0/event"


def _broker_and_subscriber(tmp_path, extra: str = "") -> "tuple[Mosquitto, RedeliveryCounter]":
    """A started broker (:func:`daemon_helpers.persistent_broker`) and a connected persistent QoS 2 subscriber
    of its events."""
    broker = persistent_broker(tmp_path, extra)
    broker.start()
    sub = RedeliveryCounter(broker.port, client_id="eo-sub", persistent=True, qos=2)
    try:
        sub.wait_for(lambda: sub.client.is_connected(), what="subscriber connected")
    except BaseException:
        sub.close()
        broker.stop()
        raise
    return broker, sub


@pytest.fixture
def exactly_once(tmp_path):
    """Factory: a started persistent broker with extra conf lines, a persistent QoS 2 subscriber of its events
    and a QoS 2 publisher (not started), all stopped at teardown."""
    made: list = []

    def make(extra: str = "") -> "tuple[Mosquitto, RedeliveryCounter, MqttPublisher]":
        broker, sub = _broker_and_subscriber(tmp_path, extra)
        pub = _publisher(tmp_path, broker.port)
        made.append((broker, sub, pub))
        return broker, sub, pub

    yield make
    for broker, sub, pub in made:
        pub.stop()
        sub.close()
        broker.stop()


def _publisher(tmp_path, port: int, qos: int = 2) -> MqttPublisher:
    cfg = MQTTConfig(host="127.0.0.1", port=port, keepalive_s=5, reconnect_max_s=1, qos=qos)
    return MqttPublisher(cfg, Topics("edge-fer", "t1"), MessageQueue(tmp_path / "outbox.sqlite"))


def _fill(pub: MqttPublisher, n: int, qos: int = 2) -> None:
    for start in range(0, n, 500):
        pub.outbox.put_many([OutgoingMessage(EVENT, json.dumps({"seq": i + 1}).encode(), qos)
                             for i in range(start, min(n, start + 500))])


def _drained(pub: MqttPublisher, timeout: float) -> None:
    wait_until(lambda: pub.queued == 0, timeout, f"the outbox to drain ({pub.queued} left)")


class RedeliveryCounter(Subscriber):
    """A :class:`Subscriber` that tells the copies the broker delivered again from those the publisher sent twice.

    A broker that delivers a message again (after its restart) sends it with DUP 1; a message the publisher
    sent twice is a new message to the broker, delivered with DUP 0. So every copy after the first of a
    payload is counted by its own DUP flag. (The first copy may itself carry DUP 1: it was sent before the
    broker's restart and not acknowledged in time.) mosquitto 2.0.11 delivers again, with DUP 1, QoS 2
    messages whose PUBREL it had sent: after a restart it restores only the first 20 in-flight messages of a
    client with their state (``max_inflight_messages`` raises that) and sends the others whole.
    """

    def __init__(self, *args, **kwargs) -> None:
        self.arrivals: list[tuple[str, bytes, bool]] = []  # (topic, payload, DUP flag) in arrival order
        super().__init__(*args, **kwargs)

    def _on_message(self, client, userdata, msg) -> None:
        super()._on_message(client, userdata, msg)
        with self.lock:
            self.arrivals.append((msg.topic, msg.payload, bool(msg.dup)))

    def duplicates(self, topic: str) -> tuple[int, int]:
        """(copies beyond the first of a payload on ``topic``, those of them the broker sent again with DUP 1)."""
        seen: set[bytes] = set()
        extra = by_broker = 0
        with self.lock:
            for t, payload, dup in self.arrivals:
                if t != topic:
                    continue
                if payload in seen:
                    extra, by_broker = extra + 1, by_broker + dup
                seen.add(payload)
        return extra, by_broker


def _assert_exactly_once(sub: RedeliveryCounter, n: int) -> None:
    """Every seq 1..n received, none sent twice by the publisher (waits for the broker to finish delivering).

    Copies the broker redelivered on its own (DUP set, see :class:`RedeliveryCounter`) are reported, not failed.
    """
    try:
        sub.wait_for(lambda: len(sub.on(EVENT)) >= n, timeout=20, what=f"{n} events")
    finally:
        time.sleep(0.5)  # a duplicate would arrive right behind
        seqs = [e["seq"] for e in sub.json_on(EVENT)]
        missing = sorted(set(range(1, n + 1)) - set(seqs))
        assert not missing, f"{len(missing)} lost: {missing[:5]}...{missing[-5:]}"
        extra, by_broker = sub.duplicates(EVENT)
        assert extra == by_broker, f"{extra - by_broker} duplicated by the publisher ({by_broker} by the broker)"
        print(f"{n} received once; {by_broker} redelivered by the broker (DUP)")


def test_qos2_drain_with_four_broker_stops_is_exactly_once(exactly_once, tmp_path):
    broker, sub, pub = exactly_once()
    _fill(pub, 4000)
    pub.start()
    for k in range(4):
        wait_until(lambda k=k: pub.queued <= 4000 - (k + 1) * 800, 20, f"drain before stop {k + 1}")
        broker.stop()  # SIGTERM: mosquitto saves both sessions and the messages it holds
        time.sleep(1.0)
        assert pub.alive and not pub.connected.is_set()
        broker.start()
        wait_until(pub.connected.is_set, 10, "the publisher connected again")
        # mosquitto 2.0 saves no session whose connection started clean: this is the first restart's trap
        assert pub.resumed, f"the broker lost the publisher's session at restart {k + 1}"
    _drained(pub, 30)
    _assert_exactly_once(sub, 4000)


def test_window_follows_the_brokers_receive_maximum(exactly_once, tmp_path, caplog):
    """mosquitto refuses a QoS 2 PUBLISH beyond ``max_inflight_messages`` (its MQTT 5 Receive Maximum)
    and drops the connection; the daemon's window of 50 must shrink to it."""
    broker, sub, pub = exactly_once("max_inflight_messages 5\n")
    caplog.set_level(logging.INFO, logger="edge.publish.mqtt")
    _fill(pub, 1000)
    pub.start()
    _drained(pub, 20)
    assert pub._quota == 5 and pub.window == 50
    assert not [r for r in caplog.records if "lost" in r.getMessage()], "the broker dropped the connection"
    _assert_exactly_once(sub, 1000)


def test_a_new_run_ends_the_old_session_and_resends_what_the_last_one_left(tmp_path):
    """A run that ends abruptly mid-drain leaves packet ids in the broker's session; the next run ends that
    session (they mean nothing to it), resumes a new one and publishes the unfinished rows again: nothing
    is lost."""
    broker, sub = _broker_and_subscriber(tmp_path)
    first = _publisher(tmp_path, broker.port)
    second = None
    try:
        _fill(first, 3000)
        first.start()
        wait_until(lambda: first.queued <= 2000, 20, "a third drained")
        first._stop.set()  # the run ends without DISCONNECT: its session stays at the broker
        first.client.loop_stop()
        first.outbox.close()
        second = _publisher(tmp_path, broker.port)
        assert second.queued > 0
        second.start()
        _drained(second, 20)
        assert not second.resumed  # connected to a new session, not the old run's
        sub.wait_for(lambda: {e["seq"] for e in sub.json_on(EVENT)} >= set(range(1, 3001)), timeout=20,
                     what="every seq")
    finally:
        if second:
            second.stop()
        sub.close()
        broker.stop()



def _hold_orphans(port: int, client_id: str, mids: list[int], clean_start: bool) -> None:
    """Connect as ``client_id`` (persistent MQTT 5 session) and leave one QoS 2 message under each packet id of
    ``mids``, answered PUBREC by the broker and never released (no PUBREL)."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    pubrecs = [0]

    def swallow_pubrec() -> mqtt.MQTTErrorCode:  # never sends PUBREL: the orphans stay unreleased
        pubrecs[0] += 1
        return mqtt.MQTT_ERR_SUCCESS

    c._handle_pubrec = swallow_pubrec  # type: ignore[method-assign]
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", port, 5, clean_start=clean_start, properties=props)
    c.loop_start()
    wait_until(c.is_connected, 5, "the orphan-holding client connected")
    for mid in mids:
        c._last_mid = mid - 1  # paho takes the next id
        assert c.publish("edge-fer/t1/orphan", b"orphan %d" % mid, qos=2).mid == mid
    wait_until(lambda: pubrecs[0] >= len(mids), 5, "the broker holding every orphan (PUBREC)")
    c.disconnect()
    c.loop_stop()


def _leave_orphans(port: int, client_id: str, n: int) -> None:
    """Take over ``client_id``'s session and leave ``n`` QoS 2 messages answered PUBREC and never released:
    the broker-side state a SIGKILLed mosquitto restores from an older autosave (packet ids far from the
    daemon's 1, 2, ...: a killed broker's stale ids are old ones)."""
    _hold_orphans(port, client_id, list(range(30_001, 30_001 + n)), clean_start=False)


def test_a_session_stuck_with_unknown_packet_ids_is_restarted_clean(exactly_once, tmp_path, caplog):
    """mosquitto counts unreleased packet ids against its quota (20): with 20 the daemon does not know,
    every message is refused (0x97) and the resumed session never moves unless the daemon starts clean."""
    broker, sub, pub = exactly_once()
    caplog.set_level(logging.WARNING, logger="edge.publish.mqtt")
    pub.start()
    assert pub.connected.wait(10)
    pub.client.loop_stop()  # the daemon's network thread pauses: it cannot take the session back yet
    _leave_orphans(broker.port, "edge-fer-t1", 20)
    _fill(pub, 1000)
    pub.client.loop_start()
    _drained(pub, 20)
    assert any("discarding it at the next connect" in r.getMessage() for r in caplog.records)
    sub.wait_for(lambda: {e["seq"] for e in sub.json_on(EVENT)} >= set(range(1, 1001)), timeout=20,
                 what="every seq")
    assert not sub.on("edge-fer/t1/orphan")


def _live_online(sub: Subscriber) -> int:
    """``online`` status messages published while the subscriber listened (not retained copies)."""
    with sub.lock:
        return sum(t == "edge-fer/t1/status" and p == b"online" and not r for t, p, r in sub.messages)


def test_daemon_at_qos2_broker_stopped_twice_every_event_once_and_commands_answered(videos, tmp_path):
    broker, sub = _broker_and_subscriber(tmp_path)
    cfg, _ = write_config(tmp_path, broker.port, str(videos / "facerec_short_hamilton_clip.mp4"), mqtt={"qos": 2})
    proc = start_daemon(cfg, tmp_path / "daemon.log")
    try:
        sub.wait_for(lambda: sub.json_on(EVENT), timeout=30, what="first event")
        for k in range(2):
            broker.stop()
            time.sleep(3)  # events are stored meanwhile
            broker.start()
            sub.wait_for(lambda k=k: _live_online(sub) >= k + 2, what="the daemon connected again")
        sub.client.publish("edge-fer/t1/cmd", b'{"cmd":"ping","id":1}', qos=1)
        sub.wait_for(lambda: sub.json_on("edge-fer/t1/cmd/result"), what="ping answered")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        events = sub.json_on(EVENT)
        assert len({e["boot_id"] for e in events}) == 1
        _assert_exactly_once(sub, max(e["seq"] for e in events))
    finally:
        kill_daemon(proc)
        sub.close()
        broker.stop()


def _resumed_with_orphans(tmp_path, broker: Mosquitto, orphans: int = 19) -> MqttPublisher:
    """A started publisher that resumed (``_fresh`` False) a session holding ``orphans`` packet ids it does not
    know: mosquitto (quota 20) accepts ``20 - orphans`` unfinished messages and refuses the next with 0x97."""
    pub = _publisher(tmp_path, broker.port)
    pub.start()
    assert pub.connected.wait(10)
    pub.client.loop_stop()  # the daemon's network thread pauses while the session is taken over
    _leave_orphans(broker.port, "edge-fer-t1", orphans)
    pub.connected.clear()
    pub.client.loop_start()
    wait_until(lambda: pub.connected.is_set() and pub.resumed and not pub._fresh, 10, "the session resumed")
    return pub


def _event(pub: MqttPublisher, seq: int) -> None:
    pub.enqueue(EVENT, {"seq": seq})


def test_a_refused_pubrec_never_deletes_the_row(tmp_path, caplog):
    """PUBREC 0x97 (quota exceeded) refuses the message; paho 2.2 ignores the reason and releases it anyway
    (PUBREL, and mosquitto answers PUBCOMP 0): the row was deleted undelivered. A few events delivered one
    by one first (the session makes progress), then a burst beyond the quota."""
    broker, sub = _broker_and_subscriber(tmp_path)
    caplog.set_level(logging.WARNING, logger="edge.publish.mqtt")
    pub = None
    try:
        pub = _resumed_with_orphans(tmp_path, broker)
        for seq in range(1, 6):
            _event(pub, seq)
            _drained(pub, 5)
        for seq in range(6, 101):
            _event(pub, seq)
        _drained(pub, 20)
        sub.wait_for(lambda: {e["seq"] for e in sub.json_on(EVENT)} >= set(range(1, 101)), timeout=20,
                     what="every seq")
        messages = [r.getMessage() for r in caplog.records]
        # the broker refuses with 0x97 or drops the connection first, by timing: the session is discarded either way
        assert any("discarding it at the next connect" in m or "it is sent again" in m for m in messages), messages
        refused = sum("it is sent again" in m for m in messages)  # the WARNING is rate-limited: at least this many
        assert pub.refusals.get(Refusal("0x97", "resent"), 0) >= refused
        assert not [k for k in pub.refusals if k.outcome == "dropped"]
        # nothing lost; the stuck session is discarded and its unfinished messages are sent again whole, so a
        # message the broker had already delivered may arrive twice (at least once, documented): at most the quota
        seqs = [e["seq"] for e in sub.json_on(EVENT)]
        assert set(seqs) == set(range(1, 101)), sorted(set(range(1, 101)) - set(seqs))
        assert len(seqs) - 100 <= 20, f"{len(seqs) - 100} copies"
    finally:
        if pub:
            pub.stop()
        sub.close()
        broker.stop()


def test_a_message_refused_for_good_is_dropped_with_a_warning(exactly_once, tmp_path, caplog):
    """The broker's ACL refuses a topic (MQTT 5 reason 0x87): the row leaves the outbox with a WARNING that says
    so (it was counted as delivered), and the events around it are delivered."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite edge-fer/t1/status\ntopic readwrite edge-fer/t1/cam0/event\ntopic read #\n")
    broker, sub, pub = exactly_once(f"acl_file {acl}\n")
    caplog.set_level(logging.WARNING, logger="edge.publish.mqtt")
    pub.outbox.put_many([OutgoingMessage(EVENT, b'{"seq": 1}', 2),
                         OutgoingMessage("edge-fer/t1/cam0/denied", b"x", 2),
                         OutgoingMessage(EVENT, b'{"seq": 2}', 2)])
    pub.start()
    _drained(pub, 10)
    sub.wait_for(lambda: len(sub.on(EVENT)) >= 2, timeout=10, what="both events")
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1 and "0x87" in dropped[0].getMessage()
    assert pub.refusals == {Refusal("0x87", "dropped"): 1}
    metrics = Metrics()
    metrics.init_series(["cam0"])
    metrics.sync_refusals(pub.refusals)
    metrics.sync_refusals(pub.refusals)  # totals: a second copy adds nothing
    text = generate_latest(metrics.registry).decode()
    assert 'edge_fer_mqtt_refusals_total{outcome="dropped",reason="0x87"} 1.0' in text
    assert 'edge_fer_mqtt_refusals_total{outcome="resent",reason="0x97"} 0.0' in text


def _stale_session(port: int, client_id: str, mids: list[int]) -> None:
    """Replace ``client_id``'s session with an older-looking one: Clean Start 1 ends the session the daemon
    was using (its unreleased messages are gone, as after a killed broker restored an older autosave) and a
    new persistent one is left holding an orphan, answered PUBREC and never released, under each of ``mids``:
    the daemon's own packet ids, now naming other messages."""
    _hold_orphans(port, client_id, mids, clean_start=True)


def test_nothing_is_sent_into_a_session_being_discarded(exactly_once, tmp_path, caplog):
    """Review B6. A resumed session made no progress, so the daemon discards it at the next connect; paho
    2 sends its unfinished messages (here PUBRELs) right after CONNACK, into that old session, before the
    helper client has ended it. The old session holds orphans under the same packet ids: each PUBREL
    released an orphan (the subscriber got it) and its PUBCOMP completed the daemon's event, which was
    deleted undelivered. The helper is slowed down by 0.5 s here (a TLS handshake with a distant broker);
    on 127.0.0.1 it usually wins the race. Nothing may be sent into a session being discarded: the events
    are sent whole to the new session, the orphans end with the old one."""
    broker, sub, pub = exactly_once()
    caplog.set_level(logging.INFO, logger="edge.publish.mqtt")
    pub.start()
    assert pub.connected.wait(10)
    pub._drop_connection()  # reconnect: the session is resumed (only a resumed one is checked for progress)
    wait_until(lambda: pub.connected.is_set() and pub.resumed, 10, "the session resumed")
    pub.client._send_pubrel = lambda mid: mqtt.MQTT_ERR_SUCCESS  # PUBRELs lost: the events stay unfinished
    for seq in range(1, 6):
        _event(pub, seq)
    wait_until(lambda: len(pub._inflight) == 5 and all(
        m.state == mqtt.mqtt_ms_wait_for_pubcomp for m in list(pub.client._out_messages.values())), 10,
        "5 events answered PUBREC")
    mids = sorted(info.mid for info in pub._inflight.values())
    pub.client.reconnect_delay_set(10, 10)  # the daemon waits while the broker's state changes under it
    discard = pub._discard_session
    pub._discard_session = lambda: (time.sleep(0.5), discard())  # a helper as slow as a TLS handshake far away
    t0 = time.monotonic()
    _stale_session(broker.port, "edge-fer-t1", mids)  # takes the connection over: lost, nothing completed
    del pub.client._send_pubrel
    assert time.monotonic() - t0 < 8 and not pub.connected.is_set(), "reconnected before the state changed"
    _drained(pub, 30)
    messages = [r.getMessage() for r in caplog.records]
    assert any("nothing completed" in m for m in messages), messages
    assert any("ending it and starting a new one" in m for m in messages), messages
    time.sleep(1.0)  # an orphan released late would arrive now
    orphans, seqs = sub.on("edge-fer/t1/orphan"), sorted(e["seq"] for e in sub.json_on(EVENT))
    assert (orphans, seqs) == ([], [1, 2, 3, 4, 5]), "PUBRELs sent into the discarded session released orphans"


def test_a_message_written_into_a_lost_connection_is_sent_once(exactly_once, tmp_path, caplog):
    """With paho's network thread not running (stopped, or dead until supervision restarts it) ``publish``
    writes inline; on a dead socket it answers CONN_LOST but keeps the message and sends it after the
    reconnect. The sender took CONN_LOST for "not queued" and handed the row over again: paho then held
    two copies, the event was published twice, and the extra copy could push a session past the broker's
    quota (20)."""
    broker, sub, pub = exactly_once()
    caplog.set_level(logging.WARNING, logger="edge.publish.mqtt")
    pub.start()
    assert pub.connected.wait(10)
    wait_until(lambda: not pub.client._out_messages, 5, "the status message acknowledged")
    pub.client.loop_stop()
    broker.stop()  # the socket dies while nobody reads it
    broker.start()
    for seq in range(1, 6):  # the first write after the peer closed still succeeds; a later one finds out
        _event(pub, seq)
        time.sleep(0.1)
    wait_until(lambda: not pub.connected.is_set(), 5, "the sender found the connection lost")
    pub.client.loop_start()
    _drained(pub, 20)
    _assert_exactly_once(sub, 5)
    assert len(sub.on(EVENT)) == 5, sorted(e["seq"] for e in sub.json_on(EVENT))
    assert not [r for r in caplog.records if "not queued" in r.getMessage()]


def test_a_released_message_is_not_published_again_after_a_long_outage(exactly_once, tmp_path):
    """paho 2.2 puts in-flight messages in a "resend" state at every reconnect attempt, and a second attempt
    (the broker still down) turns a QoS 2 message waiting to be released again (PUBREL) into a whole new
    PUBLISH with DUP 0. When the broker had released it already (only its PUBCOMP was lost with the
    connection) it takes that PUBLISH for a new message: the subscriber got the event twice (a copy of
    mosquitto's own redelivery hid it as "by the broker"). Here the PUBCOMPs are lost on purpose."""
    broker, sub, pub = exactly_once()
    pub.start()
    assert pub.connected.wait(10)
    handle = pub.client._handle_pubackcomp
    pub.client._handle_pubackcomp = lambda cmd: mqtt.MQTT_ERR_SUCCESS if cmd == "PUBCOMP" else handle(cmd)
    for seq in range(1, 6):
        _event(pub, seq)
    sub.wait_for(lambda: len(sub.on(EVENT)) >= 5, timeout=10, what="5 events released to the subscriber")
    wait_until(lambda: all(m.state == mqtt.mqtt_ms_wait_for_pubcomp for m in
                           list(pub.client._out_messages.values())), 5, "5 events waiting for PUBCOMP")
    broker.stop()
    time.sleep(2.5)  # reconnect attempts every second meet a closed port
    del pub.client._handle_pubackcomp
    broker.start()
    _drained(pub, 20)
    _assert_exactly_once(sub, 5)
    assert len(sub.on(EVENT)) == 5, sorted(e["seq"] for e in sub.json_on(EVENT))


def test_a_full_window_leaves_room_for_the_status_message(exactly_once, tmp_path, caplog):
    """mosquitto holds a QoS 2 message until its PUBREL but answers QoS 1 at once; a QoS 1 message (the
    retained ``online`` of each connect, a command reply) arriving while the session holds as many QoS 2
    messages as its quota (20) is refused (PUBACK 0x97) and the connection dropped. With a full window of
    events answered PUBREC but not released when the connection dropped, every reconnect's ``online`` was
    refused: the session was taken for stuck and discarded (events sent again whole), and an ``online``
    left unacknowledged came after the events at the next connect."""
    broker, sub, pub = exactly_once()
    caplog.set_level(logging.WARNING, logger="edge.publish.mqtt")
    pub.start()
    assert pub.connected.wait(10)
    wait_until(lambda: not pub.client._out_messages, 5, "the first status message acknowledged")
    pubrec, lost = pub.client._handle_pubrec, [0]

    def lose_pubrec() -> mqtt.MQTTErrorCode:  # the broker's PUBRECs are lost: none released
        lost[0] += 1
        return mqtt.MQTT_ERR_SUCCESS

    pub.client._handle_pubrec = lose_pubrec  # type: ignore[method-assign]
    _fill(pub, 500)
    wait_until(lambda: len(pub._inflight) >= pub._quota - 1, 10, "a full window in flight")
    wait_until(lambda: lost[0] >= len(pub._inflight), 10, "the broker holding the whole window (PUBREC)")
    pub.client._handle_pubrec = pubrec
    pub._drop_connection()  # the session holds the window, unreleased; paho resends it after "online"
    _drained(pub, 30)
    _assert_exactly_once(sub, 500)
    warnings = [r.getMessage() for r in caplog.records if "quota" in r.getMessage() or "progress" in r.getMessage()]
    assert not warnings, warnings


def test_a_failed_on_connect_reconnects(tmp_path, caplog):
    """An exception in the connect callback leaves paho connected but the daemon not set up: the connection is
    dropped so that the next one sets it up (here the hook fails once; the second connect calls it again)."""
    broker = persistent_broker(tmp_path)
    broker.start()
    pub = _publisher(tmp_path, broker.port)
    calls = []

    def on_connected() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("set-up failed")

    pub.on_connected = on_connected
    caplog.set_level(logging.ERROR, logger="edge.publish.mqtt")
    try:
        pub.start()
        wait_until(lambda: len(calls) >= 2, 10, "a second connect")
        assert any("on_connect failed" in r.getMessage() for r in caplog.records)
    finally:
        pub.stop()
        broker.stop()


@pytest.mark.parametrize("qos", [1, 2])
def test_messages_resent_after_a_reconnect_keep_their_order(mosquitto, tmp_path, qos):
    """Events whose PUBLISH was lost on the wire are resent after the reconnect in seq order (QoS 1 and 2; QoS 0/1
    status and replies go before QoS 2 events, each group in its own order), so a subscriber's gap rule holds."""
    sub = Subscriber(mosquitto.port, qos=qos)
    pub = _publisher(tmp_path, mosquitto.port, qos=qos)
    try:
        pub.start()
        assert pub.connected.wait(10)
        wait_until(lambda: not pub.client._out_messages, 5, "online acknowledged")
        pub.client._send_publish = lambda *a, **k: mqtt.MQTT_ERR_SUCCESS  # the PUBLISHes never leave
        _fill(pub, 10, qos=qos)
        pub._wake.set()
        wait_until(lambda: len(pub._inflight) == 10, 5, "10 events handed to paho")
        del pub.client._send_publish  # paho's own again
        pub._drop_connection()
        _drained(pub, 20)
        sub.wait_for(lambda: len(sub.on(EVENT)) >= 10, timeout=10, what="10 events")
        assert [e["seq"] for e in sub.json_on(EVENT)] == list(range(1, 11))
    finally:
        pub.stop()
        sub.close()


def test_a_broker_without_qos_2_gets_the_events_at_its_maximum_qos(exactly_once, caplog):
    """A broker that supports QoS 1 at most (CONNACK Maximum QoS 1; several cloud brokers) disconnects a client
    publishing at QoS 2 (reason 0x9B), so nothing would ever be delivered: with ``qos: 2`` the events go at
    QoS 1 there, with one WARNING."""
    broker, sub, pub = exactly_once("max_qos 1\n")
    caplog.set_level(logging.WARNING, logger="edge.publish.mqtt")
    _fill(pub, 200)
    pub.start()
    _drained(pub, 20)
    sub.wait_for(lambda: {e["seq"] for e in sub.json_on(EVENT)} >= set(range(1, 201)), timeout=10,
                 what="every seq")
    warnings = [r.getMessage() for r in caplog.records if "Maximum QoS" in r.getMessage()]
    assert len(warnings) == 1 and "QoS 1" in warnings[0], warnings
