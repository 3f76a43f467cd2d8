"""The Python API (``from edge import Analyzer``) on real images, a real clip and a real RTSP stream."""

import json

import numpy as np
import pytest

from conftest import read_frame, run_edge_fer
from edge import Analyzer, Face, FrameAnalysis


@pytest.fixture(scope="module")
def analyzer():
    with Analyzer() as fer:
        yield fer


@pytest.mark.integration
def test_analyze_image_gives_pixels_scores_and_matches_the_cli(analyzer, d19, tmp_path):
    import cv2

    frame = read_frame(d19, 200)  # manifest: the man smiles from 5.9 s (frame 177) on
    faces = analyzer.analyze_image(frame)
    assert len(faces) == 1 and isinstance(faces[0], Face)
    face = faces[0]
    x, y, w, h = face.bbox.as_tuple()
    assert 0 <= x < x + w <= frame.shape[1] + 5 and 0 <= y < y + h <= frame.shape[0] + 5 and w > 100  # pixels
    assert set(face.scores) == set(analyzer.labels) and abs(sum(face.scores.values()) - 1) < 0.03
    assert face.emotion == max(face.scores, key=face.scores.get) == "happy"
    assert 0.5 < face.detector_score <= 1 and face.track_id is None
    # one code path: edge-fer --image gives the same box and scores for the same pixels
    cv2.imwrite(str(tmp_path / "f.png"), frame)
    res = run_edge_fer("--image", str(tmp_path / "f.png"))
    line = json.loads(res.stdout.splitlines()[0])
    assert line["scores"] == face.scores and line["bbox"] == [round(v, 1) for v in face.bbox.as_tuple()]
    # grey and BGRA images are accepted; anything else is a clear ValueError
    assert len(analyzer.analyze_image(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))) == 1
    assert len(analyzer.analyze_image(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))) == 1
    with pytest.raises(ValueError, match="uint8"):
        analyzer.analyze_image(frame.astype(np.float32))
    assert analyzer.analyze_image(np.zeros((240, 320, 3), np.uint8)) == []


@pytest.mark.integration
def test_analyze_video_iterates_frames_then_gives_the_summary(analyzer, d19, tmp_path):
    clip = analyzer.analyze_video(d19)
    with pytest.raises(RuntimeError, match="iterated"):
        _ = clip.summary
    frames = list(clip)
    assert len(frames) == 250 and all(isinstance(f, FrameAnalysis) for f in frames)
    times = [f.time_s for f in frames]
    assert times == sorted(times) and abs(times[-1] - 8.3) < 0.05  # seconds (container timestamps)
    with_faces = [f for f in frames if f.faces]
    assert len(with_faces) >= 240 and {face.track_id for f in with_faces for face in f.faces} == {1}
    early = [f.faces[0].emotion for f in with_faces if f.time_s < 4.7]  # manifest: neutral 0-4.7 s
    assert early.count("neutral") / len(early) > 0.5
    assert all(f.faces[0].smoothed and f.faces[0].detector_score is None for f in with_faces)
    events = [e for f in frames for e in f.events] + clip.end_events
    assert events[0].type == "track_started" and events[-1].type == "track_ended"
    summary = clip.summary
    assert summary.frames == 250 and [t.track_id for t in summary.tracks] == [1]
    assert summary.events == len(events)
    assert summary.tracks[0].stats == events[-1].stats  # the track_ended statistics, as typed values


@pytest.mark.integration
def test_analyze_video_writes_the_cli_outputs(d19, tmp_path):
    with Analyzer(detect_every=5, model="fer2013-fast") as fer:
        summary = fer.analyze_video(d19, out_dir=tmp_path / "o").run()
    assert summary.detect_every == 5 and summary.frames == 250
    assert json.loads((tmp_path / "o" / "summary.json").read_text()) == summary.to_dict()
    assert (tmp_path / "o" / "frames.csv").read_text().count("\n") == summary.face_rows + 1


@pytest.mark.integration
def test_analyze_stream_on_a_live_rtsp_source(analyzer, rtsp_server):
    frames = list(analyzer.analyze_stream(rtsp_server.url, max_frames=20, max_seconds=30))
    assert len(frames) == 20
    assert sum(1 for f in frames if f.faces) >= 10  # tracks need min_hits detections first
    assert frames[-1].time_s > frames[0].time_s  # seconds since the stream started


@pytest.mark.integration
def test_missing_video_and_model_errors(analyzer, tmp_path):
    from edge.capture import SourceError
    from edge.runtime import ModelError

    with pytest.raises(SourceError) as err:
        analyzer.analyze_video(tmp_path / "none.mp4")
    assert err.value.kind == "missing"
    with pytest.raises(ModelError, match="model file not found"):
        Analyzer(model=tmp_path / "none.tflite")
    with Analyzer(model="fer2013-fast") as fer:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        fer.analyze_image(np.zeros((64, 64, 3), np.uint8))
