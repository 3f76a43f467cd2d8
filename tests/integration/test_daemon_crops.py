"""``privacy.save_crops_dir``: the daemon writes face crops there only when the config asks for it."""

import signal

import cv2
import pytest

from daemon_helpers import kill_daemon, start_daemon, wait_metric, write_config

pytestmark = pytest.mark.integration
FACES = 'edge_fer_faces_detected_total{source="cam0"}'


def _run_until_faces(cfg, log, mport, faces: int = 5) -> None:
    proc = start_daemon(cfg, log)
    try:
        wait_metric(mport, FACES, lambda v: v >= faces, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, log.read_text()[-2000:]
    finally:
        kill_daemon(proc)


def test_crops_written_only_when_configured(mosquitto, d19, tmp_path):
    on, off = tmp_path / "on", tmp_path / "off"
    on.mkdir(), off.mkdir()
    crops = on / "crops"
    cfg, mport = write_config(on, mosquitto.port, str(d19), privacy={"save_crops_dir": str(crops)})
    _run_until_faces(cfg, on / "daemon.log", mport)
    pngs = sorted((crops / "cam0").glob("*.png"))
    assert len(pngs) >= 5, (on / "daemon.log").read_text()[-2000:]
    assert "Traceback" not in (on / "daemon.log").read_text()
    for png in pngs[:5]:
        index, track = png.stem.split("_t")
        assert index.isdigit() and track.isdigit()
        crop = cv2.imread(str(png))
        assert crop is not None and crop.ndim == 3 and crop.shape[0] == crop.shape[1] >= 32

    cfg, mport = write_config(off, mosquitto.port, str(d19))
    _run_until_faces(cfg, off / "daemon.log", mport)
    written = [p.relative_to(off) for p in off.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    assert written == []
