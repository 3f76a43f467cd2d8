"""MQTT client (paho-mqtt v2 callback API) with at-least-once event delivery.

Events are stored in :class:`edge.publish.queue.MessageQueue` first; a
sender thread hands them to paho in id order while connected and deletes each
one once its PUBACK has arrived (``MQTTMessageInfo.is_published``). paho keeps unacknowledged QoS 1
messages and resends them after a reconnect (MQTT 3.1.1, section 4.4), and
rows never acknowledged are published again after a daemon restart. The
``status`` topic is retained ``online`` on connect and ``offline`` as Last
Will and on clean shutdown. Publishing never blocks the caller.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as mqtt

from edge.config.schema import MQTTConfig, mqtt_password
from edge.publish.queue import MessageQueue
from edge.publish.topics import Topics

log = logging.getLogger(__name__)

CommandHandler = Callable[[bytes], dict]


class MqttPublisher:
    """Owns the paho client, the persistent outbox and the sender thread."""

    def __init__(self, cfg: MQTTConfig, topics: Topics, outbox: MessageQueue, window: int = 50) -> None:
        """Prepare the client (nothing connects until :meth:`start`).

        Raises:
            ConfigError: unreadable password file.
        """
        self.cfg, self.topics, self.outbox, self.window = cfg, topics, outbox, window
        self.connected = threading.Event()
        self.on_command: CommandHandler | None = None
        self.on_connected: Callable[[], None] | None = None
        self.published: dict[str, int] = {}
        self._inflight: deque[tuple[int, mqtt.MQTTMessageInfo]] = deque()
        self._last_handed = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        c = self.cfg
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=c.client_id or f"edge-fer-{self.topics.device_id}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.will_set(self.topics.status, "offline", qos=1, retain=True)
        password = mqtt_password(c)
        if c.username:
            client.username_pw_set(c.username, password)
        if c.tls:
            client.tls_set(ca_certs=c.tls.ca_certs, certfile=c.tls.certfile, keyfile=c.tls.keyfile,
                           cert_reqs=ssl.CERT_REQUIRED)
            client.tls_insecure_set(c.tls.insecure)
        client.reconnect_delay_set(1, max(1, int(c.reconnect_max_s)))
        client.max_inflight_messages_set(self.window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background (retrying with backoff) and start the sender."""
        self.client.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive_s)
        self.client.loop_start()
        self._sender.start()

    # --- paho callbacks (network thread) ---
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker refused the connection: %s", reason_code)
            return
        log.info("MQTT connected to %s:%d", self.cfg.host, self.cfg.port)
        client.publish(self.topics.status, "online", qos=1, retain=True)
        client.subscribe(self.topics.cmd, qos=1)
        self.connected.set()
        self._wake.set()
        if self.on_connected:
            self.on_connected()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():
            log.warning("MQTT disconnected (%s); reconnecting", reason_code)
        self.connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._wake.set()  # the sender thread reaps acknowledged messages

    def _on_message(self, client, userdata, message) -> None:
        if message.topic != self.topics.cmd or self.on_command is None:
            return
        try:
            reply = self.on_command(message.payload)
        except Exception as exc:  # noqa: BLE001 - a bad command never stops the daemon
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        client.publish(self.topics.cmd_result, json.dumps(reply), qos=1)

    # --- sender thread ---
    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._reap()
            room = self.window - len(self._inflight)
            batch = self.outbox.peek(self._last_handed, room) if self.connected.is_set() and room > 0 else []
            if not batch:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            for msg in batch:
                info = self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
                self._last_handed = msg.id
                if msg.qos == 0:
                    self.outbox.delete(msg.id)
                else:  # paho keeps it (and resends after a reconnect) until the PUBACK
                    self._inflight.append((msg.id, info))

    def _reap(self) -> None:
        """Delete the stored rows whose PUBACK arrived (paho sets ``is_published``)."""
        pending: deque[tuple[int, mqtt.MQTTMessageInfo]] = deque()
        for row, info in self._inflight:
            if info.is_published():
                self.outbox.delete(row)
            else:
                pending.append((row, info))
        self._inflight = pending

    # --- API for the pipeline (any thread, never blocks on the network) ---
    def enqueue(self, topic: str, payload: dict | str, kind: str = "event", retain: bool = False) -> None:
        """Store a message for at-least-once delivery (QoS from config)."""
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self.outbox.put(topic, data.encode(), self.cfg.qos, retain)
        self.published[kind] = self.published.get(kind, 0) + 1
        self._wake.set()

    def publish_now(self, topic: str, payload: dict | str, retain: bool = False, qos: int = 1) -> None:
        """Publish a message that only matters now (state): not stored, paho queues it while away."""
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self.client.publish(topic, data, qos=qos, retain=retain)

    @property
    def queued(self) -> int:
        """Messages stored and not yet acknowledged."""
        return len(self.outbox)

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the outbox to drain; True if it did."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.queued == 0:
                return True
            if not self.connected.is_set():
                return False
            time.sleep(0.02)
        return self.queued == 0

    def stop(self, timeout_s: float = 1.0) -> None:
        """Publish retained ``offline``, disconnect cleanly and stop the threads."""
        self._stop.set()
        self._wake.set()
        if self.connected.is_set():
            info = self.client.publish(self.topics.status, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=timeout_s)
            except (RuntimeError, ValueError):
                pass
        self.connected.clear()
        self.client.disconnect()
        self.client.loop_stop()
        if self._sender.is_alive():
            self._sender.join(timeout=0.5)
