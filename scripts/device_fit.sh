#!/usr/bin/env bash
# Train several `edge-fer-train fit` runs at once on a leased GPU machine
# (Keras 3 on JAX; no TensorFlow there), then export each run's best model
# without optimizer state, plus every run's flip-averaged scores on the
# training data (teacher scores for distillation), into OUT_DIR.
#
# Usage: scripts/device_fit.sh DATA.npz PLAN_FILE RUNS_DIR OUT_DIR
#   DATA.npz   training data written by `edge-fer-train pack`
#   PLAN_FILE  one run per line: NAME followed by `fit` options
# Wheels for packages the machine lacks (keras, namex, optree) are installed
# from .whl/ when that folder exists.
set -euo pipefail
data=$1 plan=$2 runs=$3 out=$4
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
mkdir -p "$runs" "$out"
names=()
while read -r name opts; do
  [[ -z $name || $name == \#* ]] && continue
  names+=("$name")
  mkdir -p "$runs/$name"
  # shellcheck disable=SC2086
  python3 -m training.cli fit --data "$data" --out "$runs/$name" $opts >"$runs/$name/log.txt" 2>&1 &
done <"$plan"
wait || true
python3 - "$data" "$runs" "$out" "${names[@]}" <<'PY'
import json, sys
from pathlib import Path
import keras, numpy as np
from training.data import load_packed
from training.fit import teacher_scores
data, runs, out, names = load_packed(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
scores = {}
for name in names:
    run = runs / name
    best = run / "best.keras"
    if not best.is_file():
        print(name, "no best.keras;", (run / "log.txt").read_text()[-2000:])
        continue
    keras.models.load_model(best, compile=False).save(run / "final.keras")
    scores[name] = teacher_scores(str(run / "final.keras"), data)
    fit = json.loads((run / "fit.json").read_text()) if (run / "fit.json").is_file() else {}
    print(name, {k: fit.get(k) for k in ("val_accuracy", "epochs_run", "seconds_per_epoch", "params")})
np.savez_compressed(out / "teacher_scores.npz", **scores)
PY
for name in "${names[@]}"; do
  files=$(cd "$runs/$name" && ls final.keras fit.json history.csv log.txt 2>/dev/null || true)
  # shellcheck disable=SC2086
  [[ -n $files ]] && tar czf "$out/$name.tgz" -C "$runs/$name" $files
done
ls -la "$out"
