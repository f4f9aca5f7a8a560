"""The ``kwshw`` command line: a thin layer over the library.

Every subcommand parses its arguments, calls one library function and prints
what it returns; the work itself lives in the modules it names. Heavy imports
(Amaranth, PyTorch) happen inside the subcommands, so ``kwshw --help`` is fast
and a user with a trained model never needs PyTorch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import __version__

__all__ = ["main"]


#: ``kwshw build --mic``: :data:`boards.table.MICS`, repeated here so that ``kwshw --help``
#: does not import Amaranth (a test keeps them equal).
MIC_CHOICES = ("host", "pdm", "i2s")


class CLIError(Exception):
    """An error the user can fix; printed without a traceback."""


def _load_model(path: str):
    from ..modelfile import ModelFileError, load

    try:
        return load(path)
    except ModelFileError as e:
        raise CLIError(str(e)) from None


# --- info ---------------------------------------------------------------------------------------

def _detection_summary(model) -> str:
    """The model's detection thresholds, where they came from, per keyword class."""
    from ..evaluate import detection_thresholds

    det = model.meta.get("detection") or {}
    try:
        thr = detection_thresholds(model)
    except ValueError as e:
        return f"bad thresholds in the file: {e}"
    if "threshold" not in det:
        why = f" ({det['error']})" if det.get("error") else ""
        return f"threshold {next(iter(thr.values()), 0.5):g} for every keyword class, none " \
               f"chosen at export{why}"
    where = (f", chosen on the {det.get('split', '?')} stream for "
             f"{det.get('fa_per_hour_target', '?')} false accepts per hour")
    if len(set(thr.values())) <= 1:
        return f"threshold {det['threshold']:.6g} for every keyword class{where}"
    return (f"threshold {det['threshold']:.6g}{where}; per class: "
            + ", ".join(f"{model.labels[c]} {t:.6g}" for c, t in thr.items()))


def _validation_summary(meta: dict) -> str:
    """The trainer's evaluation on the validation speakers (``meta["validation"]``, from
    :func:`kwshw.evaluate.evaluate` at export), one line."""
    v = meta.get("validation")
    if not v:
        return "not measured (no validation results in the model file)"
    if "error" in v:
        return f"not measured ({v['error']})"
    # Speech Commands: top-1; a wake word: clips right at a posterior threshold of 0.5.
    top1 = any(f"{mode}_accuracy" in v for mode in ("golden", "float"))
    key, what = ("accuracy", "top-1") if top1 else ("clip_accuracy", "clips right at 0.5")
    parts = [f"{mode} {100 * v[f'{mode}_{key}']:.1f}%" for mode in ("golden", "float")
             if f"{mode}_{key}" in v]
    return (f"{what} {', '.join(parts)} on the {v['split']} speakers ({v['clips']} clips, "
            f"{v['speakers']} speakers; `kwshw eval --stream` for a stream)")


def cmd_info(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    plans = model.plans()
    fp = model.footprint()
    if args.json:
        out = {
            "sha256": model.sha256, "bits": model.bits, "shape": model.shape,
            "labels": model.labels, "task": model.task, "features": model.features.to_dict(),
            "footprint": fp, "meta": model.meta,
            "layers": [{"n_in": p.n_in, "n_out": p.n_out, "in_frac": p.in_frac,
                        "out_frac": p.layer.out_frac, "w_exp": p.layer.w_exp,
                        "relu": p.layer.relu, "shifts": vars(p.shifts),
                        "widths": vars(p.widths),
                        **({"conv": {"kernel": p.conv.kernel, "stride": p.conv.stride,
                                     "positions": p.vectors}} if p.conv else {})}
                       for p in plans],
        }
        print(json.dumps(out, indent=2))
        return 0
    f = model.features
    print(f"model     {args.model}")
    print(f"sha256    {model.sha256}")
    print(f"task      {model.task}: {', '.join(model.labels)}")
    geo = model.geometries()[0]
    layers = (f"{geo.positions}x{geo.channels} -> {' -> '.join(_layer_kind(p) for p in plans)}"
              if model.has_conv else " -> ".join(map(str, model.shape)))
    print(f"network   {layers}, {model.bits}-bit codes")
    print(f"features  {f.n_mels} log-mel bands, {f.context} frames x stride {f.stride} "
          f"(window {f.span} hops of {1000 * f.hop_length / f.sample_rate:g} ms), "
          f"input Q.{model.in_frac}")
    print(f"memory    {fp['total_bits']:,} bits ({fp['weight_bits']:,} weight codes + "
          f"{fp['constant_bits']:,} column constants) = {100 * fp['ratio_to_float32']:.1f}% "
          f"of float32 ({fp['float32_bits']:,} bits)")
    print(f"detect    {_detection_summary(model)}")
    print(f"accuracy  {_validation_summary(model.meta)}")
    print()
    print(f"{'layer':>5} {'shape':>11} {'Fx':>3} {'Fy':>3} {'Ew':>3} {'acc':>4} {'V':>3} "
          f"{'sv':>3} {'sw':>3} {'Z':>3} {'out':>4}  relu  kind")
    for k, p in enumerate(plans):
        w, s = p.widths, p.shifts
        print(f"{k:>5} {p.n_in:>5}x{p.n_out:<5} {p.in_frac:>3} {p.layer.out_frac:>3} "
              f"{p.layer.w_exp:>3} {w.acc:>4} {w.v:>3} {s.sv:>3} {s.sw:>3} {w.z:>3} "
              f"{s.out:>4}  {'yes' if p.layer.relu else 'no ':4}  {_layer_kind(p)}")
    return 0


def _layer_kind(plan) -> str:
    """``conv K/S xC [positions]`` or ``dense N``: what a layer is, in one token."""
    if plan.conv is None:
        return f"dense {plan.n_out}"
    return f"conv {plan.conv.kernel}/{plan.conv.stride} x{plan.n_out} [{plan.vectors}]"


# --- generate -----------------------------------------------------------------------------------

def cmd_generate(args: argparse.Namespace) -> int:
    from ..generate import generate

    model = _load_model(args.model)
    try:
        rep = generate(model, args.lanes, args.out, memory=args.memory, name=args.name,
                       trace=args.trace, family=args.family)
    except ValueError as e:
        raise CLIError(str(e)) from None
    mem = rep.get("memory_bits", {})
    cyc = rep.get("cycles", {})
    print(f"wrote {args.out}/{rep['files']['verilog']} and report.json "
          f"in {rep['generate_seconds']:.1f} s")
    if mem:
        print("memory bits: " + ", ".join(f"{k} {v:,}" for k, v in mem.items()))
    if cyc:
        print(f"cycles/frame: {cyc['per_frame']:,} (ideal {cyc['ideal_per_frame']:,}, "
              f"+{cyc['overhead_percent']:.2f}%)")
    return 0


# --- sim ----------------------------------------------------------------------------------------

def cmd_sim(args: argparse.Namespace) -> int:
    from sim.network import SimSettings, run_network_sim

    if args.wav:
        return _sim_wav(args)
    given = [o for o, v in (("--mic", args.mic), ("--threshold", args.threshold),
                            ("--clock", args.clock)) if v is not None]
    if given:
        raise CLIError(f"{', '.join(given)} only apply to the standalone simulation (--wav)")
    model = _load_model(args.model)
    settings = SimSettings(lanes=args.lanes, simulator=args.simulator or "icarus",
                           waves=args.waves,
                           seed=args.seed, gap_prob=args.gaps, stall_prob=args.stalls,
                           gate_level=args.gate_level)
    try:
        res = run_network_sim(model, settings, n_frames=args.frames)
    except (ValueError, RuntimeError) as e:
        raise CLIError(str(e)) from None
    if args.json:
        print(json.dumps(res.to_dict(), indent=1, default=str))
    else:
        print(f"simulator        {res.simulator}, {res.lanes} lanes, "
              f"{res.bits}-bit {' -> '.join(map(str, res.shape))}")
        print(f"frames checked   {res.frames_checked} ({res.values_checked:,} values)")
        print(f"mismatches       {res.mismatches}"
              + (f" (first: {res.first_mismatch_text})" if res.mismatches else ""))
        print(f"cycles/frame     {res.cycles_per_frame} (schedule "
              f"{res.expected_cycles_per_frame}, ideal {res.ideal_cycles_per_frame})")
        print(f"simulation speed {res.frames_per_second} frames/s "
              f"({res.sim_seconds} s simulated, {res.build_seconds} s build)")
        if res.wave:
            print(f"waves            {res.wave}")
    return 0 if res.ok else 1


def _sim_wav(args: argparse.Namespace) -> int:
    """``kwshw sim --wav``: the whole standalone core on an audio file
    (:func:`sim.standalone.run_standalone_sim`)."""
    from boards.errors import BuildError
    from sim.standalone import run_standalone_sim

    if args.gate_level:
        raise CLIError("--wav simulates the standalone core's RTL in Verilator; gate-level "
                       "simulation (--gate-level) is for the accelerator alone")
    model = _load_model(args.model)
    clk = None if args.clock is None else args.clock * 1e6
    if clk is not None and (clk <= 0 or abs(clk - round(clk)) > 1e-3):
        raise CLIError(f"--clock {args.clock}: a clock is a positive whole number of Hz")
    try:
        res = run_standalone_sim(model, args.wav, mic=args.mic or "pdm", lanes=args.lanes,
                                 clk_hz=None if clk is None else int(round(clk)),
                                 threshold=args.threshold,
                                 simulator=args.simulator or "verilator", waves=args.waves)
    except (BuildError, ValueError, RuntimeError) as e:
        raise CLIError(str(e)) from None
    print(json.dumps(res.to_dict(), indent=1, default=str) if args.json else res.summary())
    return 0 if res.ok else 1


# --- build / run ----------------------------------------------------------------------------------

def _clock(text: str) -> float | str:
    """``--clock``: ``auto`` or a positive number of MHz, as Hz."""
    if text == "auto":
        return text
    try:
        mhz = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a clock in MHz nor 'auto': {text!r}") from None
    if not mhz > 0:
        raise argparse.ArgumentTypeError(f"a clock must be positive, got {text} MHz")
    return mhz * 1e6


def _all_clock(text: str) -> float | str | None:
    """``kwshw all --clock``: as ``--clock`` of ``build``, or ``board`` (None: the board's)."""
    return None if text == "board" else _clock(text)


def _positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def cmd_build(args: argparse.Namespace) -> int:
    from boards.build import build, format_report
    from boards.errors import BuildError

    model = _load_model(args.model)
    out = args.out or f"build/{args.board}-{model.bits}b"
    try:
        rep = build(args.board, model, lanes=args.lanes, out_dir=out, program=args.program,
                    flash=args.flash, verbose=args.verbose,
                    allow_timing_fail=args.allow_timing_fail, breakdown=args.breakdown,
                    mic=args.mic, sys_clk_hz=args.clock, seed=args.seed)
    except (BuildError, ValueError, KeyError) as e:
        raise CLIError(str(e).strip("'")) from None
    print(json.dumps(rep, indent=1, default=float) if args.json else format_report(rep))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ..host.runtime import RunError, run, run_live
    from ..link.protocol import LinkError

    model = _load_model(args.model)
    if args.listen:
        return _listen(args, model)
    try:
        if args.wav:
            res = run(args.port, args.wav, model, check=args.check, baud=args.baud,
                      threshold=args.threshold)
        else:
            res = run_live(args.port, model, seconds=args.seconds, baud=args.baud,
                           threshold=args.threshold)
    except (RunError, LinkError, OSError, ValueError) as e:
        raise CLIError(str(e)) from None
    print(res.summary())
    return 1 if res.mismatches else 0


def _listen(args: argparse.Namespace, model) -> int:
    from ..host.listen import listen_port

    if args.wav or args.check:
        raise CLIError("--listen takes what a standalone board sends: no --wav, no --check")
    try:
        res = listen_port(args.port, model, baud=args.baud, seconds=args.seconds)
    except (OSError, ValueError) as e:
        raise CLIError(str(e)) from None
    print(res.summary())
    return 0


# --- report / eval --------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    from .report import format_report, report

    try:
        d = report(args.model, lanes=args.lanes, board=args.board, results_dir=args.results)
    except (ValueError, KeyError) as e:
        raise CLIError(str(e).strip("'")) from None
    print(json.dumps(d, indent=1, default=str) if args.json else format_report(d))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..datasets import DatasetError
    from ..evaluate import evaluate

    model = _load_model(args.model)
    if args.stream or args.wav:
        return _eval_stream(args, model)
    try:
        res = evaluate(model, args.data, split=args.split or "validation",
                       modes=args.modes.split(","), plots=args.plots)
    except (DatasetError, ValueError) as e:
        raise CLIError(str(e)) from None
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=1, default=float))
    print(_format_eval(res))
    return 0


def _eval_stream(args: argparse.Namespace, model) -> int:
    from ..audio import AudioError
    from ..datasets import DatasetError
    from ..evaluate import keyword_classes
    from ..stream_eval import evaluate_stream, held_out_stream
    from ..streams import user_stream

    try:
        targets = [float(v) for v in args.fa_per_hour.split(",")]
    except ValueError:
        raise CLIError(f"--fa-per-hour: expected numbers, got {args.fa_per_hour!r}") from None
    try:
        if args.wav:
            if not args.keyword_times:
                raise CLIError("--wav needs --keyword-times (a file of start_s[,end_s[,label]] "
                               "lines; an empty file for a recording without keywords)")
            stream = user_stream(args.wav, args.keyword_times,
                                 sample_rate=model.features.sample_rate,
                                 default_label=keyword_classes(model.labels)[0])
            what = f"{args.wav}"
        else:
            stream, info = held_out_stream(model.task, args.data,
                                           split=args.split or "validation+test",
                                           keyword=model.labels[-1], seed=args.seed)
            what = (f"held-back {info['split']} clips of {info['task']} (seed {args.seed}): "
                    f"{info['keyword_clips']} keywords among {info['negative_clips']} others")
        if args.save_stream:
            print(f"stream saved to {stream.save(args.save_stream)}")
        plot = None
        if args.plots:
            Path(args.plots).mkdir(parents=True, exist_ok=True)
            plot = Path(args.plots) / "det_stream.png"
        res = evaluate_stream(model, stream, modes=args.modes.split(","), fa_targets=targets,
                              threshold=args.threshold, plot=plot, title=what)
    except (DatasetError, AudioError, ValueError) as e:
        raise CLIError(str(e)) from None
    res["stream"] = what
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=1, default=float))
    print(_format_stream(res))
    return 0


def _format_stream(res: dict) -> str:
    lines = [f"stream     {res['stream']}",
             f"           {res['hours']:.2f} h, {res['negative_hours']:.2f} h without keywords, "
             f"{res['events']} keywords"]
    for mode, r in res["results"].items():
        t = r["at_threshold"]
        if res["events"]:
            at = ", ".join(f"FRR {100 * v['frr']:.1f}% at {k} FA/h"
                           for k, v in r["frr_at"].items())
            lines.append(f"{mode:>10}: {at}")
        frr = f"FRR {100 * t['frr']:.1f}%, " if res["events"] else ""
        per_class = " (+ per-class offsets)" if t.get("per_class") else ""
        lines.append(f"{mode:>10}  threshold {t['threshold']:.6g}{per_class}: {frr}"
                     f"{t['fa_per_hour']:.1f} FA/h ({t['false_accepts']} false accepts)")
    if "plot" in res:
        lines.append(f"DET curve: {res['plot']}")
    return "\n".join(lines)


def _format_eval(res: dict) -> str:
    lines = []
    for mode, r in res["results"].items():
        if "accuracy" in r:
            lines.append(f"{mode:>10}: top-1 {100 * r['accuracy']:.2f}%"
                         + (f"  (confusion: {r['confusion_png']})" if "confusion_png" in r
                            else ""))
        else:
            ops = ", ".join(f"FRR {100 * o['frr']:.1f}% at FAR {100 * o['far']:.1f}% "
                            f"({o['false_accepts_per_hour']:.1f} FA/h)"
                            for o in r["operating_points"])
            lines.append(f"{mode:>10}: {ops}")
    for mode, why in res.get("skipped", {}).items():
        lines.append(f"{mode:>10}: skipped ({why})")
    if "det_png" in res:
        lines.append(f"DET curve: {res['det_png']}")
    return "\n".join(lines)


# --- train ----------------------------------------------------------------------------------------

def _time_conv(text: str) -> tuple[int, ...]:
    """``K,S,C`` -> (K, S, C); ``none`` -> () (a plain first layer)."""
    if text.strip().lower() == "none":
        return ()
    try:
        return _convs(text)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"{e} ('none' for a plain first layer)") from None


def _convs(text: str) -> tuple[int, int, int]:
    """``K,S,C`` -> (K, S, C) of one convolution (:func:`kwshw.layers.parse_conv`)."""
    from ..layers import parse_conv

    try:
        return parse_conv(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _window(text: str) -> dict[str, int]:
    """``STEPS,STRIDE,SMOOTH`` -> FeatureConfig window fields (FeatureConfig.parse_window)."""
    from ..features import FeatureConfig

    try:
        return FeatureConfig.parse_window(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cmd_train(args: argparse.Namespace) -> int:
    try:
        from ..train.trainer import TrainConfig, train
    except ImportError as e:
        raise CLIError(f"training needs PyTorch: pip install 'kwshw[train]' ({e})") from None
    from ..datasets import DatasetError
    from ..features import FeatureConfig
    from ..modelfile import save

    if not args.data:
        raise CLIError("no data: pass --data or set KWSHW_DATA")
    # Options left out keep the recipe's values (TrainConfig is their one definition).
    given = {k: v for k, v in (("epochs", args.epochs), ("qat_epochs", args.qat_epochs),
                               ("copies", args.copies), ("unknown_weight", args.unknown_weight),
                               ("threads", args.threads))
             if v is not None}
    if args.hidden is not None:
        given["hidden"] = tuple(args.hidden)
    if args.time_conv is not None:
        given["time_conv"] = args.time_conv or None
    if args.convs is not None:  # the convolutions replace the DNN's expanded time convolution
        given["convs"], given["time_conv"] = tuple(args.convs), None
    try:
        cfg = TrainConfig.recipe(args.recipe, bits=None if args.bits == 0 else args.bits,
                                 seed=args.seed, **given)
        model = train(args.data, task=args.task, keyword=args.keyword, config=cfg,
                      features=FeatureConfig(**(args.window or {}),
                                             integer=args.integer_frontend))
    except (DatasetError, ValueError) as e:
        raise CLIError(str(e)) from None
    digest = save(model, args.out)
    print(f"wrote {args.out} ({digest[:12]}): {' -> '.join(map(str, model.shape))}, "
          f"{model.bits}-bit, trained in {model.meta['train_seconds']:.0f} s")
    print(f"accuracy  {_validation_summary(model.meta)}")
    return 0


# --- all ----------------------------------------------------------------------------------------

def cmd_all(args: argparse.Namespace) -> int:
    from .pipeline import DEFAULT_BOARDS, format_summary, run_all

    if not args.data:
        raise CLIError("no data: pass --data or set KWSHW_DATA")
    boards = DEFAULT_BOARDS if args.boards is None else _board_list(args.boards)
    s = run_all(args.data, args.out, recipe=args.recipe, bits=args.bits, lanes=args.lanes,
                boards=boards, frames=args.frames, simulator=args.simulator,
                epochs=args.epochs, seed=args.seed, model_path=args.model, clock=args.clock,
                jobs=args.jobs)
    print()
    print(format_summary(s))
    return 0 if s["ok"] else 1


def _board_lanes(text: str) -> tuple[str, int | None] | None:
    """``BOARD[:LANES]`` -> (board, lanes or None for the board's default); ``none`` -> None."""
    if text.strip().lower() == "none":
        return None
    name, _, lanes = text.partition(":")
    if not lanes:
        return name, None
    try:
        n = int(lanes)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"lanes must be a positive integer: {text!r}")
    return name, n


def _board_list(specs: list) -> list[tuple[str, int]]:
    """The boards of ``kwshw all --boards`` with their lanes (the board's default when not
    given); ``none`` entries are dropped."""
    from boards import get_board

    out = []
    for spec in specs:
        if spec is None:
            continue
        name, lanes = spec
        try:
            board = get_board(name)
        except KeyError as e:
            raise CLIError(e.args[0]) from None
        out.append((name, board.default_lanes if lanes is None else lanes))
    return out


# --- parser -------------------------------------------------------------------------------------

def _parent(*names: str, **kwargs) -> argparse.ArgumentParser:
    """A parent parser (``parents=[...]``) holding one option."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(*names, **kwargs)
    return p


@dataclass(frozen=True)
class _Shared:
    """Parent parsers of the options several subcommands share."""

    model: argparse.ArgumentParser
    lanes: argparse.ArgumentParser
    data: argparse.ArgumentParser

    @classmethod
    def make(cls) -> _Shared:
        return cls(
            model=_parent("--model", required=True, help="model file (.kwm)"),
            lanes=_parent("--lanes", "-P", type=int, default=8, help="MAC lanes P (default 8)"),
            data=_parent("--data", default=os.environ.get("KWSHW_DATA"),
                         help="data folder (default $KWSHW_DATA)"))

    @staticmethod
    def json_flag(help: str) -> argparse.ArgumentParser:
        """``--json``: every subcommand words what it prints its own way."""
        return _parent("--json", action="store_true", help=help)


def _add_model_commands(sub, shared: _Shared) -> None:
    p = sub.add_parser("info", help="describe a model file: shape, formats, widths, memory",
                       description="Load and validate a model file, then describe it.",
                       parents=[shared.json_flag("print machine-readable JSON")])
    p.add_argument("model", help="model file (.kwm)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("generate", help="write the accelerator's Verilog and a JSON report",
                       description="Generate Verilog for a model file on P MAC lanes, with "
                                   "report.json: ports, memory bits by kind, widths, cycles.",
                       parents=[shared.model, shared.lanes])
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--memory", choices=["bram", "spram"], default="bram",
                   help="weight memory: initialised block RAM, or iCE40 SPRAM loaded at boot")
    p.add_argument("--name", default="kwshw_accel", help="top module name")
    p.add_argument("--trace", action="store_true",
                   help="add the trace_* port that shows every layer output (for testbenches)")
    p.add_argument("--family", default=None, metavar="{ecp5,iCE40}",
                   help="FPGA family the Verilog is for: its memories take the shapes kwshw's "
                        "own builds give them there (ecp5: block RAMs read whole, for speed; "
                        "iCE40: SB_SPRAM256KA cells with --memory spram); default: "
                        "family-neutral memories")
    p.set_defaults(func=cmd_generate)


def _add_hardware_commands(sub, shared: _Shared) -> None:
    p = sub.add_parser("sim", help="check the generated Verilog against the golden model",
                       description="Generate the accelerator, simulate it in cocotb on real "
                                   "feature frames and compare every layer output and score "
                                   "with the golden model. With --wav: the whole standalone "
                                   "core (microphone pins to detections) on an audio file, "
                                   "against the golden chain.",
                       parents=[shared.model, shared.lanes,
                                shared.json_flag("print the full result as JSON")])
    p.add_argument("--simulator", choices=["icarus", "verilator"], default=None,
                   help="default: icarus, or verilator with --wav")
    p.add_argument("--frames", type=int, default=200, help="frames to check (default 200)")
    p.add_argument("--waves", action="store_true", help="write an FST/VCD waveform")
    p.add_argument("--seed", type=int, default=0, help="seeds frames, gaps and back-pressure")
    p.add_argument("--gaps", type=float, default=0.1, help="probability of an input gap")
    p.add_argument("--stalls", type=float, default=0.1, help="probability of back-pressure")
    p.add_argument("--gate-level", choices=["ecp5", "ice40"], default=None,
                   help="simulate the Yosys netlist for this family instead of the RTL")
    g = p.add_argument_group("standalone keyword spotter (docs/standalone-sim.md)")
    g.add_argument("--wav", default=None,
                   help="simulate the whole standalone core (microphone pins to detections) "
                        "on this audio file instead of the accelerator alone")
    g.add_argument("--mic", choices=["pdm", "i2s"], default=None,
                   help="with --wav: the microphone model on the pins (default pdm)")
    g.add_argument("--threshold", type=float, default=None,
                   help="with --wav: detection threshold (default: the model's own)")
    g.add_argument("--clock", type=float, default=None, metavar="MHZ",
                   help="with --wav: design clock in MHz (default: the slowest that gives "
                        "16 kHz and keeps up)")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("build", help="synthesize, place and route a bitstream for a board",
                       description="Build a bitstream with Yosys + nextpnr (YoWASP) and print "
                                   "resources and fmax; refuses models that do not fit.",
                       parents=[shared.model,
                                shared.json_flag("print the build report as JSON")])
    p.add_argument("--board", required=True, help="board name (see docs/boards.md)")
    p.add_argument("--lanes", "-P", type=int, default=None, help="MAC lanes (board default)")
    p.add_argument("-o", "--out", default=None, help="build folder (build/BOARD-Nb)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--program", action="store_true", help="load the bitstream into the FPGA")
    g.add_argument("--flash", action="store_true", help="write the configuration flash")
    p.add_argument("--clock", type=_clock, default=None, metavar="MHZ|auto",
                   help="design clock in MHz, made by the board's PLL (default: the board's, "
                        "docs/boards.md); auto: place and route at the board's clock, then "
                        "again at the fastest whole-MHz clock within 90%% of that fmax "
                        "(UART-fed design only)")
    p.add_argument("--allow-timing-fail", action="store_true",
                   help="keep the bitstream even if fmax is below the design clock")
    p.add_argument("--seed", type=int, default=None,
                   help="nextpnr placement seed (default: nextpnr's own); another seed may "
                        "meet a clock that one misses by a hair")
    p.add_argument("--breakdown", action="store_true",
                   help="also report LUTs, carries, FFs, RAM and DSPs per module (one more "
                        "Yosys run with the hierarchy kept)")
    p.add_argument("--mic", choices=MIC_CHOICES, default="host",
                   help="host: frames from the PC over the UART (default); pdm, i2s: the "
                        "standalone design, a microphone on the board's header "
                        "(docs/boards.md)")
    p.add_argument("--verbose", action="store_true", help="show tool output")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="stream audio to a board and print detections",
                       description="Send feature frames of a WAV file (or the microphone) to "
                                   "a board over the host link and print detections.")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--model", required=True, help="the model file the board was built with")
    p.add_argument("--wav", help="audio file (omit for the live microphone)")
    p.add_argument("--check", action="store_true",
                   help="compare every returned score with the golden model")
    p.add_argument("--baud", type=int, default=1_000_000, help="host link baud rate")
    p.add_argument("--threshold", type=float, default=None,
                   help="detection threshold of the smoothed posterior, every keyword class "
                        "(default: the model's own, one per class, chosen at export for a "
                        "stated false-accept rate; 0.5 without)")
    p.add_argument("--seconds", type=float, default=None,
                   help="live or --listen: stop after this long")
    p.add_argument("--listen", action="store_true",
                   help="print the detections a standalone board (kwshw build --mic) sends "
                        "on its own")
    p.set_defaults(func=cmd_run)


def _add_evaluation_commands(sub, shared: _Shared) -> None:
    p = sub.add_parser("report", help="the table for one model and design point",
                       description="Accuracy, memory, cycles, latency and resources for a "
                                   "model on P lanes (and a board), from measured results.",
                       parents=[shared.model, shared.lanes, shared.json_flag("print JSON")])
    p.add_argument("--board", default=None, help="board name")
    p.add_argument("--results", default="bench/results", help="bench results folder")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("eval", help="accuracy of a model file on speaker-disjoint data",
                       description="Evaluate a model file: top-1 and confusion matrix "
                                   "(Speech Commands) or FRR at fixed FAR and DET (wake word) "
                                   "on clips; with --stream, misses at false accepts per hour "
                                   "in one long stream of held-back audio with the keywords "
                                   "spliced in, or in your own recording (--wav).",
                       parents=[shared.model, shared.data])
    p.add_argument("--split", default=None,
                   help="validation, test, or a+b (default: validation; with --stream "
                        "validation+test)")
    p.add_argument("--stream", action="store_true",
                   help="judge the detector in a long stream: FRR at false accepts per hour")
    p.add_argument("--wav", default=None,
                   help="with --keyword-times: your own long recording as the stream")
    p.add_argument("--keyword-times", default=None,
                   help="keyword times of --wav: one 'start_s[,end_s[,label]]' per line (a "
                        "single time is a keyword's centre; label = class index)")
    p.add_argument("--fa-per-hour", default="0.5,1,5",
                   help="false accepts per hour to report FRR at (default 0.5,1,5)")
    p.add_argument("--threshold", type=float, default=None,
                   help="one more operating point, every keyword class at this threshold "
                        "(default: the model's own thresholds)")
    p.add_argument("--seed", type=int, default=0, help="order of the stream's clips")
    p.add_argument("--save-stream", default=None, help="write the stream as WAV + JSON/CSV")
    p.add_argument("--modes", default="golden,float",
                   help="comma list of golden, float, dynamicN, staticN")
    p.add_argument("--plots", default=None, help="folder for confusion/DET PNGs")
    p.add_argument("--json-out", default=None, help="write the results as JSON here")
    p.set_defaults(func=cmd_eval)


def _add_training_commands(sub, shared: _Shared) -> None:
    p = sub.add_parser("train", help="train a keyword spotter with QAT and export a model file",
                       description="Train the DNN in float, fine-tune it with the golden "
                                   "model's quantizers (QAT), export the model file.",
                       parents=[shared.data])
    p.add_argument("--task", choices=["speech_commands", "wake_word"],
                   default="speech_commands")
    p.add_argument("--keyword", default="alexa", help="wake word (task wake_word)")
    p.add_argument("--bits", type=int, default=4, help="code width 2..8 (0: float only)")
    p.add_argument("--recipe", choices=["dnn", "cnn"], default="dnn",
                   help="dnn: the reference DNN (a time convolution stored as one dense "
                        "layer); cnn: temporal convolutions with every kernel stored once (a "
                        "version-2 model; the accelerator computes one new position per "
                        "convolution per hop). docs/training.md")
    p.add_argument("--convs", metavar="K,S,C", type=_convs, nargs="+", default=None,
                   help="the CNN's convolutions, first to last: kernel K steps, stride S, "
                        "C channels (default: the cnn recipe's)")
    p.add_argument("--hidden", type=int, nargs="+", default=None,
                   help="widths of the fully connected hidden layers after the time "
                        "convolution(s) (default: the recipe's, docs/training.md)")
    p.add_argument("--time-conv", metavar="K,S,C", type=_time_conv, default=None,
                   help="first layer trained as a convolution over time: kernel K frames, "
                        "stride S frames, C channels, exported as one fully connected layer "
                        "of positions x C units (default: the recipe's, docs/training.md; "
                        "'none' for a plain first layer)")
    p.add_argument("--epochs", type=int, default=None,
                   help="float epochs (default: the recipe's, docs/training.md)")
    p.add_argument("--qat-epochs", type=int, default=None,
                   help="QAT fine-tuning epochs (default: the recipe's)")
    p.add_argument("--copies", type=int, default=None,
                   help="augmented copies of every clip (default: the recipe's)")
    p.add_argument("--unknown-weight", type=float, default=None, metavar="W",
                   help="multiply the _unknown_ class's loss weight by W (fewer false accepts "
                        "on other speech, more missed keywords; default 1)")
    p.add_argument("--window", metavar="STEPS,STRIDE,SMOOTH", type=_window, default=None,
                   help="the input window: time steps, 10 ms frames per step (the hop), frames "
                        "averaged per step (default 25,4,4: one second in 40 ms steps; "
                        "docs/features.md)")
    p.add_argument("--integer-frontend", action="store_true",
                   help="train on the integer front end's features (the ones the standalone "
                        "design computes on the chip from the microphone, bit for bit) instead "
                        "of the float64 front end; recorded in the model file "
                        "(docs/features.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="PyTorch threads (default 1: the fastest for the recipes' small "
                        "layers; the model's bits depend on it, docs/training.md)")
    p.add_argument("-o", "--out", required=True, help="model file to write (.kwm)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("all", help="the whole job: train, export, generate, verify, build",
                       description="Train the reference network with QAT on the speech in "
                                   "--data, export the model file, evaluate it on unseen "
                                   "speakers, generate Verilog, check it bit-exactly in "
                                   "cocotb, build bitstreams, and print one summary table.",
                       parents=[shared.data])
    p.add_argument("-o", "--out", default="out", help="output folder (default out/)")
    p.add_argument("--recipe", choices=["cnn", "dnn"], default="cnn",
                   help="network to train: cnn (default), the convolutional reference with "
                        "every kernel stored once; dnn, the paper's DNN (docs/training.md)")
    p.add_argument("--bits", type=int, default=4, choices=[4, 8], help="code width")
    p.add_argument("--lanes", "-P", type=int, default=8, help="lanes of the simulated design")
    p.add_argument("--boards", nargs="*", default=None, metavar="BOARD[:LANES]",
                   type=_board_lanes,
                   help="boards to build, lanes by default the board's own (default "
                        "ulx3s-85f:8 icebreaker:4); none (or no board) to skip")
    p.add_argument("--frames", type=int, default=200, help="frames checked in cocotb")
    p.add_argument("--simulator", choices=["icarus", "verilator"], default="verilator")
    p.add_argument("--epochs", type=int, default=None, help="training epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="skip training: use this model file")
    p.add_argument("--clock", type=_all_clock, default="auto", metavar="MHZ|auto|board",
                   help="design clock of the builds in MHz (default auto: each board at the "
                        "fastest clock its PLL makes within 90%% of the design's fmax, found "
                        "by a first build at the board's clock; board: the board's clock, "
                        "one build each)")
    p.add_argument("--jobs", "-j", type=_positive_int, default=None, metavar="N",
                   help="boards built at a time, each in its own process (default: one per "
                        "core; a build is single-threaded)")
    p.set_defaults(func=cmd_all)


def build_parser() -> argparse.ArgumentParser:
    """The ``kwshw`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="kwshw",
        description="Generate FPGA keyword-spotting accelerators with bit-exact 4/8-bit "
                    "dynamic quantization (Mishchenko et al., ICMLA 2019).",
    )
    parser.add_argument("--version", action="version", version=f"kwshw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    shared = _Shared.make()
    _add_model_commands(sub, shared)
    _add_hardware_commands(sub, shared)
    _add_evaluation_commands(sub, shared)
    _add_training_commands(sub, shared)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kwshw`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"kwshw {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kwshw {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
