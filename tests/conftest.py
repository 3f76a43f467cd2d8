"""Shared fixtures: real data from ../shared, real mosquitto and RTSP servers on 127.0.0.1."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EDGE_FER_SHARED", ROOT.parent / "shared"))
VIDEOS = SHARED / "videos"
DATASETS = SHARED / "datasets"
SYSTEM_PYTHON = os.environ.get("EDGE_FER_GI_PYTHON", "/usr/bin/python3")


def _require(path: Path) -> Path:
    """Fail loudly (never skip) when the shared data is missing."""
    if not path.exists():
        pytest.fail(f"required shared data missing: {path} (tests need ../shared beside the repo)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def videos() -> Path:
    return _require(VIDEOS / "manifest.csv").parent


@pytest.fixture(scope="session")
def fer2013() -> Path:
    return _require(DATASETS / "fer2013" / "train").parent


@pytest.fixture(scope="session")
def ferplus() -> Path:
    return _require(DATASETS / "ferplus" / "FER2013Train" / "label.csv").parent.parent


@pytest.fixture(scope="session")
def d19(videos) -> Path:
    return _require(videos / "liveportrait_d19.mp4")


def ferplus_valid_subset(ferplus: Path, dest: Path, rows: int) -> tuple[Path, list[list[str]]]:
    """The first ``rows`` rows of FER+ ``FER2013Valid`` (``label.csv`` and their images) copied to ``dest``.

    Returns:
        The new ``dest/FER2013Valid`` folder and its label rows (image name, bbox, 10 vote counts).
    """
    src = ferplus / "FER2013Valid"
    with open(src / "label.csv", newline="") as fh:
        kept = list(csv.reader(fh))[:rows]
    root = dest / "FER2013Valid"
    root.mkdir()
    with open(root / "label.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(kept)
    for r in kept:
        (root / r[0]).write_bytes((src / r[0]).read_bytes())
    return root, kept


def read_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video as uint8 BGR."""
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok, f"cannot read frame {index} of {path}"
    return frame


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def terminate(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """SIGTERM a child process if it still runs, and reap it."""
    if proc and proc.poll() is None:
        proc.terminate()
        proc.wait(timeout)


class _Service:
    """A child-process service usable as ``with Service(...) as s:`` (started, then stopped)."""

    proc: subprocess.Popen | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        terminate(self.proc)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Mosquitto(_Service):
    """A real mosquitto broker on a loopback port; can be stopped and restarted on the same port."""

    def __init__(self, tmp: Path, persistent: bool = False) -> None:
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        persist = f"persistence true\npersistence_location {tmp}/\n" if persistent else "persistence false\n"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{persist}")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)


@pytest.fixture
def mosquitto(tmp_path):
    with Mosquitto(tmp_path) as broker:
        yield broker


class RtspServer(_Service):
    """gst-rtsp-server (tests/helpers/rtsp_server.py) serving a clip on 127.0.0.1."""

    def __init__(self, clip: Path) -> None:
        self.port = free_port()
        self.clip = clip
        self.url = f"rtsp://127.0.0.1:{self.port}/live"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        helper = Path(__file__).parent / "helpers" / "rtsp_server.py"
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(helper), "--port", str(self.port), "--file", str(self.clip)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "READY":
            raise RuntimeError(f"RTSP server did not start: {line} {self.proc.stderr.read()[:500]}")


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory, d19) -> Path:
    """d19 looped to ~67 s without re-encoding (ffmpeg stream copy)."""
    out = tmp_path_factory.mktemp("clips") / "d19_long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "7", "-i", str(d19), "-c", "copy", str(out)],
                   check=True, timeout=60)
    return out


@pytest.fixture
def rtsp_server(long_clip):
    with RtspServer(long_clip) as server:
        yield server


def run_edge_fer(*args: str, timeout: float = 300, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the real ``edge-fer`` CLI as a subprocess."""
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
