"""Helpers for web tests: headless Debian Chromium, a daemon-like feeder, the server on a loopback port."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ROOT, free_port
from edge.capture.live import LiveOptions, LiveSource
from edge.config import Config
from edge.pipeline.events import event_to_dict
from edge.pipeline.factory import build_pipeline
from edge.web.run import start_in_daemon
from edge.web.state import WebState

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 30.0   # upper bound of every browser wait (the CPU is shared with other jobs)
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000"]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def web_config(tmp: Path, **web) -> Config:
    """A config whose web page listens on a free loopback port (``web`` keys override)."""
    return Config.model_validate({"device_id": "t1", "sources": [{"name": "cam0", "uri": "unused.mp4"}],
                                  "read_timeout_s": 1.0, "state_dir": str(tmp / "state"),
                                  "smoothing": {"tau_s": 0.2, "min_hold_s": 0.3},
                                  "web": {"enabled": True, "port": free_port(), **web}})


@contextlib.contextmanager
def chrome():
    """Headless Chromium from the distribution (never downloaded), fresh profile, bounded timeouts."""
    for exe in (CHROMIUM, CHROMEDRIVER):
        assert Path(exe).exists(), f"{exe} missing: bash scripts/setup.sh test (apt chromium chromium-driver)"
    profile = tempfile.mkdtemp(prefix="edge-fer-chrome-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=ChromeService(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition, what: str, timeout: float = WAIT_S):
    """``WebDriverWait(...).until(condition)`` with a readable failure message."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=f"timed out waiting for {what}")


def browser_fetch_status(driver, url: str) -> int:
    """HTTP status of ``fetch(url)`` run inside the page (same origin, same credentials)."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => done(r.status)).catch(e => done(-1));", url)


def set_basic_auth(driver, user: str, password: str) -> None:
    """Send ``Authorization: Basic`` on every request of this browser (Chrome DevTools protocol)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})


def http_get(url: str, auth: tuple[str, str] | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body) of a GET with an optional basic-auth pair."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url: str, **kw) -> tuple[int, dict]:
    """(status, parsed JSON body) of a GET."""
    status, body = http_get(url, **kw)
    return status, json.loads(body)


class Feeder:
    """The daemon's processing loop in miniature, until the lead wires ``edge.pipeline.service``:
    a real file source paced at its frame rate (``LiveSource``) -> a real ``FramePipeline`` -> ``WebState``,
    pushed exactly as the daemon will (``frame_processed``, ``add_events``, ``source_status``).
    """

    def __init__(self, cfg: Config, state: WebState, clip: Path, name: str = "cam0", loop: bool = False) -> None:
        self.state, self.name = state, name
        self.new_frame = threading.Event()
        self.source = LiveSource(name, str(clip), LiveOptions(read_timeout_s=5.0, loop=loop), self.new_frame)
        self.pipeline = build_pipeline(cfg, name)
        self.processed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)

    def start(self) -> Feeder:
        """Start the source's reader and the processing thread."""
        self.source.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.new_frame.wait(0.05)
            self.new_frame.clear()
            frame = self.source.latest()
            if frame is not None:
                result = self.pipeline.process(frame)
                self.state.frame_processed(self.name, frame, result)
                self.state.add_events([event_to_dict(e) for e in result.events])
                self.processed += 1
            self.state.source_status(self.name, self.source.up, self.source.dropped, self.source.paused)

    def stop(self) -> None:
        """Stop the processing thread and the source."""
        self._stop.set()
        self.source.stop(timeout=1.0)
        self._thread.join(5.0)


@contextlib.contextmanager
def serving(cfg: Config, state: WebState):
    """The web server of ``cfg`` in a thread (``start_in_daemon``), stopped on exit; yields its base URL."""
    server = start_in_daemon(cfg, state)
    try:
        yield server
    finally:
        started = time.monotonic()
        server.stop()
        assert not server.alive, "web server thread still running after stop()"
        assert time.monotonic() - started < 3.0
