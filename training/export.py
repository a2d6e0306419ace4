"""Export a run: python -m training.export RUN --to FOLDER [--half]

Writes config.json + model.safetensors (+ seeds.safetensors if training.fit_seeds ran) and a README.md model
card with the run's training settings and eval.json metrics. `synth.load_model(FOLDER)` loads it. --half stores
the weights as float16 (half the file; they load back into float32), for models committed into the package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.card import render, save_with_card
from training.runs import model_from_run, run_info


def export(
    run: str | Path,
    to: str | Path,
    title: str | None = None,
    train_command: str | None = None,
    notes: str = "",
    half: bool = False,
) -> Path:
    run, to = Path(run), Path(to)
    model = model_from_run(run)
    info = run_info(run)
    metrics = json.loads((run / "eval.json").read_text()) if (run / "eval.json").exists() else None
    card = render(
        model,
        title=title or f"{model.arch} ({model.dataset}, eps {model.eps})",
        training=info.get("config"),
        metrics=metrics,
        eval_command=metrics.get("command") if metrics else None,
        train_command=train_command,
        notes=notes,
    )
    if half:
        model.net.half()  # the weights; the normalisation constants stay float32
    return save_with_card(model, to, card)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run")
    p.add_argument("--to", required=True)
    p.add_argument("--title", default=None)
    p.add_argument("--train-command", default=None, help="the command that trained it, for the model card")
    p.add_argument("--notes", default="", help="extra paragraph for the model card")
    p.add_argument("--half", action="store_true", help="float16 weights (half the file)")
    args = p.parse_args(argv)
    out = export(args.run, args.to, args.title, args.train_command, args.notes, args.half)
    for f in sorted(out.iterdir()):
        print(f"{f}  {f.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
