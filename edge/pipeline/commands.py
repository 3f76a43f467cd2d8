"""Control messages on ``{prefix}/{device_id}/cmd``.

Payload: JSON ``{"cmd": "pause" | "resume" | "publish_state" | "ping", "source": NAME, "id": ANY}``
(``source`` needed by pause/resume; omitted by publish_state means all
sources). The reply on ``cmd/result`` is ``{"id", "cmd", "ok": true}`` or
``{"id", "cmd", "ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

COMMANDS = ("pause", "resume", "publish_state", "ping")


@dataclass
class CommandTargets:
    """What commands act on: source pause flags and a state-publish request hook."""

    set_paused: Callable[[str, bool], None]
    request_state: Callable[[str | None], None]
    sources: Callable[[], list[str]]


def handle_command(payload: bytes, targets: CommandTargets) -> dict:
    """Parse and run one command; never raises for bad input.

    Returns:
        The reply object for ``cmd/result``.
    """
    try:
        msg = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {"id": None, "cmd": None, "ok": False, "error": f"malformed JSON: {exc}"}
    if not isinstance(msg, dict):
        return {"id": None, "cmd": None, "ok": False, "error": "expected a JSON object"}
    cmd, source, ident = msg.get("cmd"), msg.get("source"), msg.get("id")
    reply = {"id": ident, "cmd": cmd}
    if cmd not in COMMANDS:
        return {**reply, "ok": False, "error": f"unknown cmd {cmd!r}; expected one of {', '.join(COMMANDS)}"}
    if source is not None and source not in targets.sources():
        return {**reply, "ok": False, "error": f"unknown source {source!r}"}
    if cmd in ("pause", "resume"):
        if source is None:
            return {**reply, "ok": False, "error": f"{cmd} needs a 'source'"}
        targets.set_paused(source, cmd == "pause")
    elif cmd == "publish_state":
        targets.request_state(source)
    return {**reply, "ok": True}
