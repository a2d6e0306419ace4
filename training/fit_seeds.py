"""Fit a class-conditional seed bank: python -m training.fit_seeds RUN --data DATA [--split train] [--rank 32]

Per class: mean + top-`rank` principal directions (fp16) + isotropic residual (synth.seeds.SeedBank), fitted
on images at the model's input size, block-averaged by `grain` (1 for <= 64 px, 4 above, as the authors).
Writes RUN/seeds.safetensors (training.export ships it next to the model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from synth.models import SEEDS_FILE
from synth.seeds import SeedBank
from training.data import DataError, InMemory, open_split
from training.runs import load_any


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.fit_seeds", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run", help="run folder (or exported folder) to write seeds.safetensors into")
    p.add_argument("--data", required=True)
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--grain", type=int, default=None)
    p.add_argument("--per-class", type=int, default=1000, help="at most N images per class")
    args = p.parse_args(argv)
    model = load_any(args.run)
    size = model.input_size
    grain = args.grain or (1 if size <= 64 else 4)
    try:
        targets = torch.tensor(open_split(args.data, args.split).targets)
        keep = torch.cat([torch.nonzero(targets == k)[: args.per_class, 0] for k in range(model.num_classes)])
        data = InMemory.load(args.data, args.split, size, indices=keep.tolist())
    except DataError as e:
        sys.exit(f"error: {e}")
    bank = SeedBank.fit(data.images.float() / 255, data.labels, model.num_classes, grain=grain, rank=args.rank)
    out = Path(args.run) / SEEDS_FILE
    bank.save(out)
    print(
        f"fitted seeds for {model.num_classes} classes from {len(data)} {args.split} images "
        f"(grain {grain}, rank {args.rank}) -> {out} ({out.stat().st_size / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
