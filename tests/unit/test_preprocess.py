"""edge.preprocess: the one preprocessing function, and train/serve parity."""

import cv2
import numpy as np
import pytest

from conftest import read_frame
from edge.detect import BlazeFace
from edge.preprocess import INPUT_SIZE, preprocess_face, square_crop_box
from training.data import load_dataset, read_image


def test_square_crop_box_is_centred_and_enlarged():
    box = square_crop_box(100, 50, 40, 80, margin=0.25)
    assert box.side == 120  # 80 * 1.5
    assert box.x0 + box.side / 2 == pytest.approx(120, abs=1)
    assert box.y0 + box.side / 2 == pytest.approx(90, abs=1)


def test_output_shape_dtype_and_range_on_colour_frame(d19):
    frame = read_frame(d19, 30)
    face = preprocess_face(frame, (112, 144, 275, 275), margin=0.15)
    assert face.shape == (INPUT_SIZE, INPUT_SIZE) and face.dtype == np.float32
    assert 0.0 <= face.min() < face.max() <= 1.0


def test_crop_past_the_border_is_edge_replicated():
    image = np.full((100, 100, 3), 200, np.uint8)
    face = preprocess_face(image, (-30, -30, 60, 60), margin=0.2)
    assert face.shape == (INPUT_SIZE, INPUT_SIZE)
    assert np.allclose(face, 200 / 255, atol=1 / 255)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        preprocess_face(np.zeros((0, 0), np.uint8))
    with pytest.raises(ValueError):
        preprocess_face(np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError):
        preprocess_face(np.zeros((10, 10), np.uint8), (500, 500, 10, 10))


def test_eye_alignment_levels_a_tilted_line():
    image = np.zeros((200, 200), np.uint8)
    cv2.line(image, (50, 80), (150, 120), 255, 3)  # tilted "eye line"
    level = preprocess_face(image, (50, 50, 100, 100), eyes=((50, 80), (150, 120)))
    rows = np.flatnonzero(level.max(axis=1) > 0.5)
    assert rows.max() - rows.min() <= 4  # the line is now horizontal


def test_training_loader_and_runtime_path_give_identical_arrays(fer2013, tmp_path):
    """The array a training image becomes equals what the runtime computes for the same image."""
    src = sorted((fer2013 / "train" / "happy").iterdir())[:5]
    folder = tmp_path / "happy"
    folder.mkdir()
    for f in src:
        (folder / f.name).write_bytes(f.read_bytes())
    data = load_dataset(tmp_path)
    for i, f in enumerate(src):
        image = read_image(f)
        runtime = preprocess_face(image, (0, 0, image.shape[1], image.shape[0]), margin=0.0)
        assert np.array_equal(data.x[i], runtime)


def test_grey_and_bgr_versions_of_a_face_agree(fer2013):
    path = sorted((fer2013 / "train" / "sad").iterdir())[0]
    grey = read_image(path)
    bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    assert np.abs(preprocess_face(grey) - preprocess_face(bgr)).max() <= 1 / 255


def test_runtime_crop_of_a_detected_face_is_a_face_sized_input(d19):
    frame = read_frame(d19, 10)
    det = BlazeFace().detect(frame)[0]
    face = preprocess_face(frame, det.bbox.as_tuple(), margin=0.15)
    assert face.std() > 0.05  # real texture, not padding


def _reference_preprocess(image, bbox, margin, eyes):
    """The preprocessing as it was before the runtime's uint8 path (commit 7e76698), kept verbatim as the oracle."""
    from edge.preprocess import _level_eyes, crop_square

    box = square_crop_box(*bbox, margin=margin)
    patch = crop_square(image, box)
    if patch.shape[0] > 2 * INPUT_SIZE:
        patch = cv2.resize(patch, (2 * INPUT_SIZE, 2 * INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    if patch.shape[0] != INPUT_SIZE or patch.shape[1] != INPUT_SIZE:
        interp = cv2.INTER_AREA if patch.shape[0] > INPUT_SIZE else cv2.INTER_LINEAR
        patch = cv2.resize(patch, (INPUT_SIZE, INPUT_SIZE), interpolation=interp)
    if patch.ndim == 3:
        patch = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    if eyes is not None:
        k = INPUT_SIZE / box.side
        patch = _level_eyes(patch, tuple(((ex - box.x0) * k, (ey - box.y0) * k) for ex, ey in eyes))
    return patch.astype(np.float32) * np.float32(1.0 / 255.0)


def _real_faces(videos):
    """(frame, detection) pairs: faces BlazeFace finds in three clips (large, small, several per frame)."""
    detector = BlazeFace()
    pairs = []
    for clip, indices in (("liveportrait_d19.mp4", (10, 150, 240)), ("facerec_short_hamilton_clip.mp4", (20, 260)),
                          ("fer_woman2.mp4", (50, 300)), ("liveportrait_d18.mp4", (30, 120, 200))):
        for i in indices:
            frame = read_frame(videos / clip, i)
            pairs.extend((frame, d) for d in detector.detect(frame))
    assert len(pairs) >= 8
    return pairs


def test_runtime_preprocessing_is_bit_identical_to_the_reference_on_real_faces(videos):
    """Training, calibration and the runtime must see the same arrays: no change of a single bit."""
    from edge.preprocess import face_grey

    for frame, det in _real_faces(videos):
        for margin in (0.0, 0.10, 0.4):  # 0.4 pushes some crops past the frame border
            for eyes in (None, det.eyes):
                ref = _reference_preprocess(frame, det.bbox.as_tuple(), margin, eyes)
                new = preprocess_face(frame, det.bbox.as_tuple(), margin=margin, eyes=eyes)
                grey = face_grey(frame, det.bbox.as_tuple(), margin=margin, eyes=eyes)
                assert new.dtype == np.float32 and np.array_equal(new, ref)
                assert grey.dtype == np.uint8 and np.array_equal(grey.astype(np.float32) * np.float32(1 / 255), ref)


def test_classifier_uint8_path_gives_the_float_path_scores_bit_for_bit(videos):
    """predict_grey(grey_batch) == predict_batch(preprocess_face) on real faces, with and without tta_flip."""
    from edge.classify import EmotionClassifier

    pairs = _real_faces(videos)
    for tta in (False, True):
        clf = EmotionClassifier(tta_flip=tta)
        for align in (False, True):
            floats = np.stack([clf.crop(f, d, align) for f, d in pairs])
            grey = np.concatenate([clf.grey_batch(f, [d], align) for f, d in pairs])
            assert np.array_equal(grey.astype(np.float32) * np.float32(1 / 255), floats)
            assert np.array_equal(clf.predict_grey(grey), clf.predict_batch(floats))
            assert np.array_equal(clf.predict_grey(grey, batch_size=3), clf.predict_batch(floats, batch_size=3))


def test_classifier_batches_split_into_powers_of_two_give_identical_scores(videos):
    """1..8 faces use at most the 1, 2, 4, 8 interpreters, and an int8 model's scores do not depend on the split."""
    from edge.classify import EmotionClassifier

    pairs = _real_faces(videos)[:8]
    clf = EmotionClassifier()
    grey = np.concatenate([clf.grey_batch(f, [d], True) for f, d in pairs])
    one_by_one = np.concatenate([clf.predict_grey(grey[i:i + 1]) for i in range(len(grey))])
    for n in range(1, len(grey) + 1):
        assert np.array_equal(clf.predict_grey(grey[:n]), one_by_one[:n]), n
    assert sorted(clf._runners) == [1, 2, 4, 8][:len(clf._runners)] and len(clf._runners) <= 4
