"""The README's main command on a fresh clone of the committed code, timed.

::

    python bench/main_command.py [--out DIR] [--keep DIR] [--cache DIR]
                                             # -> DIR/main-command.json (default bench/results)

Clones this repository's ``HEAD`` (the committed code, never the working tree) into a
temporary folder and runs the README's main command there, ``bash scripts/main.sh -o OUT``,
as a user on a fresh machine would: set-up included (a new ``.venv``), with a feature cache of
its own unless ``--cache`` names one (``KWSHW_CACHE``). ``KWSHW_DATA`` is passed through.
Records the command's wall time and the summary ``kwshw all`` writes (``OUT/summary.json``):
the model and its accuracy, the Verilator check, and each board's build (design clock, fmax,
resources, build time). ``--keep DIR`` keeps the clone, its output and the log there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, Timer, provenance, results_dir, write_json

#: The README's main command, run in the clone; ``-o`` is added.
COMMAND = ["bash", "scripts/main.sh"]


def clone_head(dest: Path) -> str:
    """Clone the repository's ``HEAD`` into ``dest``; returns the commit."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(dest)], check=True)
    subprocess.run(["git", "checkout", "-q", "--detach", commit], cwd=dest, check=True)
    return commit


def run_main(clone: Path, out: Path, log: Path, cache: Path) -> float:
    """Run the main command in ``clone`` writing to ``out``; its output goes to ``log``.
    Returns the wall time in seconds.

    Raises
    ------
    RuntimeError
        The command failed (with the log's last lines).
    """
    env = {**os.environ, "KWSHW_CACHE": str(cache)}
    # The clone sets up its own environment: nothing of this process's may leak into it.
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "KWSHW_ROOT"):
        env.pop(name, None)
    start = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run([*COMMAND, "-o", str(out)], cwd=clone, env=env, stdout=f,
                            stderr=subprocess.STDOUT).returncode
    wall = round(time.perf_counter() - start, 1)
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{' '.join(COMMAND)} exited with {rc} after {wall} s:\n{tail}")
    return wall


def measure(work: Path, cache: Path | None) -> dict:
    """Clone, run, and gather the result (``work`` holds clone, output and log)."""
    clone, out, log = work / "clone", work / "out", work / "main.log"
    commit = clone_head(clone)
    print(f"main command at {commit[:10]} in {clone} (log: {log})", file=sys.stderr)
    wall = run_main(clone, out, log, cache or work / "cache")
    summary = json.loads((out / "summary.json").read_text())
    return {"commit": commit, "command": " ".join(COMMAND), "wall_s": wall,
            "fresh_cache": cache is None, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the README's main command (bash scripts/main.sh) on a fresh clone "
                    "of HEAD and record what it built.")
    parser.add_argument("--out", help="results folder (default bench/results)")
    parser.add_argument("--keep", help="keep the clone, its output and the log in this folder")
    parser.add_argument("--cache", help="feature cache to reuse (default: a fresh one)")
    args = parser.parse_args(argv)
    if not os.environ.get("KWSHW_DATA"):
        parser.error("set KWSHW_DATA to the recordings (see README)")
    timer = Timer()
    cache = Path(args.cache) if args.cache else None
    try:
        if args.keep:
            work = Path(args.keep)
            work.mkdir(parents=True, exist_ok=True)
            result = measure(work, cache)
        else:
            with tempfile.TemporaryDirectory(prefix="kwshw-main-") as tmp:
                result = measure(Path(tmp), cache)
    except (RuntimeError, OSError, subprocess.CalledProcessError, ValueError) as e:
        print(f"main_command: error: {e}", file=sys.stderr)
        return 1
    path = write_json(results_dir(override=args.out) / "main-command.json", result,
                      meta=provenance("main_command", timer, argv=argv))
    print(f"{path}: {result['wall_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
