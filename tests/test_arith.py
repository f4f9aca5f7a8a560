"""The scale multiplier's intermediates: one definition (:func:`kwshw.arith.scale_terms`) that
:func:`~kwshw.arith.scale_column` uses, the same integers for Python int, NumPy and torch."""

from __future__ import annotations

import numpy as np
import pytest

from kwshw import arith
from kwshw.arith import ACT_MAX, ACT_MIN, LayerShifts

SHIFTS = [LayerShifts(sv=3, sw=1, align1=2, align2=0, out=5),
          LayerShifts(sv=0, sw=0, align1=0, align2=4, out=-2)]


def _case(seed: int):
    rng = np.random.default_rng(seed)
    n = 64
    return {
        "a": rng.integers(0, 1 << 18, n), "p": rng.integers(0, 1 << 12, n),
        "rm": rng.integers(0, 1 << 17, n), "xlo": rng.integers(ACT_MIN, ACT_MAX + 1, n),
        "st": rng.integers(0, 1 << 17, n), "lo": rng.integers(-(1 << 16), 1 << 16, n),
        "wsr": rng.integers(-(1 << 17), 1 << 17, n), "bias": rng.integers(-4096, 4096, n),
    }


@pytest.mark.parametrize("shifts", SHIFTS)
@pytest.mark.parametrize("relu", [False, True])
def test_scale_column_is_saturated_scale_terms(shifts, relu):
    args = _case(1)
    terms = arith.scale_terms(args["a"], args["p"], args["rm"], args["xlo"], st=args["st"],
                              lo=args["lo"], wsr=args["wsr"], bias=args["bias"], bits=4,
                              shifts=shifts)
    y = arith.scale_column(args["a"], args["p"], args["rm"], args["xlo"], st=args["st"],
                           lo=args["lo"], wsr=args["wsr"], bias=args["bias"], bits=4,
                           shifts=shifts, relu=relu)
    assert np.array_equal(y, np.clip(terms.y, 0 if relu else ACT_MIN, ACT_MAX))
    assert np.array_equal(terms.vr, arith.rshift_round(terms.v, shifts.sv))
    assert np.array_equal(terms.z, (terms.t1 << shifts.align1) + (terms.t2 << shifts.align2))


@pytest.mark.parametrize("shifts", SHIFTS)
def test_scale_terms_same_integers_for_int_numpy_and_torch(shifts):
    args = _case(2)
    consts = ("st", "lo", "wsr", "bias")

    def run(conv):
        c = {k: conv(v) for k, v in args.items()}
        return arith.scale_terms(c["a"], c["p"], c["rm"], c["xlo"], bits=8, shifts=shifts,
                                 **{k: c[k] for k in consts})

    want = run(lambda v: v)
    for j in range(len(args["a"])):
        got = run(lambda v, j=j: int(v[j]))
        assert all(isinstance(x, int) for x in got)
        assert tuple(got) == tuple(int(f[j]) for f in want)
    torch = pytest.importorskip("torch")
    got = run(lambda v: torch.from_numpy(v.astype(np.int64)))
    for name, t, n in zip(arith.ScaleTerms._fields, got, want, strict=True):
        assert t.dtype == torch.int64 and np.array_equal(t.numpy(), n), name
