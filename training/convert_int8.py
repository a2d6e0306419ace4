"""Convert a traced int8 MobileNetV2 back to float: python -m training.convert_int8 FILE.pt --to FOLDER [--half]

The input is a TorchScript trace of torchvision's *quantized* MobileNetV2 (eager-mode quantization: fuse_model,
prepare, convert, with per-tensor weights), such as ../shared/models/torchvision_mobilenet_v2_imagenet_int8.pt.
Every quantized convolution and the linear layer keep torchvision's module names in the trace; their packed
weights are unpacked and dequantized (w_float = (w_int8 - zero_point) * scale, exactly as torch computes it) into
`synth`'s `mobilenet_v2`, whose BatchNorm layers are set to the identity plus the folded bias (weight 1, bias b,
running mean 0, running variance 1 - eps): the float network computes the int8 one without its rounding.
Activations: the int8 graph uses ReLU with its clamp at ~6 implied by the output scales; the float one uses
torchvision's ReLU6.

torch.jit.load reads TorchScript (tensors and TorchScript code, no Python objects); the conversion only reads the
modules' attributes and never runs the file's code. Still, convert only files you trust. The class names are
ImageNet-1k's for a 1000-class model; the normalisation is torchvision's ImageNet one (the traced file does not
record it: its input quantizer expects normalised images).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from synth.checks import _first_line
from synth.models import DATASET_STATS, RobustModel, imagenet_classes
from training.card import render, save_with_card

INT8_ENGINE = "qnnpack"  # the engine such files are made for: full 8-bit range, no reduce_range


def load_traced(path: str | Path) -> torch.jit.ScriptModule:
    """The traced int8 model, with the quantized engine it was made for (set before loading: the packed weights
    are re-packed for the active engine as the file is read)."""
    if INT8_ENGINE in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = INT8_ENGINE
    with warnings.catch_warnings():  # torch.jit and quantized dtypes are deprecated; the file still reads
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path), map_location="cpu").eval()


def int8_layers(traced: torch.jit.ScriptModule) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """torchvision module name -> (dequantized float weight, float bias) for every quantized conv and linear."""
    layers = {}
    for name, mod in traced.named_modules():
        kind = getattr(mod, "original_name", "")
        if kind in ("Conv2d", "ConvReLU2d") and hasattr(mod, "_packed_params"):
            w, b = torch.ops.quantized.conv2d_unpack(mod._packed_params)
        elif kind == "Linear" and hasattr(mod, "_packed_params"):
            w, b = torch.ops.quantized.linear_unpack(mod._packed_params._packed_params)
        else:
            continue
        if w.qscheme() != torch.per_tensor_affine:
            raise ValueError(f"{name}: weights quantized {w.qscheme()}, only per-tensor affine is supported")
        layers[name] = (w.dequantize(), b.detach().float().clone())
    return layers


def float_model(layers: dict[str, tuple[torch.Tensor, torch.Tensor]], input_size: int = 224) -> RobustModel:
    """synth's `mobilenet_v2` holding `layers` (see `int8_layers`); every layer must be there, with its shape."""
    num_classes = layers["classifier.1"][0].shape[0] if "classifier.1" in layers else 0
    mean, std = DATASET_STATS["imagenet"]
    names = imagenet_classes() if num_classes == 1000 else None
    dataset = "imagenet" if num_classes == 1000 else "custom"
    model = RobustModel("mobilenet_v2", num_classes, names, mean, std, input_size, eps=0.0, dataset=dataset).eval()
    modules = dict(model.net.named_modules())
    wanted = [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if sorted(wanted) != sorted(layers):
        missing, extra = set(wanted) - set(layers), set(layers) - set(wanted)
        raise ValueError(
            f"not torchvision's MobileNetV2: missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]}"
        )
    with torch.no_grad():
        for name, (w, b) in layers.items():
            layer = modules[name]
            if layer.weight.shape != w.shape:
                raise ValueError(f"{name}: weight {tuple(w.shape)} in the file, {tuple(layer.weight.shape)} here")
            layer.weight.copy_(w)
            if isinstance(layer, nn.Linear):
                layer.bias.copy_(b)
                continue
            parent, _, index = name.rpartition(".")  # the BatchNorm right after the conv, in the same Sequential
            bn = modules[parent][int(index) + 1]
            bn.weight.fill_(1)
            bn.bias.copy_(b)
            bn.running_mean.zero_()
            bn.running_var.fill_(1 - bn.eps)  # (x - 0) / sqrt(var + eps) * 1 + b = x + b
    return model


def convert(path: str | Path, to: str | Path, input_size: int = 224, half: bool = False, notes: str = "") -> Path:
    model = float_model(int8_layers(load_traced(path)), input_size)
    card = render(
        model,
        title=f"Standard ImageNet MobileNetV2 (float, from the int8 file {Path(path).name})",
        notes=notes
        or f"Converted from `{Path(path).name}` with `python -m training.convert_int8`: int8 weights dequantized "
        "exactly, BatchNorm folded into the biases.",
    )
    if half:
        model.net.half()  # the weights; the normalisation constants stay float32
    return save_with_card(model, to, card)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.convert_int8",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("traced", help="a TorchScript trace of torchvision's quantized MobileNetV2")
    p.add_argument("--to", required=True)
    p.add_argument("--input-size", type=int, default=224, help="the size the model is run at (its config)")
    p.add_argument("--half", action="store_true", help="float16 weights (half the file)")
    p.add_argument("--notes", default="", help="the model card's paragraph on where the weights come from")
    args = p.parse_args(argv)
    try:
        out = convert(args.traced, args.to, args.input_size, args.half, args.notes)
    except (ValueError, RuntimeError, OSError) as e:  # not a trace, not a quantized MobileNetV2, unreadable
        sys.exit(f"error: {args.traced}: {_first_line(e)}")
    for f in sorted(out.iterdir()):
        print(f"{f}  {f.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
