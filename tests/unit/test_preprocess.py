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
