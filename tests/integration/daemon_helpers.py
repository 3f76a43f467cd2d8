"""Helpers for daemon tests: config writer, daemon process, real MQTT subscriber, metrics scrape."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, Mosquitto, free_port


def persistent_broker(tmp: Path, extra: str = "") -> Mosquitto:
    """A persistent mosquitto (not started) with an unlimited queue for offline persistent subscribers.

    It stays this user: mosquitto started as root switches to user mosquitto, who can neither write its
    persistence file nor read an ACL file in pytest's private tmp.

    Args:
        tmp: Folder of its config and persistence file.
        extra: More mosquitto.conf lines, each ending in a newline.
    """
    broker = Mosquitto(tmp, persistent=True)
    broker.conf.write_text(broker.conf.read_text() + f"max_queued_messages 0\nuser {getpass.getuser()}\n{extra}")
    return broker


def write_config(tmp: Path, broker_port: int, uri: str, **extra) -> tuple[Path, int]:
    """A daemon config on loopback ports; returns (path, metrics port)."""
    metrics_port = free_port()
    cfg = {
        "device_id": "t1",
        "sources": [{"name": "cam0", "uri": uri, "loop": True}],
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "state_interval_s": 0.3, "keepalive_s": 5,
                 "reconnect_max_s": 1, "queue_path": str(tmp / "outbox.sqlite")},
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "state_dir": str(tmp / "state"),
        "smoothing": {"tau_s": 0.2, "min_hold_s": 0.3},
        "read_timeout_s": 5.0, "reconnect_initial_s": 0.5, "reconnect_max_s": 1.5,
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    path = tmp / "daemon.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, metrics_port


def start_daemon(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(config)], cwd=ROOT,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def kill_daemon(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Teardown: SIGKILL a daemon that is still running (a test that failed before stopping it) and reap it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout)


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    """Poll ``predicate`` every 50 ms until it returns a truthy value (returned); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Subscriber:
    """A real paho subscriber on ``edge-fer/#`` that records every message."""

    def __init__(self, port: int, client_id: str | None = None, persistent: bool = False, qos: int = 1) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "",
                                  clean_session=not persistent)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([("edge-fer/#", qos), ("homeassistant/#", qos)])
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def json_on(self, topic: str) -> list[dict]:
        return [json.loads(p) for p in self.on(topic)]

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "condition"):
        return wait_until(predicate, timeout, what)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def scrape(port: int) -> dict[str, float]:
    """{'name{label="v"}': value} of the daemon's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def wait_metric(port: int, key: str, predicate, timeout: float = 20.0) -> float:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = scrape(port).get(key)
        except OSError:
            last = None
        if last is not None and predicate(last):
            return last
        time.sleep(0.1)
    raise AssertionError(f"metric {key} = {last} did not reach the expected value in {timeout} s")
