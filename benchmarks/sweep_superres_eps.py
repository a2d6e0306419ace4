"""How the super-resolution eps and step count trade PSNR for recognisability, on test images the README's Results
do not use.

    python -m benchmarks.sweep_superres_eps --data PATH [--n 100 --offset 100] [--eps 0.75 0.8 0.85 0.9 1.0]
    python -m benchmarks.sweep_superres_eps --data PATH --eps 0.85 --steps 20 14 10 8 6
    python -m benchmarks.sweep_superres_eps --data TINY --model tiny-imagenet-resnet18-half-l2-eps1 --n 3 --offset 10 \
        --eps 0.85 --steps 20 8

The 'ours' preset's eps (0.85 at 32 px, i.e. 5.95 at 224 px) and its 8 steps were chosen with this on test images
100..199 of each class, which are disjoint from the first 50 per class that `python -m benchmarks.evaluate` reports on.
Prints, per eps and step count (linearly decaying steps that cover two eps, step = 4 eps / steps; the preset's
start and constraint), PSNR and the judge's (standard twin's) recognition of the true class, each against bicubic:
`benchmarks.evaluate.eval_superres` with overrides. eps is given at 32 px and scaled with the model's side, as the
presets do.
"""

import argparse

import synth
from benchmarks.evaluate import eval_superres, load_test_set
from synth.models import standard_twin


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="an ImageFolder of the model's classes (PATH/test/<class>/)")
    ap.add_argument("--model", default=None, help="a model name (default: the embedded CIFAR-10 model)")
    ap.add_argument("--n", type=int, default=100, help="images per class")
    ap.add_argument("--offset", type=int, default=100, help="skip this many images per class first")
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.75, 0.8, 0.85, 0.9, 0.95, 1.0])
    ap.add_argument("--steps", type=int, nargs="+", default=[8])
    args = ap.parse_args()
    model = synth.load_model(args.model)
    judge = synth.load_model(standard_twin(model))
    data = load_test_set(args.data, model, args.n, offset=args.offset)
    print(f"{len(data[1])} test images ({args.offset}..{args.offset + args.n - 1} per class), x{args.factor}\n")
    print("| eps (32 px) | steps | PSNR (dB) | vs bicubic | judge recognises | vs bicubic (points) |")
    print("|---|---|---|---|---|---|")
    for eps, steps in [(e, n) for e in args.eps for n in args.steps]:
        at = eps * model.input_size / 32
        kw = dict(eps=at, step_size=4 * at / steps, steps=steps)
        rows = eval_superres(model, judge, data, (args.factor,), ("ours",), **kw)[f"x{args.factor}"]
        b, o = rows["bicubic"], rows["synth.super_resolve, preset=ours"]
        p, a = o["psnr"], 100 * o["judge_accuracy"]
        print(
            f"| {eps:g} | {steps} | {p:.2f} | {p - b['psnr']:+.2f} | {a:.1f}% | {a - 100 * b['judge_accuracy']:+.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
