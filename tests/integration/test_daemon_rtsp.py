"""The daemon reading a real RTSP server (gst-rtsp-server) on 127.0.0.1."""

import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from conftest import ROOT, SYSTEM_PYTHON, RtspServer, free_port
from daemon_helpers import Subscriber, kill_daemon, start_daemon, wait_metric, write_config
from edge import exit_codes as codes

pytestmark = pytest.mark.integration
FRAMES = 'edge_fer_frames_processed_total{source="cam0"}'
UP = 'edge_fer_source_up{source="cam0"}'


def test_rtsp_restart_reconnects_within_5s_and_never_exits(mosquitto, rtsp_server, tmp_path):
    cfg, mport = write_config(tmp_path, mosquitto.port, rtsp_server.url, read_timeout_s=3.0,
                              reconnect_initial_s=0.5, reconnect_max_s=2.0)
    proc = start_daemon(cfg, tmp_path / "daemon.log")
    sub = Subscriber(mosquitto.port)
    try:
        wait_metric(mport, FRAMES, lambda v: v >= 30, timeout=30)
        sub.wait_for(lambda: sub.on("edge-fer/t1/cam0/event"), what="an event from the RTSP stream")
        rtsp_server.stop()
        wait_metric(mport, UP, lambda v: v == 0, timeout=10)
        time.sleep(3)
        assert proc.poll() is None
        before = wait_metric(mport, FRAMES, lambda v: True)
        rtsp_server.start()
        t0 = time.monotonic()
        wait_metric(mport, FRAMES, lambda v: v >= before + 5, timeout=15)
        assert time.monotonic() - t0 <= 5.0 + 1.5  # 5 s target + metrics polling slack
        wait_metric(mport, 'edge_fer_source_reconnects_total{source="cam0"}', lambda v: v >= 1)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        kill_daemon(proc)
        sub.close()


def test_no_reachable_source_at_start_exits_with_its_code(tmp_path):
    cfg, _ = write_config(tmp_path, free_port(), f"rtsp://127.0.0.1:{free_port()}/none", read_timeout_s=2.0)
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(cfg)], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == codes.NO_SOURCE
    assert "no source delivered frames" in res.stderr and "Traceback" not in res.stderr
    assert time.monotonic() - t0 < 15


def test_check_config_and_config_errors_exit_codes(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "edge.cli", *a], cwd=ROOT, capture_output=True,  # noqa
                                    text=True, timeout=60)
    ok = run("--config", str(ROOT / "config.yaml"), "--check-config")
    assert ok.returncode == 0 and "config OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [{name: 'cam 0', uri: 0}]\nmqtt: {host: x, prt: 1}\n")
    res = run("--config", str(bad), "--check-config")
    assert res.returncode == codes.USAGE
    assert "sources.0.name" in res.stderr and "mqtt.prt" in res.stderr and "Traceback" not in res.stderr


PASSWORD = "S3cr3tPW-r2"


class AuthRtspServer(RtspServer):
    """The real RTSP test server, requiring Basic authentication as ``admin`` / ``PASSWORD``."""

    def start(self) -> None:
        helper = ROOT / "tests" / "helpers" / "rtsp_server.py"
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(helper), "--port", str(self.port), "--file", str(self.clip),
                                      "--auth", f"admin:{PASSWORD}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline().strip()
        if line != "READY":
            raise RuntimeError(f"RTSP server did not start: {line} {self.proc.stderr.read()[:500]}")


def test_rtsp_password_never_reaches_logs_metrics_or_mqtt(mosquitto, long_clip, tmp_path):
    """Connect, a wrong password (retry warnings), server loss and reconnect, at DEBUG: no line holds the password."""
    with AuthRtspServer(long_clip) as server:
        good = server.url.replace("rtsp://", f"rtsp://admin:{PASSWORD}@")
        wrong = server.url.replace("rtsp://", f"rtsp://admin:{PASSWORD}x@")
        cfg, mport = write_config(tmp_path, mosquitto.port, good, read_timeout_s=3.0, reconnect_initial_s=0.3,
                                  reconnect_max_s=1.0, log_level="DEBUG")
        data = yaml.safe_load(cfg.read_text())
        data["sources"].append({"name": "cam1", "uri": wrong})
        cfg.write_text(yaml.safe_dump(data))
        log = tmp_path / "daemon.log"
        proc = start_daemon(cfg, log)
        sub = Subscriber(mosquitto.port)
        try:
            wait_metric(mport, FRAMES, lambda v: v >= 10, timeout=30)
            sub.wait_for(lambda: sub.on("edge-fer/t1/cam0/state"), what="state of cam0")
            server.stop()  # the camera goes away: read failure, reopen warnings
            wait_metric(mport, UP, lambda v: v == 0, timeout=10)
            time.sleep(1.5)
            server.start()
            wait_metric(mport, UP, lambda v: v == 1, timeout=15)
            metrics_text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=3).read().decode()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(5) == 0
        finally:
            kill_daemon(proc)
            sub.close()
    text = log.read_text()
    assert PASSWORD not in text, [line for line in text.splitlines() if PASSWORD in line]
    assert PASSWORD not in metrics_text
    assert not [t for t, p, _ in sub.messages if PASSWORD.encode() in p or PASSWORD in t]
    masked = server.url.replace("rtsp://", "rtsp://admin:***@")
    assert text.count(f"cam0: receiving frames from {masked}") >= 2  # first connect and after the restart
    assert f"cam1: cannot open {masked}; retrying" in text  # wrong password: retry warnings, masked
    assert f"cam0: {masked} ended or read failed" in text or f"cam0: cannot open {masked}" in text


def test_no_source_at_start_message_masks_the_password(tmp_path):
    """Exit 6 names the sources that failed, with their passwords masked."""
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/none"
    cfg, _ = write_config(tmp_path, free_port(), url, read_timeout_s=1.0, log_level="DEBUG")
    res = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(cfg)], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == codes.NO_SOURCE, res.stderr
    assert PASSWORD not in res.stderr + res.stdout, res.stderr
    assert "rtsp://admin:***@127.0.0.1" in res.stderr
