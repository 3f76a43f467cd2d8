"""The daemon: live sources -> pipelines -> MQTT + Prometheus, under systemd.

Each source reads in its own thread into a latest-frame slot. Frames go
through one :class:`~edge.pipeline.parallel.ParallelRunner` for every source
(the detector and classifier are shared, not thread-safe): its detect thread
takes the sources' newest frames round-robin (as each ``fps`` limit admits)
and runs BlazeFace on frame t while the processing thread (the caller of
:meth:`Service.loop`) tracks, classifies, smooths and publishes frame t - 1;
queues of one frame keep the latest-frame behaviour (a frame waits at most
for the one before it). The processing thread also does the housekeeping
(metrics, retained state, supervision, watchdog), at least every
``IDLE_S`` seconds when no frame comes.

systemd gets READY=1 once a source delivers and WATCHDOG=1 from the
processing loop while the worker threads are alive
(:mod:`edge.daemon.supervise`), the detect thread keeps taking frames and
frames that arrive are processed (not while every frame has failed for
``FAILING_S``; a source without frames is not a reason for a restart: it
reconnects by itself); SIGTERM/SIGINT stop the loop, end the tracks, publish
each source's final state (down, no face), flush the outbox and publish
``offline``.

For a web page: :meth:`Service.snapshot` returns typed per-source state and
``Service.sink.listeners`` receives every event's JSON object.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge import exit_codes as codes
from edge.capture.live import LiveOptions, LiveSource
from edge.config import Config, ConfigError
from edge.config.schema import command_token
from edge.daemon.commands import REJECT_REASONS, CommandPolicy, CommandTargets, commands_allowed, handle_command
from edge.daemon.limiter import FpsLimiter
from edge.daemon.sink import EventSink
from edge.daemon.state import dominant_emotion, ha_discovery, source_state
from edge.daemon.supervise import THREADS, Supervisor
from edge.metrics import Metrics
from edge.pipeline.core import FrameResult
from edge.pipeline.events import EVENT_TYPES
from edge.pipeline.factory import build_classifier, build_detector, build_pipeline
from edge.pipeline.parallel import ParallelOptions, ParallelRunner
from edge.pipeline.timing import StageTimer
from edge.publish.mqtt import MqttPublisher
from edge.publish.queue import MessageQueue
from edge.publish.topics import Topics
from edge.redact import mask_url
from edge.types import Frame

if TYPE_CHECKING:  # the [web] extra is optional: imported only when web.enabled
    from edge.web.run import WebServer
    from edge.web.state import WebState

log = logging.getLogger("edge-fer.daemon")
WATCHDOG_PERIOD_S = 1.0
#: Seconds frames may keep arriving while none is processed successfully before the watchdog stops being fed.
FAILING_S = 20.0
SUPERVISE_PERIOD_S = 1.0
#: Longest wait for a frame before the processing loop does its housekeeping anyway (seconds).
IDLE_S = 0.05
#: One frame between the detect thread and the processing thread: frames stay fresh, memory flat.
RUNNER = ParallelOptions(depth=1, join_timeout_s=0.5)
DROP_REASONS = ("queue_full", "disk_full")


@dataclass
class _Due:
    """Monotonic times of the next supervision pass and watchdog ping (seconds)."""

    check: float = 0.0
    watchdog: float = 0.0


@dataclass(frozen=True)
class SourceSnapshot:
    """What a status page shows of one source now.

    Attributes:
        tracks: {track_id: current emotion} of the faces tracked now.
        frames_processed: Frames through the pipeline since start; dropped: live frames dropped (busy).
    """

    name: str
    up: bool
    paused: bool
    faces: int
    dominant_emotion: str | None
    tracks: dict[int, str]
    frames_processed: int
    dropped: int
    reconnects: int


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) if missing and make it 0700 (the daemon's own state folder)."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(p, 0o700)
    except OSError as exc:  # not ours (e.g. a shared folder): say so, keep running
        log.warning("state_dir %s: cannot make it private (0700): %s", p, exc.strerror or exc)
    return p


class Service:
    """Owns sources, pipelines, publisher and metrics for one daemon run."""

    def __init__(self, cfg: Config) -> None:
        """Build every stage (models load here). Raises ``ModelError`` / ``ConfigError``."""
        self.cfg = cfg
        self.stop_event = threading.Event()
        self.new_frame = threading.Event()
        self.topics = Topics(cfg.mqtt.topic_prefix, cfg.device_id)
        self.metrics = Metrics()
        self.timer = StageTimer()
        detector, classifier = build_detector(cfg), build_classifier(cfg)
        _warm_up(detector, classifier)
        self.metrics.model_info.info({"path": str(classifier.path), "labels": ",".join(classifier.labels),
                                      "quantization": str(classifier.meta.get("quantization", "unknown"))})
        self.sources = {s.name: LiveSource(s.name, s.uri, _live_options(cfg, s), self.new_frame) for s in cfg.sources}
        self.pipelines = {name: build_pipeline(cfg, name, detector, classifier, self.timer) for name in self.sources}
        self.limiters = {s.name: FpsLimiter(s.fps) for s in cfg.sources}
        self._processed = {name: 0 for name in self.sources}
        self._last_taken = self._last_ok = self._feeder_beat = time.monotonic()
        self._state_due: dict[str, float] = {name: 0.0 for name in self.sources}
        self._state_last: dict[str, dict] = {}
        self.metrics.init_series(list(self.sources), EVENT_TYPES, DROP_REASONS, REJECT_REASONS, THREADS)
        self.publisher = self._make_publisher() if cfg.mqtt.enabled else None
        self.sink = EventSink(self.publisher, self.topics, self.metrics)
        self.supervisor = Supervisor(self.metrics, self.publisher, self.sources)
        self.web_state: WebState | None = None
        self.web: WebServer | None = None
        if cfg.web.enabled:
            from edge.web.state import WebState

            self.web_state = WebState(list(self.sources), live_view=cfg.web.live_view,
                                      read_timeout_s=cfg.read_timeout_s, device_id=cfg.device_id)
            self.sink.listeners.append(self.web_state.add_event)

    def _make_publisher(self) -> MqttPublisher:
        mq = self.cfg.mqtt
        state_dir = private_dir(self.cfg.state_dir)
        path = mq.queue_path or str(state_dir / "outbox.sqlite")
        pub = MqttPublisher(mq, self.topics, MessageQueue(path, mq.queue_max))
        token = command_token(mq)
        pub.commands_enabled = commands_allowed(mq.host, token)
        if not pub.commands_enabled:
            log.info("MQTT commands disabled: broker %s:%d is not on this machine and mqtt.command_token is not set "
                     "(set mqtt.command_token_file to enable them)", mq.host, mq.port)
        policy = CommandPolicy(token, getattr(mq, "command_max_bytes", 4096))
        targets = CommandTargets(self._set_paused, self._request_state, lambda: list(self.sources))
        pub.on_command = lambda payload: self._command(payload, targets, policy)
        pub.on_connected = self._on_mqtt_connected
        return pub

    def _command(self, payload: bytes | bytearray, targets: CommandTargets, policy: CommandPolicy) -> dict:
        result = handle_command(payload, targets, policy)
        if result.rejected:
            self.metrics.commands_rejected.labels(result.rejected).inc()
        return result.reply

    def _set_paused(self, source: str, paused: bool) -> None:
        self.sources[source].paused = paused
        log.info("source %s %s", source, "paused" if paused else "resumed")
        self._request_state(source)

    def _request_state(self, source: str | None) -> None:
        for name in [source] if source else list(self.sources):
            self._state_due[name] = 0.0
            self._state_last.pop(name, None)

    def _on_mqtt_connected(self) -> None:
        self._request_state(None)
        if self.cfg.mqtt.homeassistant_discovery and self.publisher:
            for name in self.sources:
                for topic, payload in ha_discovery(self.topics, self.cfg.mqtt.homeassistant_prefix, name).items():
                    self.publisher.publish_now(topic, payload, retain=True)

    # --- lifecycle ---
    def start(self) -> bool:
        """Start metrics, MQTT and sources; True once a source delivers within ``read_timeout_s``.

        Raises:
            OSError: the metrics port cannot be bound (the message names host:port).
        """
        if self.cfg.metrics.enabled:
            self.metrics.serve(self.cfg.metrics.host, self.cfg.metrics.port)
        if self.web_state is not None:
            from edge.web.run import start_in_daemon

            self.web = start_in_daemon(self.cfg, self.web_state)
        if self.publisher:
            self.sink.close_stale_tracks()
            self.publisher.start()
        for src in self.sources.values():
            src.start()
        deadline = time.monotonic() + self.cfg.read_timeout_s
        while time.monotonic() < deadline and not self.stop_event.is_set():
            if any(s.up for s in self.sources.values()):
                return True
            time.sleep(0.05)
        return any(s.up for s in self.sources.values())

    def _frame_done(self, frame: Frame, result: FrameResult) -> None:
        """Count, publish and show one processed frame (processing thread)."""
        name, m = frame.source, self.metrics
        m.frames_processed.labels(name).inc()
        self._processed[name] += 1
        self._last_ok = time.monotonic()
        m.faces_detected.labels(name).inc(len(result.faces) if result.detected else 0)
        m.observe_stages(self.timer.last)
        if self.web_state is not None:
            self.web_state.frame_processed(name, frame, result)
        self.sink.emit(name, result.events)
        if self.cfg.privacy.save_crops_dir and result.faces:
            _save_crops(Path(self.cfg.privacy.save_crops_dir) / name, frame, result,
                        self.pipelines[name].classifier.margin)

    def _frame_failed(self, frame: Frame, exc: BaseException) -> None:
        """A stage raised on ``frame``: count it, log it with its traceback, skip the frame (months-long run)."""
        self.metrics.frame_errors.labels(frame.source).inc()
        log.error("source %s: frame %d failed; skipped", frame.source, frame.index, exc_info=exc)

    def _housekeeping(self, now: float) -> None:
        for name, src in self.sources.items():
            self.metrics.sync_source(name, src.up, src.dropped, src.reconnects)
            self.metrics.tracks_active.labels(name).set(len(self.pipelines[name].open_tracks))
            self._maybe_publish_state(name, src, now)
            if self.web_state is not None:
                self.web_state.source_status(name, src.up, src.dropped, src.paused)
        if self.publisher:
            self.metrics.mqtt_connected.set(1 if self.publisher.connected.is_set() else 0)
            self.metrics.mqtt_queued.set(self.publisher.queued)
            self.metrics.sync_dropped(self.publisher.outbox.dropped)
            self.metrics.sync_refusals(self.publisher.refusals)
            if self.web_state is not None:
                self.web_state.mqtt_status(self.publisher.connected.is_set(), self.publisher.queued)

    def _maybe_publish_state(self, name: str, src: LiveSource, now: float) -> None:
        if not self.publisher or now < self._state_due[name] or not self.publisher.connected.is_set():
            return
        state = source_state(name, self.pipelines[name].open_tracks, src.up, src.paused)
        key = {k: v for k, v in state.items() if k != "ts"}
        if key == self._state_last.get(name):
            return
        if self.publisher.publish_now(self.topics.state(name), state, retain=True):
            self._state_last[name] = key
            self._state_due[name] = now + self.cfg.mqtt.state_interval_s

    def _take(self, name: str, src: LiveSource, now: float):
        """The source's newest frame if the ``fps`` limit admits it (frames over the limit are discarded)."""
        frame = src.latest()
        if frame is None or not self.limiters[name].admit(now):
            return None
        self._last_taken = now
        return frame

    def _live_frames(self) -> Iterator[Frame]:
        """The sources' newest frames, round-robin, as their ``fps`` limits admit them, until ``stop_event``.

        Runs in the runner's detect thread; it asks for the next frame only once
        the previous one was handed on, so a busy pipeline drops frames at the source.
        """
        while not self.stop_event.is_set():
            self._feeder_beat = time.monotonic()
            self.new_frame.clear()
            took = False
            for name, src in self.sources.items():
                frame = self._take(name, src, time.monotonic())
                if frame is not None:
                    took = True
                    yield frame
            if not took:
                self.new_frame.wait(IDLE_S)

    def loop(self, notifier) -> None:
        """Process frames until ``stop_event`` is set (or a worker thread cannot be kept alive).

        Args:
            notifier: ``sdnotify.SystemdNotifier`` (anything with ``notify(str)``): gets ``WATCHDOG=1``.
        """
        runner = ParallelRunner(self.pipelines, RUNNER)
        results = runner.run(self._live_frames(), on_error=self._frame_failed, idle_s=IDLE_S)
        due = _Due()
        try:
            for item in results:
                if item is not None:
                    self._frame_done(item.frame, item.result)
                if not self._tick(notifier, due) or self.stop_event.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - the frame feed itself failed: exit non-zero, systemd restarts
            log.exception("processing loop failed")
            self.supervisor.fatal = f"processing loop failed: {type(exc).__name__}: {exc}"
        finally:
            if isinstance(results, Generator):
                results.close()  # stops and joins the runner's threads before the pipelines are finished

    def _tick(self, notifier, due: _Due) -> bool:
        """Housekeeping, supervision and watchdog after a frame or an idle wait; False once a worker is lost."""
        now = time.monotonic()
        self._housekeeping(now)
        if now >= due.check:
            self.supervisor.check()
            due.check = now + SUPERVISE_PERIOD_S
            if self.supervisor.fatal:
                return False
        if now >= due.watchdog and self._healthy():
            notifier.notify("WATCHDOG=1")
            due.watchdog = now + WATCHDOG_PERIOD_S
        return True

    def _healthy(self) -> bool:
        """Feed the watchdog? Workers alive, the detect thread takes frames, and frames that arrive get processed.

        An idle source is fine; a detect step stuck for ``FAILING_S`` is not.
        """
        return (self.supervisor.healthy() and self._last_taken - self._last_ok < FAILING_S
                and time.monotonic() - self._feeder_beat < FAILING_S)

    def snapshot(self) -> dict[str, SourceSnapshot]:
        """Typed state of every source now (any thread; values may be a frame old)."""
        out = {}
        for name, src in self.sources.items():
            tracks = dict(self.pipelines[name].open_tracks)
            out[name] = SourceSnapshot(name, src.up, src.paused, len(tracks), dominant_emotion(tracks), tracks,
                                       self._processed[name], src.dropped, src.reconnects)
        return out

    def shutdown(self, flush_s: float = 1.0) -> None:
        """Stop sources, end tracks (``track_ended`` events), publish final states, flush MQTT, publish ``offline``."""
        self.supervisor.stopping = True
        if self.web is not None:
            self.web.stop(timeout_s=0.5)
        for src in self.sources.values():
            src.stop(timeout=0.2)
        for name, pipeline in self.pipelines.items():
            self.sink.emit(name, pipeline.finish())
        if self.publisher:
            for name, src in self.sources.items():  # retained state must not say a face is still there
                self.publisher.publish_now(self.topics.state(name), source_state(name, {}, False, src.paused),
                                           retain=True)
            self.publisher.flush(flush_s)
            self.publisher.stop(timeout_s=0.5)
            self.publisher.outbox.close()


def _live_options(cfg: Config, s) -> LiveOptions:
    return LiveOptions(loop=s.loop, width=s.width, height=s.height, read_timeout_s=cfg.read_timeout_s,
                       reconnect_initial_s=cfg.reconnect_initial_s, reconnect_max_s=cfg.reconnect_max_s)


def _save_crops(folder: Path, frame: Frame, result: FrameResult, margin: float) -> None:
    """Opt-in only (``privacy.save_crops_dir``): write each face's square crop as PNG.

    Files are ``<folder>/<frame index:08d>_t<track id>.png``, uint8 BGR, cut with the classifier's
    crop margin (the window the model sees, before grey conversion and resizing).
    """
    import cv2

    from edge.preprocess import crop_square, square_crop_box

    folder.mkdir(parents=True, exist_ok=True)
    for face in result.faces:
        b = face.bbox
        box = square_crop_box(b.x, b.y, b.w, b.h, margin=margin)
        cv2.imwrite(str(folder / f"{frame.index:08d}_t{face.track_id}.png"), crop_square(frame.image, box))


def _warm_up(detector, classifier) -> None:
    """Run each model once before the sources start: XNNPACK packs weights on the first invoke."""
    import numpy as np

    detector.detect(np.zeros((480, 640, 3), np.uint8))
    classifier.predict_batch(np.zeros((1, 48, 48), np.float32))


def _install_signals(stop: threading.Event) -> None:
    def _handler(signum, _frame):
        log.info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def run_daemon(cfg: Config) -> int:
    """Run the service until SIGTERM/SIGINT; returns the exit code.

    Raises:
        ModelError: a model cannot be loaded (mapped to an exit code by the CLI).
    """
    from sdnotify import SystemdNotifier

    if not cfg.sources:
        return codes.fail(codes.USAGE, "config: sources: at least one source is needed to run the daemon")
    try:
        service = Service(cfg)
    except ConfigError as exc:  # e.g. an unreadable password or command token file
        return codes.fail(codes.USAGE, f"config: {exc}")
    _install_signals(service.stop_event)
    notifier = SystemdNotifier()
    try:
        try:
            started = service.start()
        except OSError as exc:
            return codes.fail(codes.USAGE, exc.strerror or str(exc))
        except ConfigError as exc:  # web.enabled without the [web] extra, unreadable web.password_file
            return codes.fail(codes.USAGE, str(exc))
        if not started:
            if service.stop_event.is_set():
                return codes.OK
            names = ", ".join(f"{s.name} ({mask_url(s.uri)})" for s in cfg.sources)
            return codes.fail(codes.NO_SOURCE, f"no source delivered frames within {cfg.read_timeout_s:g} s: {names}")
        notifier.notify("READY=1")
        log.info("running: %d source(s), device_id %s", len(service.sources), cfg.device_id)
        service.loop(notifier)
        notifier.notify("STOPPING=1")
        if service.supervisor.fatal:
            return codes.fail(codes.INTERNAL, service.supervisor.fatal)
        return codes.OK
    finally:
        service.shutdown()
