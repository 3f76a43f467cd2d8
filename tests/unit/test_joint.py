"""training.joint: FER2013 labels found for FER+ faces (the same photos, another grey-level mapping)."""

import numpy as np

from conftest import ferplus_valid_subset
from training.data import load_dataset
from training.joint import fer2013_targets, match_rows


def test_ferplus_valid_faces_are_found_in_fer2013_test(ferplus, fer2013, tmp_path):
    root, _ = ferplus_valid_subset(ferplus, tmp_path, 60)
    plus = load_dataset(root, ferplus_mode="majority")
    test = load_dataset(fer2013 / "test")  # FER2013 PublicTest = FER+ FER2013Valid
    y, report = fer2013_targets(plus.x, test)
    assert report["matched"] >= 0.95 * len(plus.x)
    matched = y.sum(1) > 0
    # FER+ majority and FER2013 labels of the same photo agree far above chance (1/7)
    agree = (y[matched].argmax(1) == plus.y[matched].argmax(1)).mean()
    assert agree > 0.5
    # a face matched to itself correlates fully; a shuffled set does not match row for row
    index, corr = match_rows(plus.x[:10], plus.x[:10])
    assert (index == np.arange(10)).all() and np.allclose(corr, 1.0, atol=1e-4)
