"""Clean and robust accuracy: python -m training.evaluate RUN_OR_MODEL --data DATA --eps 0.5 --steps 20

The attack is L2 PGD (the same `synth.pgd`) maximising cross-entropy from the clean image, step 2.5*eps/steps
(the robustness library's evaluation convention), no random start. Writes eval.json into a run folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from synth.metrics import robust_accuracy
from synth.pgd import PRECISIONS
from training.data import DataError, InMemory
from training.runs import load_any


def accuracy(model, data: InMemory, eps: float, steps: int, batch_size: int = 250, precision: str = "auto") -> dict:
    """{'clean': acc, 'robust': acc under PGD(eps, steps), 'n': images} (synth.metrics.robust_accuracy)."""
    model.eval()
    return robust_accuracy(model, data.batches(batch_size), eps, steps, precision=precision)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model", help="run folder, exported folder, preset or Hub id")
    p.add_argument("--data", required=True, help="dataset root with test/ (or val/)")
    p.add_argument("--eps", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--limit", type=int, default=None, help="evaluate N evenly spaced test images")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    args = p.parse_args(argv)
    model = load_any(args.model)
    try:
        data = InMemory.load(args.data, "test", model.input_size, limit=args.limit)
    except DataError as e:
        sys.exit(f"error: {e}")
    t0 = time.time()
    res = accuracy(model, data, args.eps, args.steps, precision=args.precision)
    res.update(
        seconds=round(time.time() - t0, 1),
        model=args.model,
        command="python -m training.evaluate " + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    rob = f"{res['robust']:.2%}" if res["robust"] is not None else "-"
    print(
        f"| model | images | clean | L2 PGD eps={args.eps}, {args.steps} steps |\n|---|---|---|---|\n"
        f"| {args.model} | {res['n']} | {res['clean']:.2%} | {rob} |"
    )
    if Path(args.model, "checkpoint.pt").exists():
        Path(args.model, "eval.json").write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
