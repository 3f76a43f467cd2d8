"""edge.detect: BlazeFace on real faces from the clips, and on blank frames."""

import numpy as np
import pytest

from conftest import read_frame
from edge.detect import BlazeFace, DetectorOptions
from edge.detect.anchors import FULL_RANGE, SHORT_RANGE, ssd_anchor_centres
from edge.detect.nms import weighted_nms
from edge.runtime import ModelError


def test_anchor_counts_match_the_models():
    assert ssd_anchor_centres(SHORT_RANGE).shape == (896, 2)
    assert ssd_anchor_centres(FULL_RANGE).shape == (2304, 2)


@pytest.mark.parametrize("variant", ["short", "full"])
def test_finds_the_face_in_a_studio_clip(d19, variant):
    frame = read_frame(d19, 60)
    dets = BlazeFace(DetectorOptions(variant=variant)).detect(frame)
    assert len(dets) == 1
    d = dets[0]
    assert d.score > 0.7
    # the man's face is in the centre of the 480x480 frame, ~250-300 px wide
    cx, cy = d.bbox.x + d.bbox.w / 2, d.bbox.y + d.bbox.h / 2
    assert 180 < cx < 300 and 180 < cy < 340 and 180 < d.bbox.w < 350
    (lx, ly), (rx, ry) = d.eyes
    assert lx < rx and d.bbox.y < ly < cy and d.bbox.y < ry < cy  # eyes in the upper half of the box


def test_non_square_frame_maps_back_to_frame_pixels(videos):
    frame = read_frame(videos / "fer_woman2.mp4", 100)  # 596x336
    d = BlazeFace().detect(frame)[0]
    assert 0 <= d.bbox.x and d.bbox.x + d.bbox.w <= frame.shape[1]
    assert 0 <= d.bbox.y and d.bbox.y + d.bbox.h <= frame.shape[0] + 10


def test_blank_and_noise_frames_have_no_face():
    det = BlazeFace()
    assert det.detect(np.zeros((480, 640, 3), np.uint8)) == []
    rng = np.random.default_rng(0)
    assert det.detect(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)) == []


def test_min_face_and_max_faces_filters(d19):
    frame = read_frame(d19, 60)
    assert BlazeFace(DetectorOptions(min_face_px=1000)).detect(frame) == []


def test_unknown_variant_is_a_model_error():
    with pytest.raises(ModelError):
        BlazeFace(DetectorOptions(variant="tiny"))


def test_weighted_nms_merges_overlaps_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    out = weighted_nms(boxes, kps, np.array([0.9, 0.1, 0.8], np.float32), 0.3, 10)
    assert len(out) == 2
    assert out[0][2] == pytest.approx(0.9)
    assert out[0][0][0] == pytest.approx(0.1, abs=1e-5)  # 0.9*0 + 0.1*1


def test_letterbox_tensor_is_bit_identical_to_the_reference_formula(videos):
    """The LUT letterbox gives MediaPipe's normalisation exactly, also when the frame size changes."""
    import cv2

    det = BlazeFace()
    for clip, index in (("fer_woman2.mp4", 100), ("liveportrait_d19.mp4", 60), ("fer_woman2.mp4", 10)):
        frame = read_frame(videos / clip, index)
        det._letterbox(frame)
        h, w = frame.shape[:2]
        scale = det.size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        ox, oy = (det.size - nw) // 2, (det.size - nh) // 2
        canvas = np.zeros((det.size, det.size, 3), np.uint8)
        canvas[oy:oy + nh, ox:ox + nw] = cv2.cvtColor(cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR),
                                                      cv2.COLOR_BGR2RGB)
        ref = canvas.astype(np.float64) * (1.0 / 127.5)
        ref = ref.astype(np.float32) - np.float32(1.0)
        assert np.array_equal(det._tensor[0], ref), clip
