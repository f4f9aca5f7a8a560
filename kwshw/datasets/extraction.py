""":func:`extract`: the features of a list of clips, from the cache or computed."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np

from kwshw.features import FeatureConfig

from .augment import Augmenter
from .cache import cache_file, load_cache, save_cache
from .feature_set import FeatureSet
from .items import Dataset, DatasetError, Item
from .workers import compute

__all__ = ["extract"]


def extract(
    items: Dataset | Sequence[Item],
    cfg: FeatureConfig = FeatureConfig(),  # noqa: B008 (frozen, immutable)
    *,
    augment: Augmenter | None = None,
    copies: int = 1,
    include_clean: bool = True,
    seed: int = 0,
    workers: int = 1,
    cache: bool | str | os.PathLike = True,
    on_error: str = "raise",
    progress: bool = True,
) -> FeatureSet:
    """LFBE features (and model windows) of every clip, cached on disk.

    Parameters
    ----------
    items : Dataset or sequence of Item
        The clips.
    cfg : FeatureConfig
        Front end configuration.
    augment : Augmenter, optional
        When given, ``copies`` augmented copies of every clip are added (copy 1..copies).
    copies : int, default 1
        Number of augmented copies (ignored without ``augment``).
    include_clean : bool, default True
        Include the clean features (copy 0). Without ``augment`` they are always included.
    seed : int, default 0
        Seed of the augmentation; copy ``k`` of a clip uses
        ``numpy.random.default_rng([seed, k, int(sha1(item.key)[:16], 16)])``.
    workers : int, default 1
        Worker processes (spawned, one BLAS thread each). Worth it only on an idle machine
        with many clips; a script using ``workers > 1`` must guard its top level with
        ``if __name__ == "__main__":``.
    cache : bool or path, default True
        ``True``: cache under :func:`~kwshw.datasets.cache_dir`; a path: cache there;
        ``False``: no cache. The cache file is named by a SHA-256 of the file list with sizes
        and modification times, offsets, window rules, ``cfg``, the augmentation (parameters
        and noise clips), the copies and ``seed``.
    on_error : {"raise", "skip"}, default "raise"
        What to do with clips whose audio cannot be read: raise one :class:`DatasetError`
        listing all of them, or leave them out with a warning (they are listed in
        :attr:`FeatureSet.skipped`). 10 of the benchmark's ``alexa`` FLAC files hold samples
        outside the 16-bit range and libsndfile refuses them.
    progress : bool, default True
        Show a progress bar (:func:`kwshw.progress.bar`).

    Returns
    -------
    FeatureSet

    Raises
    ------
    DatasetError
        When there are no clips, or a file is missing or unreadable and ``on_error="raise"``
        (naming every such file).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    labels, item_list = _clips(items, cfg)
    copy_ids = _copy_ids(augment, copies, include_clean, cfg)
    cache_path = None
    if cache is not False:
        cache_path = cache_file(cache, cfg, item_list, copy_ids, seed, augment)
        loaded = load_cache(cache_path, cfg, item_list, labels, copy_ids)
        if loaded is not None:
            _report_skipped(loaded.skipped, on_error)
            return loaded

    results = compute(
        item_list, copy_ids, cfg, augment=augment, seed=seed, workers=workers, progress=progress
    )
    kept, skipped = _unreadable(item_list, results)
    _report_skipped(skipped, on_error)
    fs = _assemble(cfg, item_list, labels, copy_ids, results, kept, skipped)
    if cache_path is not None:
        save_cache(cache_path, fs, kept)
    return fs


def _clips(
    items: Dataset | Sequence[Item], cfg: FeatureConfig
) -> tuple[list[str] | None, list[Item]]:
    """The label names (``None`` for a bare item list) and the clips, checked for ``cfg``."""
    labels = items.labels if isinstance(items, Dataset) else None
    sr = items.sample_rate if isinstance(items, Dataset) else cfg.sample_rate
    if sr != cfg.sample_rate:
        raise ValueError(f"dataset sample rate {sr} differs from the front end's {cfg.sample_rate}")
    item_list = list(items)
    if not item_list:
        raise DatasetError("extract: no clips given")
    return labels, item_list


def _copy_ids(
    augment: Augmenter | None, copies: int, include_clean: bool, cfg: FeatureConfig
) -> list[int]:
    """The copies to compute: 0 is the clean one, ``1..copies`` the augmented ones."""
    if augment is None:
        return [0]
    if copies < 1:
        raise ValueError(f"copies must be >= 1 with augmentation, got {copies}")
    if augment.sample_rate != cfg.sample_rate:
        raise ValueError("the augmenter's sample rate differs from the front end's")
    return ([0] if include_clean else []) + list(range(1, copies + 1))


def _unreadable(item_list: list[Item], results: list) -> tuple[np.ndarray, list[tuple[Item, str]]]:
    """Which items were read (boolean mask) and the unreadable ones with the reason."""
    # Reading happens before augmentation, so a clip fails in all copies or in none.
    n_items = len(item_list)
    errors = {c % n_items: e for c, (f, e) in enumerate(results) if f is None}
    kept = np.array([i not in errors for i in range(n_items)], dtype=bool)
    skipped = [(item_list[i], str(errors[i])) for i in sorted(errors)]
    return kept, skipped


def _report_skipped(skipped: list[tuple[Item, str]], on_error: str) -> None:
    """Raise for or warn about the unreadable clips; warnings point at ``extract``'s caller."""
    if not skipped:
        return
    listing = "\n  ".join(msg for _, msg in skipped)
    if on_error == "raise":
        raise DatasetError(
            f"{len(skipped)} clip(s) cannot be read (pass on_error='skip' to leave them "
            f"out):\n  {listing}"
        )
    warnings.warn(f"skipping {len(skipped)} unreadable clip(s):\n  {listing}", stacklevel=3)


def _assemble(
    cfg: FeatureConfig,
    item_list: list[Item],
    labels: list[str] | None,
    copy_ids: list[int],
    results: list,
    kept: np.ndarray,
    skipped: list[tuple[Item, str]],
) -> FeatureSet:
    """The :class:`FeatureSet` of the clips that were read, clips back to back."""
    keep_clip = np.tile(kept, len(copy_ids))
    res = [r for r, k in zip(results, keep_clip, strict=True) if k]
    items_kept = [it for it, k in zip(item_list, kept, strict=True) if k]
    if not res:
        raise DatasetError("extract: no clip could be read")
    lengths = np.array([r[0].shape[0] for r in res], dtype=np.int64)
    n_ends = np.array([len(r[1]) for r in res], dtype=np.int64)
    return FeatureSet(
        cfg=cfg,
        items=items_kept,
        label_names=labels,
        frames=np.concatenate([r[0] for r in res]).astype(np.float32, copy=False),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        item_index=np.tile(np.arange(len(items_kept), dtype=np.int64), len(copy_ids)),
        copy=np.repeat(np.asarray(copy_ids, dtype=np.int64), len(items_kept)),
        example_clip=np.repeat(np.arange(len(res), dtype=np.int64), n_ends),
        example_end=np.concatenate([r[1] for r in res]).astype(np.int64),
        skipped=skipped,
    )
