"""Translation settings for the horse/zebra model: how often the judge calls the result the target domain, and how
much of the photo changes, per radius and number of steps.

    python benchmarks/sweep_translate.py --data HORSE2ZEBRA [--offset 60 --n 60]

HORSE2ZEBRA has testA/ (horses) and testB/ (zebras). Each image is pushed to the other domain by the horse/zebra
model; the judge is its standard twin. Settings are given at 224 px (the paper's translation: eps 80, step 0.5,
200 steps) and scaled to the model's side; 'linear' rows cover the same path in fewer, decaying steps (the fast
preset's rule). Run on images offset..offset+n-1 of each folder (the second half of the test set by default).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing


import synth  # noqa: E402
from synth.evaluate import eval_translation, load_test_set  # noqa: E402
from synth.presets import Settings  # noqa: E402

PAPER = Settings(80.0, 0.5, 200)
CANDIDATES = [PAPER] + [
    Settings(eps, 0.5, 200).faster(steps) for eps, steps in [(80, 60), (40, 60), (20, 60), (40, 30)]
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="horse2zebra-resnet18-half-l2-eps1.5")
    ap.add_argument("--offset", type=int, default=60)
    ap.add_argument("--n", type=int, default=60)
    args = ap.parse_args()
    model = synth.load_model(args.model)
    judge = synth.load_model(synth.standard_twin(model))
    x, y = load_test_set(args.data, model, args.n, offset=args.offset)
    print(f"{len(y)} test images ({args.offset}..{args.offset + args.n - 1} of each domain), {model.input_size} px\n")
    print("| eps (224 px) | steps | schedule | direction | judge calls it the target | mean change (8-bit) | s/image |")
    print("|---|---|---|---|---|---|---|")
    for s in CANDIDATES:
        s = s.scaled(model.input_size / 224)
        rows = eval_translation(model, judge, (x, y), ("paper",), **vars(s))
        for name, r in rows.items():
            if "unchanged" in name:
                continue
            eps224 = s.eps * 224 / model.input_size
            print(
                f"| {eps224:.0f} | {s.steps} | {s.schedule} | {name.split(',')[0]} | {r['success']:.1%} "
                f"| {r['change_8bit']:.1f} | {r['seconds_per_image']} |"
            )


if __name__ == "__main__":
    main()
