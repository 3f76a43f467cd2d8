"""edge.track: id stability, confirmation, expiry, carry between detections."""

import numpy as np

from edge.track import IoUTracker, TrackerOptions
from edge.types import BBox, Detection


def det(x, y, w=50, h=50):
    return Detection(BBox(x, y, w, h), 0.9, np.zeros((6, 2), np.float32))


def test_ids_stay_stable_while_faces_move():
    tr = IoUTracker(TrackerOptions(min_hits=1))
    ids = []
    for t in range(20):
        up = tr.update([det(10 + 3 * t, 10), det(300 - 3 * t, 200)], t / 10)
        ids.append(sorted(f.track.track_id for f in up.seen))
    assert all(i == [1, 2] for i in ids)


def test_track_survives_max_missed_rounds_then_ends():
    tr = IoUTracker(TrackerOptions(max_missed=3, min_hits=1))
    tr.update([det(10, 10)], 0.0)
    for k in range(3):
        assert tr.update([], 0.1 * (k + 1)).removed == []
    assert [t.track_id for t in tr.update([], 0.4).removed] == [1]
    assert tr.update([det(10, 10)], 0.5).seen[0].track.track_id == 2


def test_reappearing_face_within_max_missed_keeps_its_id():
    tr = IoUTracker(TrackerOptions(max_missed=5, min_hits=1))
    tr.update([det(10, 10)], 0.0)
    tr.update([], 0.1)
    assert tr.update([det(12, 10)], 0.2).seen[0].track.track_id == 1


def test_confirmation_needs_min_hits():
    tr = IoUTracker(TrackerOptions(min_hits=3))
    confirmed = [tr.update([det(10, 10)], t / 10).seen[0].track.confirmed for t in range(4)]
    assert confirmed == [False, False, True, True]


def test_carry_moves_boxes_with_velocity_and_keeps_the_detection():
    tr = IoUTracker(TrackerOptions(min_hits=1, velocity_smoothing=1.0))
    tr.update([det(0, 0)], 0.0)
    tr.update([det(10, 0)], 1.0)  # 10 px/s to the right
    carried = tr.carry(1.5)
    assert len(carried) == 1 and abs(carried[0].detection.bbox.x - 15) < 1e-6
    assert tr.tracks[0].bbox.x == 10  # the track keeps its last real box


def test_crossing_faces_do_not_swap_with_iou_matching():
    tr = IoUTracker(TrackerOptions(min_hits=1))
    tr.update([det(0, 0), det(200, 0)], 0)
    up = tr.update([det(205, 0), det(5, 0)], 0.1)
    by_x = {round(f.detection.bbox.x): f.track.track_id for f in up.seen}
    assert by_x == {5: 1, 205: 2}


def test_pipeline_drops_boxes_carried_out_of_the_frame(d19):
    """A fast face carried past the border is not classified (no crop of empty space, no crash)."""
    from conftest import read_frame
    from edge.classify import EmotionClassifier
    from edge.detect import BlazeFace
    from edge.pipeline import FramePipeline, PipelineOptions
    from edge.types import Frame

    pipe = FramePipeline(BlazeFace(), EmotionClassifier(), options=PipelineOptions(detect_every=100),
                         tracker=TrackerOptions(min_hits=1))
    image = read_frame(d19, 10)
    assert len(pipe.process(Frame(0, 0.0, image)).faces) == 1
    pipe.tracker.tracks[0].velocity = (5000.0, 0.0)  # 5000 px/s to the right
    assert pipe.process(Frame(1, 0.04, image)).faces  # moved 200 px: still partly visible
    assert pipe.process(Frame(2, 1.0, image)).faces == []  # 5000 px away: dropped


def test_options_are_keyword_only():
    """Two int fields (max_missed, min_hits) must never swap silently: positional construction fails."""
    import pytest

    with pytest.raises(TypeError):
        TrackerOptions(0.3, 10, 2)  # noqa
    opts = TrackerOptions(iou_threshold=0.4, max_missed=7, min_hits=3, velocity_smoothing=0.2)
    assert (opts.iou_threshold, opts.max_missed, opts.min_hits, opts.velocity_smoothing) == (0.4, 7, 3, 0.2)


def test_unconfirmed_tracks_are_not_carried_between_detection_rounds():
    """detect_every=3, min_hits=2: one false detection is never carried, a repeated one is."""
    tr = IoUTracker(TrackerOptions(min_hits=2))
    up = tr.update([det(10, 10)], 0.0)  # frame 0: a single (false) detection, hits=1
    assert [f.track.confirmed for f in up.seen] == [False]
    assert tr.carry(0.1) == [] and tr.carry(0.2) == []  # frames 1, 2: nothing to classify
    assert tr.update([], 0.3).seen == []  # frame 3: gone
    assert tr.carry(0.4) == [] and tr.carry(0.5) == []
    up = tr.update([det(300, 300)], 0.6)  # a real face: detected at frames 6 and 9
    assert tr.carry(0.7) == []
    up = tr.update([det(302, 300)], 0.9)
    assert [f.track.confirmed for f in up.seen] == [True]
    carried = tr.carry(1.0)
    assert [f.track.track_id for f in carried] == [up.seen[0].track.track_id]


def test_pipeline_single_detection_with_detect_every_3_emits_nothing(d19):
    """A face seen in one detection round only (min_hits=2) is not classified and starts no track."""
    from conftest import read_frame
    from edge.classify import EmotionClassifier
    from edge.detect import BlazeFace
    from edge.pipeline import FramePipeline, PipelineOptions
    from edge.types import Frame

    face = read_frame(d19, 10)
    blank = np.zeros_like(face)
    detector, classifier = BlazeFace(), EmotionClassifier()

    def run(images):
        pipe = FramePipeline(detector, classifier, options=PipelineOptions(detect_every=3),
                             tracker=TrackerOptions(min_hits=2))
        results = [pipe.process(Frame(i, i / 25, image)) for i, image in enumerate(images)]
        return results, [e for r in results for e in r.events] + pipe.finish()

    results, events = run([face, face, face, blank, blank, blank])  # one detection round with the face
    assert [len(r.faces) for r in results] == [0] * 6 and events == []
    results, events = run([face, face, face, face, face, face])  # two rounds: confirmed at frame 3, carried after
    assert [len(r.faces) for r in results] == [0, 0, 0, 1, 1, 1]
    assert [e.type for e in events] == ["track_started", "track_ended"]
