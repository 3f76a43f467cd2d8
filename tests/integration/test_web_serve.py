"""``edge-fer --serve``: the upload page and API without a source, as a real process."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import pytest
import yaml

from conftest import ROOT, free_port, read_frame, terminate

pytestmark = pytest.mark.integration


def serve_cmd(config) -> list[str]:
    """``edge-fer --serve --config FILE``."""
    return [sys.executable, "-m", "edge.cli", "--serve", "--config", str(config)]


def _config(tmp_path, port: int):
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump({"web": {"host": "127.0.0.1", "port": port}, "state_dir": str(tmp_path)}))
    return path


def test_serve_answers_uploads_and_stops_on_sigterm(tmp_path, d19):
    port = free_port()
    proc = subprocess.Popen(serve_cmd(_config(tmp_path, port)), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()   # printed once the models are loaded and the port accepts
        assert line.startswith(f"edge-fer: serving http://127.0.0.1:{port}/"), line + proc.stderr.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as resp:
            assert resp.status == 200 and json.load(resp)["sources"] == {}
        ok, jpeg = cv2.imencode(".jpg", read_frame(d19, 200))
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/classify", data=jpeg.tobytes(),
                                         headers={"Content-Type": "image/jpeg"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert [f["emotion"] for f in json.load(resp)["faces"]] == ["happy"]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0 and time.monotonic() - started < 3.0
    finally:
        terminate(proc)


def test_serve_on_a_busy_port_is_one_clear_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        run = subprocess.run(serve_cmd(_config(tmp_path, port)), cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"edge-fer: web: cannot listen on 127.0.0.1:{port}: "
                                               "Address already in use"]
