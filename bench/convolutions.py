"""Convolutions: per-patch vs per-step activation ranges, and what a hop costs.

::

    python bench/convolutions.py            # -> bench/results/convolutions.json
    python bench/convolutions.py --quick    # few epochs -> bench/results/quick/

Two measurements behind the choices of ``docs/arithmetic.md`` (sections 9 and 10):

1. **Accuracy of the two ways to quantize a convolution's input** (Speech Commands 12-class,
   validation+test speakers, one seed): from the same float CNN (the CNN recipe,
   :meth:`kwshw.train.TrainConfig.cnn`), QAT at 4 bits with

   - *per patch* (the contract): every patch of ``K x C_in`` values has its own min-max
     range; measured on the exported integers (golden model) and in the QAT forward pass;
   - *per step*: every step vector (one frame, or one output position of a convolution) is
     quantized once with its own range, so a patch carries ``K`` ranges (:class:`StepQuantCNN`);
     QAT forward pass only: the contract has no integer form of it.

2. **Cost per hop** of the CNN reference and of the DNN reference, from the model's shapes:
   multiply-accumulates when the whole window is recomputed at every hop vs new positions
   only (:func:`kwshw.streaming.macs_per_hop`); per-hop requantized codes, reciprocals and
   scale-multiplier operations of the two schemes; weight and history memory; and the cycles
   per hop of today's datapath schedule (:class:`kwshw.hw.sequencer.FrameSchedule`, ``P``
   lanes) applied to the vectors each variant multiplies.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from accuracy import CNN_VARIANTS, _config, _models
from common import CACHE, Timer, provenance, results_dir, write_json

from boards.refmodel import random_model
from kwshw import modelfile
from kwshw.corpora import open_dataset
from kwshw.datasets import extract
from kwshw.evaluate import evaluate
from kwshw.features import FeatureConfig
from kwshw.hw.accelerator import frame_schedule, memory_bits
from kwshw.hw.sequencer import COLUMN_INTERVAL, FrameSchedule, layer_schedules
from kwshw.hw.window import reduce_latency
from kwshw.layers import gather_patches
from kwshw.streaming import layer_timing, macs_per_hop
from kwshw.train import finetune_qat, prepare
from kwshw.train.cnn import QuantCNN
from kwshw.train.qat import fake_quant_act, fake_quant_weight
from sim.stimulus import random_model as random_cnn

LANES = (4, 8)


class StepQuantCNN(QuantCNN):
    """:class:`QuantCNN` with per-step activation ranges (the alternative scheme): the window's
    frames and every convolution's output positions are quantized once each, so a patch
    carries ``K`` ranges; dense layers after the last convolution see its positions, each with
    its own range too."""

    def _layer(self, k: int, h: torch.Tensor) -> torch.Tensor:
        if self.bits is None:
            return super()._layer(k, h)
        if k <= len(self.conv_spec):  # the input is the window or a convolution's positions
            geo = self.geometries[k]
            h = fake_quant_act(h.reshape(len(h), geo.positions, geo.channels), self.bits)
            h = h.reshape(len(h), -1)
        else:
            h = fake_quant_act(h, self.bits)
        conv = self.convs[k]
        x = h[:, None, :] if conv is None else gather_patches(h, self.geometries[k], conv)
        return x @ fake_quant_weight(self.weights[k], self.bits) + self.biases[k]


def scheme_accuracy(data_root: str, cfg, *, progress: bool, cache: Path,
                    models_dir: Path | None = None) -> dict:
    """QAT at 4 bits with per-patch and per-step ranges from one float CNN.

    The float network and the per-patch QAT model are the accuracy bench's (seed
    ``cfg.seed``): its ``ptq8.kwm`` and ``qat4.kwm`` from ``models_dir``, or from its cache
    (trained into it here if missing, :func:`accuracy._models`); only the per-step QAT is
    trained here, from the same float network with the same recipe.
    """
    if models_dir is not None:
        models = {name: modelfile.load(models_dir / f"{name}.kwm") for name in ("ptq8", "qat4")}
    else:
        models, _ = _models("speech_commands", data_root, cfg, retrain=False,
                            progress=progress, cache=cache, variants=CNN_VARIANTS)
    data = prepare(data_root, config=cfg, progress=progress)
    ds = open_dataset("speech_commands", data_root, "validation+test", general_speech=False)
    xv, yv = extract(ds, data.features, progress=False, on_error="skip").windows(
        data.normalizer)
    xv, yv = torch.from_numpy(np.asarray(xv, np.float32)), np.asarray(yv)

    def acc(model_net):
        with torch.no_grad():
            return float((model_net(xv).argmax(1).numpy() == yv).mean())

    bits = 4
    net = network_of(models["ptq8"])  # the float network, batch norm folded
    out = {"float": acc(net), "bits": bits, "clips": int(len(yv)), "seed": cfg.seed,
           "models": {name: m.sha256 for name, m in models.items()},
           "patch_qat_forward": acc(network_of(models["qat4"], bits=bits)),
           "patch_golden": evaluate(models["qat4"], data_root, split="validation+test",
                                    modes=("golden",), progress=False)["results"]["golden"][
               "accuracy"],
           "patch_ptq_forward": acc(network_of(models["ptq8"], bits=bits))}
    stepnet = network_of(models["ptq8"], cls=StepQuantCNN)
    out["step_ptq_forward"] = acc(network_of(models["ptq8"], bits=bits, cls=StepQuantCNN))
    qs, _ = finetune_qat(stepnet, data, bits, replace(cfg, bits=bits), progress=progress)
    out["step_qat_forward"] = acc(qs)
    return out


def network_of(model, *, bits: int | None = None, cls=QuantCNN) -> QuantCNN:
    """The torch network of a CNN model file's float reference (the latent weights: folded
    float network, or the QAT network's), with its quantizers at ``bits``."""
    convs = [(lay.conv.kernel, lay.conv.stride, lay.n_out) for lay in model.layers
             if lay.conv is not None]
    hidden = [lay.n_out for lay in model.layers[len(convs):-1]]
    net = cls(model.features.context, model.features.n_mels, convs, hidden,
              model.layers[-1].n_out)
    with torch.no_grad():
        for k, (w, b) in enumerate(zip(model.float_weights, model.float_biases, strict=True)):
            net.weights[k].copy_(torch.from_numpy(np.asarray(w, np.float32)))
            net.biases[k].copy_(torch.from_numpy(np.asarray(b, np.float32)))
    net.bits = bits
    return net.eval()


def hop_costs(model, lanes: int) -> dict:
    """Per-hop operations, memory and schedule cycles of ``model`` on ``lanes`` MAC lanes."""
    plans = model.plans()
    base = frame_schedule(model, lanes)  # the datapath's latencies for this model's widths
    # The estimates reduce over the whole feature window (the accelerator itself reduces over
    # the first convolution's patch only: "accelerator" below).
    window_reduce = reduce_latency(model.features)
    timing = layer_timing(plans, model.features.stride)

    def schedule(vectors_of, spacing_of) -> int:
        # The datapath's own layer schedules, with the spacing of the scheme being costed.
        layers = []
        for plan, ls in zip(plans, layer_schedules(plans, lanes), strict=True):
            layers += [replace(ls, spacing=spacing_of(plan))] * vectors_of(plan)
        return FrameSchedule(tuple(layers), window_reduce, base.divider_latency,
                             base.pipeline_latency, base.tracker_latency).cycles_per_frame

    def stream_vectors(p):
        return 1 if p.conv is not None else p.vectors

    def per_patch_spacing(p):
        return max(p.n_in, COLUMN_INTERVAL * lanes)

    def per_step_spacing(p):
        # K partial sums per column leave the MAC array per pass: the scaler needs K times
        # the cycles of P columns.
        return max(p.n_in, COLUMN_INTERVAL * lanes * (p.conv.kernel if p.conv is not None
                                                      else 1))

    bits = model.bits
    hist_patch = hist_step = 0
    for plan, t in zip(plans, timing, strict=True):
        if t is None:
            continue
        depth = int(t.taps.max()) + 1
        c = plan.in_geometry.channels
        hist_patch += depth * c * 16
        hist_step += depth * (c * bits + 16 + 16)  # codes + XLO + RM per step
    last = max((k for k, t in enumerate(timing) if t is not None), default=None)
    if last is not None:
        depth = int(timing[last].window_ages.max()) + 1
        c = plans[last].n_out
        hist_patch += depth * c * 16
        hist_step += depth * (c * bits + 32)
    conv_plans = [p for p in plans if p.conv is not None]
    return {
        "lanes": lanes,
        "macs": macs_per_hop(plans),
        "weight_bits": int(sum(p.n_in * p.n_out for p in plans) * bits),
        "cycles": {
            "window": schedule(lambda p: p.vectors, per_patch_spacing),
            "stream_per_patch": schedule(stream_vectors, per_patch_spacing),
            "stream_per_step": schedule(stream_vectors, per_step_spacing),
        },
        "per_hop_ops": {
            "per_patch": {"codes": sum(p.n_in for p in conv_plans),
                          "reciprocals": len(conv_plans),
                          "scale_ops": sum(p.n_out for p in conv_plans)},
            "per_step": {"codes": sum(p.in_geometry.channels for p in conv_plans),
                         "reciprocals": len(conv_plans),
                         "scale_ops": sum(p.n_out * p.conv.kernel for p in conv_plans)},
        },
        "history_bits": {"per_patch": hist_patch, "per_step": hist_step},
        "accelerator": {"cycles_per_hop": base.cycles_per_frame,
                        "memory_bits": memory_bits(model, lanes)},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("KWSHW_DATA"),
                    help="data folder (default $KWSHW_DATA)")
    ap.add_argument("--quick", action="store_true", help="few epochs, for CI")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="results folder")
    ap.add_argument("--cache", default=str(CACHE / "models" / "accuracy"),
                    help="the accuracy bench's model cache (its CNN models are reused)")
    ap.add_argument("--models", default=None, metavar="DIR",
                    help="a folder with the accuracy bench's CNN ptq8.kwm and qat4.kwm to use "
                         "(instead of looking them up in --cache by the training code's hash)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    timer = Timer()
    cfg = _config("speech_commands", args.quick, args.seed, "cnn")  # the accuracy bench's
    # Costs depend on shapes only: random weights of the recipe's shape.
    cnn = random_cnn(list(cfg.hidden), 4, features=FeatureConfig(), convs=cfg.convs, seed=0)
    dnn = random_model(4)
    results = {"recipe": cfg.to_meta(),
               "costs": {name: [hop_costs(m, p) for p in LANES]
                         for name, m in (("cnn", cnn), ("dnn", dnn))}}
    for name, rows in results["costs"].items():
        for r in rows:
            print(f"{name} P={r['lanes']}: MACs/hop window {r['macs']['window']:,} stream "
                  f"{r['macs']['stream']:,}; cycles window {r['cycles']['window']:,} stream "
                  f"per-patch {r['cycles']['stream_per_patch']:,} per-step "
                  f"{r['cycles']['stream_per_step']:,}; weights {r['weight_bits']:,} b")
    if args.data:
        results["schemes"] = scheme_accuracy(
            args.data, cfg, progress=not args.no_progress, cache=Path(args.cache),
            models_dir=Path(args.models) if args.models else None)
        print({k: v for k, v in results["schemes"].items()})
    path = write_json(results_dir(args.quick, args.out) / "convolutions.json", results,
                      meta=provenance("bench/convolutions.py", timer, quick=args.quick,
                                      argv=argv))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
