"""Training speed: seconds per epoch of the trainer's own loops, as ``kwshw train`` runs them.

::

    python bench/train_speed.py                    # -> bench/results/train-speed.json
    python bench/train_speed.py --windows 20000 --epochs 1

The CNN recipe's float training (:func:`kwshw.train.trainer.train_float`) and its 4-bit QAT
fine-tuning with distillation (:func:`~kwshw.train.trainer.finetune_qat`), at the trainer's
thread count and passive OpenMP waiting, on random windows of the recipe's input size (speed
does not depend on the values), as many as the README's main command trains on (57,841:
windows of 11,250 clips and of two augmented copies of each, and 10,000 stream windows).
Nothing else should run on the machine meanwhile; the machine is shared, so compare runs of
one session, not across days.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from common import Timer, provenance, results_dir, write_json

from kwshw.features import FeatureConfig, Normalizer
from kwshw.train.trainer import TrainConfig, TrainData, finetune_qat, train_float

#: Training windows of the README's main command (model meta ``train_examples``).
MAIN_COMMAND_WINDOWS = 57_841


def time_loops(windows: int, epochs: int) -> dict:
    """Seconds per epoch of the recipe's float and 4-bit QAT loops on ``windows`` windows."""
    features = FeatureConfig()
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (windows, features.n_inputs)).astype(np.float32)
    labels = [f"c{k}" for k in range(12)]
    y = rng.integers(0, len(labels), windows)
    data = TrainData(x=torch.from_numpy(x), y=torch.from_numpy(y.astype(np.int64)),
                     x_clean=x[:1000], labels=labels, task="speech_commands",
                     features=features, info={"train_clips": windows},
                     normalizer=Normalizer(mean=np.zeros(features.n_mels, np.float32),
                                           std=np.ones(features.n_mels, np.float32)))
    config = TrainConfig.recipe("cnn", epochs=epochs, qat_epochs=epochs, validate=False)
    t0 = time.perf_counter()
    net, _ = train_float(data, config, progress=False)
    t1 = time.perf_counter()
    finetune_qat(net, data, 4, config, progress=False)
    t2 = time.perf_counter()
    return {"threads": torch.get_num_threads(), "windows": windows, "epochs": epochs,
            "float_s_per_epoch": round((t1 - t0) / epochs, 2),
            "qat4_s_per_epoch": round((t2 - t1) / epochs, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=MAIN_COMMAND_WINDOWS,
                    help=f"training windows per epoch (default {MAIN_COMMAND_WINDOWS:,})")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of each loop (default 2)")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    if args.windows < 1 or args.epochs < 1:
        ap.error("--windows and --epochs must be positive")
    timer = Timer()
    run = time_loops(args.windows, args.epochs)
    print(f"train_speed: {run['threads']} thread(s): float {run['float_s_per_epoch']} s/epoch, "
          f"4-bit QAT {run['qat4_s_per_epoch']} s/epoch", file=sys.stderr, flush=True)
    path = write_json(results_dir(override=args.out) / "train-speed.json", run,
                      meta=provenance("bench/train_speed.py", timer, argv=argv))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
