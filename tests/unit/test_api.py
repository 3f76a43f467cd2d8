"""Python API surface: lazy import, result types, label-driven outputs (a model with ``contempt``)."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from edge.pipeline.core import FrameResult
from edge.pipeline.outputs import FramesCsv
from edge.types import BBox, EmotionScores, FaceResult

LABELS8 = ("angry", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def test_import_edge_stays_light_and_exports_the_api_lazily():
    code = ("import sys, edge\n"
            "assert 'cv2' not in sys.modules and 'edge.api' not in sys.modules, sorted(sys.modules)\n"
            "from edge import Analyzer, Face, FrameAnalysis, VideoAnalysis\n"
            "assert Analyzer.__module__ == 'edge.api'\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    import edge

    with pytest.raises(AttributeError):
        edge.NotThere  # noqa: B018


def test_face_to_dict_and_confidence():
    from edge.api import Face

    f = Face(BBox(1.04, 2.0, 30.0, 40.0), "happy", {"happy": 0.7, "sad": 0.3}, 0.91234)
    assert f.to_dict() == {"bbox": [1.0, 2.0, 30.0, 40.0], "emotion": "happy", "scores": {"happy": 0.7, "sad": 0.3},
                           "detector_score": 0.9123}
    assert f.confidence == 0.7
    t = Face(BBox(0, 0, 1, 1), "sad", {"happy": 0.6, "sad": 0.4}, None, 3, {"happy": 0.2, "sad": 0.8})
    assert t.confidence == 0.8 and t.to_dict()["track_id"] == 3


def _result(labels):
    probs = np.linspace(1, 2, len(labels)).astype(np.float32)
    probs /= probs.sum()
    scores = EmotionScores(probs, labels)
    face = FaceResult(1, BBox(10, 20, 30, 40), scores, scores, "contempt")
    return FrameResult(0, 0.0, 640, 480, True, [face])


def test_frames_csv_and_timeline_use_the_classifier_labels(tmp_path):
    path = tmp_path / "frames.csv"
    out = FramesCsv(path, LABELS8)
    for i in range(5):
        r = _result(LABELS8)
        r.frame_index, r.time_s = i, i / 10
        out.write(r)
    out.close()
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0])[7:15] == list(LABELS8) and rows[0]["emotion"] == "contempt"
    from edge.pipeline.plot import plot_timeline

    plot_timeline(path, tmp_path / "t.png", title="clip.mp4")
    assert (tmp_path / "t.png").stat().st_size > 5000


def test_as_bgr_rejects_what_is_not_an_image():
    from edge.api import _as_bgr

    with pytest.raises(ValueError):
        _as_bgr(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError):
        _as_bgr([[0]])
    assert _as_bgr(np.zeros((4, 4), np.uint8)).shape == (4, 4, 3)
