"""The on-disk feature cache of :func:`kwshw.datasets.extract`.

A cache file is named by a SHA-256 of everything the features depend on (:func:`cache_file`);
its content is checked against the item list when read, and an unusable file is ignored with a
warning, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from kwshw.features import FeatureConfig

from .augment import Augmenter
from .feature_set import FeatureSet
from .items import Item

__all__ = ["cache_dir", "cache_file", "load_cache", "save_cache"]

# Bump when the features or augmentation computed for the same inputs change, so that stale
# cache files are not reused.
_CACHE_VERSION = 1
_CACHE_ARRAYS = ("frames", "offsets", "item_index", "copy", "example_clip", "example_end")


def cache_dir() -> Path:
    """Feature cache folder: ``$KWSHW_CACHE`` if set, else ``~/.cache/kwshw``."""
    env = os.environ.get("KWSHW_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kwshw"


def _file_stamp(path: str) -> list:
    """Absolute path, size and modification time of a file (``-1, -1`` when it is missing:
    the extraction reports the file, the key only has to differ from a present one)."""
    try:
        st = os.stat(path)
    except OSError:
        return [os.path.abspath(path), -1, -1]
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def cache_file(
    cache: str | os.PathLike | bool,
    cfg: FeatureConfig,
    items: list[Item],
    copy_ids: list[int],
    seed: int,
    augment: Augmenter | None,
) -> Path:
    """Path of the cache file of an extraction (the arguments of :func:`~kwshw.datasets.extract`).

    The name is a SHA-256 of the files with sizes and modification times, offsets, lengths,
    window rules, ``cfg``, the copies and, with augmentation, its parameters, noise clips and
    ``seed``. Its value is part of the cache's format: existing cache files are found by it.

    Parameters
    ----------
    cache : True or path
        ``True``: under :func:`cache_dir`; a path: in that folder.
    cfg : FeatureConfig
        Front end configuration.
    items : list of Item
        The clips, in order.
    copy_ids : list of int
        The copies computed (0 = clean).
    seed : int
        Seed of the augmentation.
    augment : Augmenter or None
        The augmentation.

    Returns
    -------
    pathlib.Path
    """
    key_src = {
        "version": _CACHE_VERSION,
        "cfg": cfg.to_dict(),
        "items": [
            [*_file_stamp(it.path), it.offset, it.num_samples, it.window] for it in items
        ],
        "copies": copy_ids,
        "seed": seed if augment is not None else None,
        "augment": augment.cache_key() if augment is not None else None,
    }
    digest = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()
    folder = cache_dir() if cache is True else Path(cache)
    return folder / f"features-{digest[:32]}.npz"


def save_cache(path: Path, fs: FeatureSet, kept: np.ndarray) -> None:
    """Write ``fs`` (and which items were ``kept``) to ``path``; warn when that fails.

    Warnings point at the caller of the function that calls this one (``extract``'s caller).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename, so a crash or a concurrent run never leaves a
        # truncated cache file under the final name.
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp.npz", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                kept=kept,
                skip_reasons=np.array([msg for _, msg in fs.skipped], dtype=np.str_),
                **{k: getattr(fs, k) for k in _CACHE_ARRAYS},
            )
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write the feature cache {path}: {e}", stacklevel=3)


def load_cache(
    path: Path,
    cfg: FeatureConfig,
    items: list[Item],
    labels: list[str] | None,
    copy_ids: list[int],
) -> FeatureSet | None:
    """The :class:`FeatureSet` cached at ``path`` for these items, or ``None`` when there is
    none or it does not fit them (with a warning, pointing like :func:`save_cache`'s)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in _CACHE_ARRAYS}
            kept = z["kept"].astype(bool)
            reasons = [str(r) for r in z["skip_reasons"]]
        if kept.shape != (len(items),) or len(reasons) != int((~kept).sum()):
            raise ValueError("cache does not match the item list")
        items_kept = [it for it, k in zip(items, kept, strict=True) if k]
        skipped = list(
            zip([it for it, k in zip(items, kept, strict=True) if not k], reasons, strict=True)
        )
        fs = FeatureSet(cfg, items_kept, labels, **arrays, skipped=skipped)
        ok = (
            fs.frames.ndim == 2
            and fs.frames.shape[1] == cfg.n_mels
            and fs.n_clips == len(items_kept) * len(copy_ids)
            and fs.offsets[-1] == fs.frames.shape[0]
            and np.array_equal(np.unique(fs.copy), np.asarray(sorted(copy_ids)))
        )
        if ok:
            return fs
        raise ValueError("inconsistent arrays")
    except (OSError, ValueError, KeyError) as e:
        warnings.warn(f"ignoring unusable feature cache {path}: {e}", stacklevel=3)
    return None
