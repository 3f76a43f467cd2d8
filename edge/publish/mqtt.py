"""MQTT client (paho-mqtt v2 callback API, MQTT 5) with at-least-once or exactly-once event delivery.

Events are stored in :class:`edge.publish.queue.MessageQueue` first; a
sender thread hands them to paho in id order while connected and deletes them
(in batches) once their delivery is complete (``MQTTMessageInfo.is_published``:
PUBACK at QoS 1, PUBCOMP at QoS 2). A row is handed to paho once per run:
paho keeps the messages it was handed, including those handed over just as the
connection dropped (``MQTT_ERR_NO_CONN``), and sends them again after the
reconnect with the same packet ids; rows never completed are published again
after a daemon restart. A MQTT 5 refusal (reason >= 0x80 in PUBREC, PUBACK or
PUBCOMP) is not a delivery: a transient one (:data:`TRANSIENT_REFUSALS`) keeps
the row to send it again, any other drops it with a WARNING; paho 2.x ignores
the PUBREC reason, see :meth:`MqttPublisher._check_pubrec`. Refusals are counted by
reason and outcome (:attr:`MqttPublisher.refusals`, ``edge_fer_mqtt_refusals_total``).
The ``status`` topic is retained ``online`` on connect and ``offline`` as Last Will
and on clean shutdown. Publishing never blocks the
caller.

**Exactly once across broker restarts** (``mqtt.qos: 2``): the session is
persistent (fixed client id, MQTT 5 ``Session Expiry Interval`` of
:data:`SESSION_EXPIRY_S`, ended by a clean shutdown). The client always
connects with Clean Start 0: mosquitto 2.0 does not save a session whose
connection started clean, so the first broker restart would lose it. A session
found at the first connect of a run is a previous run's (its packet ids mean
nothing to this process): a short-lived helper client with the same id
connects clean and ends it, the daemon reconnects to a new session and
publishes the unfinished rows again as new messages. Nothing is sent into a
session being discarded (paho's resend after CONNACK is held back until the new
session, :meth:`MqttPublisher._hold_back`): a PUBREL there could release another
message under the same packet id and complete ours undelivered. After
a reconnect paho resends an unacknowledged PUBLISH with the same packet id and
the DUP flag, or only the PUBREL once the broker had answered PUBREC; the broker
holds the QoS 2 state of the session (in its persistence file across its own
restarts) and drops the second copy. The daemon keeps at most the broker's
``Receive Maximum`` (CONNACK; mosquitto's ``max_inflight_messages``, 20 by
default) less one events unacknowledged, the last slot left to the status
message and command replies (QoS 1, resent before the events after a
reconnect): mosquitto refuses a PUBLISH beyond it (PUBREC/PUBACK 0x97) and
drops the connection; an MQTT 5 client that ignored the refusal would lose the
message. With a persistent session the command
topic is subscribed at QoS 0, so the broker keeps no commands for a daemon that
is away (a stale ``pause`` would otherwise arrive on reconnect).

A broker that was killed (SIGKILL) may come back with an older copy of the
session from its last autosave, holding packet ids this client has since
finished and will never release; mosquitto counts them against its quota and
refuses every new message (0x97), so the resumed session never moves. When a
resumed connection ends with a refusal for quota or without completing a
single event, the session is discarded the same way. Whenever the broker has
no session for the client (discarded, lost by a killed broker, expired), paho
sends every unfinished message again as a whole PUBLISH, not just its PUBREL
(at least once: the few the broker had already delivered arrive twice).

The sender never dies: every pass is guarded, and :meth:`MqttPublisher.ensure_threads`
restarts the sender or paho's network thread should either end anyway.

Connection problems are logged with ``host:port`` and the reason (refused,
unreachable, TLS certificate or handshake failure, closed before CONNACK), one
WARNING per kind at most once a minute, and one INFO when connected again.

TLS: ``tls.insecure: true`` turns certificate verification off entirely
(``CERT_NONE`` and no hostname check): the link is encrypted but the broker is
not authenticated. A WARNING says so at start.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

from edge.config.schema import MQTTConfig, TLSConfig, mqtt_password
from edge.publish.queue import MessageQueue, OutgoingMessage, TrackMark
from edge.publish.ratelimit import RateLimitedLog
from edge.publish.topics import Topics

log = logging.getLogger(__name__)

CommandHandler = Callable[[bytes | bytearray], dict]  # a bytearray for packets of LEAN_PUBLISH_BYTES or more
#: Seconds between two log lines of the same connection problem.
PROBLEM_LOG_EVERY_S = 60.0
#: Seconds the broker keeps the daemon's session (QoS 2 state) while the daemon is away (MQTT 5 property
#: ``Session Expiry Interval``); a longer outage than this loses the messages the broker had answered PUBREC.
SESSION_EXPIRY_S = 86_400
#: ``Receive Maximum`` when the broker sends none (MQTT 5, section 3.2.2.3.3).
RECEIVE_MAXIMUM = 65_535
#: Log keys of the connection problems that a successful connect ends (one INFO "connected again").
CONNECTION_PROBLEMS = ("unreachable", "refused", "lost", "closed")
#: MQTT 5 reason code "Quota exceeded": the broker's session holds as many unfinished messages as it accepts.
QUOTA_EXCEEDED = 0x97
#: MQTT 5 refusals (PUBREC/PUBACK/PUBCOMP reason codes, section 2.4) worth sending the message again: quota
#: exceeded (0x97) and implementation specific error (0x83). Any other code >= 0x80 (0x87 not authorized, 0x90 topic
#: name invalid, 0x99 payload format invalid, ...) refuses the message for good: the row is dropped.
TRANSIENT_REFUSALS = frozenset({QUOTA_EXCEEDED, 0x83})
#: Incoming PUBLISH packets of at least this many bytes are decoded without copying their payload
#: (:meth:`MqttPublisher._lean_publish`); smaller ones take paho's own path.
LEAN_PUBLISH_BYTES = 64 * 1024
#: PUBCOMP reason "Packet Identifier not found" (MQTT 5 section 3.7.2.1): the answer to a PUBREL the broker had
#: already completed before a reconnect, so the message was delivered (only PUBCOMP carries this code).
PACKET_ID_NOT_FOUND = 0x92
#: Consecutive failed session discards after which the previous session is resumed instead.
DISCARD_ATTEMPTS = 3
#: Outcomes of a refusal (``edge_fer_mqtt_refusals_total{outcome}``): kept and sent again, or dropped from the outbox.
RESENT, DROPPED = "resent", "dropped"


@dataclass(frozen=True)
class Refusal:
    """One kind of MQTT 5 refusal of a published message, the key of :attr:`MqttPublisher.refusals`.

    Attributes:
        reason: The reason code as the broker sent it, hex (``"0x97"``; MQTT 5 section 2.4, always >= 0x80).
        outcome: :data:`RESENT` (transient, :data:`TRANSIENT_REFUSALS`) or :data:`DROPPED` (refused for good).
    """

    reason: str
    outcome: str

    @classmethod
    def of(cls, code: int) -> Refusal:
        """The refusal for an MQTT 5 reason code, its outcome decided by :data:`TRANSIENT_REFUSALS`.

        Args:
            code: Reason code >= 0x80 of a PUBREC, PUBACK or PUBCOMP.

        Returns:
            ``Refusal("0x97", "resent")`` for a transient refusal, ``Refusal("0x87", "dropped")`` style otherwise.
        """
        return cls(f"0x{code:02x}", RESENT if code in TRANSIENT_REFUSALS else DROPPED)


def _acked(info: mqtt.MQTTMessageInfo) -> bool:
    """``is_published`` that never raises (a failed hand-over counts as not acknowledged)."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return False


def _reason(exc: BaseException | None) -> str:
    """One-line reason of a connection exception (TLS verification errors spelled out)."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    return f"{type(exc).__name__}: {exc}"


def _lean_message(header: int, packet: bytearray) -> mqtt.MQTTMessage:
    """A QoS 0/1 MQTT 5 PUBLISH (section 3.3) whose payload is ``packet`` itself, its header cut off in place.

    Args:
        header: The fixed header's first byte (DUP 0x08, QoS 0x06, RETAIN 0x01).
        packet: The variable header and payload as received; shortened in place to the payload.

    Returns:
        The message; its ``payload`` is the ``bytearray`` (bytes-like, not hashable).

    Raises:
        paho.mqtt._packet.MalformedPacket: lengths that run past the packet or undecodable properties (as
            paho's own decoder, so paho's network loop drops the connection instead of dying).
    """
    qos, mid, props = (header & 0x06) >> 1, 0, Properties(PacketTypes.PUBLISH)
    try:
        with memoryview(packet) as view:  # released before the bytearray is cut (no resize while exported)
            end = 2 + int.from_bytes(view[:2], "big")
            topic = bytes(view[2:end])
            if qos:
                mid, end = int.from_bytes(view[end:end + 2], "big"), end + 2
            size, size_len = VariableByteIntegers.decode(bytes(view[end:end + 4]))
            if end + size_len + size > len(packet):
                raise ValueError("PUBLISH header runs past the packet")
            props.unpack(bytes(view[end:end + size_len + size]))
    except (*_packet.DECODE_ERRORS, TypeError) as exc:
        raise _packet.MalformedPacket(f"malformed PUBLISH: {exc}") from exc
    del packet[:end + size_len + size]
    message = mqtt.MQTTMessage(mid=mid, topic=topic)
    message.dup, message.qos, message.retain = bool(header & 0x08), qos, bool(header & 0x01)
    message.properties, message.payload = props, packet  # type: ignore[assignment]  # bytes-like, not copied
    message.timestamp = time.monotonic()
    return message


class MqttPublisher:
    """Owns the paho client, the persistent outbox and the sender thread.

    Attributes:
        connected: Set while a CONNACK-accepted connection is up.
        commands_enabled: Subscribe to the command topic (set before :meth:`start`).
        persistent: The broker keeps the session across reconnects (``mqtt.qos`` 2: exactly once).
        resumed: The broker had this client's session at the last connect (persistent only).
    """

    def __init__(self, cfg: MQTTConfig, topics: Topics, outbox: MessageQueue, window: int = 50) -> None:
        """Prepare the client (nothing connects until :meth:`start`).

        Args:
            cfg: The ``mqtt`` section of the config (broker, credentials, TLS, QoS).
            topics: Topic names of this device.
            outbox: The persistent queue messages are stored in until their PUBACK/PUBCOMP.
            window: QoS 1/2 messages handed to paho and not yet complete, at most (fewer when the
                broker's ``Receive Maximum`` is lower).

        Raises:
            ConfigError: unreadable password file.
        """
        self.cfg, self.topics, self.outbox, self.window = cfg, topics, outbox, window
        self.connected = threading.Event()
        self.commands_enabled = True
        self.persistent = cfg.qos == 2
        self._quota = window  # the broker's Receive Maximum, from each CONNACK
        self._max_qos = 2  # the broker's Maximum QoS, from each CONNACK (MQTT 5 section 3.2.2.3.4)
        self._reaped = self._reaped_at_connect = 0  # rows completed: in all, and when last connected
        self._stuck = False  # the broker refused a message for quota on this connection
        self._fresh = self.persistent  # a session found at the next CONNACK is discarded (a previous run's)
        self._discarding = threading.Event()  # a helper client is ending the session: our drop is expected
        self._discard_failures = 0  # consecutive failed discards (helper refused by ACL/auth, ...)
        self._refusals: dict[int, int] = {}  # packet id -> failure reason of its PUBACK/PUBCOMP (paho's thread)
        self._refusals_lock = threading.Lock()
        self._refusal_totals: Counter[Refusal] = Counter()  # under _refusals_lock
        self.resumed = False  # the broker had this client's session at the last connect
        self.on_command: CommandHandler | None = None
        self.on_connected: Callable[[], None] | None = None
        self._inflight: dict[int, mqtt.MQTTMessageInfo] = {}
        self._last_handed = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._started = False
        self._refused = False
        self._problems = RateLimitedLog(log, PROBLEM_LOG_EVERY_S)
        self._sender = self._new_sender()
        self.client = self._make_client()

    @property
    def address(self) -> str:
        """``host:port`` of the broker."""
        return f"{self.cfg.host}:{self.cfg.port}"

    def _new_sender(self) -> threading.Thread:
        return threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)

    def _new_client(self, main: bool = True) -> mqtt.Client:
        """A paho client with this daemon's client id, credentials and TLS; the main one also has the Will."""
        c = self.cfg
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=c.client_id or f"edge-fer-{self.topics.device_id}", protocol=mqtt.MQTTv5)
        if main:
            client.will_set(self.topics.status, "offline", qos=1, retain=True)
        password = mqtt_password(c)
        if c.username:
            client.username_pw_set(c.username, password)
        if c.tls:
            self._set_tls(client, c.tls, warn=main)
        return client

    def _make_client(self) -> mqtt.Client:
        c = self.cfg
        client = self._new_client()
        client.reconnect_delay_set(1, max(1, int(c.reconnect_max_s)))
        client.max_inflight_messages_set(self.window)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._check_pubrec(client)
        self._lean_publish(client)
        self._keep_pubrel_phase(client)
        return client

    @staticmethod
    def _keep_pubrel_phase(client: mqtt.Client) -> None:
        """Make paho's reset of in-flight messages at each reconnect attempt idempotent (paho 2.x internals).

        ``reconnect`` calls ``_messages_reconnect_reset_out`` before every attempt: a QoS 2 message waiting for
        PUBCOMP becomes ``resend_pubrel``, and a second attempt (the broker still down) turns ``resend_pubrel``
        into ``publish`` with DUP 0: the message was sent again whole. A broker that had released it already
        (its PUBCOMP lost with the connection) took that for a new message and delivered it twice (measured:
        4-7 events per 10,000-event drain with 8 broker restarts). Putting ``resend_pubrel`` back to
        ``wait_for_pubcomp`` first makes every attempt leave it ``resend_pubrel``; :meth:`_resend_whole` still
        sends it whole to a session the broker no longer has.
        """
        plain = client._messages_reconnect_reset_out

        def reset_out() -> None:
            with client._out_message_mutex:  # re-entrant: paho takes it again inside
                for m in client._out_messages.values():
                    if m.qos == 2 and m.state == mqtt.mqtt_ms_resend_pubrel:
                        m.state = mqtt.mqtt_ms_wait_for_pubcomp
                plain()

        client._messages_reconnect_reset_out = reset_out  # type: ignore[method-assign]

    @staticmethod
    def _lean_publish(client: mqtt.Client) -> None:
        """Decode large incoming PUBLISH packets without copying the payload (paho 2.x internals).

        paho 2.2's ``decode_publish`` peels the topic, packet id and properties off with ``struct.unpack`` and
        slicing, a full copy of the packet each: a 5 MB command held ~15 MB at once (VmHWM +14.3-15.2 MB in
        five daemon runs), kept by glibc afterwards (RSS +0.2-9.9 MB). From :data:`LEAN_PUBLISH_BYTES` on,
        the header is parsed through a ``memoryview`` and cut off the received ``bytearray`` in place (CPython
        drops a bytearray's head without moving it); that bytearray is the message payload (``bytes``-like:
        ``len``, ``decode``, slicing; not hashable). Dispatch (``on_message``, PUBACK) as paho's
        ``_handle_publish``; QoS 2 (commands are subscribed at QoS 0/1), QoS 3 and small packets take paho's own
        path. A malformed packet raises paho's ``MalformedPacket``, as paho's decoder does. MQTT 5 only.
        """
        plain = client._handle_publish

        def handle_publish() -> mqtt.MQTTErrorCode:
            header, packet = client._in_packet["command"], client._in_packet["packet"]
            qos = (header & 0x06) >> 1
            if len(packet) < LEAN_PUBLISH_BYTES or qos == 2 or client._protocol != mqtt.MQTTv5:
                return plain()  # QoS 2 (never subscribed to) and QoS 3 (malformed) take paho's path
            message = _lean_message(header, packet)
            client._easy_log(mqtt.MQTT_LOG_DEBUG, "Received PUBLISH (d%d, q%d, r%d, m%d), '%s', ...  (%d bytes)",
                             message.dup, qos, message.retain, message.mid, message.topic, len(packet))
            client._handle_on_message(message)
            return mqtt.MQTT_ERR_SUCCESS if qos == 0 or client._manual_ack else client._send_puback(message.mid)

        client._handle_publish = handle_publish  # type: ignore[method-assign]

    def _check_pubrec(self, client: mqtt.Client) -> None:
        """Make paho honour a refusing MQTT 5 PUBREC (paho 2.x internals, like :meth:`_resend_whole`).

        paho 2.x ``Client._handle_pubrec`` ignores the reason code and always answers PUBREL; mosquitto then
        completes the unknown packet id with PUBCOMP 0 and the refused message would count as delivered. MQTT 5
        section 4.3.3 / 3.5.2.1: a PUBREC reason >= 0x80 ends the exchange, the message was not accepted. A
        transient refusal (:data:`TRANSIENT_REFUSALS`) puts the message back to be published whole, marks the
        session stuck and drops the connection (the session is discarded at the next connect); a permanent
        one completes the message with its reason (:meth:`_on_publish` records it, :meth:`_reap` drops the row).
        """
        plain = client._handle_pubrec

        def handle_pubrec() -> mqtt.MQTTErrorCode:
            if self._discarding.is_set():
                # a PUBLISH written just before CONNACK into the session being ended: no PUBREL there (it could
                # release an orphan under the same id); the message stays unanswered and goes whole to the new one
                return mqtt.MQTT_ERR_SUCCESS
            packet = client._in_packet
            result = _packet.decode_pubrec(packet["command"], packet["packet"], client._protocol)
            reason = result.reason
            if reason is None or reason.value < 0x80:
                return plain()
            with client._out_message_mutex:
                msg = client._out_messages.get(result.mid)
                if msg is None:
                    return mqtt.MQTT_ERR_SUCCESS
                if reason.value not in TRANSIENT_REFUSALS:
                    return client._do_on_publish(result.mid, reason, result.properties)
                msg.state, msg.dup = mqtt.mqtt_ms_publish, True
            self._count_refusal(reason.value)
            self._stuck = True
            self._problems.log("refused-pubrec", logging.WARNING, "MQTT broker %s refused a message (%s); it is sent "
                               "again", self.address, reason)
            self._drop_connection()
            return mqtt.MQTT_ERR_SUCCESS

        client._handle_pubrec = handle_pubrec  # type: ignore[method-assign]

    def _set_tls(self, client: mqtt.Client, tls: TLSConfig, warn: bool = True) -> None:
        insecure = bool(tls.insecure)
        client.tls_set(ca_certs=tls.ca_certs, certfile=tls.certfile, keyfile=tls.keyfile,
                       cert_reqs=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED)
        client.tls_insecure_set(insecure)
        if insecure and warn:
            log.warning("MQTT %s: tls.insecure is true: the broker's certificate and name are NOT verified "
                        "(encrypted, but not authenticated)", self.address)

    def _connect_properties(self, expiry_s: int | None = None) -> Properties:
        """CONNECT properties with the session expiry.

        Args:
            expiry_s: Seconds the broker keeps the session after a disconnect; default
                :data:`SESSION_EXPIRY_S` when persistent, else 0 (it ends with the connection).
        """
        props = Properties(PacketTypes.CONNECT)
        expiry = expiry_s if expiry_s is not None else SESSION_EXPIRY_S if self.persistent else 0
        if expiry:
            props.SessionExpiryInterval = expiry
        return props

    def start(self) -> None:
        """Connect in the background (retrying with backoff) and start the sender.

        A persistent session is always resumed (Clean Start 0); one left by a previous run is discarded at
        the first CONNACK (:meth:`_discard_session`).
        """
        self._started = True
        self.client.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive_s,
                                  clean_start=not self.persistent, properties=self._connect_properties())
        self.client.loop_start()
        self._sender.start()

    # --- paho callbacks (network thread; they never raise: an exception would end paho's thread) ---
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        try:
            if reason_code.is_failure:
                self._refused = True  # paho disconnects next: that is not a second problem
                self._problems.log("refused", logging.WARNING, "MQTT broker %s refused the connection: %s; "
                                   "retrying every 1-%d s", self.address, reason_code, self._retry_max())
                return
            again = any(self._problems.seen(k) for k in CONNECTION_PROBLEMS)
            log.info("MQTT connected to %s%s", self.address, " again" if again else "")
            for key in CONNECTION_PROBLEMS:
                self._problems.reset(key)
            self._quota = max(1, int(getattr(properties, "ReceiveMaximum", RECEIVE_MAXIMUM)))
            self._note_max_qos(int(getattr(properties, "MaximumQoS", 2)))
            self._reaped_at_connect, self._stuck = self._reaped, False
            if self.persistent and self._session_at_connect(client, flags.session_present):
                return  # a helper client ends this session; paho reconnects to a new one
            self._acks_first(client)
            client.publish(self.topics.status, "online", qos=self._qos(1), retain=True)
            if self.commands_enabled and self.on_command is not None:
                client.subscribe(self.topics.cmd, qos=0 if self.persistent else self._qos(1))
            self.connected.set()
            self._wake.set()
            if self.on_connected:
                self.on_connected()
        except Exception:  # noqa: BLE001
            log.exception("MQTT on_connect failed; reconnecting")
            self._drop_connection()  # connected but not set up: nothing would ever be sent on it

    def _note_max_qos(self, max_qos: int) -> None:
        """Take the broker's Maximum QoS (CONNACK); a WARNING when it is below ``mqtt.qos`` (once per change).

        A broker that supports QoS 0/1 only (several cloud brokers) disconnects a client that publishes at QoS 2
        (reason 0x9B); events then go at the broker's maximum: at least once instead of exactly once.
        """
        if max_qos < self.cfg.qos and max_qos != self._max_qos:
            log.warning("MQTT broker %s supports QoS %d at most (CONNACK Maximum QoS): events are sent at QoS %d, "
                        "not %d", self.address, max_qos, max_qos, self.cfg.qos)
        self._max_qos = max_qos

    def _qos(self, wanted: int) -> int:
        """``wanted`` lowered to the broker's Maximum QoS."""
        return min(wanted, self._max_qos)

    def _session_at_connect(self, client: mqtt.Client, present: bool) -> bool:
        """Persistent-session bookkeeping at CONNACK; True when the session is being discarded."""
        self._discarding.clear()
        if present and self._fresh:
            log.info("MQTT broker %s holds a session of this client id from a previous run (or a stuck one): "
                     "ending it and starting a new one", self.address)
            self._discarding.set()
            self._hold_back(client)
            threading.Thread(target=self._discard_session, name="mqtt-session-reset", daemon=True).start()
            return True
        self._fresh, self.resumed = False, present
        if not present:
            self._resend_whole(client)
        return False

    def _discard_session(self) -> None:
        """End this client id's session at the broker (helper thread).

        A helper client connects with Clean Start 1 and session expiry 0 (taking the main client's connection
        over) and disconnects; paho's reconnect then creates a new session with Clean Start 0, which mosquitto
        saves.
        """
        try:
            helper = self._new_client(main=False)
            helper.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive_s, clean_start=True,
                           properties=self._connect_properties(expiry_s=0))
            deadline = time.monotonic() + 5.0
            while not helper.is_connected() and time.monotonic() < deadline:
                helper.loop(0.1)
            accepted = helper.is_connected()
            helper.disconnect()
            if not accepted:
                raise ConnectionError("the broker did not accept the helper connection within 5 s")
            self._discard_failures = 0
        except Exception as exc:  # noqa: BLE001 - a helper thread must not die silently
            self._discard_failed(exc)

    def _discard_failed(self, exc: BaseException) -> None:
        """Log why the old session could not be ended and drop the idle main connection (paho reconnects).

        After :data:`DISCARD_ATTEMPTS` failures in a row the previous session is resumed instead (one ERROR):
        delivery continues, at least once, rather than never.
        """
        self._problems.log("reset", logging.WARNING, "MQTT broker %s: could not end the old session (%s); "
                           "reconnecting to try again", self.address, _reason(exc))
        self._discard_failures += 1
        if self._discard_failures >= DISCARD_ATTEMPTS:
            self._fresh, self._discard_failures = False, 0
            log.error("MQTT broker %s: could not end the old session %d times; resuming it: delivery is at least "
                      "once (not exactly once) until it is ended", self.address, DISCARD_ATTEMPTS)
        self._discarding.clear()
        self._drop_connection()

    def _drop_connection(self) -> None:
        """Shut the main client's socket down: paho notices, calls ``on_disconnect`` and reconnects."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):  # not marked connected, the main connection would idle for ever
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def _hold_back(client: mqtt.Client) -> None:
        """Keep paho from sending its unfinished messages into a session that is about to be ended (review B6).

        paho 2 sends them right after ``on_connect`` returns (``_handle_connack``): a PUBLISH for each in state
        ``publish``, a PUBREL for each in ``resend_pubrel``. In the session being discarded a PUBREL would
        release whatever that session holds under the same packet id (an orphan of an older autosave, say) and
        its PUBCOMP would complete our message, undelivered; a PUBLISH would be dropped with the session anyway.
        Each QoS 2 message is put back in the state "sent, awaiting the answer" (``wait_for_pubcomp`` /
        ``wait_for_pubrec``), which ``_handle_connack`` skips and which paho's ``_messages_reconnect_reset_out``
        turns back into ``resend_pubrel`` / ``publish`` (DUP set) at the next connect; on the new session
        :meth:`_resend_whole` then makes every one a whole PUBLISH. Called in ``on_connect``, before that loop.
        QoS 1 messages (status, command replies) still go: a PUBACK completes them whatever the session, and
        one the old session refuses (0x97) is completed too, not carried over to crowd the new session.
        """
        held = {mqtt.mqtt_ms_resend_pubrel: mqtt.mqtt_ms_wait_for_pubcomp,
                mqtt.mqtt_ms_publish: mqtt.mqtt_ms_wait_for_pubrec, mqtt.mqtt_ms_queued: mqtt.mqtt_ms_wait_for_pubrec}
        with client._out_message_mutex:
            for m in client._out_messages.values():
                if m.qos == 2 and m.state in held:
                    m.state = held[m.state]

    @staticmethod
    def _acks_first(client: mqtt.Client) -> None:
        """Order paho's resend after CONNACK: QoS 0/1 messages (status, command replies) before the QoS 2 events.

        mosquitto answers a QoS 1 PUBLISH at once, but holds a QoS 2 one until its PUBREL; behind as many QoS 2
        messages as its quota, a QoS 1 message is refused (PUBACK 0x97) and the connection dropped. Measured
        livelock (broker SIGKILLed during a drain): an older ``online`` still unacknowledged came 21st after 20
        events, at every connect, so no connection ever completed anything.
        """
        with client._out_message_mutex:  # QoS 2 to the back: both groups keep their order (events by seq)
            for mid in [mid for mid, m in client._out_messages.items() if m.qos == 2]:
                client._out_messages.move_to_end(mid)

    @staticmethod
    def _resend_whole(client: mqtt.Client) -> None:
        """Make paho send whole the messages it would only release (PUBREL) to a session the broker lacks.

        The broker has no session for this client (new, discarded, lost by a killed broker, expired): a
        message it had answered PUBREC may be gone with it. paho 2 decides this before CONNACK
        (``_messages_reconnect_reset_out``) and sends after ``on_connect``.
        """
        with client._out_message_mutex:
            for m in client._out_messages.values():
                if m.state == mqtt.mqtt_ms_resend_pubrel:
                    m.state, m.dup = mqtt.mqtt_ms_publish, True

    def _on_connect_fail(self, client, userdata) -> None:
        # paho calls this inside its ``except OSError`` block: the exception in flight is the reason
        exc = sys.exc_info()[1]
        tls_failed = isinstance(exc, ssl.SSLError) or (self.cfg.tls is not None and isinstance(
            exc, (ConnectionResetError, ConnectionAbortedError, EOFError)))  # a plain port resets the handshake
        what = "TLS connection failed" if tls_failed else "unreachable"
        hint = "; is this a TLS port?" if tls_failed and not isinstance(exc, ssl.SSLCertVerificationError) else ""
        self._problems.log("unreachable", logging.WARNING, "MQTT broker %s %s (%s%s); retrying every 1-%d s",
                           self.address, what, _reason(exc), hint, self._retry_max())

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._stop.is_set() or self._discarding.is_set():
            self.connected.clear()
            self._refused = False  # a refused reconnect during the discard is not a later problem
            return
        if self._refused:
            self._refused = False
        elif self.connected.is_set():
            self._problems.log("lost", logging.WARNING, "MQTT connection to %s lost (%s); reconnecting every 1-%d s",
                               self.address, reason_code, self._retry_max())
            self._check_session(client)
        else:
            hint = "" if self.cfg.tls else " (a TLS-only port reached without mqtt.tls?)"
            self._problems.log("closed", logging.WARNING, "MQTT connection to %s closed before the broker accepted "
                               "it (%s)%s; retrying every 1-%d s", self.address, reason_code, hint, self._retry_max())
        self.connected.clear()

    def _check_session(self, client: mqtt.Client) -> None:
        """Discard the session at the next connect if the resumed one was stuck (see the module doc)."""
        stalled = self.resumed and self._reaped == self._reaped_at_connect and bool(self._inflight)
        if not self.persistent or not (self._stuck or stalled):
            return
        log.warning("MQTT broker %s: the session made no progress (%s); discarding it at the next connect, the %d "
                    "unfinished message(s) are sent again (a subscriber may see a few twice)", self.address,
                    "quota exceeded" if self._stuck else "nothing completed", len(self._inflight))
        self._fresh = True

    def _retry_max(self) -> int:
        return max(1, int(self.cfg.reconnect_max_s))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._refusals_lock:  # the latest outcome of this packet id only (ids are reused)
            self._refusals.pop(mid, None)
        if reason_code.value == PACKET_ID_NOT_FOUND:
            # PUBCOMP 0x92 answers a PUBREL the broker had already completed (MQTT 5 section 4.3.3): delivered
            log.info("MQTT broker %s had already completed message %d (PUBCOMP 0x92)", self.address, mid)
        elif reason_code.is_failure:  # MQTT 5 PUBACK/PUBCOMP refusal (e.g. not authorised): see _reap
            self._stuck = self._stuck or reason_code.value == QUOTA_EXCEEDED
            with self._refusals_lock:
                self._refusals[mid] = reason_code.value
            self._problems.log("rejected", logging.WARNING, "MQTT broker %s refused a message (%s)",
                               self.address, reason_code)
        self._wake.set()  # the sender thread reaps acknowledged messages

    def _on_message(self, client, userdata, message) -> None:
        if message.topic != self.topics.cmd or self.on_command is None or not self.commands_enabled:
            return
        try:
            reply = self.on_command(message.payload)
        except Exception as exc:  # noqa: BLE001 - a bad command never stops the daemon
            log.exception("command handler failed")
            reply = {"id": None, "cmd": None, "ok": False, "error": f"internal error: {type(exc).__name__}"}
        try:
            data = json.dumps(reply, allow_nan=False)
        except (TypeError, ValueError):
            data = json.dumps({"id": None, "cmd": None, "ok": False, "error": "reply not representable as JSON"})
        client.publish(self.topics.cmd_result, data, qos=self._qos(1))

    # --- sender thread ---
    def _send_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._send_once():
                    self._wake.wait(0.05)
                    self._wake.clear()
            except Exception:  # noqa: BLE001 - the sender must outlive any single failure
                self._problems.log("sender", logging.ERROR, "MQTT sender: unexpected error; continuing",
                                   exc_info=True)
                self._stop.wait(0.5)

    def _send_once(self) -> bool:
        """Reap acknowledged messages and hand the next batch to paho; False when idle."""
        self._reap()
        # one of the broker's slots stays free for the status message and command replies (QoS 1): mosquitto
        # refuses a PUBLISH beyond its quota and drops the connection
        room = min(self.window, max(1, self._quota - 1)) - len(self._inflight)
        if not self.connected.is_set() or room <= 0:
            return False
        batch = [m for m in self.outbox.peek(self._last_handed, room + len(self._inflight))
                 if m.id not in self._inflight][:room]  # rows refused for a while are handed again (see _reap)
        for msg in batch:
            if not self.connected.is_set():
                return False
            qos = self._qos(msg.qos)
            info = self.client.publish(msg.topic, msg.payload, qos=qos, retain=msg.retain)
            if info.rc in (mqtt.MQTT_ERR_NO_CONN, mqtt.MQTT_ERR_CONN_LOST) and qos > 0:
                # paho 2 keeps a QoS>0 message handed over while disconnected (NO_CONN) or whose write found the
                # socket gone (CONN_LOST: written inline while paho's network thread is not running) and sends it
                # after the reconnect; only its ``rc`` says so (``is_published`` would raise forever). Handing
                # the row over again would leave paho a second, untracked copy: a duplicate, one more than the
                # broker's quota
                info.rc = mqtt.MQTT_ERR_SUCCESS
            elif info.rc != mqtt.MQTT_ERR_SUCCESS:
                self._problems.log("publish", logging.WARNING, "MQTT publish to %s not queued (%s); retrying",
                                   self.address, mqtt.error_string(info.rc))
                return False
            self._last_handed = msg.id
            if qos == 0:
                self.outbox.delete(msg.id)
            else:  # paho keeps it (and resends it after a reconnect, same packet id) until PUBACK/PUBCOMP
                self._inflight[msg.id] = info
        return bool(batch)

    def _reap(self) -> None:
        """Delete the stored rows whose delivery ended (paho sets ``is_published``), in one transaction.

        A PUBACK/PUBCOMP (or PUBREC, see :meth:`_check_pubrec`) with a failure reason ends it too: a transient
        refusal (:data:`TRANSIENT_REFUSALS`) keeps the row, handed to paho again; any other is dropped with a
        WARNING (the broker will never take it).
        """
        done = [(row, info) for row, info in self._inflight.items() if _acked(info)]
        ended, retry = [], []
        for row, info in done:
            del self._inflight[row]
            with self._refusals_lock:
                code = self._refusals.pop(info.mid, None)
            if code is not None:
                self._count_refusal(code)
            if code in TRANSIENT_REFUSALS:
                retry.append(row)
                continue
            if code is not None:
                log.warning("MQTT broker %s refused message %d for good (reason 0x%02x): dropped from the outbox",
                            self.address, row, code)
            ended.append(row)
        if retry:
            self._last_handed = min(self._last_handed, min(retry) - 1)
        self._reaped += len(ended)
        if ended:
            self.outbox.delete_many(ended)

    def _count_refusal(self, code: int) -> None:
        """Count one refusal (reason ``code`` >= 0x80) in :attr:`refusals` (any thread)."""
        with self._refusals_lock:
            self._refusal_totals[Refusal.of(code)] += 1

    @property
    def refusals(self) -> dict[Refusal, int]:
        """MQTT 5 refusals of published messages since start, by reason and outcome (a copy; any thread).

        Counted once per refused hand-over: a message refused for quota three times counts 3 ``resent``.
        Feeds ``edge_fer_mqtt_refusals_total`` (:meth:`edge.metrics.Metrics.sync_refusals`).
        """
        with self._refusals_lock:
            return dict(self._refusal_totals)

    # --- supervision ---
    def ensure_threads(self) -> list[str]:
        """Restart the sender or paho's network thread if either ended; returns the names restarted."""
        if not self._started or self._stop.is_set():
            return []
        restarted = []
        if not self._sender.is_alive():
            log.error("MQTT sender thread ended unexpectedly; restarting it")
            self._sender = self._new_sender()
            self._sender.start()
            restarted.append("mqtt-sender")
        paho_thread = getattr(self.client, "_thread", None)  # paho sets it in loop_start, clears it on exit
        if paho_thread is None or not paho_thread.is_alive():
            log.error("MQTT network thread (paho) ended unexpectedly; restarting it")
            self.client.loop_start()
            restarted.append("mqtt-network")
        return restarted

    @property
    def alive(self) -> bool:
        """True while the sender thread runs (and before :meth:`start`)."""
        return not self._started or self._sender.is_alive()

    # --- API for the pipeline (any thread, never blocks on the network) ---
    def enqueue(self, topic: str, payload: dict | str, kind: str = "event", retain: bool = False) -> None:
        """Store one message for at-least-once delivery (QoS from config)."""
        self.enqueue_many([(topic, payload, kind)], retain=retain)

    def enqueue_many(self, items: list[tuple[str, dict | str, str]], marks: Sequence[TrackMark] = (),
                     retain: bool = False) -> int:
        """Store (topic, payload, kind) messages and open-track changes in one transaction.

        Args:
            items: (topic, payload, kind); a dict payload is sent as JSON. ``kind`` is informational
                only (events are counted by type in the caller's metrics).
            marks: Open-track changes stored in the same transaction.
            retain: Set the MQTT retain flag on every message.

        Returns:
            Messages stored (0 when the disk is full: they are dropped and counted by the outbox).
        """
        msgs = [OutgoingMessage(t, (p if isinstance(p, str) else json.dumps(p)).encode(), self.cfg.qos, retain)
                for t, p, _ in items]
        stored = self.outbox.put_many(msgs, marks)
        if stored:
            self._wake.set()
        return len(stored)

    def publish_now(self, topic: str, payload: dict | str, retain: bool = False, qos: int = 1) -> bool:
        """Publish a message that only matters now (state), only while connected.

        Nothing piles up while the broker is away: the latest state is published again on reconnect.

        Returns:
            True if handed to paho.
        """
        if not self.connected.is_set():
            return False
        data = payload if isinstance(payload, str) else json.dumps(payload)
        return self.client.publish(topic, data, qos=self._qos(qos), retain=retain).rc == mqtt.MQTT_ERR_SUCCESS

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
        if self._sender.is_alive():
            self._sender.join(timeout=0.5)
        reap = not self._sender.is_alive()  # a sender still busy reaps itself: never two threads on _inflight
        if reap:
            self._reap()
        if self.connected.is_set():
            info = self.client.publish(self.topics.status, "offline", qos=self._qos(1), retain=True)
            try:
                info.wait_for_publish(timeout=timeout_s)
            except (RuntimeError, ValueError):
                pass
            if reap:
                self._reap()
        self.connected.clear()
        end = Properties(PacketTypes.DISCONNECT)
        end.SessionExpiryInterval = 0  # a clean shutdown ends the session: nothing of it is left to the next run
        self.client.disconnect(properties=end if self.persistent else None)
        self.client.loop_stop()
