"""Reading a training run folder (checkpoint.pt written by training.train) back as a synth model."""

from __future__ import annotations

from pathlib import Path

from synth.models import SEEDS_FILE, RobustModel, load_model
from synth.seeds import SeedBank
from training.train import read_checkpoint


def model_from_run(run: str | Path) -> RobustModel:
    run = Path(run)
    ck = read_checkpoint(run / "checkpoint.pt")  # a damaged file: a one-line error, not a traceback
    model = RobustModel(**ck["model_config"])
    model.load_state_dict(ck["model"])
    if (run / SEEDS_FILE).exists():
        model.seed_bank = SeedBank.load(run / SEEDS_FILE)
    model.name = str(run)
    return model.eval().requires_grad_(False)


def load_any(spec: str) -> RobustModel:
    """A run folder (checkpoint.pt) or anything synth.load_model accepts."""
    p = Path(spec)
    if (p / "checkpoint.pt").exists():
        return model_from_run(p)
    return load_model(spec)


def run_info(run: str | Path) -> dict:
    """Training config and history of a run (empty if the folder is not a run)."""
    p = Path(run) / "checkpoint.pt"
    if not p.exists():
        return {}
    ck = read_checkpoint(p)
    return dict(config=ck["config"], history=ck["history"], epoch=ck["epoch"])
