"""Source reader threads under supervision: a reader that fails is logged, restarted and counted.

The faults are injected into the reader itself (a frame hand-over or an open
that raises); the clip, the models and the broker are real.
"""

import logging
import threading

import pytest

from daemon_helpers import wait_until, write_config
from edge.capture import live
from edge.capture.live import LiveOptions, LiveSource

pytestmark = pytest.mark.integration
SECRET_URL = "rtsp://admin:S3cr3tPW@127.0.0.1:9/live"


class Notifier:
    def notify(self, msg):
        pass


def test_a_failed_reader_is_logged_restarted_counted_and_frames_flow_again(mosquitto, d19, tmp_path, caplog):
    from edge.config import load_config
    from edge.daemon.service import Service

    caplog.set_level(logging.INFO)
    cfg_path, _ = write_config(tmp_path, mosquitto.port, str(d19), metrics={"enabled": False})
    svc = Service(load_config(cfg_path))
    src = svc.sources["cam0"]
    assert not src.alive  # not started yet
    assert svc.start() and src.alive
    loop = threading.Thread(target=svc.loop, args=(Notifier(),))
    loop.start()
    restarts = svc.metrics.thread_restarts.labels("source")
    try:
        wait_until(lambda: svc._processed["cam0"] >= 5, 20, "frames processed")
        first_thread = src._thread
        broke = threading.Event()
        real_offer = src._offer

        def offer_once_broken(image):  # the reader's next hand-over raises, later ones work
            if not broke.is_set():
                broke.set()
                raise RuntimeError("decoder state corrupt")
            real_offer(image)

        src._offer = offer_once_broken
        wait_until(broke.is_set, 5, "the injected failure")
        first_thread.join(2)
        assert not first_thread.is_alive()  # the reader ended: nothing caught it silently
        wait_until(lambda: restarts._value.get() == 1, 5, "edge_fer_thread_restarts_total{thread=source} == 1")
        assert src.alive and src._thread is not first_thread
        after = svc._processed["cam0"]
        wait_until(lambda: svc._processed["cam0"] >= after + 10 and src.up, 10, "frames after the restart")
        assert svc.supervisor.fatal is None and svc.supervisor.healthy()
    finally:
        svc.stop_event.set()
        loop.join(5)
        svc.shutdown()
    assert not loop.is_alive() and not src.alive
    failed = [r for r in caplog.records if "reader thread failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR
    assert "RuntimeError: decoder state corrupt" in failed[0].getMessage() and "\n" not in failed[0].getMessage()
    assert any("reader thread ended unexpectedly; restarting it" in r.getMessage() for r in caplog.records)


def test_reader_failure_line_masks_the_password_and_restart_starts_a_new_reader(monkeypatch, caplog):
    def broken_open(uri, kind, opts):
        raise RuntimeError(f"cannot open {uri}: driver fault")

    monkeypatch.setattr(live, "open_capture", broken_open)
    caplog.set_level(logging.DEBUG, logger="edge.capture.live")
    src = LiveSource("cam9", SECRET_URL, LiveOptions(read_timeout_s=1.0, reconnect_initial_s=0.1))
    src.start()
    wait_until(lambda: not src.alive, 5, "the reader to end")
    src.restart()
    wait_until(lambda: not src.alive, 5, "the restarted reader to end")
    src.stop(0.5)
    failed = [r.getMessage() for r in caplog.records if "reader thread failed" in r.getMessage()]
    assert len(failed) == 2  # one per reader thread: restart() ran a new one
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "rtsp://admin:***@127.0.0.1:9/live" in failed[0] and "S3cr3tPW" not in text
    assert "Traceback" in text  # the masked traceback, at DEBUG
