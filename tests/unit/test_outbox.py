"""The MQTT outbox under faults: full disk, corrupt file, permissions, no COUNT(*) per insert, batching."""

import logging
import os
import sqlite3
import time

from edge.publish.queue import MessageQueue, OutgoingMessage, TrackMark


def _msgs(n, size=200):
    return [OutgoingMessage("t", os.urandom(size)) for _ in range(n)]


def test_full_disk_drops_new_counts_them_warns_once_and_keeps_what_is_stored(tmp_path, caplog):
    q = MessageQueue(tmp_path / "q.sqlite", page_limit=40)  # SQLite's own size cap: SQLITE_FULL exactly
    stored = [i for _ in range(400) for i in q.put_many(_msgs(5))]
    assert q.dropped["disk_full"] > 0 and len(stored) == len(q) > 0
    assert len([r for r in caplog.records if "disk full" in r.message]) == 1  # once a minute at most
    assert [m.id for m in q.peek(0, 10_000)] == stored  # nothing already stored was lost
    q.delete_many(stored[:50])  # acknowledged: space returns
    assert q.put_many(_msgs(5)) and len(q) == len(stored) - 50 + 5
    q.close()
    assert len(MessageQueue(tmp_path / "q.sqlite")) == len(stored) - 50 + 5


def test_acknowledged_ids_are_never_handed_out_again_even_if_delete_fails(tmp_path):
    q = MessageQueue(tmp_path / "q.sqlite")
    ids = q.put_many(_msgs(4))
    blocker = sqlite3.connect(tmp_path / "q.sqlite", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the DELETE cannot run now
    q._db.execute("PRAGMA busy_timeout=0")
    try:
        q.delete_many(ids[:2])
    except sqlite3.OperationalError:
        pass
    assert [m.id for m in q.peek()] == ids[2:] and len(q) == 2
    blocker.rollback()
    q.delete_many([])  # retried later
    q.close()
    assert [m.id for m in MessageQueue(tmp_path / "q.sqlite").peek()] == ids[2:]


def test_not_a_database_is_moved_aside_with_a_timestamp_and_a_new_one_works(tmp_path, caplog):
    path = tmp_path / "q.sqlite"
    path.write_bytes(b"this is not sqlite" * 500)
    t0 = time.monotonic()
    with caplog.at_level(logging.ERROR):
        q = MessageQueue(path)
    assert time.monotonic() - t0 < 5
    assert len(q.corrupt_moved) == 1 and q.corrupt_moved[0].name.startswith("q.sqlite.corrupt-2")
    assert q.corrupt_moved[0].read_bytes().startswith(b"this is not sqlite")
    assert any(r.levelno == logging.ERROR and "corrupt" in r.message for r in caplog.records)
    assert q.put("t", b"x") is not None and len(q) == 1


def test_malformed_database_is_moved_aside(tmp_path):
    path = tmp_path / "q.sqlite"
    q = MessageQueue(path)
    q.put_many(_msgs(2000, 400))
    q.close()
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // 4096, 3):  # scribble over b-tree pages, keep the header
        data[page * 4096:page * 4096 + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))
    q = MessageQueue(path)
    assert len(q.corrupt_moved) == 1 and len(q) == 0 and q.put("t", b"x") is not None


def test_corruption_found_while_running_recovers_and_ids_continue(tmp_path, caplog):
    path = tmp_path / "q.sqlite"
    q = MessageQueue(path)
    ids = q.put_many(_msgs(3))
    calls = []

    def op(db):  # what a read of a page scribbled over by a failing disk raises, once
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return "retried"

    with caplog.at_level(logging.ERROR):
        assert q._run(op, None) == "retried"
    assert len(q.corrupt_moved) == 1 and len(q) == 0
    new = q.put("t", b"y")
    assert new > max(ids)  # a sender's position (last id handed over) stays valid
    assert [m.id for m in q.peek(max(ids))] == [new]


def test_files_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        q = MessageQueue(tmp_path / "state" / "q.sqlite")
        q.put("t", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    for suffix in ("", "-wal", "-shm"):
        f = tmp_path / "state" / f"q.sqlite{suffix}"
        assert f.exists() and f.stat().st_mode & 0o777 == 0o600, suffix


def test_no_count_per_insert_and_one_transaction_per_batch(tmp_path):
    q = MessageQueue(tmp_path / "q.sqlite", max_messages=50)
    statements = []
    q._db.set_trace_callback(statements.append)
    for _ in range(20):
        q.put_many(_msgs(5))
    assert not [s for s in statements if "COUNT(" in s.upper()]
    assert sum(s.startswith("BEGIN") for s in statements) == 20
    assert len(q) == 50 and q.dropped["queue_full"] == 50


def test_queue_full_drops_oldest_and_counts(tmp_path):
    q = MessageQueue(tmp_path / "q.sqlite", max_messages=10)
    ids = [q.put("t", f"m{i}".encode()) for i in range(84)]
    assert q.dropped["queue_full"] == 74 and [m.id for m in q.peek()] == ids[-10:]


def test_open_tracks_are_kept_until_closed_and_taken_by_a_later_boot(tmp_path):
    q = MessageQueue(tmp_path / "q.sqlite")
    q.put_many(_msgs(1), [TrackMark("open", "A", "cam0", 1, 1.0, "happy"),
                          TrackMark("open", "A", "cam0", 2, 1.5, "sad")])
    q.put_many(_msgs(1), [TrackMark("update", "A", "cam0", 1, 4.0, "neutral"), TrackMark("close", "A", "cam0", 2, 2.0)])
    q.close()
    q = MessageQueue(tmp_path / "q.sqlite")
    assert q.take_open_tracks(exclude_boot="A") == []
    (t,) = q.take_open_tracks(exclude_boot="B")
    assert (t.boot_id, t.source, t.track_id, t.start_s, t.last_s, t.emotion) == ("A", "cam0", 1, 1.0, 4.0, "neutral")
    assert q.take_open_tracks(exclude_boot="B") == []
