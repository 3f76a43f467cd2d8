"""Supervision of the daemon's worker threads (MQTT sender, paho network loop, source readers).

A worker that ended unexpectedly is restarted and counted in
``edge_fer_thread_restarts_total{thread}``; one that keeps dying
(:data:`MAX_RESTARTS` restarts within :data:`RESTART_WINDOW_S`) or cannot be
restarted makes the daemon exit non-zero with one clear log line, so that
systemd restarts the whole process. The systemd watchdog is fed only while the
processing loop runs and the workers are alive (:meth:`Supervisor.healthy`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque

from edge.metrics import Metrics
from edge.publish.mqtt import MqttPublisher

log = logging.getLogger("edge-fer.daemon")
#: Restarts of one thread tolerated within RESTART_WINDOW_S seconds before giving up.
MAX_RESTARTS, RESTART_WINDOW_S = 5, 600.0
THREADS = ("mqtt-sender", "mqtt-network", "source")


def source_alive(src) -> bool:
    """Whether a started source's reader thread runs (``LiveSource.alive`` when it has one)."""
    alive = getattr(src, "alive", None)
    if alive is not None:
        return bool(alive() if callable(alive) else alive)
    thread = getattr(src, "_thread", None)
    return thread is None or thread.ident is None or thread.is_alive()


class Supervisor:
    """Checks and restarts worker threads; records a fatal reason when it gives up.

    Attributes:
        fatal: None while all is well; else the one-line reason the daemon must exit non-zero.
    """

    def __init__(self, metrics: Metrics, publisher: MqttPublisher | None, sources: dict) -> None:
        """Watch ``publisher``'s threads and each source of ``sources`` (name -> LiveSource)."""
        self.metrics, self.publisher, self.sources = metrics, publisher, sources
        self.fatal: str | None = None
        self.stopping = False
        self._restarts: dict[str, deque[float]] = defaultdict(deque)

    def check(self) -> None:
        """Restart what died (once per call); sets :attr:`fatal` when a thread cannot be kept alive."""
        if self.stopping or self.fatal:
            return
        if self.publisher:
            for name in self.publisher.ensure_threads():
                self._record(name)
        for name, src in self.sources.items():
            if not source_alive(src):
                self._restart_source(name, src)

    def _restart_source(self, name: str, src) -> None:
        restart = getattr(src, "restart", None)
        if restart is None:
            self.fatal = f"source {name}: reader thread ended unexpectedly and cannot be restarted"
            log.critical("%s; exiting so that systemd restarts the daemon", self.fatal)
            return
        log.error("source %s: reader thread ended unexpectedly; restarting it", name)
        restart()
        self._record("source")

    def _record(self, thread: str) -> None:
        self.metrics.thread_restarts.labels(thread).inc()
        now = time.monotonic()
        times = self._restarts[thread]
        times.append(now)
        while times and now - times[0] > RESTART_WINDOW_S:
            times.popleft()
        if len(times) > MAX_RESTARTS:
            self.fatal = f"thread {thread} died {len(times)} times within {RESTART_WINDOW_S:g} s"
            log.critical("%s; exiting so that systemd restarts the daemon", self.fatal)

    def healthy(self) -> bool:
        """True when the watchdog may be fed: no fatal condition and the MQTT sender alive."""
        return self.fatal is None and (self.publisher is None or self.publisher.alive)
