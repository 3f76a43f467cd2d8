"""Bounded, persistent FIFO of outgoing MQTT messages (SQLite, WAL mode).

Events are written here before they are published and deleted only when their
delivery is complete (QoS 1 PUBACK, QoS 2 PUBCOMP), so nothing is lost while
the broker is away or across a daemon restart. The sender hands a row to paho
once per run (paho resends it after a reconnect with the same packet id), so a
row is published again, as a new message, only by a later run. The queue
survives the faults a months-long run meets:

* **bounded**: over ``max_messages`` the oldest rows are dropped and counted
  (``dropped["queue_full"]``); the row count is kept in memory (one
  ``COUNT(*)`` at open), so a full queue costs no extra scan per insert;
* **full disk** (``SQLITE_FULL``): new messages are dropped and counted
  (``dropped["disk_full"]``, one WARNING a minute at most), everything already
  stored stays; acknowledged ids whose ``DELETE`` failed are remembered in
  memory, never handed out again and deleted once space returns;
* **corrupt file** (``SQLITE_CORRUPT`` / ``SQLITE_NOTADB``, at open or later):
  the file and its ``-wal``/``-shm`` are moved aside as
  ``<name>.corrupt-<UTC timestamp>``, an ERROR is logged and a fresh queue is
  created; ids continue above the last one seen, so a reader's position stays valid;
* **private**: the folder is created 0700 and the files are 0600 whatever the umask.

Inserts and deletes are batched in one transaction each (:meth:`put_many`,
:meth:`delete_many`). The same file keeps the ids of tracks that were open
(table ``open_tracks``) so that tracks left open by a crash can be closed at
the next start (:meth:`take_open_tracks`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

#: SQLite primary result codes (https://www.sqlite.org/rescode.html).
SQLITE_FULL, SQLITE_CORRUPT, SQLITE_NOTADB = 13, 11, 26
#: Seconds between two "disk full" warnings.
WARN_EVERY_S = 60.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
    "payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS open_tracks (boot_id TEXT NOT NULL, source TEXT NOT NULL, "
    "track_id INTEGER NOT NULL, start_s REAL NOT NULL, last_s REAL NOT NULL, emotion TEXT, "
    "PRIMARY KEY (boot_id, source, track_id))",
)


@dataclass(frozen=True)
class QueuedMessage:
    """One stored message: ``id`` orders delivery."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to store: topic, payload bytes, QoS, retain flag."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class TrackMark:
    """An open-track bookkeeping change stored with the events of the same frame.

    Attributes:
        op: ``open`` (track_started), ``update`` (emotion_changed) or ``close`` (track_ended).
        boot_id: Daemon run that owns the track.
        time_s: Media time of the event in seconds; emotion: current emotion.
    """

    op: str
    boot_id: str
    source: str
    track_id: int
    time_s: float
    emotion: str | None = None


@dataclass(frozen=True)
class OpenTrack:
    """A track that was open when its daemon run ended without closing it."""

    boot_id: str
    source: str
    track_id: int
    start_s: float
    last_s: float
    emotion: str | None


def _code(exc: sqlite3.Error) -> int:
    """Primary SQLite result code of an exception (0 when unknown)."""
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def is_corrupt(exc: sqlite3.Error) -> bool:
    """True for "file is not a database" / "database disk image is malformed"."""
    text = str(exc)
    return _code(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB) or "not a database" in text or "malformed" in text


def is_full(exc: sqlite3.Error) -> bool:
    """True for "database or disk is full" (``SQLITE_FULL``)."""
    return _code(exc) == SQLITE_FULL or "disk is full" in str(exc)


def _row_id(cursor: sqlite3.Cursor) -> int:
    """``lastrowid`` of an INSERT (sqlite3 leaves it ``None`` only for statements that insert no row)."""
    if cursor.lastrowid is None:
        raise sqlite3.DatabaseError("INSERT returned no row id")
    return cursor.lastrowid


def _private_files(path: Path) -> None:
    """Set mode 0600 on the database and its WAL/SHM files (those that exist)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        f = Path(f"{path}{suffix}")
        if f.exists():
            os.chmod(f, 0o600)


class MessageQueue:
    """Thread-safe SQLite-backed FIFO (see the module docstring for its fault handling).

    Attributes:
        max_messages: Rows kept at most; the oldest are dropped beyond.
        dropped: Messages dropped by reason (``queue_full``, ``disk_full``).
        corrupt_moved: Paths of corrupt files moved aside during this run.
    """

    def __init__(self, path: str | Path, max_messages: int = 100_000, page_limit: int | None = None) -> None:
        """Open or create the queue file (``":memory:"`` for a throw-away queue).

        Args:
            path: SQLite file; its folder is created (0700) if missing.
            max_messages: Bound on stored rows.
            page_limit: Optional cap on the database size in pages (``PRAGMA
                max_page_count``): a size-limited store for tests and tiny disks.

        Raises:
            OSError: if the folder cannot be created.
            sqlite3.Error: if the database cannot be opened (other than corruption, which is recovered).
        """
        self.path = None if str(path) == ":memory:" else Path(path)
        self.max_messages, self.page_limit = max_messages, page_limit
        self.dropped: dict[str, int] = {"queue_full": 0, "disk_full": 0}
        self.corrupt_moved: list[Path] = []
        self._lock = threading.RLock()
        self._acked: set[int] = set()  # acknowledged ids whose DELETE has not succeeded yet
        self._max_id = 0
        self._count = 0
        self._last_warn = -WARN_EVERY_S
        self._db = self._open_checked()

    # --- opening, corruption ---
    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            old = os.umask(0o077)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            finally:
                os.umask(old)
        try:
            self._init_db(db)
        except BaseException:
            db.close()
            raise
        if self.path is not None:
            _private_files(self.path)
        return db

    def _init_db(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if self.page_limit:
            db.execute(f"PRAGMA max_page_count={int(self.page_limit)}")
        check = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({check})")
        for statement in _SCHEMA:
            db.execute(statement)
        if self._max_id:  # a fresh file after a corrupt one: ids continue where they were
            db.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox', ? WHERE NOT EXISTS "
                       "(SELECT 1 FROM sqlite_sequence WHERE name = 'outbox')", (self._max_id,))
        self._count = int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        self._max_id = max(self._max_id, int(last[0]) if last else 0)

    def _open_checked(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if self.path is None or not is_corrupt(exc):
                raise
            self._move_aside(self.path, exc)
            return self._connect()

    def _move_aside(self, path: Path, exc: Exception) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm", "-journal"):
            src = Path(f"{path}{suffix}")
            if src.exists():
                os.replace(src, Path(f"{target}{suffix}"))
        self.corrupt_moved.append(target)
        log.error("MQTT outbox %s is corrupt (%s): moved aside to %s, starting a new one; "
                  "events stored in it are not delivered", path, exc, target)

    def _recover(self, exc: Exception) -> None:
        """Replace a database found corrupt while running (lock held)."""
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        self._acked.clear()
        self._count = 0
        if self.path is None:
            self._db = self._connect()
            return
        self._move_aside(self.path, exc)
        self._db = self._connect()

    def _run(self, op: Callable[[sqlite3.Connection], T], default: T, on_full: Callable[[], None] | None = None) -> T:
        """Run ``op`` in the lock; corruption recovers (and retries once), a full disk calls ``on_full``."""
        with self._lock:
            for attempt in (0, 1):
                try:
                    return op(self._db)
                except sqlite3.DatabaseError as exc:
                    self._rollback()
                    if is_full(exc):
                        if on_full:
                            on_full()
                        return default
                    if not is_corrupt(exc) or attempt:
                        raise
                    self._recover(exc)
            return default

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _warn_full(self, what: str) -> None:
        now = time.monotonic()
        if now - self._last_warn >= WARN_EVERY_S:
            self._last_warn = now
            log.warning("MQTT outbox %s: disk full; %s (dropped so far: %d). Delivery resumes when space returns",
                        self.path or ":memory:", what, self.dropped["disk_full"])

    # --- writing ---
    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int | None:
        """Append one message; returns its id, or None if it was dropped (disk full)."""
        ids = self.put_many([OutgoingMessage(topic, payload, qos, retain)])
        return ids[0] if ids else None

    def put_many(self, messages: list[OutgoingMessage], marks: Iterable[TrackMark] = ()) -> list[int]:
        """Append messages (and open-track changes) in one transaction.

        Returns:
            The new ids, in order; empty when the disk is full (the messages are
            dropped and counted in ``dropped["disk_full"]``).
        """
        marks = list(marks)

        def op(db: sqlite3.Connection) -> list[int]:
            db.execute("BEGIN IMMEDIATE")
            ids = [_row_id(db.execute("INSERT INTO outbox (topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                                      (m.topic, m.payload, m.qos, int(m.retain)))) for m in messages]
            for mark in marks:
                _apply_mark(db, mark)
            over = self._count + len(ids) - self.max_messages
            trimmed = 0
            if over > 0:
                trimmed = db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                                     (over,)).rowcount
            db.execute("COMMIT")
            self._count += len(ids) - trimmed
            self.dropped["queue_full"] += trimmed
            self._max_id = max([self._max_id, *ids])
            return ids

        def full() -> None:
            self.dropped["disk_full"] += len(messages)
            self._warn_full(f"{len(messages)} new message(s) dropped")

        if not messages and not marks:
            return []
        return self._run(op, [], full)

    def delete(self, message_id: int) -> None:
        """Forget an acknowledged message."""
        self.delete_many([message_id])

    def delete_many(self, ids: Iterable[int]) -> None:
        """Forget acknowledged messages in one transaction.

        Ids whose ``DELETE`` fails (disk full) are remembered, never returned by
        :meth:`peek` again, and deleted by a later call.
        """
        with self._lock:
            self._acked.update(ids)
            if not self._acked:
                return
            todo = sorted(self._acked)

            def op(db: sqlite3.Connection) -> None:
                db.execute("BEGIN IMMEDIATE")
                gone = sum(db.execute("DELETE FROM outbox WHERE id = ?", (i,)).rowcount for i in todo)
                db.execute("COMMIT")
                self._count = max(0, self._count - gone)
                self._acked.difference_update(todo)

            self._run(op, None,
                      lambda: self._warn_full(f"{len(todo)} acknowledged message(s) kept until space returns"))

    # --- reading ---
    def __len__(self) -> int:
        """Messages stored and not yet acknowledged (kept in memory, no query)."""
        with self._lock:
            return max(0, self._count - len(self._acked))

    def peek(self, after_id: int = 0, limit: int = 100) -> list[QueuedMessage]:
        """Up to ``limit`` oldest messages with id > ``after_id``, in order (acknowledged ones excluded)."""
        def op(db: sqlite3.Connection) -> list[QueuedMessage]:
            rows = db.execute("SELECT id, topic, payload, qos, retain FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                              (after_id, limit + len(self._acked))).fetchall()
            out = [QueuedMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4])) for r in rows if r[0] not in self._acked]
            return out[:limit]

        return self._run(op, [])

    # --- open tracks ---
    def take_open_tracks(self, exclude_boot: str) -> list[OpenTrack]:
        """Remove and return the tracks left open by earlier runs (not ``exclude_boot``)."""
        def op(db: sqlite3.Connection) -> list[OpenTrack]:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute("SELECT boot_id, source, track_id, start_s, last_s, emotion FROM open_tracks "
                              "WHERE boot_id != ? ORDER BY boot_id, source, track_id", (exclude_boot,)).fetchall()
            db.execute("DELETE FROM open_tracks WHERE boot_id != ?", (exclude_boot,))
            db.execute("COMMIT")
            return [OpenTrack(*r) for r in rows]

        return self._run(op, [])

    def close(self) -> None:
        """Retry pending deletes, then close the database."""
        with self._lock:
            if self._acked:
                self.delete_many(())
            self._db.close()


def _apply_mark(db: sqlite3.Connection, mark: TrackMark) -> None:
    key = (mark.boot_id, mark.source, mark.track_id)
    if mark.op == "open":
        db.execute("INSERT OR REPLACE INTO open_tracks VALUES (?, ?, ?, ?, ?, ?)", (*key, mark.time_s, mark.time_s,
                                                                                    mark.emotion))
    elif mark.op == "update":
        db.execute("UPDATE open_tracks SET last_s = ?, emotion = ? WHERE boot_id = ? AND source = ? AND track_id = ?",
                   (mark.time_s, mark.emotion, *key))
    else:
        db.execute("DELETE FROM open_tracks WHERE boot_id = ? AND source = ? AND track_id = ?", key)
