"""The versioned model file: one trained, quantized network from training to hardware.

A model file is a ZIP archive (``.kwm``) with a JSON header and NumPy ``.npy``
arrays; ``docs/model-file.md`` documents every field. The header carries a
SHA-256 over the canonical content, so a file that was cut short, edited or
corrupted is refused on load with an error that names the problem, and the
hash identifies the model on the accelerator (the IDENT command of the host link).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import arith
from .arith import CONST_WIDTH
from .features import FeatureConfig
from .layers import Conv, Geometry, conv_positions
from .quantize import IntLayer, LayerPlan, plan_layer, quantize_layer

__all__ = ["FORMAT", "VERSION", "READABLE_VERSIONS", "Model", "ModelFileError", "from_float",
           "save", "load"]

FORMAT = "kwshw-model"
#: Version 2 added temporal convolution layers. A network of dense layers only is still written
#: as version 1 (the same bytes and hash as before), so older readers keep reading it.
VERSION = 2
READABLE_VERSIONS = (1, 2)

_INT_LIMIT = 1 << (CONST_WIDTH - 1)


class ModelFileError(ValueError):
    """A model file is malformed, corrupted, of an unknown version, or inconsistent."""


@dataclass
class Model:
    """A quantized keyword-spotting DNN with everything needed to run it bit-exactly.

    Attributes
    ----------
    bits : int
        Code width ``b`` of weights and activations.
    features : FeatureConfig
        The front end the model was trained on, and its input window.
    norm_mean, norm_std : ndarray of float32, shape (n_mels,)
        Per-band normalization applied before :func:`kwshw.quantize.features_to_int`.
    in_frac : int
        Fraction bits of the integer network input.
    labels : list of str
        Class names, in score order.
    task : str
        ``"speech_commands"`` or ``"wake_word"`` (free text for other tasks).
    layers : list of IntLayer
        The quantized layers.
    float_weights, float_biases : list of ndarray, optional
        The float network the integers were quantized from (for measuring the gap).
    meta : dict
        Free-form provenance (training settings, accuracy), JSON-serializable.
    """

    bits: int
    features: FeatureConfig
    norm_mean: np.ndarray
    norm_std: np.ndarray
    in_frac: int
    labels: list[str]
    task: str
    layers: list[IntLayer]
    float_weights: list[np.ndarray] | None = None
    float_biases: list[np.ndarray] | None = None
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> list[int]:
        """Matrix widths from input to output, e.g. ``[1000, 128, 128, 128, 12]`` (a
        convolution counts its kernel rows and its channels)."""
        return [self.layers[0].n_in] + [lay.n_out for lay in self.layers]

    @property
    def convs(self) -> list[Conv | None]:
        """Each layer's temporal convolution, ``None`` for a dense layer."""
        return [lay.conv for lay in self.layers]

    @property
    def has_conv(self) -> bool:
        """Whether any layer is a temporal convolution (a version-2 model)."""
        return any(lay.conv is not None for lay in self.layers)

    def geometries(self) -> list[Geometry]:
        """Each layer's input geometry, then the output's: time steps x channels.

        The network input is the feature window, ``context`` steps of ``n_mels`` bands; a
        convolution keeps time, a dense layer flattens it (one step of ``n_out`` values).

        Raises
        ------
        ValueError
            When a layer's matrix does not match its input (names the layer).
        """
        geo = Geometry(self.features.context, self.features.n_mels)
        out = [geo]
        for k, lay in enumerate(self.layers):
            if lay.conv is None:
                if lay.n_in != geo.size:
                    raise ValueError(f"layer {k} has {lay.n_in} inputs but its input has "
                                     f"{geo.size} values ({geo.positions} steps x "
                                     f"{geo.channels} channels)")
                geo = Geometry(1, lay.n_out)
            else:
                if lay.n_in != lay.conv.kernel * geo.channels:
                    raise ValueError(f"layer {k}: a {lay.conv.kernel}-step kernel over "
                                     f"{geo.channels} channels has {lay.conv.kernel * geo.channels}"
                                     f" rows, the stored kernel {lay.n_in}")
                geo = Geometry(conv_positions(geo.positions, lay.conv), lay.n_out)
            out.append(geo)
        return out

    def plans(self) -> list[LayerPlan]:
        """Per-layer plans (constants, shifts, widths) used by the golden model and hardware."""
        plans = []
        in_frac, in_signed = self.in_frac, True
        for lay, geo in zip(self.layers, self.geometries(), strict=False):
            plans.append(plan_layer(lay, bits=self.bits, in_frac=in_frac, in_signed=in_signed,
                                    in_geometry=geo))
            in_frac, in_signed = lay.out_frac, not lay.relu
        return plans

    def macs(self) -> int:
        """Multiply-accumulates of one window: every layer's matrix times its output positions."""
        return sum(lay.n_in * lay.n_out * geo.positions
                   for lay, geo in zip(self.layers, self.geometries()[1:], strict=True))

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the canonical content (stored by `save`, checked by `load`)."""
        header, arrays = _serialize(self)
        return _content_hash(header, arrays)

    def footprint(self) -> dict:
        """Memory of the deployed model in bits, by kind, and of the float32 model it replaces."""
        weight_bits = sum(lay.n_in * lay.n_out for lay in self.layers) * self.bits
        # Per-column constants the hardware stores: LO, ST, WSR, B (CONST_WIDTH bits each).
        const_bits = sum(lay.n_out for lay in self.layers) * 4 * CONST_WIDTH
        params = sum(lay.n_in * lay.n_out + lay.n_out for lay in self.layers)
        return {
            "parameters": params,
            "weight_bits": weight_bits,
            "constant_bits": const_bits,
            "total_bits": weight_bits + const_bits,
            "float32_bits": params * 32,
            "ratio_to_float32": (weight_bits + const_bits) / (params * 32),
        }


def _array_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _serialize(model: Model) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {
        "norm_mean": np.asarray(model.norm_mean, np.float32),
        "norm_std": np.asarray(model.norm_std, np.float32),
    }
    layers = []
    for k, lay in enumerate(model.layers):
        arrays[f"layer{k}.codes"] = np.asarray(lay.codes, np.uint8)
        arrays[f"layer{k}.lo"] = np.asarray(lay.lo, np.int32)
        arrays[f"layer{k}.st"] = np.asarray(lay.st, np.int32)
        arrays[f"layer{k}.bias"] = np.asarray(lay.bias, np.int32)
        head = {"n_in": lay.n_in, "n_out": lay.n_out, "w_exp": int(lay.w_exp),
                "out_frac": int(lay.out_frac), "relu": bool(lay.relu)}
        if lay.conv is not None:
            head["conv"] = {"kernel": int(lay.conv.kernel), "stride": int(lay.conv.stride)}
        layers.append(head)
    has_float = model.float_weights is not None
    if has_float:
        for k, (w, b) in enumerate(zip(model.float_weights, model.float_biases, strict=True)):
            arrays[f"float{k}.weight"] = np.asarray(w, np.float32)
            arrays[f"float{k}.bias"] = np.asarray(b, np.float32)
    header = {
        "format": FORMAT,
        "version": VERSION if model.has_conv else 1,
        "bits": int(model.bits),
        "in_frac": int(model.in_frac),
        "task": model.task,
        "labels": list(model.labels),
        "features": model.features.to_dict(),
        "layers": layers,
        "float_reference": has_float,
        "meta": model.meta,
    }
    return header, arrays


def _content_hash(header: dict, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(model: Model, path: str | Path) -> str:
    """Validate ``model`` and write it to ``path``; returns its SHA-256.

    The file is written next to the target and renamed into place, so an
    interrupted save never leaves a half-written model under the final name.
    """
    _validate(model)
    header, arrays = _serialize(model)
    digest = _content_hash(header, arrays)
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("header.json", json.dumps({**header, "sha256": digest}, indent=1))
        for name, a in arrays.items():
            zf.writestr(f"{name}.npy", _array_bytes(a))
    tmp.replace(path)
    return digest


def load(path: str | Path) -> Model:
    """Read, check and return a model file.

    Raises
    ------
    ModelFileError
        For a missing, truncated or corrupted file, an unknown format or version,
        a content hash that does not match, NaN/inf values, shape mismatches,
        out-of-range codes or constants. The message names the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "header.json" not in names:
                raise ModelFileError(f"{path}: not a kwshw model file (no header.json)")
            header = json.loads(zf.read("header.json"))
            arrays = {}
            for name in names - {"header.json"}:
                if not name.endswith(".npy"):
                    raise ModelFileError(f"{path}: unexpected member {name!r}")
                arrays[name[:-4]] = np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as e:
        raise ModelFileError(f"{path}: truncated or not a kwshw model file ({e})") from None
    except (ValueError, KeyError, OSError) as e:
        raise ModelFileError(f"{path}: unreadable content ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a kwshw model file (format {header.get('format')!r})"
                             if isinstance(header, dict) else f"{path}: malformed header")
    if header.get("version") not in READABLE_VERSIONS:
        raise ModelFileError(f"{path}: unknown model file version {header.get('version')!r} "
                             f"(this kwshw reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))})")
    stored = header.pop("sha256", None)
    model = _from_parts(header, arrays, path)
    header2, arrays2 = _serialize(model)
    digest = _content_hash(header2, arrays2)
    if stored != digest:
        raise ModelFileError(f"{path}: content hash mismatch (file says {stored}, content is "
                             f"{digest}): the file was modified or corrupted")
    return model


def _need(cond: bool, path, msg: str) -> None:
    if not cond:
        raise ModelFileError(f"{path}: {msg}")


def _from_parts(header: dict, arrays: dict[str, np.ndarray], path) -> Model:
    try:
        bits = header["bits"]
        features = FeatureConfig.from_dict(header["features"])
        layer_heads = header["layers"]
        labels = header["labels"]
        has_float = header["float_reference"]
        in_frac = header["in_frac"]
        task = header["task"]
        meta = header.get("meta", {})
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: malformed header ({e})") from None
    _need(isinstance(bits, int) and bits in arith.SUPPORTED_BITS, path,
          f"unsupported bits {bits!r} (supported {list(arith.SUPPORTED_BITS)})")
    _need(isinstance(layer_heads, list) and len(layer_heads) >= 1, path, "no layers")

    def arr(name: str, dtype, shape) -> np.ndarray:
        _need(name in arrays, path, f"missing array {name!r}")
        a = arrays[name]
        _need(a.dtype == np.dtype(dtype), path,
              f"{name}: dtype {a.dtype}, expected {np.dtype(dtype)}")
        _need(a.shape == tuple(shape), path, f"{name}: shape {a.shape}, expected {tuple(shape)}")
        if a.dtype.kind == "f":
            _need(bool(np.all(np.isfinite(a))), path, f"{name}: contains NaN or inf")
        return a

    layers, weights, biases = [], [], []
    for k, lh in enumerate(layer_heads):
        try:
            n_in, n_out = int(lh["n_in"]), int(lh["n_out"])
            w_exp, out_frac, relu = lh["w_exp"], lh["out_frac"], lh["relu"]
            conv = _conv_from_header(lh, header["version"], path, k)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{path}: layer {k}: malformed header ({e})") from None
        _need(n_in >= 1 and n_out >= 1, path, f"layer {k}: empty shape {n_in}x{n_out}")
        _need(isinstance(w_exp, int) and -64 <= w_exp <= 64, path, f"layer {k}: bad w_exp")
        _need(isinstance(out_frac, int) and -32 <= out_frac <= 32, path,
              f"layer {k}: bad out_frac")
        codes = arr(f"layer{k}.codes", np.uint8, (n_in, n_out))
        _need(int(codes.max(initial=0)) <= arith.code_max(bits), path,
              f"layer {k}: weight code {int(codes.max())} out of range for {bits} bits")
        lo = arr(f"layer{k}.lo", np.int32, (n_out,)).astype(np.int64)
        st = arr(f"layer{k}.st", np.int32, (n_out,)).astype(np.int64)
        bias = arr(f"layer{k}.bias", np.int32, (n_out,)).astype(np.int64)
        _need(bool(np.all((lo >= -_INT_LIMIT) & (lo < _INT_LIMIT))), path,
              f"layer {k}: LO out of its {CONST_WIDTH}-bit range")
        _need(bool(np.all((st >= 0) & (st < _INT_LIMIT))), path,
              f"layer {k}: ST out of its {CONST_WIDTH - 1}-bit unsigned range")
        _need(bool(np.all((bias >= -_INT_LIMIT) & (bias < _INT_LIMIT))), path,
              f"layer {k}: bias out of its {CONST_WIDTH}-bit range")
        layers.append(IntLayer(codes=codes, lo=lo, st=st, bias=bias, w_exp=w_exp,
                               out_frac=out_frac, relu=bool(relu), conv=conv))
        if has_float:
            weights.append(arr(f"float{k}.weight", np.float32, (n_in, n_out)))
            biases.append(arr(f"float{k}.bias", np.float32, (n_out,)))
    mean = arr("norm_mean", np.float32, (features.n_mels,))
    std = arr("norm_std", np.float32, (features.n_mels,))
    model = Model(bits=bits, features=features, norm_mean=mean, norm_std=std, in_frac=in_frac,
                  labels=list(labels), task=task, layers=layers,
                  float_weights=weights if has_float else None,
                  float_biases=biases if has_float else None, meta=meta)
    try:
        _validate(model)
    except ValueError as e:
        raise ModelFileError(f"{path}: {e}") from None
    return model


def _conv_from_header(head: dict, version: int, path, k: int) -> Conv | None:
    if "conv" not in head or head["conv"] is None:
        return None
    if version < 2:
        raise ModelFileError(f"{path}: layer {k}: a convolution layer in a version-{version} file "
                             "(convolutions need version 2)")
    c = head["conv"]
    if not isinstance(c, dict) or not all(isinstance(c.get(f), int) for f in ("kernel", "stride")):
        raise ModelFileError(f"{path}: layer {k}: malformed convolution {c!r}")
    try:
        return Conv(kernel=c["kernel"], stride=c["stride"])
    except ValueError as e:
        raise ModelFileError(f"{path}: layer {k}: {e}") from None


def _validate(model: Model) -> None:
    """Cross-field consistency; raises ValueError naming the first problem."""
    arith.check_bits(model.bits)
    if not model.layers:
        raise ValueError("model has no layers")
    if model.layers[0].conv is None and model.layers[0].n_in != model.features.n_inputs:
        raise ValueError(f"layer 0 has {model.layers[0].n_in} inputs but the feature window "
                         f"gives {model.features.n_inputs} ({model.features.context} frames x "
                         f"{model.features.n_mels} bands)")
    for k in range(1, len(model.layers)):
        if model.layers[k].conv is None and model.layers[k - 1].conv is None \
                and model.layers[k].n_in != model.layers[k - 1].n_out:
            raise ValueError(f"layer {k} has {model.layers[k].n_in} inputs but layer {k - 1} "
                             f"has {model.layers[k - 1].n_out} outputs")
    model.geometries()  # raises if a convolution's kernel or a dense layer does not fit its input
    if model.layers[-1].n_out != len(model.labels):
        raise ValueError(f"last layer has {model.layers[-1].n_out} outputs but there are "
                         f"{len(model.labels)} labels")
    if np.any(~np.isfinite(model.norm_mean)) or np.any(~np.isfinite(model.norm_std)):
        raise ValueError("normalization contains NaN or inf")
    if np.any(np.asarray(model.norm_std) <= 0):
        raise ValueError("normalization std must be > 0")
    if model.float_weights is not None:
        for k, (w, b) in enumerate(zip(model.float_weights, model.float_biases, strict=True)):
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise ValueError(f"float layer {k} contains NaN or inf")
    model.plans()  # raises if an intermediate would not fit the exact int64 range


def from_float(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], *, bits: int,
               out_fracs: Sequence[int], features: FeatureConfig, norm_mean: np.ndarray,
               norm_std: np.ndarray, labels: Sequence[str], task: str,
               in_frac: int, meta: dict | None = None, keep_float: bool = True,
               convs: Sequence[Conv | None] | None = None) -> Model:
    """Quantize a float network (ReLU between layers) into a :class:`Model`.

    ``convs`` gives each layer's temporal convolution (``None`` for a dense layer); all layers
    are dense when it is omitted.
    """
    n = len(weights)
    convs = [None] * n if convs is None else list(convs)
    layers = [quantize_layer(w, b, bits=bits, out_frac=f, relu=k < n - 1, conv=c)
              for k, (w, b, f, c) in enumerate(zip(weights, biases, out_fracs, convs,
                                                    strict=True))]
    return Model(bits=bits, features=features, norm_mean=np.asarray(norm_mean, np.float32),
                 norm_std=np.asarray(norm_std, np.float32), in_frac=in_frac,
                 labels=list(labels), task=task, layers=layers,
                 float_weights=[np.asarray(w, np.float32) for w in weights] if keep_float else None,
                 float_biases=[np.asarray(b, np.float32) for b in biases] if keep_float else None,
                 meta=dict(meta or {}))
