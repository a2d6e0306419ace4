"""Convert a robustness-library checkpoint: python -m training.convert_madrylab FILE.ckpt --to FOLDER

Reads the file with torch.load(weights_only=True) only (refusing anything that is not plain tensors), strips
the `module.model.` prefix, drops the attacker duplicate, takes mean/std from the normaliser buffers, and writes
our format (config.json + model.safetensors + model card). Architecture and eps come from the file name
(`resnet50_l2_eps3.ckpt`) or the keys; override with --arch/--eps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synth.madrylab import _parse_madrylab_name, from_madrylab, read_torch_checkpoint
from synth.models import ModelLoadError
from training.card import render, save_with_card


def convert(path: str | Path, to: str | Path, arch: str | None = None, eps: float | None = None) -> Path:
    name_arch, name_eps = _parse_madrylab_name(str(path))
    model = from_madrylab(read_torch_checkpoint(path), arch=arch or name_arch, eps=eps if eps is not None else name_eps)
    card = render(
        model,
        title=f"{model.arch} {model.dataset} L2 eps {model.eps} (converted from {Path(path).name})",
        notes=f"Converted from the robustness-library checkpoint `{Path(path).name}` with "
        "`python -m training.convert_madrylab`. Weights unchanged.",
    )
    return save_with_card(model, to, card)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.convert_madrylab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint")
    p.add_argument("--to", required=True)
    p.add_argument("--arch", default=None)
    p.add_argument("--eps", type=float, default=None)
    args = p.parse_args(argv)
    try:
        out = convert(args.checkpoint, args.to, args.arch, args.eps)
    except (ModelLoadError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(out)


if __name__ == "__main__":
    main()
