"""Command hardening: token, loopback rule, size limit, bounded echo, always-valid JSON replies."""

import json

import pytest

from edge.daemon.commands import (
    ECHO_MAX,
    CommandPolicy,
    CommandTargets,
    commands_allowed,
    handle_command,
    is_loopback_host,
)


def _targets(log):
    return CommandTargets(lambda s, p: log.append(("pause" if p else "resume", s)),
                          lambda s: log.append(("state", s)), lambda: ["cam0"])


def _valid(reply: dict) -> dict:
    return json.loads(json.dumps(reply, allow_nan=False))  # raises on NaN/Infinity


@pytest.mark.parametrize("host,loopback", [("localhost", True), ("127.0.0.1", True), ("127.8.9.10", True),
                                           ("::1", True), ("[::1]", True), ("192.168.1.5", False),
                                           ("broker.example.org", False), ("0.0.0.0", False)])
def test_loopback_rule(host, loopback):
    assert is_loopback_host(host) is loopback
    assert commands_allowed(host, None) is loopback  # without a token: loopback only
    assert commands_allowed(host, "s3cret") is True


def test_token_required_when_configured():
    log = []
    policy = CommandPolicy(token="s3cret")
    r = handle_command(b'{"cmd":"pause","source":"cam0","id":1}', _targets(log), policy)
    assert r.reply["ok"] is False and r.rejected == "bad_token" and not log
    r = handle_command(b'{"cmd":"pause","source":"cam0","id":1,"token":"s3creT"}', _targets(log), policy)
    assert r.rejected == "bad_token" and "s3cre" not in json.dumps(r.reply)
    r = handle_command(b'{"cmd":"pause","source":"cam0","id":1,"token":7}', _targets(log), policy)
    assert r.rejected == "bad_token"
    r = handle_command(b'{"cmd":"pause","source":"cam0","id":1,"token":"s3cret"}', _targets(log), policy)
    assert r.reply == {"id": 1, "cmd": "pause", "ok": True} and r.rejected is None and log == [("pause", "cam0")]


def test_oversized_payload_rejected_before_parsing():
    big = json.dumps({"cmd": "x" * 5_000_000, "id": "y" * 1000}).encode()
    r = handle_command(big, _targets([]), CommandPolicy(max_bytes=4096))
    assert r.rejected == "too_large" and r.reply["ok"] is False and len(json.dumps(r.reply)) < 200


def test_replies_echo_a_bounded_prefix_only():
    long = "A" * 10_000
    for payload in ({"cmd": long, "id": long}, {"cmd": "pause", "source": long, "id": long}):
        r = handle_command(json.dumps(payload).encode(), _targets([]), CommandPolicy(max_bytes=1 << 20))
        text = json.dumps(_valid(r.reply))
        assert r.reply["ok"] is False and len(text) < 4 * ECHO_MAX + 200
        assert r.reply["id"] == "A" * ECHO_MAX


@pytest.mark.parametrize("payload", [b'{"cmd":"ping","id":NaN}', b'{"cmd":"ping","id":Infinity}',
                                     b'{"cmd":"ping","id":-Infinity}', b'{"cmd":"ping","id":1e400}',
                                     b'{"cmd":"ping","id":{"a":[1,2]}}', b'{"cmd":"ping","id":' + b"9" * 30 + b"}",
                                     b'[' * 100_000, b"\xff\xfe", b"[1,2]", b'"ping"'])
def test_replies_are_always_valid_json(payload):
    r = handle_command(payload, _targets([]), CommandPolicy(max_bytes=1 << 20))
    reply = _valid(r.reply)
    assert set(reply) >= {"id", "cmd", "ok"} and (reply["ok"] is False or reply["cmd"] == "ping")


def test_reasons():
    t = _targets([])
    cases = {b'{"cmd":"reboot"}': "unknown_cmd", b'{"cmd":"pause","source":"cam9"}': "bad_source",
             b'{"cmd":"pause"}': "bad_source", b"{nope": "malformed", b'{"cmd":"ping"}': None}
    for payload, reason in cases.items():
        assert handle_command(payload, t).rejected == reason, payload
