"""Fault injection and soak against a real mosquitto on 127.0.0.1 (a script that prints tables, not a CI test).

Scenarios (each counts events by ``boot_id``/``seq`` at a real subscriber):

* ``drain``: N events stored in the outbox, published at each ``--qos``, the
  broker stopped K times (SIGTERM: mosquitto saves its sessions and messages at
  exit) while they drain;
* ``broker-kill``: the same with SIGKILL, for each mosquitto autosave setting
  (``--autosave``): mosquitto loses what it acknowledged after its last save,
  which no publisher can see;
* ``throughput``: N events drained with no fault, events/s at each ``--qos``;
* ``daemon-kill``: the real daemon SIGKILLed K times on a clip with faces, then
  stopped with SIGTERM; gaps in ``seq`` below the highest one received are lost
  events; every ``track_started`` must be matched by a ``track_ended``
  (a killed run's tracks are closed at the next start, ``reason: "restart"``);
* ``full-disk``: the outbox on a 1 MiB tmpfs (needs root), broker down until the
  disk fills, then space returns and the broker comes back;
* ``commands``: 1,000 ``ping``, 100 oversized (1 MB) and 100 wrong-token commands;
* ``soak``: the daemon on a looped clip for ``--soak-minutes``: RSS, fds and threads.

    .venv/bin/python benchmarks/faults.py --scenarios drain,broker-kill,throughput --qos 1,2
    .venv/bin/python benchmarks/faults.py --scenarios drain --qos 2 --broker-conf 'max_inflight_messages 1000'
    .venv/bin/python benchmarks/faults.py --scenarios daemon-kill,full-disk,commands --soak-minutes 5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from test_exactly_once import RedeliveryCounter  # noqa: E402

from benchmarks.common import SHARED, machine, table  # noqa: E402
from conftest import Mosquitto  # noqa: E402
from daemon_helpers import (  # noqa: E402
    Subscriber,
    persistent_broker,
    scrape,
    start_daemon,
    wait_metric,
    write_config,
)

EVENT = "edge-fer/t1/cam0/event"
CLIP = SHARED / "videos" / "facerec_short_hamilton_clip.mp4"  # faces come and go: many events
#: mosquitto persistence settings tried with SIGKILL (``--autosave`` names); the default saves every 1800 s.
AUTOSAVE = {
    "default": "",
    "1s": "autosave_interval 1\n",
    "100changes": "autosave_on_changes true\nautosave_interval 100\n",
    "1change": "autosave_on_changes true\nautosave_interval 1\n",
}


@dataclass(frozen=True)
class Drain:
    """One drain run: N events at ``qos``, the broker hit ``kills`` times with ``sig``.

    Attributes:
        sub_qos: Subscription QoS (2: the broker-to-subscriber leg is exactly once, so duplicates left
            are the daemon's resends).
        broker_conf: Extra mosquitto.conf lines (persistence settings).
    """

    n: int
    kills: int
    sig: int = signal.SIGTERM
    qos: int = 2
    sub_qos: int = 2
    broker_conf: str = ""


def count(events: list[dict], created: int | None = None) -> dict:
    """created/received/lost/duplicated over every boot: created is the highest seq per boot unless given."""
    by_boot: dict[str, list[int]] = {}
    for e in events:
        by_boot.setdefault(e["boot_id"], []).append(e["seq"])
    received = sum(len(set(s)) for s in by_boot.values())
    dup = sum(len(s) - len(set(s)) for s in by_boot.values())
    top = sum(max(s) for s in by_boot.values()) if created is None else created
    return {"boots": len(by_boot), "created": top, "received": received, "lost": top - received, "duplicated": dup}


def proc_stats(pid: int) -> tuple[float, int, int]:
    """(RSS MB, open fds, threads) of a process."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss = next(int(x.split()[1]) for x in status if x.startswith("VmRSS:")) / 1024
    threads = next(int(x.split()[1]) for x in status if x.startswith("Threads:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def _drain_events(n: int, boot: str, qos: int) -> list:
    from edge.publish.queue import OutgoingMessage

    return [OutgoingMessage(EVENT, json.dumps({"boot_id": boot, "seq": i}).encode(), qos) for i in range(1, n + 1)]


def _hit_broker(b: Mosquitto, pub, d: Drain, t0: float) -> None:
    """Hit the broker ``d.kills`` times with ``d.sig``, evenly over the drain, restarting it 1 s later."""
    for k in range(d.kills):
        target = d.n - (k + 1) * d.n // (d.kills + 1)
        while pub.queued > target and time.monotonic() - t0 < 300:
            time.sleep(0.005)
        b.proc.send_signal(d.sig)
        b.proc.wait(10)
        time.sleep(1.0)
        b.start()


def scenario_drain(tmp: Path, d: Drain) -> dict:
    """N stored events drained while the broker is hit ``kills`` times; counted at a persistent subscriber.

    Returns:
        created/received/lost/duplicated (and how many of those copies the broker sent again on its own,
        DUP set), whether the sender lived, seconds to drain and events/s.
    """
    from edge.config.schema import MQTTConfig
    from edge.publish.mqtt import MqttPublisher
    from edge.publish.queue import MessageQueue
    from edge.publish.topics import Topics

    tmp.mkdir(parents=True, exist_ok=True)
    b = persistent_broker(tmp, d.broker_conf)
    b.start()
    sub = RedeliveryCounter(b.port, client_id=f"drain-{tmp.name}", persistent=True, qos=d.sub_qos)
    sub.wait_for(lambda: sub.client.is_connected(), what="subscriber")
    pub = MqttPublisher(MQTTConfig(host="127.0.0.1", port=b.port, keepalive_s=5, reconnect_max_s=1, qos=d.qos),
                        Topics("edge-fer", "t1"), MessageQueue(tmp / "outbox.sqlite"))
    msgs = _drain_events(d.n, tmp.name, d.qos)
    for i in range(0, d.n, 500):
        pub.outbox.put_many(msgs[i:i + 500])
    pub.start()
    t0 = time.monotonic()
    _hit_broker(b, pub, d, t0)
    while pub.queued and time.monotonic() - t0 < 600:
        time.sleep(0.01)
    took = time.monotonic() - t0
    time.sleep(2.0)
    alive = pub.alive
    pub.stop()
    result = count(sub.json_on(EVENT), created=d.n)
    by_broker = sub.duplicates(EVENT)[1]
    sub.close()
    b.stop()
    return {**result, "of them redelivered by the broker (DUP)": by_broker, "sender alive": alive,
            "s": round(took, 1), "events/s": round(d.n / took)}


def scenario_daemon_kill(tmp: Path, kills: int, every_s: float, qos: int = 2) -> dict:
    """The daemon (``mqtt.qos``) SIGKILLed ``kills`` times (every ``every_s`` s), restarted, finally SIGTERMed."""
    b = persistent_broker(tmp)
    b.start()
    sub = Subscriber(b.port, client_id="daemon-kill", persistent=True, qos=2)
    cfg, mport = write_config(tmp, b.port, str(CLIP), mqtt={"qos": qos})
    proc = start_daemon(cfg, tmp / "daemon-kill.log")
    for _ in range(kills):
        time.sleep(every_s)
        proc.kill()
        proc.wait(10)
        proc = start_daemon(cfg, tmp / "daemon-kill.log")
    time.sleep(every_s)
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    time.sleep(2.0)
    events = sub.json_on(EVENT)
    sub.close()
    b.stop()
    started = sum(e["type"] == "track_started" for e in events)
    ended = sum(e["type"] == "track_ended" for e in events)
    restart = sum(e.get("reason") == "restart" for e in events)
    return {**count(events), "track_started": started, "track_ended": ended, "closed at restart": restart}


def scenario_full_disk(tmp: Path) -> dict:
    """Outbox on a 1 MiB tmpfs: fill it with the broker down, then free space and bring the broker back."""
    mnt = tmp / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)]).returncode:
        return {"skipped": "mount needs root"}
    b = persistent_broker(tmp)
    b.start()
    sub = Subscriber(b.port, client_id="full-disk", persistent=True)
    sub.wait_for(lambda: sub.client.is_connected(), what="subscriber")
    time.sleep(0.3)
    b.stop()
    cfg, mport = write_config(tmp, b.port, str(CLIP), mqtt={"queue_path": str(mnt / "outbox.sqlite")})
    (mnt / "filler").write_bytes(b"\0" * (1024 * 1024 - 160 * 1024))
    proc = start_daemon(cfg, tmp / "full-disk.log")
    try:
        wait_metric(mport, 'edge_fer_events_dropped_total{reason="disk_full"}', lambda v: v > 0, timeout=120)
        time.sleep(3)
        (mnt / "filler").unlink()
        b.start()
        wait_metric(mport, "edge_fer_mqtt_queued_events", lambda v: v == 0, timeout=60)
        m = scrape(mport)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        time.sleep(1.0)
        dropped = int(m['edge_fer_events_dropped_total{reason="disk_full"}'])
        res = count(sub.json_on(EVENT))  # created: the highest seq (the shutdown's track_ended come last)
        return {**res, "dropped (disk_full)": dropped, "lost beyond drops": res["lost"] - dropped,
                "alive while full": alive, "warnings": (tmp / "full-disk.log").read_text().count("disk full")}
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
        b.stop()
        subprocess.run(["umount", "-l", str(mnt)])


def scenario_commands(tmp: Path) -> dict:
    """1,000 pings, 100 oversized (1 MB) and 100 wrong-token commands; replies, time and RSS."""
    b = Mosquitto(tmp)
    b.start()
    tok = tmp / "token"
    tok.write_text("bench-token\n")
    cfg, mport = write_config(tmp, b.port, str(CLIP), mqtt={"command_token_file": str(tok)})
    proc = start_daemon(cfg, tmp / "commands.log")
    sub = Subscriber(b.port)
    try:
        sub.wait_for(lambda: sub.json_on(EVENT), timeout=30, what="an event")
        rss0 = proc_stats(proc.pid)[0]
        t0 = time.monotonic()
        for i in range(1000):
            sub.client.publish("edge-fer/t1/cmd", json.dumps({"cmd": "ping", "id": i, "token": "bench-token"}), qos=1)
        for _ in range(100):
            sub.client.publish("edge-fer/t1/cmd", json.dumps({"cmd": "ping", "id": "x" * 1_000_000}), qos=1)
            sub.client.publish("edge-fer/t1/cmd", json.dumps({"cmd": "pause", "source": "cam0", "token": "no"}), qos=1)
        sub.wait_for(lambda: len(sub.on("edge-fer/t1/cmd/result")) >= 1200, timeout=120, what="1200 replies")
        took = time.monotonic() - t0
        replies = sub.json_on("edge-fer/t1/cmd/result")
        m = scrape(mport)
        return {"replies": len(replies), "ok": sum(r["ok"] for r in replies), "s": round(took, 2),
                "largest reply (B)": max(len(json.dumps(r)) for r in replies),
                "rejected too_large": m['edge_fer_commands_rejected_total{reason="too_large"}'],
                "rejected bad_token": m['edge_fer_commands_rejected_total{reason="bad_token"}'],
                "RSS growth (MB)": round(proc_stats(proc.pid)[0] - rss0, 1)}
    finally:
        proc.kill()
        sub.close()
        b.stop()


def scenario_soak(tmp: Path, minutes: float) -> list[list[str]]:
    """The daemon on the looped clip for ``minutes``: RSS, fds, threads, frames, events at checkpoints."""
    b = Mosquitto(tmp)
    b.start()
    cfg, mport = write_config(tmp, b.port, str(CLIP))
    proc = start_daemon(cfg, tmp / "soak.log")
    rows, t0 = [], time.monotonic()
    checkpoints = sorted({0.5, 1.0, *[m for m in (2, 5, 10, 15, 20, 30) if m < minutes], minutes})
    try:
        for minute in checkpoints:
            time.sleep(max(0.0, t0 + minute * 60 - time.monotonic()))
            m = scrape(mport)
            rss, fds, threads = proc_stats(proc.pid)
            events = sum(v for k, v in m.items() if k.startswith("edge_fer_events_published_total"))
            frames = m['edge_fer_frames_processed_total{source="cam0"}']
            rows.append([f"{minute:g}", f"{frames:.0f}",
                         f"{events:.0f}", f"{m['edge_fer_mqtt_queued_events']:.0f}", f"{rss:.1f}", str(fds),
                         str(threads)])
            print(rows[-1], flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        b.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", default="drain,broker-kill,throughput,daemon-kill,full-disk,commands")
    ap.add_argument("--events", type=int, default=20_000, help="events in the drain scenarios")
    ap.add_argument("--kills", type=int, default=10, help="broker stops/kills during the drain")
    ap.add_argument("--qos", default="1,2", help="publish QoS values tried in the drain scenarios")
    ap.add_argument("--autosave", default=",".join(AUTOSAVE), help=f"broker-kill persistence ({', '.join(AUTOSAVE)})")
    ap.add_argument("--daemon-kills", type=int, default=5)
    ap.add_argument("--sub-qos", type=int, default=2, choices=(1, 2), help="subscription QoS in the drain scenarios")
    ap.add_argument("--broker-conf", default="", help="more mosquitto.conf lines for the drain scenarios, separated "
                    "by ';' (e.g. 'max_inflight_messages 1000')")
    ap.add_argument("--soak-minutes", type=float, default=0, help="0: no soak")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edge-fer-faults-"))
    wanted = args.scenarios.split(",")
    rows = _drain_rows(args, tmp, wanted)
    daemon_qos = int(args.qos.split(",")[-1])
    runs = {"daemon-kill": lambda d: scenario_daemon_kill(d, args.daemon_kills, 6.0, daemon_qos),
            "full-disk": scenario_full_disk, "commands": scenario_commands}
    for name, fn in runs.items():
        if name in wanted:
            d = tmp / name
            d.mkdir()
            r = fn(d)
            rows.append([name, *_cells(r)])
            print(rows[-1], flush=True)
    print(f"\nmachine: {machine()}\n")
    print(table(rows, ["scenario", "result"]))
    if args.soak_minutes:
        d = tmp / "soak"
        d.mkdir()
        soak = scenario_soak(d, args.soak_minutes)
        print()
        print(table(soak, ["minutes", "frames", "events", "queued", "RSS (MB)", "fds", "threads"]))


def _drains(args: argparse.Namespace, wanted: list[str]) -> list[tuple[str, Drain]]:
    """(row name, run) of the drain scenarios asked for: SIGTERM stops, SIGKILLs per autosave, no fault."""
    n, k, sq = args.events, args.kills, args.sub_qos
    conf = "".join(f"{line.strip()}\n" for line in args.broker_conf.split(";") if line.strip())
    note = f", broker conf '{args.broker_conf}'" if conf else ""
    runs = []
    for qos in (int(q) for q in args.qos.split(",")):
        if "drain" in wanted:
            runs.append((f"drain {n}, broker stopped {k}x (SIGTERM), QoS {qos}{note}",
                         Drain(n, k, qos=qos, sub_qos=sq, broker_conf=conf)))
        for save in args.autosave.split(",") if "broker-kill" in wanted else ():
            runs.append((f"drain {n}, broker killed {k}x (SIGKILL), autosave {save}, QoS {qos}{note}",
                         Drain(n, k, signal.SIGKILL, qos, sq, AUTOSAVE[save] + conf)))
        if "throughput" in wanted:
            runs.append((f"drain {n}, no fault, QoS {qos}{note}", Drain(n, 0, qos=qos, sub_qos=sq, broker_conf=conf)))
    return runs


def _drain_rows(args: argparse.Namespace, tmp: Path, wanted: list[str]) -> list[list[str]]:
    """Run the drain scenarios; one table row each (printed as it finishes)."""
    rows = []
    for i, (name, run) in enumerate(_drains(args, wanted)):
        rows.append([f"{name}, subscriber QoS {run.sub_qos}", *_cells(scenario_drain(tmp / f"drain{i}", run))])
        print(rows[-1], flush=True)
    return rows


def _cells(r: dict) -> list[str]:
    return [", ".join(f"{k} {v}" for k, v in r.items())]


if __name__ == "__main__":
    main()
