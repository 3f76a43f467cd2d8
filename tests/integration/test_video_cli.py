"""End-to-end ``edge-fer --video`` / ``--image`` on real clips, including bad input."""

import csv
import json
import subprocess

import pytest

from conftest import run_edge_fer
from edge import exit_codes as codes
from edge.labels import EMOTIONS

CLIPS = ["facerec_short_hamilton_clip.mp4", "fer_woman2.mp4", "liveportrait_d18.mp4", "liveportrait_d19.mp4"]


def _manifest(videos):
    return {r["file"]: r for r in csv.DictReader(open(videos / "manifest.csv"))}


def _rows(out):
    return list(csv.DictReader(open(out / "frames.csv")))


@pytest.mark.integration
@pytest.mark.parametrize("clip", CLIPS)
def test_every_clip_runs_to_the_end_with_correct_frame_counts(videos, tmp_path, clip):
    out = tmp_path / "out"
    res = run_edge_fer("--video", str(videos / clip), "--out", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == int(_manifest(videos)[clip]["frames"])
    rows = _rows(out)
    assert rows, "no face rows"
    assert list(rows[0]) == ["frame", "time_s", "track_id", "x", "y", "w", "h", *EMOTIONS, "emotion"]
    for r in rows[:50]:
        assert abs(sum(float(r[e]) for e in EMOTIONS) - 1) < 0.03 and r["emotion"] in EMOTIONS
    events = [json.loads(line) for line in open(out / "events.jsonl")]
    started = {e["track_id"] for e in events if e["type"] == "track_started"}
    ended = {e["track_id"] for e in events if e["type"] == "track_ended"}
    assert started == ended == {t["track_id"] for t in summary["tracks"]}
    assert "tracks" in res.stdout and "frames" in res.stdout


def _top(row):
    return max(EMOTIONS, key=lambda e: float(row[e]))


@pytest.mark.integration
def test_d19_is_neutral_then_happy_per_manifest(d19, tmp_path):
    """manifest.csv: neutral 0-4.7 s, smile 5.9-8.3 s (the man alternates smile and neutral in it)."""
    out = tmp_path / "out"
    res = run_edge_fer("--video", str(d19), "--out", str(out), "--no-progress", "--plot")
    assert res.returncode == 0, res.stderr
    rows = _rows(out)
    assert len({r["track_id"] for r in rows}) == 1  # one stable track for the one face
    early = [r for r in rows if float(r["time_s"]) < 4.7]
    late = [r for r in rows if 5.9 <= float(r["time_s"]) <= 8.3]
    # the classifier's verdict on the tracked face, frame by frame
    assert [_top(r) for r in early].count("neutral") / len(early) > 0.5
    assert [_top(r) for r in late].count("happy") / len(late) > 0.5
    # the smoothed current emotion: neutral for most of the start, and it does turn happy in the smile
    assert [r["emotion"] for r in early].count("neutral") / len(early) > 0.5
    events = [json.loads(line) for line in open(out / "events.jsonl")]
    assert any(e["type"] == "emotion_changed" and e["emotion"] == "happy" and 5.9 <= e["time_s"] <= 8.3
               for e in events)
    assert (out / "timeline.png").stat().st_size > 10_000


@pytest.mark.integration
def test_detect_every_5_carries_boxes_and_annotates(d19, tmp_path):
    out = tmp_path / "out"
    res = run_edge_fer("--video", str(d19), "--out", str(out), "--no-progress", "--detect-every", "5",
                       "--annotate", str(tmp_path / "ann.mp4"))
    assert res.returncode == 0, res.stderr
    rows = _rows(out)
    assert len(rows) >= 240  # a row on (almost) every frame, not only every 5th
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                            "stream=codec_name,pix_fmt,nb_read_frames", "-of", "json", str(tmp_path / "ann.mp4")],
                           capture_output=True, text=True, timeout=60, check=True)
    stream = json.loads(probe.stdout)["streams"][0]
    # H.264 in yuv420p is what every browser plays; one output frame per input frame
    assert (stream["codec_name"], stream["pix_fmt"], int(stream["nb_read_frames"])) == ("h264", "yuv420p", 250)


@pytest.mark.integration
def test_missing_file_and_non_video_are_one_line_errors(tmp_path):
    res = run_edge_fer("--video", str(tmp_path / "nope.mp4"))
    assert res.returncode == codes.INPUT_MISSING and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("edge-fer: no such file")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    res = run_edge_fer("--video", str(text))
    assert res.returncode == codes.INPUT_UNREADABLE and "Traceback" not in res.stderr


@pytest.mark.integration
def test_truncated_mp4_is_reported_not_a_traceback(videos, tmp_path):
    data = (videos / "fer_woman2.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    res = run_edge_fer("--video", str(cut), "--out", str(tmp_path / "o"), "--no-progress")
    assert "Traceback" not in res.stderr
    assert res.returncode in (codes.OK, codes.INPUT_UNREADABLE)
    if res.returncode == codes.OK:  # moov at the front: decodes up to the cut, and says so
        assert "truncated or corrupt" in res.stderr
        assert (tmp_path / "o" / "frames.csv").exists()
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    res = run_edge_fer("--video", str(empty))
    assert res.returncode == codes.INPUT_UNREADABLE and "Traceback" not in res.stderr


@pytest.mark.integration
def test_no_face_clip_and_odd_and_4k_sizes(tmp_path):
    import cv2
    import numpy as np

    blank = tmp_path / "blank.mp4"
    w = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"mp4v"), 10, (97, 61))
    for _ in range(10):
        w.write(np.full((61, 97, 3), 90, np.uint8))
    w.release()
    res = run_edge_fer("--video", str(blank), "--out", str(tmp_path / "o"), "--no-progress")
    assert res.returncode == 0 and "no faces found" in res.stderr
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["frames"] == 10


@pytest.mark.integration
def test_4k_frame_image_and_folder_with_bad_files(d19, tmp_path):
    import cv2

    from conftest import read_frame

    frame = read_frame(d19, 200)
    big = cv2.resize(frame, (3840, 3840))
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_face.jpg"), frame)
    cv2.imwrite(str(folder / "b_4k.jpg"), big)
    cv2.imwrite(str(folder / "c_blank.png"), frame * 0)
    (folder / "d_broken.jpg").write_bytes(b"garbage")
    res = run_edge_fer("--image", str(folder), "--annotate", str(tmp_path / "ann"))
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    by_file = {}
    for line in lines:
        by_file.setdefault(line["file"].rsplit("/", 1)[-1], []).append(line)
    assert by_file["a_face.jpg"][0]["emotion"] in EMOTIONS and len(by_file["a_face.jpg"]) == 1
    assert by_file["b_4k.jpg"][0]["bbox"][2] > 1000  # pixels of the 4K image
    assert by_file["c_blank.png"][0]["faces"] == 0
    assert by_file["d_broken.jpg"][0]["error"] == "unreadable image" and "unreadable" in res.stderr
    assert (tmp_path / "ann" / "a_face.jpg").exists()
    res = run_edge_fer("--image", str(folder / "d_broken.jpg"))
    assert res.returncode == codes.INPUT_UNREADABLE


@pytest.mark.integration
def test_bad_config_lists_every_problem(tmp_path, d19):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detect_every: 0\ndetector: {max_faces: -1, colour: red}\n")
    res = run_edge_fer("--video", str(d19), "--config", str(cfg))
    assert res.returncode == codes.USAGE and "Traceback" not in res.stderr
    for key in ("detect_every", "detector.max_faces", "detector.colour"):
        assert key in res.stderr
    res = run_edge_fer("--video", str(d19), "--model", str(tmp_path / "none.tflite"))
    assert res.returncode == codes.MODEL and "model file not found" in res.stderr


@pytest.mark.integration
def test_ffmpeg_and_litert_noise_only_at_debug(videos, tmp_path):
    data = bytearray((videos / "fer_woman2.mp4").read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 20000, 7):  # damage H.264 slices a third of the way in
        data[i] = 0xFF
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    noise = ("XNNPACK", "[h264", "NAL unit", "OPENCV", "moov atom")
    res = run_edge_fer("--video", str(bad), "--out", str(tmp_path / "o"), "--no-progress", "--log-level", "INFO")
    assert res.returncode == codes.OK, res.stderr
    shown = res.stdout + res.stderr
    assert "truncated or corrupt" in res.stderr and not any(n in shown for n in noise), shown[-2000:]
    cut = tmp_path / "cut.mp4"  # moov atom at the end of this file: nothing decodable
    cut.write_bytes(bytes(data[: len(data) // 2]))
    res = run_edge_fer("--video", str(cut), "--no-progress")
    assert res.returncode == codes.INPUT_UNREADABLE and not any(n in res.stderr for n in noise), res.stderr[-2000:]
    res = run_edge_fer("--video", str(bad), "--out", str(tmp_path / "o"), "--no-progress", "--log-level", "DEBUG")
    assert res.returncode == codes.OK and "XNNPACK" in res.stderr
    assert "[h264 @" in res.stderr and "[h264" not in res.stdout  # FFmpeg's own lines, on stderr


@pytest.mark.integration
def test_ctrl_c_exits_130_and_leaves_a_playable_partial_mp4(d19, tmp_path):
    import signal
    import sys
    import time

    from conftest import ROOT

    clip = tmp_path / "long.mp4"  # ~7,750 frames: far longer than the 3 s before the interrupt
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "30", "-i", str(d19), "-c", "copy", str(clip)],
                   check=True, timeout=60)
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--video", str(clip), "--out", str(tmp_path / "o"),
                             "--annotate", str(tmp_path / "a.mp4"), "--no-progress"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == codes.INTERRUPTED and err.strip().splitlines()[-1] == "edge-fer: interrupted", err
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                            "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(tmp_path / "a.mp4")],
                           capture_output=True, text=True, timeout=60)
    codec, count = probe.stdout.strip().split(",")
    assert codec == "h264" and 0 < int(count) < 7750
