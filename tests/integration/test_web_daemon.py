"""The real daemon (``edge-fer --config``) with ``web.enabled``: its page in a real browser.

Acceptance test of the daemon wiring (edge/daemon/service.py -> edge.web):
real clip, real mosquitto, real models, headless Debian Chromium.
"""

from __future__ import annotations

import signal
import time

import pytest
from selenium.webdriver.common.by import By

from conftest import free_port, terminate, wait_port
from daemon_helpers import start_daemon, write_config
from web_helpers import chrome, http_get, http_json, wait_for

pytestmark = pytest.mark.integration


def test_daemon_serves_its_dashboard(mosquitto, d19, tmp_path):
    port = free_port()
    cfg, _ = write_config(tmp_path, mosquitto.port, str(d19), web={"enabled": True, "port": port, "live_view": True})
    proc = start_daemon(cfg, tmp_path / "daemon.log")
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_port(port, timeout=30)
        with chrome() as driver:
            driver.get(url)
            card = 'article[data-source="cam0"]'
            wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"{card} .state").text == "up", "cam0 up")
            wait_for(driver, lambda d: any(" " in li.text for li in
                                           d.find_elements(By.CSS_SELECTOR, f"{card} .faces li[data-track]")),
                     "a face with an emotion")
            wait_for(driver, lambda d: d.find_element(By.ID, "mqtt").text.startswith("MQTT connected"), "MQTT")
            wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#events li[data-seq]"), "an event")
            img = driver.find_element(By.CSS_SELECTOR, f"{card} img.live")
            wait_for(driver, lambda d: d.execute_script("return arguments[0].naturalWidth;", img) > 0, "live image")
        status, health = http_json(url + "api/health")
        assert status == 200 and health["sources"]["cam0"]["ok"]
        events = http_json(url + "api/events?after=0")[1]["events"]
        assert events and all("seq" in e and e["source"] == "cam0" for e in events)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, (tmp_path / "daemon.log").read_text()[-2000:]
        assert time.monotonic() - started < 3.0
        with pytest.raises(OSError):
            http_get(url + "api/health", timeout=2)
    finally:
        terminate(proc)
