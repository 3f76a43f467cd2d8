"""Bounded, persistent FIFO of outgoing MQTT messages (SQLite, WAL mode).

Events are written here before they are published and deleted only when the
broker acknowledges them (QoS 1 PUBACK), so nothing is lost while the broker
is away or across a daemon restart. When full, the oldest messages are
dropped (and counted) so the disk never fills up.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class QueuedMessage:
    """One stored message: ``id`` orders delivery."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class MessageQueue:
    """Thread-safe SQLite-backed FIFO."""

    def __init__(self, path: str | Path, max_messages: int = 100_000) -> None:
        """Open or create the queue file (``":memory:"`` for a throw-away queue).

        Raises:
            OSError: if the folder cannot be created.
        """
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL)")
        self._lock = threading.Lock()
        self.max_messages = max_messages
        self.dropped = 0

    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Append a message; returns its id. Drops the oldest when over ``max_messages``."""
        with self._lock:
            cur = self._db.execute("INSERT INTO outbox (topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                                   (topic, payload, qos, int(retain)))
            over = self._count() - self.max_messages
            if over > 0:
                self._db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (over,))
                self.dropped += over
            return int(cur.lastrowid)

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def peek(self, after_id: int = 0, limit: int = 100) -> list[QueuedMessage]:
        """Up to ``limit`` oldest messages with id > ``after_id``, in order."""
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload, qos, retain FROM outbox WHERE id > ? "
                                    "ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
        return [QueuedMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4])) for r in rows]

    def delete(self, message_id: int) -> None:
        """Forget an acknowledged message."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
