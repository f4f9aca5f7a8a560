"""What a corpus folder holds: its audio files, its class folders, its list files."""

from __future__ import annotations

import os
from pathlib import Path

from .items import DatasetError

__all__ = ["AUDIO_SUFFIXES", "audio_files", "check_root", "read_list", "subfolders"]

#: File name endings taken as audio (case-insensitive); ``.wav.wav`` ends in ``.wav`` too.
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")


def audio_files(folder: Path) -> list[Path]:
    """Audio files directly in ``folder``, sorted by name; hidden files are skipped."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(AUDIO_SUFFIXES)
    )


def subfolders(root: Path) -> dict[str, Path]:
    """Sub-folders of ``root`` by name, sorted; hidden ones are skipped."""
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def check_root(root: str | os.PathLike, what: str) -> Path:
    """``root`` resolved; :class:`DatasetError` naming ``what`` when it is not a folder."""
    r = Path(root).expanduser()
    if not r.exists():
        raise DatasetError(f"{what} root folder {r} does not exist")
    if not r.is_dir():
        raise DatasetError(f"{what} root {r} is not a folder")
    return r.resolve()


def read_list(path: Path) -> set[str]:
    """Relative paths of a split list file (``validation_list.txt``), with ``/`` separators."""
    with open(path, encoding="utf-8") as f:
        return {line.strip().replace("\\", "/") for line in f if line.strip()}
