"""The daemon over MQTT with TLS and a password (from an environment variable), real mosquitto."""

import getpass
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import ROOT, free_port, terminate, wait_port
from daemon_helpers import write_config

pytestmark = pytest.mark.integration


def _certs(tmp):
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl)."""
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=tmp)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=edge-fer test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (tmp / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "ext.cnf", "-out", "server.crt")


def test_tls_and_password_from_env(d19, tmp_path):
    _certs(tmp_path)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(tmp_path / "pw"), "edge", "s3cret"], check=True)
    port = free_port()
    (tmp_path / "m.conf").write_text(
        f"listener {port} 127.0.0.1\ncafile {tmp_path}/ca.crt\ncertfile {tmp_path}/server.crt\n"
        f"keyfile {tmp_path}/server.key\nallow_anonymous false\npassword_file {tmp_path}/pw\n"
        f"user {getpass.getuser()}\n")  # as root, stay root: the key lives in pytest's private tmp folder
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(tmp_path / "m.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    cfg, _ = write_config(tmp_path, port, str(d19), mqtt={"username": "edge", "password_env": "TEST_MQTT_PW",
                                                          "tls": {"ca_certs": str(tmp_path / "ca.crt")}})
    got = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.username_pw_set("edge", "s3cret")
    sub.tls_set(ca_certs=str(tmp_path / "ca.crt"), cert_reqs=ssl.CERT_REQUIRED)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("edge-fer/#", qos=1)
    sub.on_message = lambda c, u, m: got.append(m.topic)
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    env = {**os.environ, "TEST_MQTT_PW": "s3cret"}
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(cfg)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "edge-fer/t1/cam0/event" not in got:
            time.sleep(0.1)
        assert "edge-fer/t1/status" in got and "edge-fer/t1/cam0/event" in got
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        terminate(proc)
        sub.loop_stop()
        terminate(broker)


def _tls_broker(tmp_path):
    """A TLS-only mosquitto (anonymous) with the throw-away CA's server certificate; returns (proc, port)."""
    port = free_port()
    (tmp_path / "tls.conf").write_text(
        f"listener {port} 127.0.0.1\ncafile {tmp_path}/ca.crt\ncertfile {tmp_path}/server.crt\n"
        f"keyfile {tmp_path}/server.key\nallow_anonymous true\nuser {getpass.getuser()}\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(tmp_path / "tls.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def _try_connect(tmp_path, port, caplog, tls=None, wait_s=4.0):
    """Start a real MqttPublisher; returns (connected, WARNING messages) after up to ``wait_s`` seconds."""
    import logging

    from edge.config.schema import MQTTConfig
    from edge.publish.mqtt import MqttPublisher
    from edge.publish.queue import MessageQueue
    from edge.publish.topics import Topics

    caplog.clear()
    cfg = MQTTConfig(host="127.0.0.1", port=port, keepalive_s=5, reconnect_max_s=1, tls=tls)
    pub = MqttPublisher(cfg, Topics("edge-fer", "tls"), MessageQueue(":memory:"))
    with caplog.at_level(logging.INFO, logger="edge.publish.mqtt"):
        pub.start()
        try:
            ok = pub.connected.wait(wait_s)
        finally:
            pub.stop()
    return ok, [r.message for r in caplog.records if r.levelno == logging.WARNING]


def test_tls_failures_are_logged_with_address_and_reason(tmp_path, caplog):
    _certs(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _certs(other)  # a second CA that did not sign the broker's certificate
    broker, port = _tls_broker(tmp_path)
    try:
        ok, warns = _try_connect(tmp_path, port, caplog, tls={"ca_certs": str(other / "ca.crt")})
        assert not ok and len(warns) == 1, warns  # retried every second, logged once
        assert f"127.0.0.1:{port}" in warns[0] and "certificate rejected: self-signed certificate" in warns[0]
        ok, warns = _try_connect(tmp_path, port, caplog)  # plain MQTT to the TLS-only port
        assert not ok and warns and f"127.0.0.1:{port}" in warns[0] and "TLS" in warns[0], warns
        ok, warns = _try_connect(tmp_path, port, caplog, tls={"ca_certs": str(tmp_path / "ca.crt")})
        assert ok and not warns
        # tls.insecure: no verification at all (untrusted CA accepted), encrypted, and a warning says so
        ok, warns = _try_connect(tmp_path, port, caplog, tls={"ca_certs": str(other / "ca.crt"), "insecure": True})
        assert ok and any("NOT verified" in w for w in warns)
    finally:
        terminate(broker)


def test_tls_to_a_plain_port_is_logged(tmp_path, caplog):
    from conftest import Mosquitto

    _certs(tmp_path)
    with Mosquitto(tmp_path) as plain:
        ok, warns = _try_connect(tmp_path, plain.port, caplog, tls={"ca_certs": str(tmp_path / "ca.crt")})
    assert not ok and warns and f"127.0.0.1:{plain.port}" in warns[0] and "TLS" in warns[0], warns
