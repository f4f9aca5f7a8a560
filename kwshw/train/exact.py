"""The QAT network in inference mode: the whole integer network in PyTorch, bit-exact.

:class:`IntegerNet` runs a :class:`kwshw.modelfile.Model` on ``int64`` tensors with the
element-wise functions of :mod:`kwshw.arith` (which accept tensors), in the order of
:func:`kwshw.golden.run_layer`: per-frame min-max, reciprocal, codes, MAC, scale multipliers,
ReLU/saturation. Given the exported integers it returns exactly the golden model's scores;
``tests/test_qat_exact.py`` checks that on every validation utterance.

Every intermediate fits ``int64`` exactly (:func:`kwshw.quantize.plan_layer` refuses a layer
that would not), and the integer matrix product ``p @ q`` is exact in ``int64``.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import arith
from ..golden import layer_inputs

__all__ = ["IntegerNet"]


class IntegerNet(torch.nn.Module):
    """Integer inference of a model file's network on ``int64`` tensors.

    Parameters
    ----------
    model : kwshw.modelfile.Model
        The exported model; its plans (column sums, shifts) are derived by
        :meth:`kwshw.modelfile.Model.plans`, never from floats.
    """

    def __init__(self, model) -> None:
        super().__init__()
        self.bits = int(model.bits)
        self.plans = model.plans()
        self.shifts = [p.shifts for p in self.plans]
        self.relu = [bool(p.layer.relu) for p in self.plans]
        for k, p in enumerate(self.plans):
            lay = p.layer

            def t(a):
                return torch.from_numpy(np.asarray(a, dtype=np.int64).copy())

            self.register_buffer(f"codes{k}", t(lay.codes))
            self.register_buffer(f"st{k}", t(lay.st))
            self.register_buffer(f"lo{k}", t(lay.lo))
            self.register_buffer(f"wsr{k}", t(p.wsr))
            self.register_buffer(f"bias{k}", t(lay.bias))

    def layer(self, k: int, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run layer ``k`` on integer inputs ``x`` (..., n_in); returns every per-frame value
        (the names of :class:`kwshw.golden.LayerTrace`)."""
        bits = self.bits
        xlo, r = arith.frame_range(x.min(dim=-1).values, x.max(dim=-1).values)
        recip = arith.reciprocal(r, bits)
        rm = arith.step(r, bits)
        p = arith.requantize(x, xlo[..., None], recip[..., None], bits)
        psum = p.sum(dim=-1)
        acc = p @ getattr(self, f"codes{k}")
        y = arith.scale_column(
            acc, psum[..., None], rm[..., None], xlo[..., None],
            st=getattr(self, f"st{k}"), lo=getattr(self, f"lo{k}"),
            wsr=getattr(self, f"wsr{k}"), bias=getattr(self, f"bias{k}"),
            bits=bits, shifts=self.shifts[k], relu=self.relu[k])
        return {"x": x, "xlo": xlo, "r": r, "recip": recip, "rm": rm, "p": p, "psum": psum,
                "acc": acc, "y": y}

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores (last layer outputs, ``int64``) of integer input windows ``x`` (..., n_in)."""
        if x.dtype != torch.int64:
            raise TypeError(f"IntegerNet takes int64 inputs, got {x.dtype}")
        return self.traces(x)[-1]["y"]

    @torch.no_grad()
    def traces(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Every layer's per-frame values, for comparison with :func:`kwshw.golden.run_network`
        (a convolution's have one more axis, its output positions, as the golden model's)."""
        out = []
        for k, plan in enumerate(self.plans):
            tr = self.layer(k, layer_inputs(plan, x))
            out.append(tr)
            x = tr["y"] if plan.conv is None else tr["y"].reshape(*tr["y"].shape[:-2], -1)
        return out
