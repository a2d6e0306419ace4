"""Adversarial training, top to bottom (Madry et al.; the paper's appendix Tables 3-4).

    python -m training.train --recipe cifar10 --data DATA --out runs/c10 [--budget] [--resume]
    torchrun --nproc_per_node N -m training.train --recipe imagenet --data /imagenet --out runs/in

Each batch: PGD-L2 from a random start in the eps-ball maximises the loss (model in eval mode, the same
`synth.pgd` primitive the synthesis tasks use); the model takes an SGD step on those examples (train mode).
--eps 0 is ordinary training (the "standard twin"). A checkpoint is written atomically every epoch; the
learning rate is a pure function of progress and all randomness of epoch e comes from a generator seeded
with (seed, e), so --resume continues exactly.

The file reads in order: the config and its recipes, the command line, then the sections of a run in the
order main() calls them (setup, data, model + optimizer, resume, one epoch, evaluation + checkpoint), and
main() itself last.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, get_args, get_origin, get_type_hints

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from synth.evaluate import robust_accuracy
from synth.models import DATASET_STATS, RobustModel
from synth.pgd import autocast_for, pgd
from training.data import DataError, InMemory, imagenet_transforms, open_split


# ---------------------------------------------------------------------------------------------- config
@dataclass
class Config:
    """A training run: the defaults are the cifar10 recipe; every field but the first two has a flag."""

    recipe: str = "cifar10"  # the RECIPES entry the run started from
    dataset: str = "cifar10"  # folder layout and normalisation: cifar10, imagenet, restricted_imagenet or a2b
    arch: str = "cifar_resnet56x2"  # a synth.models architecture
    input_size: int = 32  # images are resized and cropped to this many pixels square
    epochs: int = 350  # passes over the training set
    batch_size: int = 256  # images per optimizer step in each process
    lr: float = 0.01  # peak learning rate of SGD with momentum 0.9
    schedule: Literal["step", "onecycle"] = "step"  # step: x0.1 at each milestone; onecycle: 15% warm-up, decay to 0
    milestones: list[int] = field(default_factory=lambda: [150, 250])  # epochs where the step schedule drops lr x0.1
    weight_decay: float = 5e-4  # SGD's L2 penalty on the weights
    eps: float = 0.5  # L2 radius of the training attack; 0 trains on clean images (the standard twin)
    attack_steps: int = 7  # PGD steps on each batch
    attack_lr: float = 0.1  # L2 length of each PGD step
    use_best: bool = True  # the attack returns its highest-loss iterate rather than its last
    seed: int = 0  # model init, and the seed of every epoch's order, augmentation and attack starts
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast where the device runs it fast


def config_from_dict(d: dict) -> Config:
    """The config stored in a checkpoint (`asdict`); runs written before the rename call the recipe 'preset'."""
    d = dict(d)
    if "preset" in d:
        d["recipe"] = d.pop("preset")
    return Config(**d)


# ---------------------------------------------------------------------------------------------- recipes
# The paper's appendix, as overrides of Config: SGD momentum 0.9, weight decay 5e-4, random crop + flip, PGD-7.
AB_NAMES = {
    "horse2zebra": ["horse", "zebra"],
    "apple2orange": ["apple", "orange"],
    "summer2winter": ["summer", "winter"],
}
# fmt: off
RECIPES = {r.recipe: r for r in [
    Config(),  # cifar10
    Config(recipe="restricted_imagenet", dataset="restricted_imagenet", arch="resnet50", input_size=224,
           epochs=110, lr=0.1, batch_size=128, milestones=[30, 60], eps=3.5, attack_lr=0.1),
    Config(recipe="imagenet", dataset="imagenet", arch="resnet50", input_size=224,
           epochs=110, lr=0.1, batch_size=256, milestones=[100], eps=3.0, attack_lr=0.5),
    *[Config(recipe=ab, dataset="a2b", arch="resnet50", input_size=224,  # A/B domain folders, AB_NAMES classes
             epochs=350, lr=0.01, batch_size=64, milestones=[50, 100], eps=5.0, attack_lr=0.9) for ab in AB_NAMES],
]}
# fmt: on
# --budget: the CPU recipe of the embedded CIFAR-10 models: a ResNet-20, fewer epochs, 2 attack steps (each
# proportionally longer, see make_config), a one-cycle learning rate.
BUDGET = {
    "arch": "cifar_resnet20",
    "epochs": 40,
    "attack_steps": 2,
    "lr": 0.2,
    "schedule": "onecycle",
    "use_best": False,
}


# ---------------------------------------------------------------------------------------------- command line
FIXED = ("recipe", "dataset")  # Config fields that only --recipe sets


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--recipe", "--preset", dest="recipe", choices=sorted(RECIPES), required=True)
    p.add_argument("--budget", action="store_true", help=f"CPU budget: {BUDGET}")
    add_config_flags(p)  # --arch, --epochs, ...: each overrides the recipe's value
    p.add_argument("--data", required=True, help="ImageFolder root with train/ and test/ (or val/), or A/B folders")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers (streaming datasets)")
    p.add_argument("--in-memory", type=int, choices=[0, 1], default=None, help="default: 1 for inputs <= 64 px")
    p.add_argument("--limit-train", type=int, default=None, help="use only N training images (smoke tests)")
    p.add_argument("--eval-images", type=int, default=1000, help="test images for the per-epoch eval")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (smoke tests)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="CUDA: deterministic kernels (bit-exact reruns and resumes; slower)",
    )
    return p.parse_args(argv)


def add_config_flags(p: argparse.ArgumentParser):
    """One flag per Config field (its type, its choices, its comment as help), default None: keep the recipe's."""
    try:
        comments = dict(re.findall(r"^    (\w+): [^#\n]*#\s*(.*)$", inspect.getsource(Config), re.MULTILINE))
    except OSError:  # no source (a frozen build): flags without help
        comments = {}
    types = get_type_hints(Config)
    for f in fields(Config):
        if f.name in FIXED:
            continue
        t = types[f.name]
        if get_origin(t) is Literal:
            kind = {"choices": list(get_args(t))}
        elif t is bool:
            kind = {"type": int, "choices": [0, 1]}
        elif get_origin(t) is list:
            kind = {"type": get_args(t)[0], "nargs": "*"}
        else:
            kind = {"type": t}
        p.add_argument(
            "--" + f.name.replace("_", "-"), default=None, help=comments.get(f.name, "").replace("%", "%%"), **kind
        )


def make_config(args) -> Config:
    """The recipe, then --budget, then each flag given."""
    recipe = RECIPES[args.recipe]
    cfg = replace(recipe, **(BUDGET if args.budget else {}))
    flags = (f.name for f in fields(Config) if f.name not in FIXED)
    cfg = replace(cfg, **{k: getattr(args, k) for k in flags if getattr(args, k) is not None})
    if args.attack_lr is None:  # fewer steps -> a proportionally larger step (same total path length)
        cfg.attack_lr = recipe.attack_lr * recipe.attack_steps / max(cfg.attack_steps, 1)
    if args.milestones is None and cfg.epochs != recipe.epochs:  # the lr drops at the same fractions of the run
        scale = cfg.epochs / recipe.epochs
        cfg.milestones = [max(1, round(m * scale)) for m in recipe.milestones]
    cfg.use_best = bool(cfg.use_best)
    return cfg


# ---------------------------------------------------------------------------------------------- setup
@dataclass
class Env:
    """This process: its rank among `world` torchrun processes (0 of 1 without torchrun) and its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def master(self) -> bool:  # rank 0 logs and writes the run folder
        return self.rank == 0

    def log(self, *a):
        if self.master:
            print(*a, flush=True)


def setup(args) -> Env:
    world = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun sets these
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(args.device)
    if args.deterministic:  # CPU runs are deterministic already; cuDNN/cuBLAS need to be told
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Env(rank, world, device)


# ---------------------------------------------------------------------------------------------- data
def load_data(args, cfg: Config, env: Env):
    """(train, test, class names, training images): small images decoded into memory, large ones streamed."""
    size = cfg.input_size
    kind = {"restricted_imagenet": "restricted_imagenet", "a2b": "ab"}.get(cfg.dataset, "folder")
    in_memory = bool(args.in_memory if args.in_memory is not None else size <= 64)
    try:
        if in_memory:
            train = InMemory.load(args.data, "train", size, kind, limit=args.limit_train)
        else:
            train = open_split(args.data, "train", imagenet_transforms(size)[0], kind)
        test = InMemory.load(args.data, "test", size, kind, limit=args.eval_images)
    except DataError as e:
        sys.exit(f"error: {e}")
    classes = AB_NAMES.get(cfg.recipe, train.classes) if cfg.dataset == "a2b" else train.classes
    n_train = len(train) if args.limit_train is None else min(len(train), args.limit_train)
    env.log(
        f"data: {n_train} train / {len(test)} eval images, {len(classes)} classes, {size}px, "
        f"{'in memory' if in_memory else 'streaming'}"
    )
    return train, test, classes, n_train


def epoch_batches(train, cfg: Config, env: Env, epoch: int, g: torch.Generator, workers: int):
    """This epoch's share of the training set for this process, in an order drawn from `g`."""
    if isinstance(train, InMemory):
        return train.batches(cfg.batch_size, g, augment=True, rank=env.rank, world=env.world)
    if env.world > 1:
        sampler = DistributedSampler(train, env.world, env.rank, seed=cfg.seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(train, generator=g)
    return DataLoader(train, cfg.batch_size, sampler=sampler, num_workers=workers, pin_memory=env.device.type == "cuda")


# ---------------------------------------------------------------------------------------------- model + optimizer
def build_model(cfg: Config, classes: list, device: torch.device):
    """The synth wrapper (normalisation inside), so what we train is what synth loads; SGD with momentum."""
    mean, std = DATASET_STATS.get(cfg.dataset, DATASET_STATS["a2b"])
    model_config = {
        "arch": cfg.arch,
        "num_classes": len(classes),
        "class_names": list(classes),
        "mean": list(mean),
        "std": list(std),
        "input_size": cfg.input_size,
        "eps": cfg.eps,
        "norm": "l2",
        "dataset": cfg.dataset,
    }
    torch.manual_seed(cfg.seed)
    model = RobustModel(**model_config).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return model, opt, model_config


# ---------------------------------------------------------------------------------------------- resume
def resume(path: Path, cfg: Config, model, opt, env: Env) -> tuple[Config, int, list]:
    """Weights, optimizer and RNG states from `path`; the run goes on with the checkpoint's config."""
    if not path.exists():
        sys.exit(f"error: --resume but no checkpoint at {path}")
    ck = torch.load(path, map_location=env.device, weights_only=True)
    saved = config_from_dict(ck["config"])
    if saved.arch != cfg.arch:
        sys.exit(f"error: checkpoint is a {saved.arch}, this run asks for {cfg.arch}")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    torch.set_rng_state(ck["rng"].cpu())  # map_location moved it to the device; the CPU generator wants it back
    if env.device.type == "cuda" and "cuda_rng" in ck:
        torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), env.device)
    env.log(f"resumed from {path} at epoch {ck['epoch']}")
    return replace(saved, precision=cfg.precision), ck["epoch"], ck["history"]


# ---------------------------------------------------------------------------------------------- one epoch
def lr_at(cfg: Config, progress: float) -> float:
    """Learning rate at `progress` epochs (fractional)."""
    if cfg.schedule == "onecycle":  # linear warm-up over 15%, then linear decay to 0
        t = progress / cfg.epochs
        return cfg.lr * (t / 0.15 if t < 0.15 else max(0.0, (1 - t) / 0.85))
    return cfg.lr * 0.1 ** sum(progress >= m for m in cfg.milestones)


def attack(model, x, y, cfg: Config, generator=None):
    """Untargeted L2 PGD from a random start (eval mode); returns x itself when eps == 0."""
    if cfg.eps <= 0 or cfg.attack_steps <= 0:
        return x
    was_training = model.training
    model.eval()
    x_adv = pgd(
        lambda z: F.cross_entropy(model.logits(z).float(), y, reduction="none"),
        x,
        eps=cfg.eps,
        step_size=cfg.attack_lr,
        steps=cfg.attack_steps,
        maximize=True,
        random_start=True,
        use_best=cfg.use_best,
        precision=cfg.precision,
        generator=generator,
    )
    model.train(was_training)
    return x_adv


def train_epoch(ddp, opt, batches, g, cfg: Config, env: Env, epoch: int, steps_per_epoch: int, steps_left):
    """One pass: PGD on each batch (the bare model, in eval mode), an SGD step on the result (`ddp`, the model
    or its DistributedDataParallel wrapper, in train mode). Returns the epoch's samples, loss and accuracy over
    all processes, and the number of optimizer steps taken (at most `steps_left` when that is not None)."""
    model = ddp.module if isinstance(ddp, DistributedDataParallel) else ddp
    ddp.train()
    seen, correct, loss_sum, t0 = 0, 0, 0.0, time.time()
    bar = progress_bar(env, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}")
    steps = 0
    for i, (x, y) in enumerate(batches):
        x = x.to(env.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(env.device, non_blocking=True)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, epoch + i / steps_per_epoch)
        x_adv = attack(model, x, y, cfg, g)
        with autocast_for(x, cfg.precision):
            logits = ddp(x_adv)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        seen += len(y)
        correct += (logits.argmax(1) == y).sum().item()
        loss_sum += loss.item() * len(y)
        if bar:
            bar.update()
            img_s = seen * env.world / (time.time() - t0)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", img_s=f"{img_s:.0f}")
        if steps_left is not None and steps >= steps_left:
            break
    if bar:
        bar.close()
    stats = torch.tensor([seen, correct, loss_sum], dtype=torch.float64)
    if env.world > 1:
        dist.all_reduce(stats)
    samples = int(stats[0])
    return {"samples": samples, "train_loss": float(stats[2]) / samples, "train_acc": float(stats[1]) / samples}, steps


def progress_bar(env: Env, total: int, desc: str):
    """A tqdm bar on rank 0 when stderr is a terminal, else None."""
    if not (env.master and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False)


# ---------------------------------------------------------------------------------------------- evaluation + checkpoint
def quick_eval(model, test: InMemory, cfg: Config, device) -> dict:
    """Clean and robust accuracy on the fixed eval slice: synth.evaluate.robust_accuracy, PGD with the run's
    eps and attack_steps in the evaluation convention (step 2.5*eps/steps from the clean image)."""
    model.eval()
    batches = ((x.to(device), y.to(device)) for x, y in test.batches(500))
    eps = cfg.eps if cfg.attack_steps > 0 else 0.0  # no attack steps: no robust accuracy to report
    res = robust_accuracy(model, batches, eps, max(cfg.attack_steps, 1), precision=cfg.precision)
    return {"eval_clean": res["clean"], "eval_adv": res["robust"]}


def atomic_save(obj, path: Path):
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill at any moment leaves either the old or the new file, never half of one


def save_epoch(out: Path, rec: dict, history, model, opt, cfg: Config, model_config: dict, device):
    """Append the epoch's record to log.jsonl and write checkpoint.pt (all that --resume needs)."""
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    atomic_save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": rec["epoch"],
            "history": history,
            "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
            "config": asdict(cfg),
            "model_config": model_config,
        },
        out / "checkpoint.pt",
    )


# ---------------------------------------------------------------------------------------------- main
def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    cfg = make_config(args)
    out = Path(args.out)
    env = setup(args)
    train, test, classes, n_train = load_data(args, cfg, env)
    model, opt, model_config = build_model(cfg, classes, env.device)
    start_epoch, history = 0, []
    if args.resume:
        cfg, start_epoch, history = resume(out / "checkpoint.pt", cfg, model, opt, env)
    ddp = model
    if env.world > 1:
        ddp = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    if env.master:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(dict(asdict(cfg), model=model_config), indent=2))
    env.log("config:", json.dumps(asdict(cfg)))

    # ------------------------------------------------------------------------------------------ epochs
    steps_per_epoch = math.ceil(n_train // env.world / cfg.batch_size)
    opt_steps = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)  # all of this epoch's randomness
        batches = epoch_batches(train, cfg, env, epoch, g, args.workers)
        t0 = time.time()
        steps_left = args.max_steps - opt_steps if args.max_steps else None
        train_stats, steps = train_epoch(ddp, opt, batches, g, cfg, env, epoch, steps_per_epoch, steps_left)
        opt_steps += steps
        # quick eval on a fixed slice of the test set: clean, and under PGD at the training eps
        ev = quick_eval(model, test, cfg, env.device)
        rec = {"epoch": epoch + 1, **train_stats, "lr": lr_at(cfg, epoch + 1), **ev}
        rec["seconds"] = round(time.time() - t0, 1)
        history.append(rec)
        env.log(json.dumps(rec))
        if env.master:
            save_epoch(out, rec, history, model, opt, cfg, model_config, env.device)
        if args.max_steps and opt_steps >= args.max_steps:
            break
    if env.world > 1:
        dist.destroy_process_group()
    return history


if __name__ == "__main__":
    main()
