"""edge.classify: the shipped int8 model on real faces."""

import json

import numpy as np
import pytest

from conftest import read_frame
from edge.classify import DEFAULT_MODEL, SHIPPED_MODELS, EmotionClassifier, resolve_model
from edge.detect import BlazeFace
from edge.labels import EMOTIONS
from edge.runtime import ModelError


@pytest.fixture(scope="module")
def clf():
    return EmotionClassifier()


def test_shipped_model_is_full_int8_with_metadata(clf):
    assert clf.input_dtype == np.int8
    assert clf.labels == EMOTIONS
    meta = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert meta["quantization"] == "int8" and meta["labels"] == list(EMOTIONS)
    assert DEFAULT_MODEL.stat().st_size <= 1.5 * 1024 * 1024


def test_seven_probabilities_summing_to_one_on_real_faces(clf, fer2013, d19):
    files = [sorted((fer2013 / "test" / e).iterdir())[0] for e in EMOTIONS]
    import cv2

    from edge.preprocess import preprocess_face

    faces = np.stack([preprocess_face(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)) for f in files])
    probs = clf.predict_batch(faces)
    assert probs.shape == (7, 7)
    assert np.allclose(probs.sum(1), 1.0, atol=0.03)
    frame = read_frame(d19, 200)
    scores = clf.classify(frame, BlazeFace().detect(frame))
    assert len(scores) == 1 and abs(scores[0].probs.sum() - 1) < 0.03


def test_batched_and_single_invocations_agree(clf, fer2013):
    from edge.preprocess import preprocess_face
    from training.data import read_image

    files = sorted((fer2013 / "test" / "happy").iterdir())[:9]
    x = np.stack([preprocess_face(read_image(f)) for f in files])
    batched = clf.predict_batch(x, batch_size=4)  # 4 + 4 + 1
    single = np.concatenate([clf.predict_batch(x[i:i + 1]) for i in range(9)])
    assert np.array_equal(batched, single)


def test_flip_tta_is_the_mean_of_face_and_mirror_scores(fer2013, tmp_path):
    x = _real_faces(fer2013, 1, start=1)
    mirrored = x[:, :, ::-1].copy()
    one_pass = EmotionClassifier(flip_margin=0)
    plain, plain_mirrored = one_pass.predict_batch(x), one_pass.predict_batch(mirrored)
    assert np.abs(plain - plain_mirrored).max() > 0.02  # the mirror view is a different input
    tta = EmotionClassifier(tta_flip=True)
    both = tta.predict_batch(x, batch_size=3)  # 3 + 3 + 1 faces, each chunk one invocation of 2x
    assert np.allclose(both, (plain + plain_mirrored) / 2, atol=1e-6)
    assert np.allclose(tta.predict_batch(mirrored), both, atol=1e-6)
    # A model with the flip baked in (sidecar tta_flip: true) is not flipped twice.
    baked = tmp_path / "baked.tflite"
    baked.write_bytes(DEFAULT_MODEL.read_bytes())
    baked.with_suffix(".json").write_text(json.dumps({"tta_flip": True}))
    assert not EmotionClassifier(baked, tta_flip=True).tta_flip
    assert EmotionClassifier(baked, flip_margin=0.5).flip_margin == 0


def _real_faces(fer2013, per_class: int, start: int = 0) -> np.ndarray:
    """float32 (7 * per_class, 48, 48): FER2013 test faces ``start..`` of every emotion, preprocessed."""
    from edge.preprocess import preprocess_face
    from training.data import read_image

    files = [f for e in EMOTIONS for f in sorted((fer2013 / "test" / e).iterdir())[start:start + per_class]]
    return np.stack([preprocess_face(read_image(f)) for f in files])


def test_flip_margin_mirrors_only_the_unsure_faces(fer2013):
    """Confidence-gated flip: rows under the top-1 minus top-2 margin get the flip mean, the others stay one pass."""
    from edge.classify.classifier import top2_margin

    x = _real_faces(fer2013, 12)
    plain = EmotionClassifier(flip_margin=0).predict_batch(x)
    both = EmotionClassifier(tta_flip=True).predict_batch(x)
    unsure = top2_margin(plain) < 0.3
    assert 0 < unsure.sum() < len(x)  # real faces: some sure, some not
    gated = EmotionClassifier(flip_margin=0.3)
    for batch in (None, 5):  # chunks of 8 or of 5 faces
        probs = gated.predict_batch(x, batch_size=batch)
        assert np.array_equal(probs[~unsure], plain[~unsure])
        assert np.array_equal(probs[unsure], both[unsure])  # int8: every sample computed alike
    from edge.preprocess import INPUT_SIZE

    grey = np.rint(x * 255).astype(np.uint8).reshape(-1, INPUT_SIZE, INPUT_SIZE)
    assert np.array_equal(gated.predict_grey(grey), gated.predict_batch(grey * np.float32(1 / 255)))


def test_flip_margin_comes_from_the_sidecar(tmp_path):
    """None takes the sidecar's flip_margin (ferplus ships 0.10); an explicit value or tta_flip overrides it."""
    meta = json.loads(resolve_model("ferplus").with_suffix(".json").read_text())
    assert EmotionClassifier("ferplus").flip_margin == meta["flip_margin"] > 0
    assert EmotionClassifier("ferplus", flip_margin=0).flip_margin == 0
    assert EmotionClassifier("ferplus", tta_flip=True).flip_margin == float("inf")
    assert EmotionClassifier("fer2013").flip_margin == 0
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(DEFAULT_MODEL.read_bytes())  # no sidecar: one pass
    assert EmotionClassifier(bare).flip_margin == 0
    for bad in (None, "0.1", -0.5, 2, True):  # a broken sidecar is a model error, not a traceback
        bare.with_suffix(".json").write_text(json.dumps({"flip_margin": bad}))
        with pytest.raises(ModelError, match="flip_margin must be a number"):
            EmotionClassifier(bare)


def test_model_beats_chance_on_real_test_faces(clf, fer2013):
    """A trained model, not a stub: well above the 25% majority-class rate on 350 test faces."""
    from edge.preprocess import preprocess_face
    from training.data import read_image

    xs, ys = [], []
    for k, e in enumerate(EMOTIONS):
        for f in sorted((fer2013 / "test" / e).iterdir())[:50]:
            xs.append(preprocess_face(read_image(f)))
            ys.append(k)
    acc = (clf.predict_batch(np.stack(xs)).argmax(1) == np.array(ys)).mean()
    assert acc > 0.45


def test_missing_or_invalid_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        EmotionClassifier(tmp_path / "nope.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError):
        EmotionClassifier(bad)


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_every_shipped_model_loads_by_name(name):
    clf = EmotionClassifier(name)
    assert clf.path == resolve_model(name) and clf.path.is_file()
    meta = json.loads(clf.path.with_suffix(".json").read_text())
    assert list(clf.labels) == meta["labels"]
    probs = clf.predict_batch(np.random.default_rng(0).random((3, 48, 48), dtype=np.float32))
    assert probs.shape == (3, len(meta["labels"]))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=0.03)


def test_unknown_model_name_is_a_model_error():
    with pytest.raises(ModelError, match="shipped model name"):
        resolve_model("ferplusx")
