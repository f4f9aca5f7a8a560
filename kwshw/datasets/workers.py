"""Features and window ends of clips, in this process or in a pool of worker processes.

Copy ``k > 0`` of a clip is augmented with a random stream seeded by ``(seed, k, clip)``
(:func:`item_seed`), so the result never depends on the order of the work or the number of
processes.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from kwshw.features import FeatureConfig
from kwshw.frontends import lfbe
from kwshw.progress import bar as progress_bar
from kwshw.quantize import round_half_up

from .augment import Augmentation, Augmenter
from .items import DatasetError, Item, load_item
from .windows import keyword_end, window_ends

__all__ = ["compute", "item_seed"]

# The context of _process: set by _init_worker in a pool process, by _run_here in this one.
_WORKER: dict = {}


def item_seed(item: Item) -> int:
    """The clip's part of the seed of its augmentation: 64 bits of ``sha1(item.key)``."""
    return int(hashlib.sha1(item.key.encode("utf-8")).hexdigest()[:16], 16)


def _init_worker(
    cfg: FeatureConfig, params: Augmentation | None, noise: list, sr: int, seed: int
) -> None:
    _WORKER.clear()
    _WORKER.update(
        cfg=cfg, seed=seed, sr=sr, aug=None if params is None else Augmenter(params, noise, sr)
    )


def _process(tasks: list[tuple[int, int, Item]]) -> list[tuple[int, np.ndarray | None, object]]:
    """Features and window ends of (clip number, copy, item) tasks, in the worker's context.

    A clip whose audio cannot be read gives ``(c, None, message)`` so that the caller can
    report every bad file at once, or skip them.
    """
    cfg: FeatureConfig = _WORKER["cfg"]
    aug: Augmenter | None = _WORKER["aug"]
    out: list[tuple[int, np.ndarray | None, object]] = []
    for c, copy, item in tasks:
        try:
            audio = load_item(item, _WORKER["sr"])
        except DatasetError as e:
            out.append((c, None, str(e)))
            continue
        # The keyword's position is found on the clean audio: added noise must not move it.
        centroid = keyword_end(audio, cfg) if item.window == "centroid" else None
        if copy > 0:
            assert aug is not None
            rng = np.random.default_rng([_WORKER["seed"], copy, item_seed(item)])
            a = aug(audio, rng)
            audio = a.audio
            if centroid is not None:
                centroid += int(round_half_up(a.shift / cfg.hop_length))
        frames = lfbe(audio, cfg)
        out.append((c, frames, window_ends(item.window, frames.shape[0], cfg, centroid)))
    return out


# Thread-count variables of the BLAS/OpenMP libraries numpy may be linked with.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _run_pool(tasks: list, results: list, bar, workers: int, initargs: tuple) -> None:
    chunk = 64
    # Each worker gets one BLAS thread: with the default (one thread per core in every
    # process) two workers on two cores spin against each other and run ~8x slower than one
    # process. The variables are read when a spawned child starts numpy, so they are set for
    # the lifetime of the pool (children start lazily) and restored afterwards.
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        # "spawn" behaves the same on every OS and is safe when the parent runs threads
        # (torch, BLAS), which "fork" is not.
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=initargs,
        ) as ex:
            futures = [
                ex.submit(_process, tasks[i : i + chunk]) for i in range(0, len(tasks), chunk)
            ]
            for fut in as_completed(futures):
                done = fut.result()
                for c, f, e in done:
                    results[c] = (f, e)
                bar.update(len(done))
    except BrokenProcessPool as e:
        raise RuntimeError(
            "feature extraction worker processes died; with workers > 1 the calling script "
            "must guard its top level with `if __name__ == '__main__':` (processes are "
            "spawned), or use workers=1"
        ) from e
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_here(
    tasks: list, results: list, bar, cfg: FeatureConfig, augment: Augmenter | None, seed: int
) -> None:
    _WORKER.clear()
    _WORKER.update(cfg=cfg, seed=seed, sr=cfg.sample_rate, aug=augment)
    for t in tasks:
        ((c, f, e),) = _process([t])
        results[c] = (f, e)
        bar.update()


def compute(
    items: list[Item],
    copy_ids: list[int],
    cfg: FeatureConfig,
    *,
    augment: Augmenter | None,
    seed: int,
    workers: int,
    progress: bool,
) -> list[tuple[np.ndarray | None, object]]:
    """LFBE frames and window ends of every copy of every clip.

    Parameters
    ----------
    items : list of Item
        The clips.
    copy_ids : list of int
        The copies (0 = clean; ``k > 0`` needs ``augment``).
    cfg : FeatureConfig
        Front end configuration.
    augment : Augmenter or None
        The augmentation of the copies ``k > 0``.
    seed : int
        Seed of the augmentation.
    workers : int
        Worker processes; 1 or less computes in this process.
    progress : bool
        Show a progress bar (:func:`kwshw.progress.bar`).

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray) or (None, str)
        In copy-major order (entry ``c * len(items) + i`` is copy ``copy_ids[c]`` of
        ``items[i]``): the frames and the window ends, or ``None`` and the reason when the
        clip's audio cannot be read.
    """
    tasks = [
        (c * len(items) + i, k, it) for c, k in enumerate(copy_ids) for i, it in enumerate(items)
    ]
    results: list = [None] * len(tasks)
    params = augment.params if augment is not None else None
    noise = augment.noise if augment is not None else []
    bar = progress_bar(total=len(tasks), desc="LFBE", unit="clip", disable=not progress)
    try:
        if workers <= 1:
            _run_here(tasks, results, bar, cfg, augment, seed)
        else:
            _run_pool(tasks, results, bar, workers, (cfg, params, noise, cfg.sample_rate, seed))
    finally:
        bar.close()
        _WORKER.clear()
    return results
