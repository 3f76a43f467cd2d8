"""Every user error of edge-fer, edge-fer-train and edge-fer-convert: one line, its exit code, no traceback."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

PROGS = {"edge-fer": "edge.cli", "edge-fer-train": "training.cli", "edge-fer-convert": "convert.cli"}

# (id, program, arguments, expected exit code, text the error line must contain)
# CLIP: a real shared clip; TMP: the test's temporary folder; BLOCK: PYTHONPATH blocks matplotlib/starlette;
# NOFFMPEG: PATH without ffmpeg
CASES = [
    ("nothing-to-do", "edge-fer", [], 2, "nothing to do"),
    ("unknown-flag", "edge-fer", ["--colour", "red"], 2, "unrecognized arguments"),
    ("video-and-image", "edge-fer", ["--video", "CLIP", "--image", "CLIP"], 2, "not allowed with"),
    ("detect-every-text", "edge-fer", ["--video", "CLIP", "--detect-every", "x"], 2, "invalid int value"),
    ("detect-every-0", "edge-fer", ["--video", "CLIP", "--detect-every", "0"], 2, "detect_every"),
    ("threads-0", "edge-fer", ["--video", "CLIP", "--threads", "0"], 2, "num_threads"),
    ("config-missing", "edge-fer", ["--config", "TMP/none.yaml"], 2, "config file not found"),
    ("config-not-yaml", "edge-fer", ["--config", "TMP/bad.yaml"], 2, "config"),
    ("daemon-without-source", "edge-fer", ["--config", "TMP/empty.yaml"], 2, "sources"),
    ("video-missing", "edge-fer", ["--video", "TMP/none.mp4"], 4, "no such file"),
    ("video-folder", "edge-fer", ["--video", "TMP"], 5, "folder"),
    ("video-not-a-video", "edge-fer", ["--video", "TMP/notes.mp4"], 5, "not a readable video"),
    ("image-missing", "edge-fer", ["--image", "TMP/none.jpg"], 4, "no such file"),
    ("image-broken", "edge-fer", ["--image", "TMP/broken.jpg"], 5, "no readable image"),
    ("model-missing", "edge-fer", ["--video", "CLIP", "--model", "TMP/none.tflite"], 3, "model file not found"),
    ("model-unknown-name", "edge-fer", ["--video", "CLIP", "--model", "nosuchmodel"], 3, "unknown model"),
    ("model-not-tflite", "edge-fer", ["--video", "CLIP", "--model", "TMP/notes.mp4"], 3, "cannot load model"),
    ("out-not-writable", "edge-fer", ["--video", "CLIP", "--out", "TMP/notes.mp4/out", "--no-progress"], 7,
     "cannot write outputs"),
    ("plot-without-matplotlib", "edge-fer", ["BLOCK", "--video", "CLIP", "--out", "TMP/o", "--plot"], 2,
     "pip install -e '.[plot]'"),
    ("annotate-without-ffmpeg", "edge-fer", ["NOFFMPEG", "--video", "CLIP", "--annotate", "TMP/a.mp4"], 2,
     "apt-get install ffmpeg"),
    ("serve-without-web-extra", "edge-fer", ["BLOCK", "--serve"], 2, "pip install -e '.[web]'"),
    ("train-no-command", "edge-fer-train", [], 2, "required"),
    ("train-unknown-command", "edge-fer-train", ["train"], 2, "invalid choice"),
    ("evaluate-no-data", "edge-fer-train", ["evaluate", "--model", "edge/models/emotion_int8.tflite"], 2,
     "--data or --val-of"),
    ("evaluate-model-missing", "edge-fer-train", ["evaluate", "--model", "TMP/none.tflite", "--data", "TMP"], 3,
     "model file not found"),
    ("evaluate-data-missing", "edge-fer-train", ["evaluate", "--model", "edge/models/emotion_int8.tflite",
                                                 "--data", "TMP/none"], 2, "no such file"),
    ("evaluate-bad-layout", "edge-fer-train", ["evaluate", "--model", "x.tflite", "--data", "TMP",
                                               "--layout", "zip"], 2, "invalid choice"),
    ("evaluate-val-of-not-a-run", "edge-fer-train", ["evaluate", "--model", "edge/models/emotion_int8.tflite",
                                                     "--val-of", "TMP"], 2, "fit.json"),
    ("fit-no-data", "edge-fer-train", ["fit", "--out", "TMP/run"], 2, "--data"),
    ("fit-bad-labels", "edge-fer-train", ["fit", "--data", "TMP", "--out", "TMP/run", "--labels", "affectnet"], 2,
     "invalid choice"),
    ("pack-data-missing", "edge-fer-train", ["pack", "--data", "TMP/none", "--out", "TMP/x.npz"], 2, "no such file"),
    ("convert-no-keras", "edge-fer-convert", ["--out", "TMP/x.tflite"], 2, "--keras"),
    ("convert-bad-quantize", "edge-fer-convert", ["--keras", "x.keras", "--out", "x.tflite", "--quantize", "int4"], 2,
     "invalid choice"),
    ("soup-model-missing", "edge-fer-train", ["soup", "TMP/a.keras", "TMP/b.keras", "--out", "TMP/s.keras"], 3,
     "not found"),
    ("convert-keras-missing", "edge-fer-convert", ["--keras", "TMP/none.keras", "--out", "TMP/x.tflite"], 3,
     "not found"),
    ("convert-not-keras", "edge-fer-convert", ["--keras", "TMP/notes.mp4", "--out", "TMP/x.tflite"], 3,
     "cannot convert"),
    ("evaluate-bad-flip-margin", "edge-fer-train", ["evaluate", "--model", "edge/models/ferplus_int8.tflite",
                                                    "--data", "TMP", "--flip-margin", "nan"], 2, "[0, 1]"),
    ("convert-bad-flip-margin", "edge-fer-convert", ["--keras", "x.keras", "--out", "x.tflite",
                                                     "--flip-margin", "1.5"], 2, "[0, 1]"),
    ("convert-flip-margin-with-baked-flip", "edge-fer-convert", ["--keras", "x.keras", "--out", "x.tflite",
                                                                 "--tta-flip", "--flip-margin", "0.1"], 2, "no effect"),
]


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 100)
    (tmp_path / "broken.jpg").write_bytes(b"garbage")
    (tmp_path / "bad.yaml").write_text("sources: [\n")
    (tmp_path / "empty.yaml").write_text("device_id: test\n")
    block = tmp_path / "block"
    block.mkdir()
    for name in ("matplotlib", "starlette", "uvicorn"):
        (block / f"{name}.py").write_text(f"raise ImportError('no {name} in this test')\n")
    (tmp_path / "emptybin").mkdir()
    return tmp_path


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_user_error_is_one_line_with_its_exit_code(case, workdir, d19):
    _, prog, args, code, text = case
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if "BLOCK" in args:
        env["PYTHONPATH"] = os.pathsep.join([str(workdir / "block"), str(ROOT)])
    if "NOFFMPEG" in args:
        env["PATH"] = str(workdir / "emptybin")
    args = [a.replace("CLIP", str(d19)).replace("TMP", str(workdir)) for a in args if a not in ("BLOCK", "NOFFMPEG")]
    res = subprocess.run([sys.executable, "-m", PROGS[prog], *args], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=env)
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.returncode == code, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prog}") and ": " in last and text in last, res.stderr[-2000:]  # "prog [sub]: ..."
    if "--plot" in args or "--annotate" in args:
        assert not (workdir / "o" / "frames.csv").exists()  # detected before any work


HELP = [("edge-fer", []), ("edge-fer-train", []), ("edge-fer-train", ["fit"]), ("edge-fer-train", ["evaluate"]),
        ("edge-fer-train", ["pack"]), ("edge-fer-train", ["recover"]),
        ("edge-fer-train", ["soup"]), ("edge-fer-convert", [])]


@pytest.mark.integration
@pytest.mark.parametrize("prog,sub", HELP, ids=[" ".join([p, *s]) for p, s in HELP])
def test_every_option_has_help_and_no_raw_markup(prog, sub):
    import re

    res = subprocess.run([sys.executable, "-m", PROGS[prog], *sub, "--help"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert res.returncode == 0 and "``" not in res.stdout, res.stdout
    if not sub:  # top level: examples and the exit-code table
        assert "examples:" in res.stdout and "exit codes:" in res.stdout
    options = res.stdout.split("options:", 1)[1].split("\n\n", 1)[0]
    # every option line (two-space indent, a flag) is followed by text on its line or the next one
    lines = options.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^  (-{1,2}[\w-]+)(?: [A-Z_{][^ ]*)?(?:, --[\w-]+)?( {2,}\S.*)?$", line)
        if m and not m.group(2):
            assert i + 1 < len(lines) and lines[i + 1].startswith(" " * 10), f"no help for {m.group(1)}"


@pytest.mark.integration
def test_fit_help_covers_every_fit_config_field():
    import dataclasses

    from training.cli import FIT_HELP
    from training.fit_config import FitConfig

    assert set(FIT_HELP) == {f.name for f in dataclasses.fields(FitConfig)}
    assert all(len(text) > 10 for text in FIT_HELP.values())
