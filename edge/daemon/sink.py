"""Where the daemon's events go: numbered, stored in the MQTT outbox, handed to listeners.

Every event gets ``boot_id``/``seq`` (:data:`edge.pipeline.events.COUNTER`),
the events of one frame are stored in one outbox transaction together with the
open-track bookkeeping that lets the next start close tracks a crash left open,
and each event's JSON object is passed to every listener (for a web page).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge.metrics import Metrics
from edge.pipeline.events import COUNTER, EventCounter, event_to_dict, restart_ended_dict
from edge.publish.mqtt import MqttPublisher
from edge.publish.queue import TrackMark
from edge.publish.topics import Topics
from edge.types import EmotionEvent

log = logging.getLogger("edge-fer.daemon")
EventListener = Callable[[dict], None]
_MARK_OP = {"track_started": "open", "emotion_changed": "update", "track_ended": "close"}


class EventSink:
    """Numbers events, stores them for MQTT and notifies listeners.

    Attributes:
        listeners: Callables given each event's JSON object (in the processing
            thread: they must return quickly and not raise).
    """

    def __init__(self, publisher: MqttPublisher | None, topics: Topics, metrics: Metrics,
                 counter: EventCounter = COUNTER) -> None:
        """Deliver through ``publisher`` (None: MQTT disabled) and count in ``metrics``."""
        self.publisher, self.topics, self.metrics, self.counter = publisher, topics, metrics, counter
        self.listeners: list[EventListener] = []

    def emit(self, source: str, events: list[EmotionEvent]) -> None:
        """Number, store (one transaction) and announce the events of one frame of ``source``."""
        if not events:
            return
        dicts = [event_to_dict(e, counter=self.counter) for e in events]
        for d in dicts:
            self.metrics.events_published.labels(d["type"]).inc()
        if self.publisher:
            marks = [TrackMark(_MARK_OP[e.type], self.counter.boot_id, source, e.track_id, e.time_s, e.emotion)
                     for e in events if e.type in _MARK_OP]
            self.publisher.enqueue_many([(self.topics.event(source), d, d["type"]) for d in dicts], marks)
        self._announce(dicts)

    def close_stale_tracks(self) -> int:
        """Publish ``track_ended`` (``reason: "restart"``) for tracks earlier runs left open; returns how many."""
        if not self.publisher:
            return 0
        stale = self.publisher.outbox.take_open_tracks(exclude_boot=self.counter.boot_id)
        dicts = [restart_ended_dict(t.boot_id, t.source, t.track_id, t.start_s, t.last_s, t.emotion, self.counter)
                 for t in stale]
        if dicts:
            log.info("closing %d track(s) left open by an earlier run (track_ended, reason restart)", len(dicts))
            self.publisher.enqueue_many([(self.topics.event(d["source"]), d, "track_ended") for d in dicts])
            self.metrics.events_published.labels("track_ended").inc(len(dicts))
            self._announce(dicts)
        return len(dicts)

    def _announce(self, dicts: list[dict]) -> None:
        for listener in list(self.listeners):
            for d in dicts:
                try:
                    listener(d)
                except Exception:  # noqa: BLE001 - a listener never stops processing
                    log.exception("event listener failed")
