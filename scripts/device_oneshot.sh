#!/usr/bin/env bash
# One-shot training for a leased GPU machine (<= 12 minutes of training): stronger teachers on both label
# sets (FER+ vote distributions and FER2013 labels), then distillation into the <= 1.5 MB edge student.
#
#   bash scripts/device_oneshot.sh prepare            # here (CPU, once): .devdata/ + .whl/ (about 52 MB)
#   bash scripts/device_oneshot.sh train .devdata OUT # on the GPU machine (Keras 3 on JAX), or on CPU to test
#   bash scripts/device_oneshot.sh finish OUT runs/oneshot   # here: int8 conversion + evaluation of the students
#
# The FER2013 folder release and the FER+ PNGs are the same photos with another grey-level mapping and other
# file names, so one FER+ pack travels and the FER2013 labels ride along (training/joint.py matches them).
# Budgets (seconds of training per round, runs of a round side by side): TEACHER_S (default 300),
# STUDENT_S (default 300). LIMIT=N trains on N faces only (the CPU rehearsal).
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:?usage: device_oneshot.sh prepare | train DATA_DIR OUT_DIR | finish OUT_DIR RUNS_DIR}
TEACHER_S=${TEACHER_S:-300} STUDENT_S=${STUDENT_S:-300} LIMIT=${LIMIT:-0}
SHARED=${SHARED:-../shared/datasets}

prepare() {
  mkdir -p .devdata
  [ -f .devdata/ferplus_train.npz ] || .venv/bin/edge-fer-train pack --data "$SHARED/ferplus/FER2013Train" \
      --layout ferplus --ferplus-mode soft --out .devdata/ferplus_train.npz
  .venv/bin/python -m training.joint --ferplus-pack .devdata/ferplus_train.npz --fer2013 "$SHARED/fer2013/train" \
      --out .devdata/fer2013_labels.npz
  # Keras 3 and what it needs beyond the GPU image's packages, for its Python 3.12
  mkdir -p .whl
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl keras namex optree \
      pydantic pydantic-core annotated-types typing-inspection
  du -sh .devdata .whl
}

split_data() {  # DATA_DIR WORK: one uncompressed pack per label set
  python3 - "$1" "$2" "$LIMIT" <<'PY'
import sys
import numpy as np
from training.data import load_packed
src, work, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
ferplus = load_packed(f"{src}/ferplus_train.npz")
fer2013 = np.load(f"{src}/fer2013_labels.npz")
x = np.round(ferplus.x * 255).astype(np.uint8)
rows = np.arange(len(x)) if not limit else np.sort(np.random.default_rng(0).permutation(len(x))[:limit])
matched = rows[fer2013["y"][rows].sum(axis=1) > 0]
np.savez(f"{work}/ferplus.npz", x=x[rows], y=ferplus.y[rows], labels=np.asarray(ferplus.labels))
np.savez(f"{work}/fer2013.npz", x=x[matched], y=fer2013["y"][matched], labels=fer2013["labels"])
print("ferplus", len(rows), "fer2013", len(matched))
PY
}

fit_bg() {  # NAME DATA BUDGET OPTIONS... (runs in the background, log in the run folder)
  local name=$1 data=$2 budget=$3; shift 3
  mkdir -p "$runs/$name"
  python3 -m training.cli fit --data "$data" --out "$runs/$name" --time-budget "$budget" --epochs 3000 \
      --patience 10000 "$@" >"$runs/$name/log.txt" 2>&1 &
}

teacher_scores() {  # LABELSET TEACHER... -> $work/LABELSET_teacher.npz (flip-averaged scores of each teacher)
  python3 - "$work/$1.npz" "$work/$1_teacher.npz" "${@:2}" <<'PY'
import json, sys
from pathlib import Path
import numpy as np
from training.data import load_packed
from training.fit import teacher_scores
data, out, runs = load_packed(sys.argv[1]), sys.argv[2], [Path(p) for p in sys.argv[3:]]
scores = {}
for run in runs:
    if not (run / "best.keras").is_file():
        print(run.name, "FAILED:", (run / "log.txt").read_text()[-1500:])
        continue
    scores[run.name] = teacher_scores(str(run / "best.keras"), data)
    fit = json.loads((run / "fit.json").read_text()) if (run / "fit.json").is_file() else {}
    print(run.name, {k: fit.get(k) for k in ("val_accuracy", "epochs_run", "seconds_per_epoch")})
np.savez_compressed(out, **scores)
PY
}

train() {
  local data=${1:?DATA_DIR} out=${2:?OUT_DIR}
  work=$(mktemp -d) runs=$work/runs
  if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
  fi
  export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
  export PYTHONPATH=${PYTHONPATH:-$PWD}
  mkdir -p "$out" "$runs"
  split_data "$data" "$work"
  for set in ferplus fer2013; do     # round 1: teachers (the seed VGG and a wide edge net)
    fit_bg "$set-vgg" "$work/$set.npz" "$TEACHER_S" --model baseline --lr 1e-3 --erase 0.5
    fit_bg "$set-e20" "$work/$set.npz" "$TEACHER_S" --model edge --width 2.0 --erase 0.5
  done
  wait || true
  for set in ferplus fer2013; do teacher_scores "$set" "$runs/$set-vgg" "$runs/$set-e20"; done
  for set in ferplus fer2013; do     # round 2: distilled students at the shipped widths
    fit_bg "$set-s125" "$work/$set.npz" "$STUDENT_S" --model edge --width 1.25 \
        --teacher "$work/${set}_teacher.npz" --distill 0.8
  done
  fit_bg "fer2013-s10" "$work/fer2013.npz" "$STUDENT_S" --model edge --width 1.0 \
      --teacher "$work/fer2013_teacher.npz" --distill 0.8
  wait || true
  for name in ferplus-s125 fer2013-s125 fer2013-s10; do
    (cd "$runs/$name" && tar czf "$out/$name.tgz" best.keras fit.json history.csv log.txt 2>/dev/null) || \
        tail -c 1500 "$runs/$name/log.txt"
    python3 -c "import json,sys; f=json.load(open(sys.argv[1])); print(sys.argv[1], f['val_accuracy'], f['epochs_run'])" \
        "$runs/$name/fit.json" 2>/dev/null || true
  done
  tar czf "$out/teachers.tgz" -C "$work" ferplus_teacher.npz fer2013_teacher.npz
  ls -la "$out"
}

finish() {
  local out=${1:?OUT_DIR} dest=${2:?RUNS_DIR}
  for name in ferplus-s125 fer2013-s125 fer2013-s10; do
    [ -f "$out/$name.tgz" ] || continue
    mkdir -p "$dest/$name" && tar xzf "$out/$name.tgz" -C "$dest/$name"
    .venv/bin/edge-fer-convert --keras "$dest/$name/best.keras" --out "$dest/$name/int8.tflite" --quantize int8 \
        --calib-data "$SHARED/ferplus/FER2013Train" --calib-n 1000 --parity-n 0 --dataset-name "oneshot $name"
    for eval in "$SHARED/ferplus/FER2013Valid" "$SHARED/fer2013/test"; do
      # one pass (the sidecar's flip_margin is 0), and with the shipped ferplus gate for a fair comparison; choose a
      # student's own gate on a validation split before shipping it (edge/models/ferplus_int8.md)
      for margin in 0 0.1; do
        echo "$name on $eval, flip margin $margin:"
        .venv/bin/edge-fer-train evaluate --model "$dest/$name/int8.tflite" --data "$eval" --flip-margin "$margin"
      done
    done
  done
}

case $step in
  prepare) prepare ;;
  train) train "${@:2}" ;;
  finish) finish "${@:2}" ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
