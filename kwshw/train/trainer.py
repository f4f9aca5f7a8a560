"""Training: float pre-training, then quantization-aware fine-tuning, then export.

The recipe follows the paper: the DNN is trained in float, then fine-tuned with the
golden model's quantizers in the forward pass (:class:`kwshw.train.qat.QuantMLP` with
``bits`` set: column-wise weights, per-frame activations, straight-through gradients),
and exported with :func:`kwshw.modelfile.from_float`, whose integers the QAT forward
pass reproduces exactly in inference mode (:mod:`kwshw.train.exact`).

Data come from :mod:`kwshw.datasets` (features cached on disk), so the same call trains
on the test archive in ``$KWSHW_DATA``, on the full Speech Commands set, or on the
wake-word corpus.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import modelfile, quantize
from ..datasets import Augmentation, Augmenter, SpeechCommands, WakeWord, extract
from ..features import FeatureConfig
from .qat import QuantMLP

__all__ = ["TrainConfig", "train", "train_reference", "resolve_corpus"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (stored in the model file's ``meta``).

    The defaults are the reference recipe: 3 x 128 hidden units, 40 float epochs and 12
    QAT epochs on the clean clips plus 3 augmented copies (time shift, real background
    noise at 5-25 dB SNR, gain), AdamW with a one-cycle schedule, dropout.
    """

    bits: int | None = 4
    hidden: tuple[int, ...] = (128, 128, 128)
    epochs: int = 40
    qat_epochs: int = 12
    lr: float = 1e-3
    qat_lr: float = 2e-4
    weight_decay: float = 1e-4
    dropout: float = 0.3
    input_dropout: float = 0.1
    batch_size: int = 128
    copies: int = 3
    augmentation: Augmentation = field(default_factory=lambda: Augmentation(
        time_shift_ms=100.0, noise_prob=0.6, snr_db=(5.0, 25.0), gain_db=(-6.0, 6.0)))
    seed: int = 0
    in_frac: int = quantize.DEFAULT_INPUT_FRAC

    def to_meta(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["augmentation"] = {k: list(v) if isinstance(v, tuple) else v
                             for k, v in asdict(self.augmentation).items()}
        return d


def resolve_corpus(data_root: str | os.PathLike, task: str) -> Path:
    """The corpus folder for ``task`` inside ``data_root`` (or ``data_root`` itself)."""
    root = Path(data_root)
    sub = {"speech_commands": "speech_commands_v0.02_test",
           "wake_word": "wake_word_benchmark"}[task]
    return root / sub if (root / sub).is_dir() else root


def _dataset(task: str, root: Path, split: str, keyword: str):
    if task == "speech_commands":
        return SpeechCommands(root, split)
    return WakeWord(root, keyword=keyword, split=split)


def _epochs(net: QuantMLP, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float,
            cfg: TrainConfig, desc: str, progress: bool) -> list[float]:
    """AdamW with a one-cycle schedule; returns the mean loss of every epoch."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    per_epoch = (len(x) + cfg.batch_size - 1) // cfg.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch,
                                                pct_start=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses = []
    bar = tqdm(range(epochs), desc=desc, disable=not progress, unit="epoch")
    for _ in bar:
        net.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return losses


def train(data_root: str | os.PathLike, *, task: str = "speech_commands",
          keyword: str = "alexa", config: TrainConfig = TrainConfig(),  # noqa: B008 (frozen)
          features: FeatureConfig = FeatureConfig(),  # noqa: B008 (frozen)
          progress: bool = True) -> modelfile.Model:
    """Train a keyword spotter and return it quantized (``config.bits``) as a model.

    Parameters
    ----------
    data_root : path
        ``$KWSHW_DATA`` (holding ``speech_commands_v0.02_test/`` and
        ``wake_word_benchmark/``) or a corpus folder in the Speech Commands or wake-word layout.
    task : {"speech_commands", "wake_word"}
        12-class Speech Commands, or one keyword against everything else.
    keyword : str
        The wake word (``task="wake_word"``).
    config : TrainConfig
        The recipe. ``bits=None`` trains float only and exports at 8 bits.
    features : FeatureConfig
        Front end and input window.
    progress : bool
        Progress bars.

    Returns
    -------
    Model
        The exported model (with its float reference and the static baseline's ranges).
    """
    t0 = time.monotonic()
    torch.manual_seed(config.seed)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    root = resolve_corpus(data_root, task)
    ds = _dataset(task, root, "train", keyword)
    clean = extract(ds, features, progress=progress, on_error="skip")
    norm = clean.fit_normalizer()
    x_clean, y_clean = clean.windows(norm)
    xs, ys = [x_clean], [y_clean]
    if config.copies > 0:
        aug = extract(ds, features, augment=Augmenter(config.augmentation, ds.noise_items,
                                                      features.sample_rate),
                      copies=config.copies, include_clean=False, seed=config.seed,
                      progress=progress, on_error="skip")
        xa, ya = aug.windows(norm)
        xs.append(xa)
        ys.append(ya)
    x = torch.from_numpy(np.concatenate(xs).astype(np.float32))
    y = torch.from_numpy(np.concatenate(ys).astype(np.int64))

    net = QuantMLP(features.n_inputs, config.hidden, len(ds.labels), bits=None,
                   dropout=config.dropout, input_dropout=config.input_dropout)
    losses = _epochs(net, x, y, epochs=config.epochs, lr=config.lr, cfg=config,
                     desc="float", progress=progress)
    qat_losses: list[float] = []
    if config.bits is not None and config.qat_epochs > 0:
        net.bits = config.bits
        qat_losses = _epochs(net, x, y, epochs=config.qat_epochs, lr=config.qat_lr,
                             cfg=config, desc=f"QAT {config.bits}-bit", progress=progress)
    net.eval()
    ws, bs = net.numpy_params()
    # Output formats and the static baseline's ranges from the clean training windows.
    fracs = quantize.calibrate_out_fracs(ws, bs, x_clean)
    from ..evaluate import static_ranges

    meta = {
        "trainer": "kwshw.train.trainer",
        "config": config.to_meta(),
        "train_clips": len(ds),
        "train_examples": int(len(x)),
        "float_losses": [round(v, 4) for v in losses],
        "qat_losses": [round(v, 4) for v in qat_losses],
        "train_seconds": round(time.monotonic() - t0, 1),
        "torch": torch.__version__,
        "static_ranges": static_ranges(ws, bs, x_clean),
    }
    return modelfile.from_float(
        ws, bs, bits=config.bits or 8, out_fracs=fracs, features=features,
        norm_mean=norm.mean, norm_std=norm.std, labels=ds.labels, task=task,
        in_frac=config.in_frac, meta=meta)


def train_reference(data_root: str | os.PathLike, out_path: str | os.PathLike, *,
                    bits: int = 4, epochs: int | None = None, seed: int = 0,
                    task: str = "speech_commands", hidden: Sequence[int] = (128, 128, 128),
                    progress: bool = True) -> modelfile.Model:
    """Train the reference network with QAT at ``bits`` and save it to ``out_path``."""
    cfg = TrainConfig(bits=bits, seed=seed, hidden=tuple(hidden),
                      **({} if epochs is None else {"epochs": epochs}))
    model = train(data_root, task=task, config=cfg, progress=progress)
    modelfile.save(model, out_path)
    return model
