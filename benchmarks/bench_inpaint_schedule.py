"""Inpainting: does the fast schedule reach the paper schedule's objective value?

    python -m benchmarks.bench_inpaint_schedule [--model M] [--images tests/data/cifar10_samples] [--n 50]

For each test image a square patch (~10% of the image) is mean-filled; we run the inpainting objective
(class loss with FakeReLU + 10 * masked change, label = the model's prediction on the masked image) with
the paper's schedule (720 constant steps) and with shorter linearly decaying schedules, and print the mean
final objective and the wall time of each. Same primitive, same objective: only steps/step size differ.
"""

import argparse
import time
from pathlib import Path

import torch

import synth
from synth.images import load_image, resize, to_tensor
from synth.objectives import class_loss, masked_fidelity
from synth.pgd import pgd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--images", default=str(Path(__file__).parents[1] / "tests" / "data" / "cifar10_samples"))
    ap.add_argument("--n", type=int, default=50)
    args = ap.parse_args()
    model = synth.load_model(args.model)
    s = model.input_size
    files = sorted(Path(args.images).rglob("*.jpg"))[:: max(1, len(list(Path(args.images).rglob("*.jpg"))) // args.n)][
        : args.n
    ]
    x = torch.cat([resize(to_tensor(load_image(f)), s) for f in files])
    g = torch.Generator().manual_seed(0)
    side = round(s * 0.316)  # 10% of the area
    m = torch.zeros(len(x), 1, s, s)
    for i in range(len(x)):
        r, c = torch.randint(0, s - side + 1, (2,), generator=g).tolist()
        m[i, :, r : r + side, c : c + side] = 1
    xc = x * (1 - m) + x.mean(dim=(2, 3), keepdim=True) * m
    with torch.no_grad():
        y = model.logits(xc).argmax(1)
    obj = class_loss(y, fake_relu=True) + 10 * masked_fidelity(xc, m)
    f = lambda z: obj(model, z)  # noqa: E731
    paper = synth.settings(model, "inpaint", "paper")
    fast = synth.settings(model, "inpaint", "fast")
    rows = [("paper: 720 constant steps", paper)]
    for n in (50, fast.steps, 200):
        name = f"fast: {n} linearly decaying steps" + (" (default)" if n == fast.steps else "")
        rows.append((name, paper.faster(n)))
    with torch.no_grad():
        start = f(xc).mean().item()
    print(f"{model.name}: {len(x)} images, {side}x{side} patch, start objective {start:.4f}\n")
    print("| schedule | eps | first step | final objective (mean) | time (s) |\n|---|---|---|---|---|")
    for name, p in rows:
        t = time.perf_counter()
        out = pgd(f, xc, p, use_best=True)
        dt = time.perf_counter() - t
        with torch.no_grad():
            val = f(out).mean().item()
        print(f"| {name} | {p.eps:.3g} | {p.step_size:.3g} | {val:.4f} | {dt:.1f} |")


if __name__ == "__main__":
    main()
