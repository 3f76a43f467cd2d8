"""The web page in a real browser (headless Debian Chromium + chromedriver), real clip, real models.

Screenshots go to docs/screenshots/ when EDGE_FER_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
import time

import cv2
import pytest
from selenium.webdriver.common.by import By

from conftest import read_frame
from edge.web.state import WebState
from web_helpers import (
    SCREENSHOTS,
    Feeder,
    browser_fetch_status,
    chrome,
    http_get,
    http_json,
    serving,
    set_basic_auth,
    wait_for,
    web_config,
)

pytestmark = pytest.mark.integration
FACE_TEXT = re.compile(r"^#\d+ (angry|disgust|fear|happy|neutral|sad|surprise)$")


def _screenshot(driver, name: str) -> None:
    if os.environ.get("EDGE_FER_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / name))


def _card(driver, source: str = "cam0"):
    return driver.find_element(By.CSS_SELECTOR, f'article[data-source="{source}"]')


def _face_texts(driver) -> list[str]:
    return [li.find_elements(By.TAG_NAME, "span")[1].text
            for li in _card(driver).find_elements(By.CSS_SELECTOR, ".faces li[data-track]")]


def test_dashboard_shows_source_faces_live_events_and_health(tmp_path, d19):
    cfg = web_config(tmp_path, live_view=True)
    state = WebState(["cam0"], live_view=True, read_timeout_s=cfg.read_timeout_s, device_id="t1")
    with serving(cfg, state) as server, chrome() as driver:
        driver.get(server.url)
        wait_for(driver, lambda d: _card(d).find_element(By.CSS_SELECTOR, ".state").text == "down", "card, down")
        driver.execute_script("window.__notReloaded = true;")
        assert http_get(server.url + "api/health")[0] == 503
        feeder = Feeder(cfg, state, d19).start()
        try:
            wait_for(driver, lambda d: _card(d).find_element(By.CSS_SELECTOR, ".state").text == "up", "source up")
            wait_for(driver, lambda d: any(FACE_TEXT.match(t) for t in _face_texts(d)), "a face with an emotion")
            wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#events li[data-seq]"), "an event")
            texts = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#events li[data-seq]")]
            assert all("cam0 #" in t for t in texts) and "track_started" in texts[-1], texts
            assert driver.execute_script("return window.__notReloaded === true;"), "the page was reloaded"
            assert http_json(server.url + "api/health")[0] == 200
            img = _card(driver).find_element(By.CSS_SELECTOR, "img.live")
            wait_for(driver, lambda d: d.execute_script("return arguments[0].naturalWidth;", img) > 0, "live image")
            encoded, t0 = server.handlers.encoder.encoded, time.monotonic()
            time.sleep(2.0)
            rate = (server.handlers.encoder.encoded - encoded) / (time.monotonic() - t0)
            assert rate >= 2.0, f"live view refreshed at {rate:.1f} fps (< 2)"
            _screenshot(driver, "dashboard.png")
            driver.set_window_size(390, 844)   # a phone screen: one column, nothing cut off sideways
            assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth;")
            _screenshot(driver, "dashboard_phone.png")
            assert float(_card(driver).find_element(By.CSS_SELECTOR, "b.fps").text) > 0
            feeder.source.stop()   # the camera goes away; the processing loop keeps running
            wait_for(driver, lambda d: _card(d).find_element(By.CSS_SELECTOR, ".state").text == "down", "source down")
            deadline = time.monotonic() + cfg.read_timeout_s + 3.0
            while http_get(server.url + "api/health")[0] != 503 and time.monotonic() < deadline:
                time.sleep(0.1)
            status, health = http_json(server.url + "api/health")
            assert status == 503 and health["sources"]["cam0"]["ok"] is False
            assert feeder.processed > 30
        finally:
            feeder.stop()


def test_live_view_off_serves_no_image(tmp_path, d19):
    cfg = web_config(tmp_path, live_view=False)
    state = WebState(["cam0"], live_view=False, read_timeout_s=cfg.read_timeout_s, device_id="t1")
    with serving(cfg, state) as server, chrome() as driver:
        feeder = Feeder(cfg, state, d19).start()
        try:
            driver.get(server.url)
            wait_for(driver, lambda d: any(FACE_TEXT.match(t) for t in _face_texts(d)), "a face with an emotion")
            assert driver.find_elements(By.TAG_NAME, "img") == []
            assert browser_fetch_status(driver, "stream/cam0.mjpg") == 404
            assert state.latest_frame("cam0") is None   # no frame reference is even kept
        finally:
            feeder.stop()


def test_upload_classifies_a_face_photo_and_rejects_text(tmp_path, d19):
    photo = tmp_path / "face.jpg"
    assert cv2.imwrite(str(photo), read_frame(d19, 200))  # d19 at 6.7 s: the man smiles
    text = tmp_path / "notes.txt"
    text.write_text("not a photo\n")
    cfg = web_config(tmp_path)
    with serving(cfg, WebState((), read_timeout_s=1.0)) as server, chrome() as driver:
        driver.get(server.url + "classify")
        driver.find_element(By.ID, "file").send_keys(str(photo))
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#faces .face"), "a classified face")
        faces = driver.find_elements(By.CSS_SELECTOR, "#faces .face")
        assert len(faces) == 1
        assert faces[0].find_element(By.CSS_SELECTOR, ".emotion").text == "happy"
        assert len(faces[0].find_elements(By.CSS_SELECTOR, ".bars li")) == 7
        img = driver.find_element(By.ID, "result-img")
        wait_for(driver, lambda d: d.execute_script("return arguments[0].naturalWidth;", img) == 480, "preview")
        _screenshot(driver, "upload.png")
        driver.find_element(By.ID, "file").send_keys(str(text))
        error = driver.find_element(By.ID, "error")
        wait_for(driver, lambda d: error.is_displayed(), "the error message")
        assert "not an image" in error.text
        assert not driver.find_element(By.ID, "result").is_displayed()


def test_basic_auth_is_enforced(tmp_path):
    cfg = web_config(tmp_path, password="s3cret-pw")
    with serving(cfg, WebState(["cam0"], read_timeout_s=1.0)) as server:
        for path in ("", "api/health", "api/state", "classify", "static/dash.js"):
            assert http_get(server.url + path)[0] == 401, path
            assert http_get(server.url + path, auth=("edge-fer", "wrong"))[0] == 401, path
        assert http_get(server.url + "api/state", auth=("edge-fer", "s3cret-pw"))[0] == 200
        with chrome() as driver:
            for password in (None, "wrong"):   # Chromium shows its login prompt: no dashboard behind it
                if password:
                    set_basic_auth(driver, "edge-fer", password)
                driver.get(server.url)
                time.sleep(0.5)
                assert driver.find_elements(By.ID, "events") == [] and "Last events" not in driver.page_source
            set_basic_auth(driver, "anyone", "s3cret-pw")
            driver.get(server.url)
            wait_for(driver, lambda d: d.find_element(By.ID, "link").text == "live", "the event stream")
            wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, 'article[data-source="cam0"]'), "the card")
