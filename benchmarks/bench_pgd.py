"""PGD speed on this machine: ms per image-step (forward + input gradient) for a ResNet-50 at 224x224.

    python benchmarks/bench_pgd.py [--arch resnet50] [--size 224] [--batches 1 8] [--repeats 3]

Rows: the naive path (fp32, parameters requiring grad, NCHW) vs bf16 autocast (where the CPU supports it) +
channels_last + no parameter gradients, and vs synth's path, which also folds BatchNorm into the convolutions
(`RobustModel.for_synthesis`). Random weights: speed does not depend on them.
Also checks that bf16 does not change results: final class loss of a 10-step PGD run, fp32 vs bf16.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import torch
import torch.nn.functional as F

from synth.models import RobustModel
from synth.pgd import pgd


def time_steps(model, x, y, steps, precision):
    loss = lambda z: F.cross_entropy(model.logits(z).float(), y, reduction="none")  # noqa: E731
    pgd(loss, x, eps=10.0, step_size=1.0, steps=1, precision=precision)  # warm-up
    t = time.perf_counter()
    pgd(loss, x, eps=10.0, step_size=1.0, steps=steps, precision=precision)
    return (time.perf_counter() - t) * 1000 / steps / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    naive = RobustModel(args.arch, 1000, input_size=args.size).eval()
    fast = RobustModel(args.arch, 1000, input_size=args.size).eval()
    fast.load_state_dict(naive.state_dict())
    fast.requires_grad_(False).to(memory_format=torch.channels_last)
    folded = fast.for_synthesis()
    print(
        f"{args.arch} {args.size}x{args.size}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}\n"
    )
    print("| batch | fp32 naive (ms/img-step) | bf16 + channels_last | + BatchNorm folded (synth) | speed-up |")
    print("|---|---|---|---|---|")
    for b in args.batches:
        x = torch.rand(b, 3, args.size, args.size)
        y = torch.randint(0, 1000, (b,))
        xc = x.contiguous(memory_format=torch.channels_last)
        t0 = time_steps(naive, x, y, args.steps, "fp32")
        t1 = time_steps(fast, xc, y, args.steps, "auto")
        t2 = time_steps(folded, xc, y, args.steps, "auto")
        print(f"| {b} | {t0:.1f} | {t1:.1f} | {t2:.1f} | {t0 / t2:.2f}x |")
    x = torch.rand(1, 3, args.size, args.size)
    y = torch.tensor([1])
    t = time.perf_counter()
    pgd(lambda z: F.cross_entropy(folded.logits(z).float(), y, reduction="none"), x, eps=40.0, step_size=1.0, steps=60)
    print(f"\n60-step generation, one {args.size}x{args.size} image: {time.perf_counter() - t:.2f} s")
    # bf16 vs fp32: same run, compare final losses
    x = torch.rand(4, 3, args.size, args.size)
    y = torch.randint(0, 1000, (4,))
    loss = lambda z: F.cross_entropy(fast.logits(z).float(), y, reduction="none")  # noqa: E731
    with torch.no_grad():
        l0 = loss(x)
    a = pgd(loss, x, eps=10.0, step_size=1.0, steps=10, precision="fp32")
    b = pgd(loss, x, eps=10.0, step_size=1.0, steps=10, precision="bf16")
    with torch.no_grad():
        la, lb = loss(a), loss(b)
    print(
        f"10-step PGD final loss (start {l0.mean():.3f}): fp32 {la.mean():.4f}, bf16 {lb.mean():.4f}, "
        f"max |diff| {(la - lb).abs().max():.4f}; max pixel diff {(a - b).abs().max():.4f}"
    )


if __name__ == "__main__":
    main()
