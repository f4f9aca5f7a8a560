"""Training speed: seconds per epoch of the trainer's own loops, as ``kwshw train`` runs them.

::

    python bench/train_speed.py                    # -> bench/results/train-speed.json
    python bench/train_speed.py --windows 20000 --epochs 1 --threads 1 2

The CNN recipe's float training (:func:`kwshw.train.trainer.train_float`) and its 4-bit QAT
fine-tuning with distillation (:func:`~kwshw.train.trainer.finetune_qat`), with passive OpenMP
waiting as in ``kwshw train``, on random windows of the recipe's input size (speed does not
depend on the values), as many as the README's main command trains on (57,841: windows of
11,250 clips and of two augmented copies of each, and 10,000 stream windows), once per thread
count (``TrainConfig.threads``; the recipe's own is recorded as ``threads`` and its times at
the top level). Nothing else should run on the machine meanwhile; the machine is shared, so
compare runs of one session (the thread counts of one run), not across days.
"""

from __future__ import annotations

import argparse
import sys
import time

# kwshw.train first: it sets OMP_WAIT_POLICY before torch loads its OpenMP runtime, which
# reads it once (as in ``kwshw train``, whose CLI imports nothing of torch before).
import kwshw.train  # isort: skip  # noqa: F401
import numpy as np
import torch
from common import Timer, provenance, results_dir, write_json

from kwshw.features import FeatureConfig, Normalizer
from kwshw.train.trainer import TrainConfig, TrainData, finetune_qat, train_float

#: Training windows of the README's main command (model meta ``train_examples``).
MAIN_COMMAND_WINDOWS = 57_841


def time_loops(windows: int, epochs: int, threads: int = TrainConfig.threads) -> dict:
    """Seconds per epoch of the recipe's float and 4-bit QAT loops on ``windows`` windows at
    ``threads`` PyTorch threads."""
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
    config = TrainConfig.recipe("cnn", epochs=epochs, qat_epochs=epochs, validate=False,
                                threads=threads)
    t0 = time.perf_counter()
    net, _ = train_float(data, config, progress=False)
    t1 = time.perf_counter()
    finetune_qat(net, data, 4, config, progress=False)
    t2 = time.perf_counter()
    return {"threads": threads, "windows": windows, "epochs": epochs,
            "float_s_per_epoch": round((t1 - t0) / epochs, 2),
            "qat4_s_per_epoch": round((t2 - t1) / epochs, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=MAIN_COMMAND_WINDOWS,
                    help=f"training windows per epoch (default {MAIN_COMMAND_WINDOWS:,})")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of each loop (default 2)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], metavar="N",
                    help="thread counts to time, each in turn (default 1 2; the recipe's is "
                         f"{TrainConfig.threads})")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    if args.windows < 1 or args.epochs < 1 or min(args.threads) < 1:
        ap.error("--windows, --epochs and --threads must be positive")
    timer = Timer()
    by_threads = {}
    for n in dict.fromkeys([TrainConfig.threads, *args.threads]):
        by_threads[n] = time_loops(args.windows, args.epochs, n)
        print(f"train_speed: {n} thread(s): float {by_threads[n]['float_s_per_epoch']} "
              f"s/epoch, 4-bit QAT {by_threads[n]['qat4_s_per_epoch']} s/epoch",
              file=sys.stderr, flush=True)
    run = {**by_threads[TrainConfig.threads],
           "by_threads": {str(n): r for n, r in sorted(by_threads.items())}}
    path = write_json(results_dir(override=args.out) / "train-speed.json", run,
                      meta=provenance("bench/train_speed.py", timer, argv=argv))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
