"""Training: float pre-training, quantization-aware fine-tuning, export.

The recipe (every number is a :class:`TrainConfig` field, stored in the model's ``meta``):

1. **Features**, once, cached on disk by :func:`kwshw.datasets.extract`: the clean training
   clips plus ``copies`` augmented copies of each (time shift, real background noise at a
   moderate SNR, gain). Per-band normalization statistics come from the clean clips; the
   model file stores them (as float32, the values training used).
2. **Float DNN**: :class:`kwshw.train.qat.QuantMLP` (no quantizers; its first layer trained
   as a convolution over time with zeros on the code grid, ``time_conv``) trained on
   cross-entropy with AdamW, a one-cycle learning-rate schedule, batch norm, dropout and
   weight decay, class-balanced (inverse class frequency); the batch norm is then folded into the
   weights and biases (:meth:`~kwshw.train.qat.QuantMLP.folded`), as the accelerator has none.
3. **QAT**: the float DNN fine-tuned with the golden model's quantizers in the forward pass
   (``QuantMLP.bits``: column-wise weights, per-frame activations, straight-through
   gradients), lower learning rate, distilled from the float network's posteriors.
4. **Export** with :func:`kwshw.modelfile.from_float` (output formats by
   :func:`kwshw.quantize.calibrate_out_fracs` on the clean training windows, the static
   baseline's activation ranges in ``meta["static_ranges"]``), then measured on the
   validation split (speakers not used for training) with the golden model; the numbers go to
   ``meta["validation"]``.

Everything is seeded: the same seed, data and thread count give the same model.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .. import modelfile, quantize
from ..datasets import SILENCE, UNKNOWN, Augmentation, Augmenter, Dataset, DatasetError, extract
from ..evaluate import TASKS, evaluate, open_dataset, resolve_root, static_ranges
from ..features import FeatureConfig, Normalizer
from ..frontends import normalizer
from ..layers import REFERENCE_CNN, Geometry
from ..progress import bar as progress_bar
from ..stream_eval import choose_threshold
from ..stream_windows import stream_windows
from .cnn import QuantCNN
from .qat import QuantMLP, time_conv_positions

#: The two network classes the recipe trains (same interface: ``bits``, ``folded``,
#: ``numpy_params``, ``convs``).
Network = QuantMLP | QuantCNN

__all__ = [
    "TrainConfig",
    "TrainData",
    "export",
    "finetune_qat",
    "prepare",
    "resolve_corpus",
    "shift_bands",
    "train",
    "train_float",
    "train_reference",
    "train_variants",
]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (stored in the model file's ``meta``).

    The defaults are the reference recipe for 12-class Speech Commands on every corpus of the
    data folder (docs/training.md): about 10,400 clips of 1,728 speakers, so fewer augmented
    copies and epochs than on the test archive alone, within 10 minutes on 2 cores.
    ``bits=None`` trains float only and exports with 8-bit post-training quantization.
    """

    bits: int | None = 4
    #: Widths of the fully connected hidden layers (after the time convolution, if any).
    hidden: tuple[int, ...] = (128, 128)
    #: ``(kernel frames, stride frames, channels)`` of the first layer trained as a
    #: convolution over time (:func:`kwshw.train.qat.expand_time_conv`), or ``None`` for a
    #: plain first layer. (5, 2, 16) over the 25-frame window: 11 positions x 16 = 176 units.
    time_conv: tuple[int, int, int] | None = (5, 2, 16)
    #: The CNN recipe (:class:`kwshw.train.cnn.QuantCNN`): ``(kernel, stride, channels)`` of each
    #: temporal convolution, stored once per kernel (a version-2 model file), before the dense
    #: ``hidden`` layers; ``None`` trains the DNN. Replaces ``time_conv``.
    convs: tuple[tuple[int, int, int], ...] | None = None
    epochs: int = 40
    qat_epochs: int = 15
    lr: float = 1e-3
    qat_lr: float = 1e-4
    weight_decay: float = 1e-4
    dropout: float = 0.15
    #: Label smoothing of the float stage's cross-entropy (the QAT stage distils from the
    #: float network's posteriors instead). Not in the recipes: with the CNN recipe 0.1 gained
    #: a point of clip accuracy (3 seeds) but missed 10 points more keywords in the held-back
    #: stream at the same false accepts per hour (docs/training.md).
    label_smoothing: float = 0.0
    input_dropout: float = 0.1
    batch_norm: bool = True
    freq_shift: int = 1
    qat_distill: bool = True
    batch_size: int = 128
    copies: int = 2
    augmentation: Augmentation = field(default_factory=lambda: Augmentation(
        time_shift_ms=100.0, noise_prob=0.5, snr_db=(10.0, 30.0), gain_db=(-6.0, 6.0)))
    #: Cross-entropy weighted by inverse class frequency (:attr:`TrainData.class_weights`):
    #: ``on``/``off`` have about five times fewer training clips than the other words (only
    #: the test archive has them), the wake word about sixty times fewer than its negatives.
    balance_classes: bool = True
    #: Multiplies the ``_unknown_`` class's weight in the cross-entropy (after balancing): in
    #: a stream, non-keyword speech taken for a keyword is what false accepts are made of.
    unknown_weight: float = 1.0
    negative_windows: str = "centroid"
    #: Speech Commands: extra training windows, at every alignment, of a stream of the training
    #: split's ``_unknown_`` and ``_silence_`` clips (:mod:`kwshw.stream_windows`), so that the
    #: model learns what a detector sees in a stream: half words, ends of one word and the
    #: start of the next.
    stream_windows: int = 10000
    #: Speech Commands: the wake-word corpus' training phrases as ``_unknown_`` speech
    #: (:func:`kwshw.corpora.general_speech_phrases`), when the data folder has it.
    general_speech: bool = True
    seed: int = 0
    #: PyTorch threads of the training loops (the model's bits depend on it: reductions split
    #: differently). The recipes' layers are small (batches of 128 windows, at most 1,000 x
    #: 176 weights), so a second thread only adds synchronisation: on the 2-core machine one
    #: thread runs the CNN recipe's float epoch in 7.15 s against 10.83 s with two passive
    #: threads (``bench/train_speed.py``), and leaves the other core to a build
    #: (docs/training.md, "One thread").
    threads: int = 1
    in_frac: int = quantize.DEFAULT_INPUT_FRAC
    validate: bool = True

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if not self.unknown_weight > 0:
            raise ValueError(f"unknown_weight must be > 0, got {self.unknown_weight}")
        if self.convs is not None and self.time_conv is not None:
            raise ValueError("convs (the CNN) replaces time_conv (the DNN's first layer): "
                             "set time_conv=None")

    @classmethod
    def recipe(cls, name: str, **overrides) -> TrainConfig:
        """The named recipe (one of :data:`RECIPES`) with ``overrides``.

        Raises
        ------
        ValueError
            For a name not in :data:`RECIPES`.
        """
        if name == "dnn":
            return cls(**overrides)
        if name == "cnn":
            return cls.cnn(**overrides)
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")

    @classmethod
    def cnn(cls, **overrides) -> TrainConfig:
        """The CNN recipe (docs/training.md, "The CNN recipe"): :data:`CNN_RECIPE` over the
        defaults, then ``overrides``."""
        return cls(**{**CNN_RECIPE, **overrides})

    def to_meta(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["time_conv"] = None if self.time_conv is None else list(self.time_conv)
        # Only the CNN recipe records its convolutions, so a DNN's model file (and its hash)
        # is what it was before the field existed.
        if self.convs is None:
            del d["convs"]
        else:
            d["convs"] = [list(c) for c in self.convs]
        # Likewise for label smoothing and the _unknown_ weight, which no recipe changes.
        if not self.label_smoothing:
            del d["label_smoothing"]
        if self.unknown_weight == 1.0:
            del d["unknown_weight"]
        del d["threads"]  # the meta's own "threads" records it, as before the field existed
        d["augmentation"] = {k: list(v) if isinstance(v, tuple) else v
                             for k, v in asdict(self.augmentation).items()}
        return d


#: What the CNN recipe changes in :class:`TrainConfig` (docs/training.md): temporal
#: convolutions stored once per kernel, each patch with its own range (a version-2 model
#: file), then one dense hidden layer.
CNN_RECIPE: dict = {**REFERENCE_CNN, "time_conv": None, "lr": 2e-3}
#: The recipes by name (``kwshw train --recipe``).
RECIPES = ("dnn", "cnn")


def resolve_corpus(data_root: str | os.PathLike, task: str) -> Path:
    """The corpus folder for ``task`` inside ``data_root`` (or ``data_root`` itself)."""
    return resolve_root(data_root, task)


def _seed(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # Late in training Adam's second moments underflow to subnormal floats, which the CPU
    # handles 10-100x slower; flushing them to zero keeps epochs at a constant speed.
    torch.set_flush_denormal(True)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

@dataclass
class TrainData:
    """Training windows of one task, ready for the loops (features normalized, flattened).

    Attributes
    ----------
    x, y : torch.Tensor
        All training windows (clean clips first, then the augmented copies) and labels.
    x_clean : numpy.ndarray
        The clean training windows (calibration of output formats and static ranges).
    normalizer : Normalizer
        Per-band statistics of the clean training clips (float32 values).
    labels : list of str
    task : str
    features : FeatureConfig
    info : dict
        Counts for the model's meta.
    """

    x: torch.Tensor
    y: torch.Tensor
    x_clean: np.ndarray
    normalizer: Normalizer
    labels: list[str]
    task: str
    features: FeatureConfig
    info: dict
    data_root: str | None = None
    keyword: str = "alexa"

    @property
    def class_weights(self) -> torch.Tensor:
        """Inverse class frequencies ``N / (C * n_c)`` (balanced cross-entropy): each class
        weighs the same in the loss, and the average weight over the ``N`` windows is 1."""
        counts = torch.bincount(self.y, minlength=len(self.labels)).double().clamp(min=1)
        w = counts.sum() / (len(self.labels) * counts)
        return w.float()


def _dataset_kwargs(task: str, keyword: str, config: TrainConfig) -> dict:
    if task == "wake_word":
        return {"keyword": keyword, "negative_windows": config.negative_windows}
    return {"general_speech": config.general_speech}


def prepare(data_root: str | os.PathLike, *, task: str = "speech_commands",
            keyword: str = "alexa", config: TrainConfig = TrainConfig(),  # noqa: B008
            features: FeatureConfig = FeatureConfig(),  # noqa: B008
            progress: bool = True) -> TrainData:
    """Read the training split, extract (or load cached) features, normalize, stack windows.

    Raises
    ------
    kwshw.datasets.DatasetError
        Missing folders, empty classes, no usable clips (from :mod:`kwshw.datasets`).
    ValueError
        Unknown task.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    ds = open_dataset(task, data_root, "train", **_dataset_kwargs(task, keyword, config))
    for note in ds.notes:  # which corpora are read, in which role; folders another supplies
        print(f"data: {note}", file=sys.stderr)
    counts = ds.counts()
    empty = [k for k, v in counts.items() if v == 0]
    if empty:
        raise DatasetError(f"no training clips for class(es) {empty} in {ds.root}")
    clean = extract(ds, features, progress=progress, on_error="skip")
    fitted = clean.fit_normalizer()
    # The model file stores float32 statistics; train on exactly those (and, for the integer
    # front end, on the input codes the gateware computes from them).
    norm = normalizer(fitted.mean.astype(np.float32), fitted.std.astype(np.float32), features,
                      config.in_frac)
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
    if task == "speech_commands" and config.stream_windows > 0:
        xb, yb = _stream_windows(ds, features, norm, config)
        xs.append(xb)
        ys.append(yb)
    x = torch.from_numpy(np.ascontiguousarray(np.concatenate(xs), dtype=np.float32))
    y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
    info = {"train_clips": len(ds), "train_clips_used": int(len(clean.items)),
            "stream_windows": int(len(xb)) if task == "speech_commands" and
            config.stream_windows > 0 else 0,
            "train_speakers": len(ds.speakers()) or None, "train_examples": int(len(x)),
            "train_counts": counts, "corpora": list(ds.notes)}
    return TrainData(x=x, y=y, x_clean=np.asarray(x_clean, np.float32), normalizer=norm,
                     labels=list(ds.labels), task=task, features=features, info=info,
                     data_root=str(data_root), keyword=keyword)


def _stream_windows(ds: Dataset, features: FeatureConfig, norm: Normalizer,
                    config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Windows at every alignment of a stream of the training non-keyword clips."""
    silence, unknown = ds.labels.index(SILENCE), ds.labels.index(UNKNOWN)
    clips = []
    for it in ds:
        if it.label_index in (silence, unknown):
            try:
                clips.append((it.key, ds.load(it), it.label_index))
            except DatasetError:
                continue  # unreadable: already reported by the feature extraction
    return stream_windows(clips, features, norm, n_windows=config.stream_windows,
                          silence=silence, unknown=unknown, seed=config.seed)


# ---------------------------------------------------------------------------------------------
# Loops
# ---------------------------------------------------------------------------------------------

def _batches(n: int, batch_size: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield perm[i:i + batch_size]


def shift_bands(x: torch.Tensor, n_mels: int, max_shift: int,
                gen: torch.Generator) -> torch.Tensor:
    """Every window of ``x`` (batch, context * n_mels) moved by its own random whole number of
    mel bands in ``[-max_shift, max_shift]``, the edge band repeated into the gap.

    A shift of the mel axis is roughly a change of vocal-tract length: an augmentation across
    speakers that the fully connected network cannot get from its structure, as a CNN would.
    """
    if max_shift <= 0:
        return x
    n = len(x)
    w = x.view(n, -1, n_mels)
    shift = torch.randint(-max_shift, max_shift + 1, (n,), generator=gen)
    src = (torch.arange(n_mels)[None, :] - shift[:, None]).clamp(0, n_mels - 1)
    return torch.gather(w, 2, src[:, None, :].expand(-1, w.shape[1], -1)).reshape(n, -1)


def _distillation_loss(logits: torch.Tensor, target: torch.Tensor, labels: torch.Tensor,
                       weights: torch.Tensor | None) -> torch.Tensor:
    """KL divergence from the teacher's posteriors ``target``, averaged over the batch with the
    class weights of the labels (as the weighted cross-entropy the teacher was trained with):
    unweighted, the windows of the largest classes (``_unknown_`` stream windows and general
    speech, about 40% of the training windows) pull the student away from the balanced
    teacher and cost several points of held-out accuracy."""
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits, dim=1), target,
                                    reduction="none").sum(dim=1)
    if weights is None:
        return kl.mean()
    w = weights[labels]
    return (w * kl).sum() / w.sum()


def _loss_weights(data: TrainData, config: TrainConfig) -> torch.Tensor | None:
    """The cross-entropy's class weights: balanced (``balance_classes``), ``_unknown_``'s
    times ``unknown_weight``; None for plain cross-entropy."""
    if not config.balance_classes and config.unknown_weight == 1.0:
        return None
    weights = data.class_weights if config.balance_classes else \
        torch.ones(len(data.labels))
    if "_unknown_" in data.labels:  # both tensors above are new: scaling in place is safe
        weights[data.labels.index("_unknown_")] *= config.unknown_weight
    return weights


def _fit(net: Network, data: TrainData, config: TrainConfig, *, epochs: int, lr: float,
         seed: int, desc: str, progress: bool, teacher: Network | None = None) -> list[float]:
    """AdamW with a one-cycle schedule over the training windows; returns the loss per epoch.

    The loss is cross-entropy against the labels, or with a ``teacher`` the KL divergence from
    the teacher's posteriors on the same (augmented) batch.
    """
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=config.weight_decay)
    per_epoch = (len(data.x) + config.batch_size - 1) // config.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch,
                                                pct_start=0.1)
    weights = _loss_weights(data, config)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    bar = progress_bar(range(epochs), desc=desc, disable=not progress, unit="epoch")
    for _ in bar:
        net.train()
        total = 0.0
        for idx in _batches(len(data.x), config.batch_size, gen):
            xb = shift_bands(data.x[idx], data.features.n_mels, config.freq_shift, gen)
            if teacher is None:
                loss = torch.nn.functional.cross_entropy(
                    net(xb), data.y[idx], weight=weights,
                    label_smoothing=config.label_smoothing)
            else:
                with torch.no_grad():
                    target = torch.softmax(teacher(xb), dim=1)
                loss = _distillation_loss(net(xb), target, data.y[idx], weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(total / len(data.x))
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    net.eval()
    return losses


def new_network(data: TrainData, config: TrainConfig) -> Network:
    """The untrained float network of the recipe: the CNN when ``config.convs`` is set."""
    if config.convs is not None:
        return QuantCNN(data.features.context, data.features.n_mels, config.convs,
                        config.hidden, len(data.labels), dropout=config.dropout,
                        input_dropout=config.input_dropout, batch_norm=config.batch_norm)
    return QuantMLP(data.features.n_inputs, config.hidden, len(data.labels), bits=None,
                    dropout=config.dropout, input_dropout=config.input_dropout,
                    batch_norm=config.batch_norm, time_conv=config.time_conv,
                    n_mels=data.features.n_mels)


def train_float(data: TrainData, config: TrainConfig = TrainConfig(),  # noqa: B008
                progress: bool = True) -> tuple[Network, list[float]]:
    """Train the float network; returns it (in eval mode) and the loss of every epoch."""
    _seed(config.seed, config.threads)
    net = new_network(data, config)
    losses = _fit(net, data, config, epochs=config.epochs, lr=config.lr, seed=config.seed,
                  desc="float", progress=progress)
    # The accelerator has no batch norm: from here on the network is the folded one.
    return net.folded().eval(), losses


def finetune_qat(net: Network, data: TrainData, bits: int,
                 config: TrainConfig = TrainConfig(),  # noqa: B008
                 progress: bool = True) -> tuple[Network, list[float]]:
    """A copy of ``net`` fine-tuned with the quantizers at ``bits`` in the forward pass.

    With ``config.qat_distill`` the target is the float network's own posteriors on each
    (augmented) batch rather than the labels: the quantized copy learns to compute what the
    float network computes, instead of fitting the training labels further (which, after
    the float training has converged, costs held-out accuracy; docs/training.md).
    """
    seed = config.seed + 1000 + bits
    _seed(seed, config.threads)
    q = copy.deepcopy(net)
    q.bits = bits
    teacher = None
    if config.qat_distill:
        teacher = copy.deepcopy(net).eval()
        teacher.bits = None
    losses = _fit(q, data, config, epochs=config.qat_epochs, lr=config.qat_lr, seed=seed,
                  desc=f"QAT {bits}-bit", progress=progress, teacher=teacher)
    return q, losses


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------

def _validation_meta(model: modelfile.Model, data: TrainData, progress: bool) -> dict:
    try:
        ev = evaluate(model, data.data_root, split="validation", modes=("golden", "float"),
                      progress=progress,
                      dataset_kwargs=_dataset_kwargs(data.task, data.keyword, TrainConfig())
                      if data.task == "wake_word" else None)
    except DatasetError as e:  # e.g. a corpus without a validation split
        return {"error": str(e)}
    out = {"split": "validation", "clips": ev["n_clips"], "speakers": ev["n_speakers"]}
    for mode, r in ev["results"].items():
        if "accuracy" in r:
            out[f"{mode}_accuracy"] = round(r["accuracy"], 4)
        else:
            out[f"{mode}_clip_accuracy"] = round(r["clip_accuracy_at_0.5"], 4)
            for op in r["operating_points"]:
                out[f"{mode}_frr_at_far{100 * op['target_far']:g}"] = round(op["frr"], 4)
    return out


def _detection_meta(model: modelfile.Model, data: TrainData) -> dict:
    """The default detection threshold, chosen on the validation stream
    (:func:`kwshw.stream_eval.choose_threshold`)."""
    try:
        return choose_threshold(model, data.data_root, keyword=data.keyword)
    except (DatasetError, ValueError) as e:  # e.g. too little validation audio for a stream
        return {"error": str(e)}


def export(net: Network, data: TrainData, bits: int, config: TrainConfig = TrainConfig(),  # noqa: B008
           *, meta: dict | None = None, progress: bool = True) -> modelfile.Model:
    """The model file of ``net`` at ``bits`` (its latent float weights are the float reference).

    ``meta`` is merged into the provenance; with ``config.validate`` the model is measured on
    the validation split (golden and float), the accuracies are stored as well, and the
    default detection threshold is chosen on the validation stream (``meta["detection"]``).
    """
    ws, bs = net.numpy_params()
    shape = {"convs": net.convs,
             "geometry": Geometry(data.features.context, data.features.n_mels)}
    fracs = quantize.calibrate_out_fracs(ws, bs, data.x_clean, **shape)
    full = {
        "trainer": "kwshw.train.trainer",
        "task": data.task,
        "config": config.to_meta(),
        "bits": bits,
        "qat": net.bits is not None,
        **data.info,
        "torch": torch.__version__,
        "threads": config.threads,
        "static_ranges": static_ranges(ws, bs, data.x_clean, **shape),
        **(meta or {}),
    }
    model = modelfile.from_float(
        ws, bs, bits=bits, out_fracs=fracs, features=data.features,
        norm_mean=data.normalizer.mean, norm_std=data.normalizer.std, labels=data.labels,
        task=data.task, in_frac=config.in_frac, meta=full, convs=net.convs)
    if config.validate and data.data_root is not None:
        model.meta["validation"] = _validation_meta(model, data, progress)
        model.meta["detection"] = _detection_meta(model, data)
    return model


# ---------------------------------------------------------------------------------------------
# One-call entry points
# ---------------------------------------------------------------------------------------------

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
        The recipe. ``bits=None`` trains float only and exports at 8 bits (post-training).
    features : FeatureConfig
        Front end and input window.
    progress : bool
        Progress bars.

    Returns
    -------
    Model
        The exported model (with its float reference and the static baseline's ranges).
    """
    bits = config.bits
    models = train_variants(data_root, task=task, keyword=keyword, config=config,
                            features=features, progress=progress,
                            variants=[("qat", bits)] if bits is not None else [("ptq", 8)])
    return next(iter(models.values()))


def train_variants(data_root: str | os.PathLike, *, task: str = "speech_commands",
                   keyword: str = "alexa", config: TrainConfig = TrainConfig(),  # noqa: B008
                   features: FeatureConfig = FeatureConfig(),  # noqa: B008
                   variants: Sequence[tuple[str, int]] = (("ptq", 8), ("ptq", 4), ("qat", 8),
                                                          ("qat", 4)),
                   progress: bool = True) -> dict[str, modelfile.Model]:
    """Train the float network once and export several models from it.

    ``variants`` are ``("ptq", bits)`` (the float network quantized after training) and
    ``("qat", bits)`` (fine-tuned with the quantizers first). Returns ``{"ptq8": Model, ...}``.
    Every model's ``meta["train_seconds"]`` is the time of the steps it needed (features,
    float training, its own QAT).
    """
    if config.time_conv is not None:  # before minutes of feature extraction
        time_conv_positions(features.context, *config.time_conv)
    t0 = time.monotonic()
    data = prepare(data_root, task=task, keyword=keyword, config=config, features=features,
                   progress=progress)
    t_data = time.monotonic() - t0
    t1 = time.monotonic()
    net, losses = train_float(data, config, progress)
    t_float = time.monotonic() - t1
    base = {"float_losses": [round(v, 4) for v in losses],
            "features_seconds": round(t_data, 1), "float_seconds": round(t_float, 1)}
    out = {}
    for kind, bits in variants:
        t2 = time.monotonic()
        meta = dict(base)
        if kind == "qat":
            q, qlosses = finetune_qat(net, data, bits, config, progress)
            meta["qat_losses"] = [round(v, 4) for v in qlosses]
        elif kind == "ptq":
            q = net
        else:
            raise ValueError(f"unknown variant {kind!r} (ptq or qat)")
        meta["qat_seconds"] = round(time.monotonic() - t2, 1)
        meta["train_seconds"] = round(t_data + t_float + meta["qat_seconds"], 1)
        out[f"{kind}{bits}"] = export(q, data, bits, replace(config, bits=bits), meta=meta,
                                      progress=progress)
    return out


def train_reference(data_root: str | os.PathLike, out_path: str | os.PathLike, *,
                    bits: int = 4, epochs: int | None = None, seed: int = 0,
                    task: str = "speech_commands", hidden: Sequence[int] | None = None,
                    recipe: str = "dnn", progress: bool = True) -> modelfile.Model:
    """Train the reference network of ``recipe`` (one of :data:`RECIPES`) with QAT at
    ``bits`` and save it to ``out_path``.

    ``epochs`` and ``hidden`` default to the recipe's.
    """
    given = {k: v for k, v in (("epochs", epochs), ("hidden", hidden)) if v is not None}
    if "hidden" in given:
        given["hidden"] = tuple(given["hidden"])
    cfg = TrainConfig.recipe(recipe, bits=bits, seed=seed, **given)
    model = train(data_root, task=task, config=cfg, progress=progress)
    modelfile.save(model, out_path)
    return model
