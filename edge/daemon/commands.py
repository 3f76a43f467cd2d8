"""Control messages on ``{prefix}/{device_id}/cmd``.

Payload: JSON ``{"cmd": "pause" | "resume" | "publish_state" | "ping", "source": NAME, "id": ANY,
"token": "..."}`` (``source`` needed by pause/resume; omitted by publish_state
means all sources; ``token`` when one is configured). The reply on
``cmd/result`` is ``{"id", "cmd", "ok": true}`` or ``{"id", "cmd", "ok": false, "error": "..."}``.

Hardening (a broker is shared; anyone allowed to publish there may send):

* payloads over ``max_bytes`` (``mqtt.command_max_bytes``, 4096) are rejected
  before they are parsed;
* with a token configured (``mqtt.command_token`` / ``command_token_file``)
  a command without the same token is rejected (``hmac.compare_digest``);
* replies never echo more than :data:`ECHO_MAX` characters of any input
  (``id`` echoed only as a string prefix, an integer, a finite number, a
  boolean or null), and are always valid JSON (``NaN``/``Infinity`` in the
  input is malformed JSON);
* every rejection has a ``reason`` for ``edge_fer_commands_rejected_total``.

MQTT 3.1.1 PUBLISH packets carry no sender identity, so an allow-list of client
ids cannot be enforced here: restrict who may publish to the ``cmd`` topic with
the broker's ACLs (mosquitto ``acl_file``).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

COMMANDS = ("pause", "resume", "publish_state", "ping")
#: Characters of any input string a reply may echo.
ECHO_MAX = 64
#: Default payload limit in bytes when the config has none.
DEFAULT_MAX_BYTES = 4096
#: Reasons counted in ``edge_fer_commands_rejected_total``.
REJECT_REASONS = ("too_large", "malformed", "bad_token", "unknown_cmd", "bad_source")


@dataclass
class CommandTargets:
    """What commands act on: source pause flags and a state-publish request hook."""

    set_paused: Callable[[str, bool], None]
    request_state: Callable[[str | None], None]
    sources: Callable[[], list[str]]


@dataclass(frozen=True)
class CommandPolicy:
    """Who may command: the token (None: none needed) and the payload size limit in bytes."""

    token: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class CommandResult:
    """A command's reply object and, when rejected, why (one of ``REJECT_REASONS``)."""

    reply: dict
    rejected: str | None = None


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (no DNS lookup: other names are not loopback)."""
    if host.strip().lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def commands_allowed(host: str, token: str | None) -> bool:
    """Commands are on with a token, or without one only on a loopback broker."""
    return token is not None or is_loopback_host(host)


def _echo(value) -> str | int | float | bool | None:
    """A bounded, JSON-safe echo of an input value."""
    if isinstance(value, str):
        return value[:ECHO_MAX]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse(payload: bytes | bytearray, policy: CommandPolicy) -> tuple[dict | None, CommandResult | None]:
    if len(payload) > policy.max_bytes:
        return None, _fail({"id": None, "cmd": None}, "too_large",
                           f"payload of {len(payload)} bytes is over the {policy.max_bytes}-byte limit")
    try:
        msg = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, _fail({"id": None, "cmd": None}, "malformed", f"malformed JSON: {str(exc)[:ECHO_MAX]}")
    if not isinstance(msg, dict):
        return None, _fail({"id": None, "cmd": None}, "malformed", "expected a JSON object")
    return msg, None


def _fail(reply: dict, reason: str, error: str) -> CommandResult:
    return CommandResult({**reply, "ok": False, "error": error}, reason)


def _token_ok(msg: dict, token: str | None) -> bool:
    if token is None:
        return True
    given = msg.get("token")
    return isinstance(given, str) and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def handle_command(payload: bytes | bytearray, targets: CommandTargets,
                   policy: CommandPolicy = CommandPolicy()) -> CommandResult:
    """Check, parse and run one command; never raises for bad input.

    Args:
        payload: The raw MQTT payload (bytes, any size: checked against ``policy.max_bytes`` first).
        targets: What the commands act on (pause/resume a source, republish state, the source names).
        policy: Token and payload size limit (default: no token, :data:`DEFAULT_MAX_BYTES`).

    Returns:
        The reply for ``cmd/result`` (JSON-serialisable with ``allow_nan=False``)
        and the rejection reason, if any.
    """
    msg, failure = _parse(payload, policy)
    if failure is not None or msg is None:
        return failure or _fail({"id": None, "cmd": None}, "malformed", "expected a JSON object")
    cmd, source = msg.get("cmd"), msg.get("source")
    reply = {"id": _echo(msg.get("id")), "cmd": _echo(cmd) if isinstance(cmd, str) else None}
    if not _token_ok(msg, policy.token):
        return _fail(reply, "bad_token", "missing or wrong token")
    if cmd not in COMMANDS:
        return _fail(reply, "unknown_cmd", f"unknown cmd {_echo(cmd)!r}; expected one of {', '.join(COMMANDS)}")
    if source is not None and source not in targets.sources():
        return _fail(reply, "bad_source", f"unknown source {_echo(source)!r}")
    if cmd in ("pause", "resume"):
        if source is None:
            return _fail(reply, "bad_source", f"{cmd} needs a 'source'")
        targets.set_paused(source, cmd == "pause")
    elif cmd == "publish_state":
        targets.request_state(source)
    return CommandResult({**reply, "ok": True})
