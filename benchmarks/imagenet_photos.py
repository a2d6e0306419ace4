"""Top-1 of ImageNet-1k models on a folder of labelled photos, at several input sizes (the standard centre crop).

    python -m benchmarks.imagenet_photos PHOTOS --wnids WNIDS.txt [--models M ...] [--sizes 128 160 224]
        [--int8 TRACED.pt] [--eps E --steps 10] [--limit N] [--json out.json]

PHOTOS holds `<wnid>_<name>.jpg` files (../shared/data/imagenet-photos-dev.tar's layout); a photo's class is its
wnid's line in WNIDS (../shared/models/imagenet_wnids.txt: sorted wnids, torchvision's class order). The crop:
short side to size * 256 / 224 (bicubic, antialiased), then the centre size x size. --int8 adds a traced int8
model (training.convert_int8's input) under the qnnpack engine, the reference its float conversion must match.
--eps adds robust top-1 under L2 PGD (step 2.5 eps / steps, no random start). For measuring only: these photos
choose between variants, they never train anything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from synth.metrics import robust_accuracy
from synth.models import load_model
from training.data import centre_crop, labelled_photos


def batches(photos, labels, size: int, batch: int = 32):
    x = torch.cat([centre_crop(p, size) for p in photos]).contiguous(memory_format=torch.channels_last)
    for i in range(0, len(x), batch):
        yield x[i : i + batch], labels[i : i + batch]


def int8_top1(path: str, photos, labels, size: int) -> float:
    from synth.models import DATASET_STATS
    from training.convert_int8 import load_traced

    net = load_traced(path)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in DATASET_STATS["imagenet"])
    right = 0
    with torch.no_grad():
        for x, y in batches(photos, labels, size):
            right += int((net(((x - mean) / std).contiguous()).argmax(1) == y).sum())
    return right / len(labels)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos")
    ap.add_argument("--wnids", required=True)
    ap.add_argument("--models", nargs="+", default=["imagenet-mobilenetv2-standard"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 224])
    ap.add_argument("--int8", default=None, help="a traced int8 model to measure beside them")
    ap.add_argument("--eps", type=float, default=0.0, help="also robust top-1 under L2 PGD at this radius")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--limit", type=int, default=None, help="the first N photos by file name")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    photos, labels = labelled_photos(args.photos, args.wnids, args.limit)
    rows = {}
    for name in args.models:
        model = load_model(name)
        for size in args.sizes:
            r = robust_accuracy(model, batches(photos, labels, size), args.eps, args.steps)
            rows[f"{name} @ {size}"] = {"clean": r["clean"], "robust": r["robust"]}
    if args.int8:
        for size in args.sizes:
            rows[f"{Path(args.int8).name} (int8) @ {size}"] = {"clean": int8_top1(args.int8, photos, labels, size)}
    print(
        f"{len(labels)} photos from {args.photos}"
        + (f"; robust: L2 PGD-{args.steps}, eps {args.eps}" if args.eps else "")
    )
    print("\n| model @ size | clean top-1 |" + (" robust top-1 |" if args.eps else ""))
    print("|---|---|" + ("---|" if args.eps else ""))
    for k, v in rows.items():
        robust = f" {v['robust']:.1%} |" if v.get("robust") is not None else (" |" if args.eps else "")
        print(f"| {k} | {v['clean']:.1%} |{robust}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"n": len(labels), "eps": args.eps, "steps": args.steps, "rows": rows}, indent=1)
        )
    return rows


if __name__ == "__main__":
    main()
