"""The web page's cost to the daemon: processing fps with the page open, added RSS, first-load bytes.

1. Processing fps: frames of liveportrait_d19.mp4 (480x480, one face) are decoded
   into memory once, then pushed through a real FramePipeline as fast as it goes,
   feeding WebState as the daemon does, in alternating phases (one run):
   ``web off`` (no server, no pushes), ``page closed`` (server up with
   live_view on, nobody watching), ``page open`` (clients on the dashboard's
   streams: the SSE event stream and the MJPEG live image, read by curl in
   other processes, or by headless Chromium with ``--client chrome``).
2. Added RSS: in a fresh process, RSS after the daemon-like pipeline ran,
   then after the web server started, after clients watched, after a photo upload.
3. First load: bytes of ``/`` and everything it links (no external CDN).

    .venv/bin/python benchmarks/bench_web.py [--rounds 12] [--phase-s 2] [--client curl|chrome]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED, machine, table  # noqa: E402

CLIP = SHARED / "videos" / "liveportrait_d19.mp4"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_frames(limit: int = 250) -> list:
    """The clip's frames as uint8 BGR arrays (decoded once, outside every timing)."""
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    while len(frames) < limit:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    if not frames:
        sys.exit(f"bench_web: cannot read {CLIP}")
    return frames


class Runner:
    """The daemon's per-frame work on preloaded frames (pipeline, then WebState pushes when ``push``)."""

    def __init__(self, cfg, state, frames: list) -> None:
        from edge.pipeline.factory import build_pipeline

        self.pipeline = build_pipeline(cfg, "cam0")
        self.state, self.frames, self.index = state, frames, 0

    def run_for(self, seconds: float, push: bool) -> tuple[float, float, float]:
        """Process frames for ``seconds``.

        Returns:
            (frames per second, CPU ms per frame of this thread, CPU % of one core used by the
            process's other threads meanwhile: the web server's).
        """
        from edge.pipeline.events import event_to_dict
        from edge.types import Frame

        count, t0, c0, p0 = 0, time.perf_counter(), time.thread_time(), time.process_time()
        while time.perf_counter() - t0 < seconds:
            image = self.frames[self.index % len(self.frames)]
            frame = Frame(self.index, self.index / 30.0, image, "cam0")
            self.index += 1
            result = self.pipeline.process(frame)
            if push:
                self.state.frame_processed("cam0", frame, result)
                self.state.add_events([event_to_dict(e) for e in result.events])
                self.state.source_status("cam0", True, 0)
            count += 1
        wall, own = time.perf_counter() - t0, time.thread_time() - c0
        return count / wall, 1000 * own / count, 100 * (time.process_time() - p0 - own) / wall


def open_clients(url: str, kind: str) -> list:
    """Watchers of the dashboard: curl on the SSE and MJPEG streams, or a headless Chromium on ``/``."""
    if kind == "curl":
        return [subprocess.Popen(["curl", "-sN", "-o", "/dev/null", url + path])
                for path in ("api/events/stream", "stream/cam0.mjpg")]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
    from web_helpers import chrome

    ctx = chrome()
    driver = ctx.__enter__()
    driver.get(url)
    return [(ctx, driver)]


def close_clients(clients: list) -> None:
    """End the watchers started by :func:`open_clients`."""
    for client in clients:
        if isinstance(client, subprocess.Popen):
            client.terminate()
            client.wait(5)
        else:
            client[0].__exit__(None, None, None)


CONDITIONS = ("web off", "page closed", "page open")


def _phase(runner, server, condition: str, args) -> tuple[float, float, float, float]:
    """One phase: (fps, CPU ms per frame, web server CPU %, live JPEGs per second)."""
    if condition != "page open":
        return (*runner.run_for(args.phase_s, push=condition == "page closed"), 0.0)
    clients = open_clients(server.url, args.client)
    try:
        time.sleep(0.5)
        before, t0 = server.handlers.encoder.encoded, time.perf_counter()
        fps, cpu_ms, other = runner.run_for(args.phase_s, push=True)
        return fps, cpu_ms, other, (server.handlers.encoder.encoded - before) / (time.perf_counter() - t0)
    finally:
        close_clients(clients)


def fps_phases(args) -> list[list]:
    """Rounds of the three conditions (order rotated each round); rows of the fps table."""
    from edge.config import Config
    from edge.web.run import start_in_daemon
    from edge.web.state import WebState

    cfg = Config.model_validate({"device_id": "bench", "web": {"enabled": True, "live_view": True,
                                                                "port": free_port()}})
    state = WebState(["cam0"], live_view=True, device_id="bench")
    runner = Runner(cfg, state, load_frames())
    runner.run_for(2.0, push=False)   # warm-up
    server = start_in_daemon(cfg, state)
    got: dict[str, list[tuple[float, float, float, float]]] = {c: [] for c in CONDITIONS}
    try:
        for i in range(args.rounds):
            for condition in CONDITIONS[i % 3:] + CONDITIONS[:i % 3]:
                got[condition].append(_phase(runner, server, condition, args))
    finally:
        server.stop()
    rows = []
    for condition, runs in got.items():
        ratios = [r[0] / c[0] for r, c in zip(runs, got["page closed"])]
        rows.append([condition, f"{statistics.median(r[0] for r in runs):.1f}",
                     f"{min(r[0] for r in runs):.0f}-{max(r[0] for r in runs):.0f}",
                     f"{statistics.median(ratios):.3f}", f"{statistics.median(r[1] for r in runs):.2f}",
                     f"{statistics.median(r[2] for r in runs):.1f}",
                     f"{statistics.median(r[3] for r in runs):.1f}" if condition == "page open" else ""])
    return rows


def rss_mb() -> float:
    """Resident set size of this process, MB (``VmRSS`` of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_child() -> None:
    """Run in a fresh process: print RSS (MB) at each step as JSON."""
    import cv2

    from edge.config import Config
    from edge.web.state import WebState

    cfg = Config.model_validate({"device_id": "bench", "web": {"enabled": True, "live_view": True,
                                                                "port": free_port()}})
    frames = load_frames(120)
    steps = {}
    state = WebState(["cam0"], live_view=True, device_id="bench")
    runner = Runner(cfg, state, frames)
    runner.run_for(3.0, push=False)
    steps["daemon pipeline, web off"] = rss_mb()
    from edge.web.run import start_in_daemon

    server = start_in_daemon(cfg, state)
    runner.run_for(2.0, push=True)
    steps["+ web server started (live_view on)"] = rss_mb()
    clients = open_clients(server.url, "curl")
    runner.run_for(4.0, push=True)
    close_clients(clients)
    steps["+ dashboard streams watched 4 s"] = rss_mb()
    ok, jpeg = cv2.imencode(".jpg", frames[100])
    request = urllib.request.Request(server.url + "api/classify", data=jpeg.tobytes(), method="POST")
    urllib.request.urlopen(request, timeout=60).read()
    steps["+ one photo upload (own detector and classifier loaded)"] = rss_mb()
    server.stop()
    print(json.dumps(steps))


def first_load(args) -> list[list]:
    """Bytes of ``/`` and of every file it links."""
    from edge.config import Config
    from edge.web.run import start_in_daemon
    from edge.web.state import WebState

    cfg = Config.model_validate({"web": {"enabled": True, "port": free_port()}})
    server = start_in_daemon(cfg, WebState(["cam0"]))
    rows = []
    try:
        for page in ("", "classify"):
            html = urllib.request.urlopen(server.url + page, timeout=10).read()
            links = re.findall(rb'(?:href|src)="(static/[^"]+)"', html)
            sizes = [len(html)] + [len(urllib.request.urlopen(server.url + link.decode(), timeout=10).read())
                                   for link in links]
            external = re.findall(rb'(?:href|src)="(?:https?:)?//', html)
            rows.append([f"/{page}", len(links) + 1, sum(sizes), "none" if not external else "YES"])
    finally:
        server.stop()
    return rows


def main() -> None:
    """Print the fps, RSS and first-load tables."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--phase-s", type=float, default=2.0, help="seconds per phase")
    ap.add_argument("--client", choices=["curl", "chrome"], default="curl")
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child()
        return
    print(f"machine: {machine()}")
    print(f"\nprocessing fps, {CLIP.name} (480x480, 1 face), {args.rounds} rounds x {args.phase_s:g} s per phase, "
          f"clients: {args.client}")
    print(table(fps_phases(args), ["condition", "median fps", "range", "median ratio to page closed (paired)",
                                   "processing CPU ms/frame", "web server CPU % of a core", "live JPEG/s"]))
    child = subprocess.run([sys.executable, __file__, "--rss-child"], capture_output=True, text=True, timeout=300)
    steps = json.loads(child.stdout.strip().splitlines()[-1])
    base = next(iter(steps.values()))
    print("\nRSS of a fresh process (MB)")
    print(table([[k, f"{v:.1f}", f"{v - base:+.1f}"] for k, v in steps.items()], ["step", "RSS", "added"]))
    print("\nfirst load")
    print(table(first_load(args), ["page", "requests", "bytes", "external hosts"]))


if __name__ == "__main__":
    main()
