"""The ``kwshw`` command line: a thin layer over the library.

Every subcommand parses its arguments, calls one library function and prints
what it returns; the work itself lives in the modules it names. Heavy imports
(Amaranth, PyTorch) happen inside the subcommands, so ``kwshw --help`` is fast
and a user with a trained model never needs PyTorch.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__

__all__ = ["main"]


class CLIError(Exception):
    """An error the user can fix; printed without a traceback."""


def _load_model(path: str):
    from .modelfile import ModelFileError, load

    try:
        return load(path)
    except ModelFileError as e:
        raise CLIError(str(e)) from None


# --- info ---------------------------------------------------------------------------------------

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
                        "widths": vars(p.widths)} for p in plans],
        }
        print(json.dumps(out, indent=2))
        return 0
    f = model.features
    print(f"model     {args.model}")
    print(f"sha256    {model.sha256}")
    print(f"task      {model.task}: {', '.join(model.labels)}")
    print(f"network   {' -> '.join(map(str, model.shape))}, {model.bits}-bit codes")
    print(f"features  {f.n_mels} log-mel bands, {f.context} frames x stride {f.stride} "
          f"(window {f.span} hops of {1000 * f.hop_length / f.sample_rate:g} ms), "
          f"input Q.{model.in_frac}")
    print(f"memory    {fp['total_bits']:,} bits ({fp['weight_bits']:,} weight codes + "
          f"{fp['constant_bits']:,} column constants) = {100 * fp['ratio_to_float32']:.1f}% "
          f"of float32 ({fp['float32_bits']:,} bits)")
    print()
    print(f"{'layer':>5} {'shape':>11} {'Fx':>3} {'Fy':>3} {'Ew':>3} {'acc':>4} {'V':>3} "
          f"{'sv':>3} {'sw':>3} {'Z':>3} {'out':>4}  relu")
    for k, p in enumerate(plans):
        w, s = p.widths, p.shifts
        print(f"{k:>5} {p.n_in:>5}x{p.n_out:<5} {p.in_frac:>3} {p.layer.out_frac:>3} "
              f"{p.layer.w_exp:>3} {w.acc:>4} {w.v:>3} {s.sv:>3} {s.sw:>3} {w.z:>3} "
              f"{s.out:>4}  {'yes' if p.layer.relu else 'no'}")
    return 0


# --- generate -----------------------------------------------------------------------------------

def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate

    model = _load_model(args.model)
    try:
        rep = generate(model, args.lanes, args.out, memory=args.memory, name=args.name,
                       trace=args.trace)
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


# --- parser -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kwshw",
        description="Generate FPGA keyword-spotting accelerators with bit-exact 4/8-bit "
                    "dynamic quantization (Mishchenko et al., ICMLA 2019).",
    )
    parser.add_argument("--version", action="version", version=f"kwshw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("info", help="describe a model file: shape, formats, widths, memory",
                       description="Load and validate a model file, then describe it.")
    p.add_argument("model", help="model file (.kwm)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("generate", help="write the accelerator's Verilog and a JSON report",
                       description="Generate Verilog for a model file on P MAC lanes, with "
                                   "report.json: ports, memory bits by kind, widths, cycles.")
    p.add_argument("--model", required=True, help="model file (.kwm)")
    p.add_argument("--lanes", "-P", type=int, default=8, help="MAC lanes P (default 8)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--memory", choices=["bram", "spram"], default="bram",
                   help="weight memory: initialised block RAM, or iCE40 SPRAM loaded at boot")
    p.add_argument("--name", default="kwshw_accel", help="top module name")
    p.add_argument("--trace", action="store_true",
                   help="add the trace_* port that shows every layer output (for testbenches)")
    p.set_defaults(func=cmd_generate)
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
