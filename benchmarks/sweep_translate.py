"""Translation settings for a horse/zebra model: how often an independent judge calls the result the target domain,
how often the model's standard twin does, and how much of the photo changes, per radius and number of steps.

    python -m benchmarks.sweep_translate --data HORSE2ZEBRA [--model M] [--judge J] [--offset 0 --n 140] [--json F]

HORSE2ZEBRA has testA/ (horses) and testB/ (zebras); every image is pushed to the other domain. The judge
(default: `benchmarks/judges/horse2zebra-resnet18-half-standard-scratch`, a standard model trained from scratch on
the training split, never used to synthesise) gives the success rate; the twin's figure stands beside it. Settings
are given at 224 px and scaled to the model's side. One run per radius takes the paper's constant step (0.5 at
224 px) for 201 steps; since a constant-step run's first k steps are a k-step run, and a task returns each image's
lowest-loss iterate, the best of its first k + 1 iterates is a k-step run's result (k = 25, 50, 100, 200); the
'last iterate' rows are iterate k itself. The last row is the fast preset (the same path in 60 decaying steps).
"""

import argparse
import json
import sys
from pathlib import Path

import torch.nn.functional as F

import synth
from benchmarks.evaluate import _pils, _tensors, judge_outputs, load_test_set
from synth.models import STANDARD_TWIN
from training.runs import load_any

MODEL = "horse2zebra-resnet18-half-l2-eps3"
JUDGE = Path(__file__).parent / "judges" / "horse2zebra-resnet18-half-standard-scratch"
RADII = (80.0, 20.0)  # L2 eps at 224 px; 80 is the paper's
STEP, STOPS = 0.5, (25, 50, 100, 200)  # the paper's step; the iterates we judge (200: the paper's steps)
QUICK = {"radii": (80.0,), "stops": (100, 200), "fast": False}


def at_size(x, side: int):
    """Images as a judge of another input size sees them (antialiased resize)."""
    return x if x.shape[-1] == side else F.interpolate(x, size=(side, side), mode="bilinear", antialias=True)


def judged(out, x, y, judges: dict) -> dict:
    """Per direction: each judge's success rate (it calls the result the other class) and the mean change."""
    target = 1 - y
    hits = {name: judge_outputs(j, at_size(out, j.input_size))[1].argmax(1) == target for name, j in judges.items()}
    change = (out - x).abs().flatten(1).mean(1) * 255
    rows = {}
    for c, direction in enumerate(("horse -> zebra", "zebra -> horse")):
        keep = y == c
        rows[direction] = {name: float(h[keep].float().mean()) for name, h in hits.items()}
        rows[direction]["change_8bit"] = float(change[keep].mean())
    return rows


def sweep(model, x, y, judges: dict, radii=RADII, stops=STOPS, fast=True) -> list[dict]:
    """One row per (eps, steps) at 224 px: the settings, then `judged` by direction."""
    images, target = _pils(x), (1 - y).tolist()
    scale = model.input_size / 224
    rows = []
    for eps in radii:
        best, last = iterates(model, images, target, eps * scale, STEP * scale, stops, x)
        for steps in stops:
            rows.append({"eps": eps, "steps": steps, "schedule": "constant", **judged(best[steps], x, y, judges)})
            rows.append({"eps": eps, "steps": steps, "schedule": "last iterate", **judged(last[steps], x, y, judges)})
    if not fast:
        return rows
    fast = synth.presets.settings(model, "translate", "fast")
    out = _tensors(synth.translate(model, images, target, preset="fast"))
    rows.append({"eps": fast.eps / scale, "steps": fast.steps, "schedule": "linear", **judged(out, x, y, judges)})
    return rows


def iterates(model, images, target, eps, step_size, stops, x0) -> tuple[dict, dict]:
    """For each k in stops, from one run: what `synth.translate` returns after k constant steps (tasks return each
    example's lowest-loss iterate; the callback of step i sees iterate i and the loss of iterate i - 1), and the
    k-th iterate itself."""
    state = {"prev": x0.clone(), "x": None, "loss": None}
    shots, last = {}, {}
    as_8bit = lambda t: (t * 255).round() / 255  # noqa: E731 - as the task's output

    def keep(step):
        prev, ell = state["prev"].cpu(), step.loss.cpu()
        if state["x"] is None:
            state["x"], state["loss"] = prev.clone(), ell.clone()
        better = ell < state["loss"]
        state["x"][better], state["loss"][better] = prev[better], ell[better]
        if step.i - 1 in stops:  # the best of iterates 0 .. i-1: a run of i - 1 steps
            shots[step.i - 1], last[step.i - 1] = as_8bit(state["x"]), as_8bit(prev)
        state["prev"] = step.x.detach()

    synth.translate(model, images, target, eps=eps, step_size=step_size, steps=max(stops) + 1, callback=keep)
    return shots, last


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--judge", nargs="+", default=[str(JUDGE)], help="independent judges (model names or folders)")
    ap.add_argument("--twin", default=None, help="the model's standard twin (default: the registry's)")
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--n", type=int, default=140, help="images per domain (140: all 120 horses and 140 zebras)")
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--paper-only", action="store_true", help="only eps 80 at 100 and 200 steps (a quick check)")
    args = ap.parse_args()
    model = load_any(args.model)  # a model name or folder, or a training run's folder
    twin = args.twin or synth.standard_twin(model) or STANDARD_TWIN[MODEL]  # a run folder: the shipped model's twin
    judges = {Path(j).name: load_any(j) for j in args.judge} | {"twin": load_any(twin)}
    x, y = load_test_set(args.data, model, args.n, offset=args.offset)
    print(f"{args.model}: {int((y == 0).sum())} horses, {int((y == 1).sum())} zebras at {model.input_size} px")
    print(f"judges: {', '.join(args.judge)}; twin: {twin}\n")
    print(f"| eps, steps at 224 px (schedule) | direction | {' | '.join(judges)} | mean change (8-bit) |")
    print("|---|---|" + "---|" * (len(judges) + 1))
    unchanged = judged(x, x, y, judges)
    rows = [
        {"eps": 0, "steps": 0, "schedule": "unchanged", **unchanged},
        *sweep(model, x, y, judges, **QUICK if args.paper_only else {}),
    ]
    for r in rows:
        for d in ("horse -> zebra", "zebra -> horse"):
            hits = " | ".join(f"{r[d][name]:.1%}" for name in judges)
            print(f"| {r['eps']:.0f}, {r['steps']} ({r['schedule']}) | {d} | {hits} | {r[d]['change_8bit']:.1f} |")
    if args.json:
        meta = {"model": args.model, "judges": args.judge, "twin": twin, "images": len(y)}
        meta["command"] = "python -m benchmarks.sweep_translate " + " ".join(sys.argv[1:])
        Path(args.json).write_text(json.dumps({**meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
