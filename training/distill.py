"""Robust self-distillation of a standard ImageNet network, top to bottom.

    python -m training.distill --data PHOTOS [PHOTOS ...] --dev DEV --wnids WNIDS --out runs/distill
        [--warm FOLDER] [--resume] [--minutes M] [--lr 3e-5 --eps 1.0 --loss logits ...]

The student starts as the teacher (a standard model, `--teacher`); the teacher stays as it is. Each batch: crops
of photos (each --data folder an equal share of the batch, each of its groups - class folders, or file-name
prefixes in a flat folder - an equal share of that), the teacher's clean outputs, an L2 attack (`attack_steps`
steps from a random point of the eps sphere) that pushes the student's outputs away from the teacher's, and an
AdamW step on

    loss = clean_weight * D(S(x), T(x)) + D(S(x + d), T(x))

where D is the KL divergence from the teacher's class distribution (`--loss logits`; ARD / TRADES with a clean
teacher) or the squared distance of penultimate features (`--loss features`; FARE). eps stays at 0 for
`eps_hold` images, then rises linearly to `eps` over `eps_ramp` images (counted over the whole run, warm starts
included). Every `eval_every` images the student is measured on the first `eval_photos` dev photos (centre crop
at input_size: clean top-1 and top-1 under L2 PGD-10 at eps, step 2.5 eps / 10, no random start) and the run
folder gets an atomic, checksummed checkpoint: `--resume` continues bit for bit (every batch's randomness comes
from a generator seeded with (seed, step)). The dev photos only measure: they never train anything.

Across sessions: `--warm FOLDER` starts (without --resume) from the weights and the count of images seen stored
there, and rewrites FOLDER (a synth model folder, float16, with state.json: images seen, the dev figures, the
history) only when the dev score (`score`: the weaker of clean / 50% and robust / 25%) beats the best it holds - always the same path, so the
next session goes on warm. `--minutes` ends the run at the first evaluation past that many minutes.

The file reads in order: the config, the command line, data, the models, the loss and the attack, evaluation,
checkpoints and the warm folder, the loop, main().
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms
from torchvision.transforms.functional import pil_to_tensor

from synth.images import IMAGE_EXTENSIONS
from synth.metrics import robust_accuracy
from synth.models import ModelLoadError, RobustModel, load_model
from synth.pgd import Settings, pgd
from training.card import render, save_with_card
from training.data import centre_crop, labelled_photos
from training.train import add_config_flags, atomic_save, checksum


# ---------------------------------------------------------------------------------------------- config
@dataclass
class Config:
    """A distillation run; every field has a flag of the same name."""

    teacher: str = "imagenet-mobilenetv2-standard"  # the standard model distilled into itself (its start)
    input_size: int = 128  # training crops and evaluation, pixels square
    batch_size: int = 32  # images per optimizer step
    images: int = 1_000_000  # the run ends after this many training images in all (warm starts included)
    lr: float = 3e-5  # AdamW's learning rate after the warm-up
    warmup: int = 2_000  # images over which the learning rate rises from 0, at every (re)start of the optimizer
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    eps: float = 1.0  # L2 radius of the attack after the ramp, [0,1]-pixel units at input_size
    eps_hold: int = 0  # images at eps 0 first (no attack)
    eps_ramp: int = 20_000  # images over which eps rises linearly from 0 to eps after the hold
    attack_steps: int = 1  # steps of the training attack, from a random point of the eps sphere
    attack_lr: float = 1.0  # each attack step's length, as a fraction of the current eps
    loss: Literal["logits", "features"] = "logits"  # KL from the teacher's classes, or feature distance (FARE)
    clean_weight: float = 1.0  # weight of the clean term D(S(x), T(x))
    bn: Literal["frozen", "train"] = "frozen"  # frozen: running statistics kept (eval mode), the affine trains
    eval_every: int = 10_000  # images between evaluations and checkpoints
    eval_photos: int = 200  # dev photos measured (the first N by file name)
    seed: int = 0  # every batch's crops, flips and attack starts derive from (seed, step)


# ---------------------------------------------------------------------------------------------- command line
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training.distill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_flags(p, Config, fixed=())
    p.add_argument("--data", nargs="+", required=True, help="photo folders (class subfolders, or flat)")
    p.add_argument("--dev", required=True, help="dev photos <wnid>_<name>.jpg (measuring only)")
    p.add_argument("--wnids", required=True, help="the wnid list in class-index order")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl")
    p.add_argument("--warm", default=None, help="model folder to start from and to rewrite when the dev score improves")
    p.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt bit for bit (its config)")
    p.add_argument("--minutes", type=float, default=None, help="stop at the first evaluation past this many minutes")
    return p.parse_args(argv)


def make_config(args) -> Config:
    given = {k: v for k, v in vars(args).items() if k in Config.__dataclass_fields__ and v is not None}
    return replace(Config(), **given)


# ---------------------------------------------------------------------------------------------- data
PHOTO_SIDE = 144  # photos are kept at most this size (short side, centre square): crops of input_size come from it


@dataclass
class Source:
    """One --data folder in memory: uint8 squares at their own side (<= PHOTO_SIDE), and each image's group."""

    images: torch.Tensor
    groups: torch.Tensor

    def __post_init__(self):  # per-image sampling weights giving every group the same share, made once
        self.weights = 1.0 / torch.bincount(self.groups).float()[self.groups]


def load_source(folder: str | Path) -> Source:
    """Every image under `folder`; group = its folder (below `folder`), or its file-name prefix before the last
    '_' where `folder` itself holds the images (natural-photos' `imagenette_224_00012.jpg` -> `imagenette_224`)."""
    folder = Path(folder)
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file())
    if not files:
        sys.exit(f"error: no images in {folder}")
    keys = [str(f.parent) if f.parent != folder else f.stem.rsplit("_", 1)[0] for f in files]
    names = {k: i for i, k in enumerate(sorted(set(keys)))}
    with Image.open(files[0]) as first:
        side = min(PHOTO_SIDE, min(first.size))
    square = transforms.Compose(  # as training.data.InMemory decodes a split
        [transforms.Resize(side, transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(side), pil_to_tensor]
    )
    out = torch.empty(len(files), 3, side, side, dtype=torch.uint8)
    for i, f in enumerate(files):
        with Image.open(f) as img:
            out[i] = square(img.convert("RGB"))
    return Source(out, torch.tensor([names[k] for k in keys]))


def batch(sources: list[Source], cfg: Config, g: torch.Generator) -> torch.Tensor:
    """A training batch: each source's share of images drawn by group, each brought to PHOTO_SIDE (smaller
    sources upsampled), a random input_size crop and a random flip."""
    share = torch.full((len(sources),), cfg.batch_size // len(sources))
    share[torch.randperm(len(sources), generator=g)[: cfg.batch_size % len(sources)]] += 1
    parts = []
    for src, k in zip(sources, share.tolist()):
        if k == 0:
            continue
        x = src.images[torch.multinomial(src.weights, k, replacement=True, generator=g)].float() / 255
        if x.shape[-1] != PHOTO_SIDE:
            x = F.interpolate(x, size=PHOTO_SIDE, mode="bicubic", align_corners=False).clamp(0, 1)
        parts.append(x)
    x = torch.cat(parts)
    top, left = (torch.randint(0, PHOTO_SIDE - cfg.input_size + 1, (2, len(x)), generator=g)).tolist()
    flip = (torch.rand(len(x), generator=g) < 0.5).tolist()
    crops = [xi[:, t : t + cfg.input_size, l : l + cfg.input_size] for xi, t, l in zip(x, top, left)]
    crops = [c.flip(-1) if f else c for c, f in zip(crops, flip)]
    return torch.stack(crops).contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------- models
def models(cfg: Config) -> tuple[RobustModel, RobustModel]:
    """(teacher, student): the teacher frozen, BatchNorm folded; the student a copy of it with the run's eps and
    input size in its config (what its model card and synth will read)."""
    try:
        teacher = load_model(cfg.teacher)
    except ModelLoadError as e:
        sys.exit(f"error: --teacher: {e}")
    student = RobustModel(**{**teacher.config, "eps": cfg.eps, "input_size": cfg.input_size})
    student.load_state_dict(teacher.state_dict())
    student.name = f"{cfg.teacher} distilled"
    return teacher.for_synthesis(), student.to(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------- loss + attack
def targets(teacher: RobustModel, x: torch.Tensor, cfg: Config) -> torch.Tensor:
    """What the student matches: the teacher's log-probabilities, or its penultimate features."""
    with torch.no_grad():
        features = teacher.features(x)
        return features if cfg.loss == "features" else F.log_softmax(teacher.net.fc(features).float(), 1)


def divergence(student: RobustModel, x: torch.Tensor, target: torch.Tensor, cfg: Config) -> torch.Tensor:
    """D(S(x), T(x)) per example (see the module's docstring)."""
    if cfg.loss == "features":
        return (student.features(x).float() - target).pow(2).sum(1)
    log_p = F.log_softmax(student.logits(x).float(), 1)
    return F.kl_div(log_p, target, log_target=True, reduction="none").sum(1)


def eps_at(cfg: Config, seen: int) -> float:
    if seen < cfg.eps_hold:
        return 0.0
    return cfg.eps * min(1.0, (seen - cfg.eps_hold + 1) / max(cfg.eps_ramp, 1))


def attack(student: RobustModel, x, target, eps: float, cfg: Config, g: torch.Generator) -> torch.Tensor:
    if eps <= 0 or cfg.attack_steps <= 0:
        return x
    was_training = student.training
    student.eval()
    x_adv = pgd(
        lambda z: divergence(student, z, target, cfg),
        x,
        Settings(eps, cfg.attack_lr * eps, cfg.attack_steps),
        maximize=True,
        random_start=True,
        generator=g,
    )
    student.train(was_training)
    return x_adv


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate(student: RobustModel, dev: tuple, cfg: Config) -> dict:
    """Clean and robust top-1 on the dev photos (robust: L2 PGD-10 at eps, the robustness library's convention)."""
    student.eval()
    photos, labels = dev
    x = torch.cat([centre_crop(p, cfg.input_size) for p in photos]).contiguous(memory_format=torch.channels_last)
    r = robust_accuracy(student, ((x[i : i + 50], labels[i : i + 50]) for i in range(0, len(x), 50)), cfg.eps, 10)
    return {"dev_clean": r["clean"], "dev_robust": r["robust"]}


GOAL = {"dev_clean": 0.50, "dev_robust": 0.25}  # the bar for the shipped model (eps >= 1 at 128 px)


def score(record: dict) -> float:
    """How far a record is toward GOAL, the weaker of the two counting: min(clean / 0.50, robust / 0.25). A
    student that keeps the teacher's accuracy but gains no robustness scores 0."""
    return min(record[k] / v for k, v in GOAL.items())


# ---------------------------------------------------------------------------------------------- checkpoints + warm folder
def save_checkpoint(out: Path, state: dict) -> None:
    atomic_save({**state, "checksum": checksum(state)}, out / "checkpoint.pt")


def load_checkpoint(out: Path) -> dict:
    path = out / "checkpoint.pt"
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - missing, truncated, damaged: one line
        sys.exit(f"error: cannot resume from {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    stored = ck.pop("checksum", None)
    if stored != checksum(ck):
        sys.exit(f"error: {path} is damaged: its contents do not match the checksum stored with it")
    return ck


def read_warm(folder: Path) -> dict | None:
    """state.json of a warm folder (images seen, best record, history), or None where there is none yet."""
    path = folder / "state.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_warm(folder: Path, student: RobustModel, cfg: Config, state: dict) -> None:
    """The student (float16) with a model card, then state.json: the folder the next session starts from."""
    best = state["best"]
    model = copy.deepcopy(student).eval()
    model.net.half()
    notes = (
        f"Robust self-distillation of `{cfg.teacher}` with `python -m training.distill` (not finished: a run "
        f"resumed across sessions). {state['images_seen']:,} training images seen; on the first {cfg.eval_photos} "
        f"ImageNet dev photos at {cfg.input_size} px: {best['dev_clean']:.1%} clean top-1, {best['dev_robust']:.1%} "
        f"under L2 PGD-10 at eps {cfg.eps}. Recipe: {json.dumps(asdict(cfg))}."
    )
    card = render(model, title=f"{cfg.teacher}, robustly self-distilled (work in progress)", notes=notes)
    save_with_card(model, folder, card)
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(folder / "state.json")


# ---------------------------------------------------------------------------------------------- the loop
def lr_at(cfg: Config, since_start: int) -> float:
    return cfg.lr * min(1.0, (since_start + 1) / max(cfg.warmup, 1))


def train(args, cfg: Config, teacher, student, opt, sources, dev, state: dict) -> dict:
    """Batches until cfg.images (or --minutes), evaluating, checkpointing and updating --warm on the way."""
    out, t0 = Path(args.out), time.time()
    student.train(cfg.bn == "train")
    while state["images_seen"] < cfg.images:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + state["step"])
        x = batch(sources, cfg, g)
        target = targets(teacher, x, cfg)
        eps = eps_at(cfg, state["images_seen"])
        x_adv = attack(student, x, target, eps, cfg, g)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, state["images_seen"] - state["start"])
        loss = divergence(student, x_adv, target, cfg).mean()
        if cfg.clean_weight and eps > 0:
            loss = loss + cfg.clean_weight * divergence(student, x, target, cfg).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["step"] += 1
        state["images_seen"] += len(x)
        state["loss"] = state.get("loss", 0.0) * 0.98 + loss.item() * 0.02
        if state["images_seen"] // cfg.eval_every > (state["images_seen"] - len(x)) // cfg.eval_every:
            record = {"images_seen": state["images_seen"], "eps": eps, "loss": round(state["loss"], 4)}
            record |= evaluate(student, dev, cfg) | {"minutes": round((time.time() - t0) / 60, 1)}
            student.train(cfg.bn == "train")
            state["history"].append(record)
            print(json.dumps(record), flush=True)
            improved = state["best"] is None or score(record) > score(state["best"])
            if improved:
                state["best"] = record
            save_checkpoint(out, {**state, "model": student.state_dict(), "optimizer": opt.state_dict()})
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if args.warm and improved:
                write_warm(Path(args.warm), student, cfg, state)
            if args.minutes is not None and time.time() - t0 > 60 * args.minutes:
                break
    return state


# ---------------------------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    """Distil; returns the run's state (images seen, history, best record)."""
    args = parse_args(argv)
    out = Path(args.out)
    ck = load_checkpoint(out) if args.resume else None
    cfg = Config(**ck["config"]) if ck else make_config(args)
    if ck:
        cfg = replace(cfg, images=args.images or cfg.images)  # a resumed run may be extended, nothing else
    teacher, student = models(cfg)
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = {"images_seen": 0, "start": 0, "step": 0, "history": [], "best": None, "config": asdict(cfg)}
    if ck:
        student.load_state_dict(ck.pop("model"))
        opt.load_state_dict(ck.pop("optimizer"))
        state = {**ck, "config": asdict(cfg)}
    elif args.warm and (warm := read_warm(Path(args.warm))):
        student.load_state_dict(RobustModel.from_pretrained(args.warm).state_dict())  # (not load_model's cache)
        state |= {k: warm[k] for k in ("images_seen", "history", "best")}
        state["start"] = state["step"] = warm["images_seen"]  # a new optimizer warms up again; new batches
        print(f"warm start from {args.warm}: {warm['images_seen']:,} images seen", flush=True)
    sources = [load_source(d) for d in args.data]
    dev = labelled_photos(args.dev, args.wnids, cfg.eval_photos)
    out.mkdir(parents=True, exist_ok=True)
    print(f"data: {', '.join(f'{d} ({len(s.images)} images)' for d, s in zip(args.data, sources))}", flush=True)
    print("config:", json.dumps(asdict(cfg)), flush=True)
    return train(args, cfg, teacher, student, opt, sources, dev, state)


if __name__ == "__main__":
    main()
