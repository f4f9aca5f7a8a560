"""Split rules: the speaker of a file name and the salted hash split of TensorFlow."""

from __future__ import annotations

import hashlib
import os
import re

__all__ = [
    "DEFAULT_SPLIT_SALT",
    "SPLITS",
    "check_split_args",
    "speaker_of",
    "stable_rank",
    "which_set",
]

#: Salt of the hash split of the datasets (see the package docstring for why it is not empty).
DEFAULT_SPLIT_SALT = "kwshw"
SPLITS: tuple[str, ...] = ("train", "validation", "test")

# The constant of TensorFlow's speech_commands/input_data.py: with an empty salt the rule
# assigns every speaker exactly as that reference implementation does.
_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1
_SPEAKER_RE = re.compile(r"([0-9a-fA-F]{8})_nohash_")


def speaker_of(filename: str) -> str | None:
    """Speaker id of a Speech Commands file name: the 8 hex digits before ``_nohash_``.

    Parameters
    ----------
    filename : str
        Base name or path (``"0a7c2a8d_nohash_0.wav"``, ``"bed_0c40e715_nohash_1.wav.wav"``).

    Returns
    -------
    str or None
        The lower-case id, or ``None`` when the name has no ``<8 hex>_nohash_`` part.
    """
    m = _SPEAKER_RE.search(os.path.basename(filename))
    return m.group(1).lower() if m else None


def which_set(
    key: str, validation_percentage: float, testing_percentage: float, salt: str = ""
) -> str:
    """Deterministic split of ``key`` (a speaker id, or a file key when no speaker is known).

    The rule of TensorFlow's ``input_data.which_set``: ``h = int(sha1(s), 16)`` with
    ``s = key`` (no salt) or ``s = salt + ":" + key``, ``p = (h % 2**27) * 100 / (2**27 - 1)``;
    ``"validation"`` if ``p < validation_percentage``, ``"test"`` if ``p <
    validation_percentage + testing_percentage``, otherwise ``"train"``.

    Parameters
    ----------
    key : str
        The string to hash (UTF-8).
    validation_percentage, testing_percentage : float
        Sizes of the two held-out parts in percent.
    salt : str, default ""
        Empty: TensorFlow's exact assignment. The datasets use :data:`DEFAULT_SPLIT_SALT`.

    Returns
    -------
    str
        ``"train"``, ``"validation"`` or ``"test"``.
    """
    s = f"{salt}:{key}" if salt else key
    h = int(hashlib.sha1(s.encode("utf-8")).hexdigest(), 16)
    p = (h % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if p < validation_percentage:
        return "validation"
    if p < validation_percentage + testing_percentage:
        return "test"
    return "train"


def check_split_args(split: str, validation_percentage: float, testing_percentage: float) -> None:
    """Raise :class:`ValueError` for an unknown split name or impossible split sizes."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of {(*SPLITS, 'all')}, got {split!r}")
    v, t = validation_percentage, testing_percentage
    if v < 0 or t < 0 or v + t > 100:
        raise ValueError(f"need 0 <= validation, testing percentages and sum <= 100: {v}, {t}")


def stable_rank(key: str) -> str:
    """Sort key that orders files by a hash of ``key``, independent of which others exist."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()

