#!/usr/bin/env bash
# The shipped FER+ model (edge/models/ferplus_int8.tflite), reproduced on 2 CPU cores (about 80 min):
# recover a trainable float model from the shipped FER2013 int8 file, fine-tune it on the FER+ vote
# distributions (FER2013Train, unknown/NF-majority faces dropped, contempt -> neutral, a 10% validation split
# carved from FER2013Train), convert to full int8 and evaluate through the runtime.
#
#   bash scripts/train_ferplus_cpu.sh [RUN_DIR]            # all steps; run it under nohup, it checkpoints per epoch
#   bash scripts/train_ferplus_cpu.sh RUN_DIR finish       # conversion + evaluation of a finished fit only
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/ferplus} step=${2:-all}
data=${SHARED:-../shared/datasets}
BUDGET_S=${BUDGET_S:-4800}
mkdir -p "$run"
if [ "$step" = all ]; then
  .venv/bin/edge-fer-train recover --tflite edge/models/emotion_int8.tflite --data "$data/fer2013/train" \
      --out "$run/recovered.keras"
  .venv/bin/edge-fer-train fit --data "$data/ferplus/FER2013Train" --labels ferplus --ferplus-mode soft \
      --init "$run/recovered.keras" --width 1.25 --lr 5e-4 --warmup-epochs 1 --erase 0.25 \
      --time-budget "$BUDGET_S" --epochs 3000 --patience 10000 --out "$run/fit"
fi
# --flip-margin 0.1: the gate chosen for the shipped fit on its validation split; for a new fit, choose it again with
# `edge-fer-train evaluate --model RUN/ferplus_int8.tflite --val-of RUN/fit --flip-margin X` (ferplus_int8.md)
.venv/bin/edge-fer-convert --keras "$run/fit/best.keras" --out "$run/ferplus_int8.tflite" --quantize int8 \
    --calib-data "$data/ferplus/FER2013Train" --calib-n 1000 --val-of "$run/fit" --parity-n 0 --flip-margin 0.1 \
    --dataset-name "FER+ FER2013Train vote distributions (contempt -> neutral); fine-tuned from the FER2013 model"
mkdir -p "$run/eval"
for model in "$run/ferplus_int8.tflite" "$run/fit/best.keras"; do
  tag=$(basename "$model" | tr . _)
  .venv/bin/edge-fer-train evaluate --model "$model" --data "$data/ferplus/FER2013Valid" --json \
      --out "$run/eval/${tag}_ferplus_valid" > "$run/eval/${tag}_ferplus_valid.json"
  .venv/bin/edge-fer-train evaluate --model "$model" --data "$data/fer2013/test" --json \
      --out "$run/eval/${tag}_fer2013_test" > "$run/eval/${tag}_fer2013_test.json"
  .venv/bin/edge-fer-train evaluate --model "$model" --val-of "$run/fit" --json > "$run/eval/${tag}_val.json"
done
grep -H -o '"accuracy": [0-9.]*\|"macro_f1": [0-9.]*' "$run"/eval/*.json
