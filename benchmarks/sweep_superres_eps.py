"""How the super-resolution eps trades PSNR for recognisability, on test images the README's Results do not use.

    python benchmarks/sweep_superres_eps.py --data PATH [--n 100 --offset 100] [--eps 0.75 0.8 0.85 0.9 1.0]

The 'ours' preset's eps (0.85 at 32 px, i.e. 5.95 at 224 px) was chosen with this on test images 100..199 of each class, which
are disjoint from the first 50 per class that `python -m synth.evaluate` reports on. Prints, per eps (step =
eps/5, 20 linearly decaying steps, the preset's start and constraint), PSNR and the judge's (standard twin's)
recognition of the true class, each against bicubic.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import synth
from synth.evaluate import _pils, _tensors, judge_outputs, load_test_set, psnr, quantize
from synth.models import standard_twin
from synth.starts import downsample, upsample


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="CIFAR-10 ImageFolder (PATH/test/<class>/)")
    ap.add_argument("--n", type=int, default=100, help="images per class")
    ap.add_argument("--offset", type=int, default=100, help="skip this many images per class first")
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.75, 0.8, 0.85, 0.9, 0.95, 1.0])
    args = ap.parse_args()
    model = synth.load_model()
    judge = synth.load_model(standard_twin(model))
    x, y = load_test_set(args.data, model, args.n, offset=args.offset)
    small = quantize(downsample(x, args.factor))

    def measure(restored):
        _, p = judge_outputs(judge, restored)
        return float(psnr(restored, x).mean()), float((p.argmax(1) == y).float().mean()) * 100

    b_psnr, b_acc = measure(upsample(small, args.factor, "bicubic"))
    print(
        f"{len(y)} test images (offset {args.offset} per class), x{args.factor}; bicubic: {b_psnr:.2f} dB, {b_acc:.1f}%\n"
    )
    print("| eps (32 px) | PSNR (dB) | vs bicubic | judge recognises | vs bicubic (points) |")
    print("|---|---|---|---|---|")
    for eps in args.eps:
        out = _tensors(synth.super_resolve(model, _pils(small), factor=args.factor, eps=eps, step_size=eps / 5))
        p, a = measure(out)
        print(f"| {eps:g} | {p:.2f} | {p - b_psnr:+.2f} | {a:.1f}% | {a - b_acc:+.1f} |", flush=True)


if __name__ == "__main__":
    main()
