"""The daemon reading a real RTSP server (gst-rtsp-server) on 127.0.0.1."""

import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, free_port
from daemon_helpers import Subscriber, start_daemon, wait_metric, write_config
from edge.cli import exit_codes as codes

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
        if proc.poll() is None:
            proc.kill()
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
