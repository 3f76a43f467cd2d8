"""The daemon on a live RTSP source: frames dropped at the source fps, and RSS over time.

A 640x480 15 fps H.264 stream (liveportrait_d19.mp4 padded and looped, one
face) is served by the test RTSP server (GStreamer, /usr/bin/python3 with
python3-gi) on 127.0.0.1; the daemon runs with MQTT to a local mosquitto
(if installed). Prints processed/dropped frames and RSS at each checkpoint.

    .venv/bin/python benchmarks/bench_daemon.py --minutes 20
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from benchmarks.common import SHARED, machine, table  # noqa: E402
from conftest import Mosquitto, RtspServer  # noqa: E402
from daemon_helpers import scrape, start_daemon, write_config  # noqa: E402


def make_stream_clip(tmp: Path, seconds: int) -> Path:
    out = tmp / "live640x480.mp4"
    loops = seconds // 8 + 1
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i",
                    str(SHARED / "videos" / "liveportrait_d19.mp4"), "-vf", "pad=640:480:80:0,fps=15",
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edge-fer-daemon-bench-"))
    clip = make_stream_clip(tmp, int(args.minutes * 60) + 60)
    rtsp = RtspServer(clip)
    rtsp.start()
    broker = Mosquitto(tmp)
    broker.start()
    cfg, mport = write_config(tmp, broker.port, rtsp.url)
    proc = start_daemon(cfg, tmp / "daemon.log")
    checkpoints = sorted({0.5, 1.0, *[m for m in (5, 10, 20) if m <= args.minutes], args.minutes})
    rows, t0 = [], time.monotonic()
    try:
        for minute in checkpoints:
            time.sleep(max(0.0, t0 + minute * 60 - time.monotonic()))
            m = scrape(mport)
            done = m.get('edge_fer_frames_processed_total{source="cam0"}', 0)
            dropped = m.get('edge_fer_frames_dropped_total{source="cam0"}', 0)
            rows.append([f"{minute:g}", f"{done:.0f}", f"{dropped:.0f}", f"{done / (time.monotonic() - t0):.1f}",
                         f"{rss_mb(proc.pid):.1f}"])
            print(rows[-1], flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        rtsp.stop()
        broker.stop()
    print(f"\nmachine: {machine()}; source: RTSP 640x480 @ 15 fps, 1 face, detect every frame\n")
    print(table(rows, ["minutes", "frames processed", "frames dropped", "fps", "daemon RSS (MB)"]))


if __name__ == "__main__":
    main()
