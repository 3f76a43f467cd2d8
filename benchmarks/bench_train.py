"""Edge vs baseline model cost: parameters, training images/s on 2 cores, int8 size and ms/face.

Trains each model for a few steps on real FER2013 faces (speed only), converts
it to full int8 and times one-face inference at 1 thread.

    .venv/bin/python benchmarks/bench_train.py [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED, machine, table, timeit  # noqa: E402
from convert.convert import convert_model  # noqa: E402
from edge.classify import EmotionClassifier  # noqa: E402
from training.augment import FaceBatches  # noqa: E402
from training.data import load_dataset  # noqa: E402
from training.models import build_model  # noqa: E402


def measure(name: str, data, steps: int, tmp: Path) -> list:
    model = build_model(name)
    model.compile(optimizer="adamw", loss="categorical_crossentropy")
    ds = FaceBatches(data.x[: (steps + 3) * 128], data.y[: (steps + 3) * 128], 128, train=True, seed=0)
    model.fit(FaceBatches(data.x[:384], data.y[:384], 128, train=True, seed=0), epochs=1, verbose=0)  # warm-up
    t0 = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)
    ips = len(ds) * 128 / (time.perf_counter() - t0)
    path = tmp / f"{name}.keras"
    model.save(path)
    tfl = tmp / f"{name}_int8.tflite"
    tfl.write_bytes(convert_model(path, "int8", data.x[:200]))
    clf = EmotionClassifier(tfl, num_threads=1)
    face = data.x[:1]
    ms = timeit(lambda: clf.predict_batch(face), 500) * 1e3
    return [name, f"{model.count_params():,}", f"{ips:.0f}", f"{25838 / ips:.0f}", f"{tfl.stat().st_size / 1e6:.2f}",
            f"{ms:.3f}"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    data = load_dataset(SHARED / "datasets" / "fer2013" / "train", cache_dir=Path.home() / ".cache" / "edge-fer")
    tmp = Path(tempfile.mkdtemp(prefix="edge-fer-bench-train-"))
    rows = [measure(n, data, args.steps, tmp) for n in ("edge", "baseline")]
    print(f"machine: {machine()}\n")
    print(table(rows, ["model", "params", "train img/s (aug, batch 128)", "s/epoch (25,838 imgs)",
                       "int8 MB", "int8 ms/face (1 thread)"]))


if __name__ == "__main__":
    main()
