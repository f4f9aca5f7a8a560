"""Run every benchmark with one command.

::

    python bench/run.py             # everything -> bench/results/, then plots and the README
    python bench/run.py --quick     # small variant for CI (a few minutes) -> bench/results/quick/
    python bench/run.py --jobs 2    # two board builds at a time in the sweep
    python bench/run.py --only sweep,plots

Steps, each a child process writing JSON into the results folder:

==========  =====================================================================
accuracy    ``bench/accuracy.py`` -> accuracy.json (float vs 8/4-bit, dynamic vs static)
accuracy-cnn ``bench/accuracy.py --recipe cnn`` -> accuracy-cnn.json (the CNN recipe)
convolutions ``bench/convolutions.py`` -> convolutions.json (range per patch vs per step, hop cost)
cycles      ``bench/cycles.py`` -> cycles.json (``accelerator_cycles`` equals simulation)
simspeed    ``bench/simspeed.py`` -> simspeed.json (simulation speed by simulator)
sweep       ``bench/sweep.py`` -> sweep.json (bits x lanes x boards: fit, resources, fmax)
area        ``bench/area.py`` -> area.json (reference builds: resources per module; full run only)
plots       ``bench/plots.py`` -> PNGs
readme      ``bench/readme.py`` -> README.md results section (full run only)
==========  =====================================================================

Quick runs pass ``--quick`` and write to ``bench/results/quick/`` so they never overwrite the
checked-in results; a step whose script cannot be told where to write is skipped there. The
children also get ``KWSHW_BENCH_QUICK`` and ``KWSHW_BENCH_OUT`` in their environment. A failing
step does not stop the others; the exit status is 1 if any step failed. ``run.json`` records
every step's command, exit status and wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from common import ROOT, Timer, provenance, read_json, results_dir, write_json

BENCH = ROOT / "bench"
STEPS = ("accuracy", "accuracy-cnn", "convolutions", "cycles", "simspeed", "sweep", "area",
         "plots", "readme")
#: Steps that run another step's script with extra arguments: step -> (script, arguments).
STEP_SCRIPTS = {"accuracy-cnn": ("accuracy", ["--recipe", "cnn"])}
#: Per-step timeouts of a quick run (seconds); the whole quick run stays within a few minutes.
QUICK_TIMEOUT = {"accuracy": 120, "accuracy-cnn": 180, "convolutions": 180, "cycles": 90,
                 "simspeed": 150, "sweep": 180, "plots": 60, "readme": 30}
#: Options that name the output *file* / the output *folder*, in order of preference.
_FILE_FLAGS = ("--output", "-o", "--out-file", "--json")
_DIR_FLAGS = ("--out", "--out-dir", "--results", "--results-dir")
#: Arguments that make a step small when its script has no --quick of its own.
QUICK_ARGS = {
    "cycles": ["--lanes", "16", "32", "--frames", "2"],
}
#: Extra arguments of the full run (used when the script offers them).
FULL_ARGS = {
    "simspeed": ["--reference"],
}
#: Options passed to every step that offers them (progress bars do not belong in a log).
COMMON_ARGS = ("--no-progress",)


def _options(script: Path) -> set[str]:
    """The long options a script's ``--help`` mentions (empty if it has no help)."""
    try:
        proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
    except (OSError, subprocess.SubprocessError):
        return set()
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", proc.stdout))


def step_command(name: str, out: Path, *, quick: bool, jobs: int,
                 build: bool = True) -> tuple[list[str] | None, str]:
    """The command of one step, or ``(None, reason)`` when it cannot run."""
    script_name, extra = STEP_SCRIPTS.get(name, (name, []))
    script = BENCH / f"{script_name}.py"
    if not script.exists():
        return None, f"{script.relative_to(ROOT)} does not exist yet"
    cmd = [sys.executable, str(script.relative_to(ROOT)), *extra]
    if name == "plots":
        return cmd + ["--results", str(out)], ""
    if name == "readme":
        if quick:
            return None, "not in quick runs: the README shows the full results"
        if out.resolve() != (BENCH / "results").resolve():
            return None, "the README shows bench/results, not another folder"
        return cmd, ""
    if name == "sweep":
        cmd += ["--jobs", str(jobs)] + ([] if build else ["--no-build"])
        if quick:
            cmd += ["--quick"]
        if quick or out.resolve() != (BENCH / "results").resolve():
            cmd += ["--out", str(out)]
        return cmd, ""
    opts = _options(script)
    target: list[str] = []
    file_flag = next((f for f in _FILE_FLAGS if f in opts), None)
    dir_flag = next((f for f in _DIR_FLAGS if f in opts), None)
    default_out = out.resolve() == (BENCH / "results").resolve()
    if file_flag:
        target = [file_flag, str(out / f"{name}.json")]
    elif dir_flag:
        target = [dir_flag, str(out)]
    cmd += [a for a in COMMON_ARGS if a in opts]
    if quick:
        if "--quick" in opts:
            small = ["--quick"]
        elif name in QUICK_ARGS:
            small = list(QUICK_ARGS[name])
        else:
            return None, f"{script.name} has no --quick option"
        if not target:
            return None, (f"{script.name} cannot be told where to write (no output option); "
                          f"skipped so that bench/results stays intact")
        return cmd + small + target, ""
    cmd += [a for a in FULL_ARGS.get(name, []) if not a.startswith("--") or a in opts]
    if target and not default_out:
        cmd += target
    elif not target and not default_out:
        return None, f"{script.name} cannot be told where to write (no output option)"
    return cmd, ""


def run_step(cmd: list[str], env: dict, timeout: float | None) -> dict:
    """Run ``cmd`` with its output passed through; exit status, wall time, output tail."""
    t0 = time.perf_counter()
    tail: deque[str] = deque(maxlen=30)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1,
                            start_new_session=True)
    timed_out = []

    def kill():
        import signal

        timed_out.append(True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the step's own process group only
        except ProcessLookupError:
            pass

    import threading

    watchdog = threading.Timer(timeout, kill) if timeout else None
    if watchdog is not None:
        watchdog.start()
    try:
        for line in proc.stdout:
            sys.stdout.write("    " + line)
            sys.stdout.flush()
            tail.append(line.rstrip("\n"))
        proc.wait()
    finally:
        if watchdog is not None:
            watchdog.cancel()
    timed_out = bool(timed_out)
    return {"returncode": None if timed_out else proc.returncode, "timed_out": timed_out,
            "wall_s": round(time.perf_counter() - t0, 1), "output_tail": list(tail)}


def add_meta(path: Path, name: str, cmd: list[str], res: dict, timer: Timer,
             quick: bool) -> bool:
    """Give a result file that has no ``meta`` block the provenance of this run (machine,
    versions, command, date, wall time); returns whether one was added."""
    data = read_json(path)
    if data is None or "meta" in data:
        return False
    meta = provenance(f"bench/{name}.py", timer, quick=quick, argv=cmd[1:],
                      extra={"added_by": "bench/run.py"})
    meta["wall_s"] = res["wall_s"]
    write_json(path, data, meta=meta)
    return True


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small variant for CI -> bench/results/quick")
    ap.add_argument("--out", help="results folder (default bench/results or bench/results/quick)")
    ap.add_argument("--jobs", type=int, default=1, help="board builds at a time (1 or 2)")
    ap.add_argument("--no-build", action="store_true",
                    help="sweep without synthesis (fit checks and cycles only)")
    ap.add_argument("--only", help=f"comma-separated steps of {','.join(STEPS)}")
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out")
    ap.add_argument("--timeout", type=float, help="seconds per step (quick default: "
                                                  "90-150 s by step; full: none)")
    args = ap.parse_args(argv)
    timer = Timer()
    out = results_dir(args.quick, args.out)
    steps = [s for s in (args.only.split(",") if args.only else STEPS)
             if s and s not in args.skip.split(",")]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        ap.error(f"unknown steps {unknown}; steps are {', '.join(STEPS)}")
    env = dict(os.environ, KWSHW_BENCH_OUT=str(out), PYTHONUNBUFFERED="1")
    if args.quick:
        env["KWSHW_BENCH_QUICK"] = "1"
    record, failed = [], []
    for name in steps:
        cmd, why = step_command(name, out, quick=args.quick, jobs=args.jobs,
                                build=not args.no_build)
        if cmd is None:
            print(f"run: {name}: skipped ({why})", flush=True)
            record.append({"step": name, "status": "skipped", "reason": why})
            continue
        shown = " ".join(["python", *cmd[1:]])
        print(f"run: {name}: {shown}", flush=True)
        timeout = args.timeout or (QUICK_TIMEOUT.get(name) if args.quick else None)
        step_timer = Timer()
        res = run_step(cmd, env, timeout)
        ok = res["returncode"] == 0
        status = "ok" if ok else ("timeout" if res["timed_out"] else "failed")
        print(f"run: {name}: {status} in {res['wall_s']:.0f} s", flush=True)
        entry = {"step": name, "status": status, "command": shown, **res}
        if ok:
            entry.pop("output_tail")
            if name in ("accuracy", "cycles", "simspeed"):
                entry["meta_added"] = add_meta(out / f"{name}.json", name, cmd, res,
                                               step_timer, args.quick)
        else:
            failed.append(name)
        record.append(entry)
    meta = provenance("bench/run.py", timer, quick=args.quick, argv=[__file__, *argv])
    write_json(out / "run.json", {"steps": record, "failed": failed}, meta=meta)
    print(f"run: {len(record)} steps in {timer.seconds:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else "") + f" -> {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
