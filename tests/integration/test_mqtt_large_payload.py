"""Large incoming MQTT 5 PUBLISH packets (commands) are decoded without copying the payload, and arrive intact.

paho 2.2 copies a received PUBLISH three times while decoding it (a 5 MB command held ~15 MB at once); the
publisher decodes packets from ``LEAN_PUBLISH_BYTES`` on itself (``MqttPublisher._lean_publish``). Real
mosquitto on 127.0.0.1, real paho clients.
"""

import hashlib
import json
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from daemon_helpers import Subscriber, wait_until
from edge.config.schema import MQTTConfig
from edge.publish.mqtt import LEAN_PUBLISH_BYTES, MqttPublisher
from edge.publish.queue import MessageQueue
from edge.publish.topics import Topics

pytestmark = pytest.mark.integration
CMD, RESULT = "edge-fer/t1/cmd", "edge-fer/t1/cmd/result"


def _sender(port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port, 5)
    c.loop_start()
    wait_until(c.is_connected, 5, "the sender connected")
    return c


@pytest.mark.parametrize("qos", [1, 2])  # the daemon subscribes its commands at QoS 1, or 0 when mqtt.qos is 2
def test_large_and_small_commands_arrive_intact(mosquitto, tmp_path, qos):
    pub = MqttPublisher(MQTTConfig(host="127.0.0.1", port=mosquitto.port, keepalive_s=5, reconnect_max_s=1, qos=qos),
                        Topics("edge-fer", "t1"), MessageQueue(tmp_path / "outbox.sqlite"))
    got: list[bytes] = []
    kinds: list[type] = []
    lock = threading.Lock()

    def on_command(payload: bytes | bytearray) -> dict:
        with lock:
            got.append(bytes(payload))
            kinds.append(type(payload))
        return {"id": len(got), "ok": True, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}

    pub.on_command = on_command
    sub = Subscriber(mosquitto.port)
    sender = None
    try:
        pub.start()
        assert pub.connected.wait(10)
        sender = _sender(mosquitto.port)
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = ("k", "v" * 300)  # properties before the payload must be skipped exactly
        props.ContentType = "application/json"
        payloads = [b'{"cmd":"ping","id":1}', bytes(range(256)) * (3 * LEAN_PUBLISH_BYTES // 256) + b"end",
                    b"x" * LEAN_PUBLISH_BYTES]  # small: paho's path; large: the publisher's own
        for data in payloads:
            sender.publish(CMD, data, qos=1, properties=props).wait_for_publish(5)
        sub.wait_for(lambda: len(sub.on(RESULT)) >= 3, timeout=10, what="3 replies")
        replies = sorted(sub.json_on(RESULT), key=lambda r: r["id"])
        assert got == payloads
        assert kinds == [bytes, bytearray, bytearray]  # the large ones took the copy-free decoder
        assert [(r["bytes"], r["sha256"]) for r in replies] == [(len(p), hashlib.sha256(p).hexdigest())
                                                               for p in payloads]
        assert all(json.dumps(r) for r in replies)
    finally:
        if sender:
            sender.loop_stop()
            sender.disconnect()
        pub.stop()
        sub.close()


def test_a_malformed_large_publish_is_paho_s_malformed_packet():
    """Lengths running past the packet or undecodable properties raise paho's MalformedPacket (paho then drops the
    connection), not a raw error that would end paho's network thread."""
    from paho.mqtt._packet import MalformedPacket

    from edge.publish.mqtt import _lean_message

    topic = CMD.encode()
    good = bytearray(len(topic).to_bytes(2, "big") + topic + (7).to_bytes(2, "big") + b"\x00" + b"p" * 70_000)
    message = _lean_message(0x02, good)  # QoS 1
    assert message.topic == CMD and message.mid == 7 and bytes(message.payload) == b"p" * 70_000
    bad_props = bytearray(len(topic).to_bytes(2, "big") + topic + b"\x00\x07" + b"\x02\xff\x00" + b"p" * 70_000)
    past_end = bytearray(len(topic).to_bytes(2, "big") + topic + b"\x00\x07" + b"\xff\xff\xff\x07" + b"p" * 10)
    for packet in (bad_props, past_end):
        with pytest.raises(MalformedPacket):
            _lean_message(0x02, packet)
