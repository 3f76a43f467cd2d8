"""training.data loaders against small real subsets of ../shared/datasets."""

import csv

import numpy as np
import pytest

from conftest import ferplus_valid_subset
from edge.labels import EMOTIONS, FER2013_CSV_IDS
from training.data import DataError, detect_layout, ferplus_target, load_dataset, split_validation


def _subset_folder(fer2013, tmp_path, per_class=6):
    root = tmp_path / "subset"
    for name in EMOTIONS:
        (root / name).mkdir(parents=True)
        for f in sorted((fer2013 / "train" / name).iterdir())[:per_class]:
            (root / name / f.name).write_bytes(f.read_bytes())
    return root


def test_folder_layout_labels_follow_folder_names(fer2013, tmp_path):
    root = _subset_folder(fer2013, tmp_path)
    data = load_dataset(root, cache_dir=tmp_path / "cache")
    assert data.x.shape == (42, 48, 48)
    assert list(data.y.sum(0)) == [6.0] * 7
    again = load_dataset(root, cache_dir=tmp_path / "cache")  # from the .npy cache
    assert np.array_equal(again.x, data.x) and np.array_equal(again.y, data.y)
    assert any((tmp_path / "cache").rglob("x.npy"))


def test_unreadable_images_are_skipped_and_counted(fer2013, tmp_path):
    root = _subset_folder(fer2013, tmp_path, per_class=2)
    (root / "happy" / "broken.jpg").write_bytes(b"not a jpeg")
    data = load_dataset(root)
    assert data.skipped == 1 and len(data.x) == 14


def test_fer2013_csv_ids_map_to_our_labels(fer2013, tmp_path):
    from training.data import read_image

    path = tmp_path / "fer2013.csv"
    rows = []
    for name in ("sad", "neutral", "angry"):
        img = read_image(sorted((fer2013 / "train" / name).iterdir())[0])
        rows.append([FER2013_CSV_IDS.index(name), " ".join(map(str, img.ravel())), "Training"])
    rows.append([3, "1 2 3", "Training"])  # bad pixel count: skipped
    rows.append([3, " ".join(["0"] * 2304), "PublicTest"])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        w.writerows(rows)
    data = load_dataset(path, usage="Training")
    assert [data.labels[i] for i in data.hard_labels] == ["sad", "neutral", "angry"]
    assert data.skipped == 1
    assert len(load_dataset(path, usage="PublicTest").x) == 1


def test_csv_with_wrong_columns_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("label,image\n1,2\n")
    with pytest.raises(DataError, match="expected CSV columns emotion,pixels"):
        load_dataset(path)


def test_ferplus_majority_and_soft_modes(ferplus, tmp_path):
    root, rows = ferplus_valid_subset(ferplus, tmp_path, 40)
    major = load_dataset(root, ferplus_mode="majority")
    soft = load_dataset(root, ferplus_mode="soft")
    assert set(np.unique(major.y)) <= {0.0, 1.0}
    assert np.allclose(soft.y.sum(1), 1.0)
    assert len(major.x) <= len(soft.x) <= 40
    votes = np.asarray([r[2:] for r in rows], np.float32)
    not_a_face = int((votes.argmax(1) >= 8).sum())  # unknown / NF majority rows are dropped
    assert len(soft.x) == 40 - not_a_face
    keep = load_dataset(root, ferplus_mode="soft", contempt="keep")
    assert keep.labels[-1] == "contempt" and keep.y.shape[1] == 8


def test_ferplus_target_rules():
    # columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF
    assert ferplus_target(np.array([0, 0, 0, 0, 0, 0, 0, 0, 6, 4.0]), "soft", EMOTIONS, "neutral") is None
    one = ferplus_target(np.array([1, 8, 1, 0, 0, 0, 0, 0, 0, 0.0]), "majority", EMOTIONS, "neutral")
    assert EMOTIONS[int(one.argmax())] == "happy" and one.sum() == 1
    assert ferplus_target(np.array([4, 4, 2, 0, 0, 0, 0, 0, 0, 0.0]), "majority", EMOTIONS, "neutral") is None
    soft = ferplus_target(np.array([1, 6, 3, 0, 0, 0, 0, 0, 0, 0.0]), "soft", EMOTIONS, "neutral")
    assert soft[EMOTIONS.index("neutral")] == 0  # single vote removed as outlier
    assert soft[EMOTIONS.index("happy")] == pytest.approx(6 / 9)
    mapped = ferplus_target(np.array([2, 0, 0, 0, 0, 0, 0, 8, 0, 0.0]), "majority", EMOTIONS, "neutral")
    assert EMOTIONS[int(mapped.argmax())] == "neutral"


def test_layout_errors_name_what_was_expected(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        detect_layout(tmp_path / "nope")
    (tmp_path / "random").mkdir()
    with pytest.raises(DataError, match="unknown layout"):
        detect_layout(tmp_path)
    with pytest.raises(DataError, match="unknown layout"):
        load_dataset(tmp_path, layout="parquet")


def test_validation_split_is_stratified_and_disjoint(fer2013, tmp_path):
    data = load_dataset(_subset_folder(fer2013, tmp_path, per_class=10))
    train, val = split_validation(data, 0.2, seed=1)
    assert len(train.x) == 56 and len(val.x) == 14
    assert list(val.y.sum(0)) == [2.0] * 7


def test_whole_photo_folders_are_cropped_by_the_runtime_detector(d19, tmp_path):
    """CK+/JAFFE/RaFD-style folders: faces found by BlazeFace, face-less photos skipped and counted."""
    import cv2

    from conftest import read_frame
    from edge.detect import BlazeFace, DetectorOptions
    from edge.preprocess import DEFAULT_CROP_MARGIN, preprocess_face

    root = tmp_path / "ckplus"
    (root / "happiness").mkdir(parents=True)
    (root / "anger").mkdir()
    frame = read_frame(d19, 200)
    cv2.imwrite(str(root / "happiness" / "s01.png"), frame)
    cv2.imwrite(str(root / "anger" / "s02.png"), frame * 0)  # no face: skipped
    data = load_dataset(root, crop="auto")
    assert len(data.x) == 1 and data.skipped == 1 and data.labels[data.hard_labels[0]] == "happy"
    image = cv2.imread(str(root / "happiness" / "s01.png"))
    det = max(BlazeFace(DetectorOptions(variant="full")).detect(image), key=lambda d: d.bbox.area)
    expected = preprocess_face(image, det.bbox.as_tuple(), margin=DEFAULT_CROP_MARGIN, eyes=det.eyes)
    assert np.abs(data.x[0] - expected).max() == 0


def test_packed_dataset_round_trip_is_exact(fer2013, tmp_path):
    from training.data import load_packed, save_packed

    data = load_dataset(_subset_folder(fer2013, tmp_path, per_class=3))
    path = save_packed(data, tmp_path / "packed" / "train.npz")
    assert detect_layout(path) == "packed"
    again = load_dataset(path)
    assert np.array_equal(again.x, data.x) and np.array_equal(again.y, data.y) and again.labels == data.labels
    assert load_packed(path).x.dtype == np.float32


def test_packed_dataset_errors_are_one_line(tmp_path):
    from training.data import load_packed

    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((2, 48, 48), np.float32), y=np.zeros((2, 7), np.float32), labels=np.asarray(EMOTIONS))
    with pytest.raises(DataError, match="expected uint8 x"):
        load_packed(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="expected a packed dataset"):
        load_packed(tmp_path / "junk.npz")
