"""Web page pieces without a browser: config rules, WebState, image sniffing, auth, the app over ASGI."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from conftest import ROOT, read_frame
from edge.config import Config, ConfigError, load_config
from edge.pipeline.core import FrameResult
from edge.types import BBox, EmotionScores, FaceResult, Frame
from edge.web.config import WebConfig, is_loopback, web_password
from edge.web.imagecheck import sniff
from edge.web.state import MAX_EVENTS, WebState


class Clock:
    """A hand-driven monotonic clock (seconds)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _face(track_id: int = 3, emotion: str = "happy") -> FaceResult:
    probs = np.full(7, 0.05, np.float32)
    probs[3] = 0.7
    scores = EmotionScores(probs)
    return FaceResult(track_id, BBox(10, 20, 100, 100), scores, scores, emotion)


def _push(state: WebState, index: int = 0, faces=None, source: str = "cam0") -> Frame:
    frame = Frame(index, index / 30, np.zeros((240, 320, 3), np.uint8), source)
    state.frame_processed(source, frame, FrameResult(index, frame.time_s, 320, 240, True, faces or []))
    return frame


# --- config ---
@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.1.1", True), ("::1", True),
                                           ("localhost", True), ("0.0.0.0", False), ("::", False),
                                           ("192.168.1.20", False), ("edge.local", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_network_host_needs_a_password(tmp_path):
    with pytest.raises(ValidationError, match="password_file"):
        WebConfig(host="0.0.0.0")
    assert WebConfig(host="0.0.0.0", password="pw").password == "pw"
    assert WebConfig(host="0.0.0.0", password_file=str(tmp_path / "pw")).password_file
    cfg = tmp_path / "c.yaml"
    cfg.write_text("web:\n  enabled: true\n  host: 0.0.0.0\n")
    with pytest.raises(ConfigError, match=r"^web: .*0\.0\.0\.0 is reachable from the network"):
        load_config(cfg)


def test_check_config_refuses_an_open_network_page(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("web:\n  enabled: true\n  host: 0.0.0.0\n")
    run = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(cfg), "--check-config"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 2 and "web" in run.stderr and "password_file" in run.stderr
    assert "Traceback" not in run.stderr


def test_web_password_from_file(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("  s3cret \nsecond line\n")
    assert web_password(WebConfig(password_file=str(pw), password="ignored")) == "s3cret"
    assert web_password(WebConfig(password="inline")) == "inline"
    assert web_password(WebConfig()) is None
    pw.write_text("\n")
    with pytest.raises(ConfigError, match="empty first line"):
        web_password(WebConfig(password_file=str(pw)))
    with pytest.raises(ConfigError, match="cannot read"):
        web_password(WebConfig(password_file=str(tmp_path / "missing")))


def test_config_and_state_import_without_the_web_extra():
    code = ("import sys, edge.config, edge.web.config, edge.web.state; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'multipart', 'anyio')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


# --- state ---
def test_state_counts_fps_faces_and_keeps_no_frame_without_live_view():
    clock = Clock()
    state = WebState(["cam0"], live_view=False, read_timeout_s=2.0, clock=clock)
    for i in range(40):
        _push(state, i, [_face()])
        clock.t += 1 / 30
    state.source_status("cam0", up=True, dropped=4)
    snap = state.snapshot()["sources"][0]
    assert snap["processed"] == 40 and snap["dropped"] == 4 and snap["up"] is True
    assert snap["fps"] == pytest.approx(30.0, abs=0.5)
    assert snap["faces"] == [{"track_id": 3, "emotion": "happy", "score": 0.7}]
    assert state.latest_frame("cam0") is None
    json.dumps(state.snapshot())


def test_state_keeps_a_reference_to_the_latest_frame_with_live_view():
    state = WebState(["cam0"], live_view=True)
    _push(state, 0)
    frame = _push(state, 1, [_face()])
    latest = state.latest_frame("cam0")
    assert latest.image is frame.image and latest.number == 2 and latest.faces[0].track_id == 3
    state.source_status("cam0", up=False, dropped=0)
    assert state.latest_frame("cam0") is None and state.snapshot()["sources"][0]["faces"] == []


def test_events_keep_their_seq_or_get_one_and_only_the_last_50_stay():
    state = WebState(["cam0"])
    state.add_events([{"type": "track_started", "seq": 7, "boot_id": "b"}])
    state.add_events([{"type": "emotion_changed"}])
    assert [e["seq"] for e in state.events_after(0)] == [7, 8]
    assert [e["seq"] for e in state.events_after(7)] == [8]
    state.add_events({"type": "x", "seq": 100 + i} for i in range(60))
    kept = state.events_after(0)
    assert len(kept) == MAX_EVENTS and kept[0]["seq"] == 110 and kept[-1]["seq"] == 159
    assert state.last_seq == 159


def test_health_turns_503_when_a_source_is_silent_longer_than_read_timeout():
    clock = Clock()
    state = WebState(["cam0", "cam1"], read_timeout_s=2.0, clock=clock)
    assert state.health()[0] is False                      # no frame yet
    _push(state, 0, source="cam0")
    _push(state, 0, source="cam1")
    assert state.health()[0] is True
    clock.t += 1.5
    _push(state, 1, source="cam0")
    clock.t += 1.0                                          # cam1 silent for 2.5 s
    ok, details = state.health()
    assert not ok and details["sources"]["cam0"]["ok"] and not details["sources"]["cam1"]["ok"]
    state.source_status("cam1", up=True, dropped=0, paused=True)   # paused on purpose: healthy
    assert state.health()[0] is True
    assert WebState((), read_timeout_s=1.0).health()[0] is True     # --serve: no source


def test_mqtt_state():
    state = WebState(["cam0"])
    assert state.snapshot()["mqtt"] == {"enabled": False, "connected": False, "queued": 0}
    state.mqtt_status(connected=False, queued=12)
    assert state.snapshot()["mqtt"] == {"enabled": True, "connected": False, "queued": 12}


# --- image headers ---
@pytest.mark.parametrize("ext,fmt", [(".jpg", "jpeg"), (".png", "png"), (".webp", "webp"), (".bmp", "bmp")])
def test_sniff_reads_format_and_size_of_real_encodings(ext, fmt):
    ok, data = cv2.imencode(ext, np.zeros((37, 53, 3), np.uint8))
    assert ok
    header = sniff(data.tobytes())
    assert (header.format, header.width, header.height) == (fmt, 53, 37)


def test_sniff_rejects_non_images():
    assert sniff(b"hello, world\n") is None
    assert sniff(b"") is None
    assert sniff(b"%PDF-1.7\n") is None


# --- auth ---
def test_basic_auth_check():
    from edge.web.auth import check_basic

    def header(text: str) -> bytes:
        return b"Basic " + base64.b64encode(text.encode())

    assert check_basic(header("edge-fer:pw"), "pw") and check_basic(header("anyone:pw"), "pw")
    assert check_basic(header(":pw"), "pw")
    assert not check_basic(header("edge-fer:pW"), "pw")
    assert not check_basic(header("pw"), "pw")
    assert not check_basic(b"Basic !!notbase64", "pw")
    assert not check_basic(b"Bearer pw", "pw") and not check_basic(None, "pw")


# --- the app over ASGI (Starlette's TestClient, real app and models) ---
@pytest.fixture
def client_for():
    with warnings.catch_warnings():   # "install httpx2": httpx is what the [test] extra provides
        warnings.filterwarnings("ignore", message=".*httpx.*")
        from starlette.testclient import TestClient

    from edge.web.app import build_app

    def make(state: WebState, **web):
        cfg = Config.model_validate({"web": {"enabled": True, **web}})
        app, handlers = build_app(cfg, state)
        return TestClient(app), handlers

    return make


def test_api_state_events_health(client_for):
    clock = Clock()
    state = WebState(["cam0"], read_timeout_s=1.0, device_id="t1", clock=clock)
    client, _ = client_for(state)
    assert client.get("/api/health").status_code == 503
    _push(state, 0, [_face()])
    state.add_events([{"type": "track_started", "seq": 1}, {"type": "emotion_changed", "seq": 2}])
    health = client.get("/api/health")
    assert health.status_code == 200 and health.json()["sources"]["cam0"]["ok"] is True
    st = client.get("/api/state").json()
    assert st["device_id"] == "t1" and st["sources"][0]["faces"][0]["emotion"] == "happy" and st["last_seq"] == 2
    assert client.get("/api/events?after=1").json() == {"events": [{"type": "emotion_changed", "seq": 2}],
                                                        "last_seq": 2}
    assert client.get("/api/events?after=abc").status_code == 400
    assert client.get("/api/events?after=-1").status_code == 400
    clock.t += 1.5
    assert client.get("/api/health").status_code == 503


def test_pages_are_small_and_self_contained(client_for):
    client, _ = client_for(WebState(["cam0"]))
    total = 0
    for path in ("/", "/classify"):
        page = client.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "http://" not in page.text and "https://" not in page.text   # no CDN
        assert "content-security-policy" in page.headers
        total += len(page.content)
    for name in ("app.css", "dash.js", "classify.js"):
        total += len(client.get(f"/static/{name}").content)
    assert total < 200_000
    assert client.get("/static/index.html").status_code == 404
    assert client.get("/static/../config.py").status_code == 404


def test_mjpeg_only_with_live_view(client_for):
    client, _ = client_for(WebState(["cam0"], live_view=False))
    assert client.get("/stream/cam0.mjpg").status_code == 404
    client, _ = client_for(WebState(["cam0"], live_view=True))
    assert client.get("/stream/nope.mjpg").status_code == 404


def test_live_encoder_encodes_once_per_period_and_never_draws_on_the_frame(d19):
    from edge.web.live import LiveEncoder

    state = WebState(["cam0"], live_view=True)
    image = read_frame(d19, 100)
    original = image.copy()
    state.frame_processed("cam0", Frame(0, 0.0, image, "cam0"),
                          FrameResult(0, 0.0, 480, 480, True, [_face()]))
    encoder = LiveEncoder(state, max_fps=5.0)
    first = encoder.get("cam0")
    decoded = cv2.imdecode(np.frombuffer(first.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (480, 480, 3)
    assert np.array_equal(image, original)
    _push(state, 1)
    assert encoder.get("cam0") is first and encoder.encoded == 1     # within 0.2 s: the cached one


def test_sse_sends_state_then_events_after_the_last_id(client_for):
    state = WebState(["cam0"])
    state.add_events([{"type": "a", "seq": 1}, {"type": "b", "seq": 2}])
    _, handlers = client_for(state)

    async def take(after: int, n: int) -> list[str]:
        out = []
        async for chunk in handlers._sse(after):
            out.append(chunk.decode())
            if len(out) == n:
                break
        return out

    chunks = asyncio.run(take(0, 4))
    assert chunks[0].startswith("retry: ") and chunks[1].startswith("event: state\ndata: {")
    assert chunks[2] == 'id: 1\ndata: {"type": "a", "seq": 1}\n\n' and chunks[3].startswith("id: 2\n")
    assert asyncio.run(take(1, 3))[2].startswith("id: 2\n")


def test_upload_classifies_in_memory_and_rejects_bad_input(client_for, d19, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # nothing may be written anywhere, the working folder included
    client, _ = client_for(WebState(()))
    ok, jpeg = cv2.imencode(".jpg", read_frame(d19, 200))
    resp = client.post("/api/classify", content=jpeg.tobytes(), headers={"content-type": "image/jpeg"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["width"], body["height"]) == (480, 480) and len(body["faces"]) == 1
    face = body["faces"][0]
    assert face["emotion"] == "happy" and set(face["scores"]) == {"angry", "disgust", "fear", "happy", "neutral",
                                                                  "sad", "surprise"}
    assert body["image"].startswith("data:image/jpeg;base64,")
    ok, blank = cv2.imencode(".png", np.full((200, 200, 3), 128, np.uint8))
    assert client.post("/api/classify", content=blank.tobytes()).json()["faces"] == []
    text = client.post("/api/classify", content=b"just text\n")
    assert text.status_code == 415 and "not an image" in text.json()["error"]
    assert client.post("/api/classify", content=b"").status_code == 400
    assert client.post("/api/classify", content=jpeg.tobytes()[:300]).status_code == 422
    big = client.post("/api/classify", content=b"\xff\xd8\xff" + bytes(11 * 2**20))
    assert big.status_code == 413 and "too large" in big.json()["error"]
    assert list(tmp_path.iterdir()) == []


def test_upload_rejects_a_decompression_bomb_before_decoding(client_for):
    client, _ = client_for(WebState(()))
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(png.tobytes())
    data[16:24] = (30000).to_bytes(4, "big") * 2          # IHDR claims 30000 x 30000 pixels
    resp = client.post("/api/classify", content=bytes(data))
    assert resp.status_code == 413 and "30000x30000" in resp.json()["error"]


def test_auth_on_every_route(client_for):
    client, _ = client_for(WebState(["cam0"]), password="pw")
    for path in ("/", "/api/health", "/api/state", "/api/events", "/classify", "/static/app.css"):
        resp = client.get(path)
        assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Basic"), path
    assert client.post("/api/classify", content=b"x").status_code == 401
    assert client.get("/api/state", auth=("edge-fer", "pw")).status_code == 200
    assert client.get("/api/state", auth=("edge-fer", "nope")).status_code == 401
