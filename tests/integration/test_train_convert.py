"""fit 1 epoch on a few hundred real images -> int8 convert -> evaluate the .tflite via the runtime path."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.train]


def _run(module, *args, timeout=600):
    res = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fer2013):
    out = tmp_path_factory.mktemp("fit")
    _run("training.cli", "fit", "--data", str(fer2013 / "train"), "--out", str(out / "run"), "--epochs", "1",
         "--limit", "400", "--batch-size", "64", "--cache", str(out / "cache"), "--width", "0.5")
    return out


def test_fit_writes_model_curves_and_summary(trained):
    run = trained / "run"
    for name in ("model.keras", "best.keras", "curves.png", "history.csv", "fit.json"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "fit.json").read_text())
    assert summary["n_train"] == 360 and summary["n_val"] == 40 and summary["epochs_run"] == 1
    assert summary["seconds_per_epoch"] > 0


def test_convert_int8_then_evaluate_tflite_through_the_runtime(trained, fer2013):
    tfl = trained / "m_int8.tflite"
    res = _run("convert.cli", "--keras", str(trained / "run" / "model.keras"), "--out", str(tfl), "--quantize",
               "int8", "--calib-data", str(fer2013 / "train"), "--calib-n", "500", "--parity-n", "300",
               "--cache", str(trained / "cache"))
    report = json.loads(res.stdout[res.stdout.index("{"):])
    # A 1-epoch model's scores are near ties, so top-1 agreement says little; the score error must be small.
    assert report["parity"]["n"] == 300 and report["parity"]["mean_abs_score_diff"] < 0.02
    meta = json.loads(tfl.with_suffix(".json").read_text())
    assert meta["quantization"] == "int8" and meta["calibration_images"] == 500 and len(meta["labels"]) == 7

    from edge.classify import EmotionClassifier

    clf = EmotionClassifier(tfl)
    assert clf.input_dtype == np.int8 and clf.in_scale == pytest.approx(1 / 255, rel=1e-3)
    ev = _run("training.cli", "evaluate", "--model", str(tfl), "--data", str(fer2013 / "test"), "--json",
              "--cache", str(trained / "cache"), "--out", str(trained / "eval"))
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    assert metrics["n"] == 3589 and 0 <= metrics["accuracy"] <= 1 and "macro_f1" in metrics
    assert set(metrics["per_class"]) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
    assert (trained / "eval" / "confusion.png").is_file() and metrics["tta_flip"] is False
    ev = _run("training.cli", "evaluate", "--model", str(tfl), "--data", str(fer2013 / "test"), "--json",
              "--cache", str(trained / "cache"), "--tta-flip")
    flipped = json.loads(ev.stdout.strip().splitlines()[-1])
    assert flipped["tta_flip"] is True and flipped["n"] == 3589


def test_packed_data_time_budget_distillation_and_init(trained, fer2013, tmp_path):
    """The leased-GPU path on CPU: pack once, then fit from the pack with an ensemble teacher and a warm start."""
    packed = tmp_path / "train.npz"
    res = _run("training.cli", "pack", "--data", str(fer2013 / "train"), "--out", str(packed),
               "--cache", str(trained / "cache"))
    assert json.loads(res.stdout.strip().splitlines()[-1])["n"] == 28709
    from training.data import load_packed

    data = load_packed(packed)
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(7), size=(2, 400)).astype(np.float32)
    np.savez(tmp_path / "teacher.npz", a=scores[0], b=scores[1])
    out = tmp_path / "run"
    _run("training.cli", "fit", "--data", str(packed), "--out", str(out), "--limit", "400", "--batch-size", "64",
         "--width", "0.5", "--epochs", "50", "--time-budget", "20", "--patience", "100", "--erase", "0.5",
         "--mixup", "0.2", "--teacher", str(tmp_path / "teacher.npz"), "--distill", "0.8",
         "--init", str(trained / "run" / "model.keras"), "--swa-start", "2")
    summary = json.loads((out / "fit.json").read_text())
    assert 1 <= summary["epochs_run"] < 50 and summary["n_images"] == 400 and len(data.x) == 28709
    assert 0 <= summary["final_val_accuracy"] <= 1
    lr = np.genfromtxt(out / "history.csv", delimiter=",", names=True)["lr"]
    assert lr.size == 1 or lr[-1] < lr.max()


def test_evaluate_errors_are_one_line(tmp_path, fer2013):
    res = subprocess.run([sys.executable, "-m", "training.cli", "evaluate", "--model", str(tmp_path / "x.tflite"),
                          "--data", str(fer2013 / "test")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 3 and "model file not found" in res.stderr and "Traceback" not in res.stderr
    shipped = str(ROOT / "edge" / "models" / "ferplus_int8.tflite")
    res = subprocess.run([sys.executable, "-m", "training.cli", "evaluate", "--model", shipped,
                          "--data", str(tmp_path / "nothing")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no such file" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "training.cli", "evaluate", "--model", shipped,
                          "--val-of", str(tmp_path / "no_run")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "expected a fit run folder" in res.stderr and "Traceback" not in res.stderr


def test_recover_the_shipped_int8_model_and_convert_it_back(trained, fer2013, tmp_path):
    """int8 .tflite -> trainable .keras (dequantised, BatchNorm rebuilt) -> int8 again: the same classifier."""
    shipped = ROOT / "edge" / "models" / "emotion_int8_fast.tflite"
    recovered = tmp_path / "recovered.keras"
    res = _run("training.cli", "recover", "--tflite", str(shipped), "--data", str(fer2013 / "train"), "--n", "1000",
               "--out", str(recovered), "--cache", str(trained / "cache"))
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["n"] == 1000 and report["top1_agreement"] > 0.95 and report["mean_abs_score_diff"] < 0.01
    back = tmp_path / "back.tflite"
    _run("convert.cli", "--keras", str(recovered), "--out", str(back), "--quantize", "int8", "--calib-data",
         str(fer2013 / "train"), "--calib-n", "500", "--parity-n", "300", "--cache", str(trained / "cache"))

    from edge.classify import EmotionClassifier
    from training.data import load_dataset

    x = load_dataset(fer2013 / "test", cache_dir=trained / "cache").x[::10]
    before = EmotionClassifier(shipped).predict_batch(x)
    after = EmotionClassifier(back).predict_batch(x)
    assert (before.argmax(1) == after.argmax(1)).mean() > 0.93 and np.abs(before - after).mean() < 0.02


def test_recover_rejects_a_model_that_is_not_an_edge_model(fer2013, tmp_path):
    blazeface = ROOT / "edge" / "models" / "face_detection_short_range.tflite"
    res = subprocess.run([sys.executable, "-m", "training.cli", "recover", "--tflite", str(blazeface), "--data",
                          str(fer2013 / "test"), "--n", "10", "--out", str(tmp_path / "x.keras")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 3 and "not an edge model" in res.stderr and "Traceback" not in res.stderr


def test_ferplus_soft_fit_keeping_contempt_runs_end_to_end(ferplus, d19, tmp_path):
    """A few hundred real FER+ faces on their vote distributions, contempt kept.

    8 labels from fit to MQTT-ready events.
    """
    cache, run, tfl = tmp_path / "cache", tmp_path / "run", tmp_path / "ferplus8_int8.tflite"
    _run("training.cli", "fit", "--data", str(ferplus / "FER2013Train"), "--labels", "ferplus", "--ferplus-mode",
         "soft", "--contempt", "keep", "--out", str(run), "--epochs", "1", "--limit", "400", "--batch-size", "64",
         "--width", "0.5", "--cache", str(cache))
    summary = json.loads((run / "fit.json").read_text())
    assert summary["labels"][-1] == "contempt" and summary["n_images"] == 400
    _run("convert.cli", "--keras", str(run / "model.keras"), "--out", str(tfl), "--quantize", "int8", "--calib-data",
         str(ferplus / "FER2013Train"), "--calib-n", "500", "--parity-n", "200", "--cache", str(cache))
    meta = json.loads(tfl.with_suffix(".json").read_text())
    assert meta["labels"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise", "contempt"]
    ev = _run("training.cli", "evaluate", "--model", str(tfl), "--data", str(ferplus / "FER2013Valid"),
              "--contempt", "keep", "--json", "--cache", str(cache))
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    assert "contempt" in metrics["per_class"] and 0 <= metrics["accuracy"] <= 1

    out = tmp_path / "video"
    res = subprocess.run([sys.executable, "-m", "edge.cli", "--video", str(d19), "--model", str(tfl), "--out", str(out),
                          "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    header = (out / "frames.csv").read_text().splitlines()[0].split(",")
    assert "contempt" in header
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events and all(set(e["scores"]) == set(meta["labels"]) for e in events)
    assert {e["type"] for e in events} >= {"track_started", "track_ended"}
