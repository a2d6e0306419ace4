"""Adversarial training, top to bottom (Madry et al.; the paper's appendix Tables 3-4).

    python -m training.train --recipe cifar10 --data DATA --out runs/c10 [--budget] [--resume]
    torchrun --nproc_per_node N -m training.train --recipe imagenet --data /imagenet --out runs/in

Each batch: PGD-L2 from a random start in the eps-ball maximises the loss (model in eval mode, the same
`synth.pgd` primitive the synthesis tasks use); the model takes an SGD step on those examples (train mode).
--eps 0 is ordinary training (the "standard twin"). A checkpoint is written atomically every epoch; the
learning rate is a pure function of progress and all randomness of epoch e comes from a generator seeded
with (seed, e), so --resume continues exactly.

--resume: the checkpoint is the truth. The run goes on with the checkpoint's config: --epochs N extends (or
shortens) it and --precision applies; any other config flag that differs from the checkpoint is ignored with
a warning. log.jsonl is rewritten from the checkpoint's history, and the checkpoint's sha256 is verified
(a damaged file is an error; one written before checksums were stored loads with a note). With --epochs the
lr schedule is that of an N-epoch run from the current epoch on: a step schedule keeps its stored milestones
(added epochs go on at the last lr); a one-cycle lr jumps from where it had decayed up to the N-epoch
curve's value there (a warm restart), so the result is not what an uninterrupted N-epoch run would give.
--max-steps: an epoch cut short is neither evaluated nor saved; the checkpoint keeps the last complete
epoch, and --resume redoes the cut epoch from its start (bit-exact with an uninterrupted run).

The file reads in order: the config and its recipes, the command line, then the sections of a run in the
order main() calls them (setup, data, model + optimizer, resume, one epoch, evaluation + checkpoint, the
epochs), and main() itself last.
"""

from __future__ import annotations

import argparse
import hashlib
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

from synth.metrics import robust_accuracy
from synth.models import DATASET_STATS, ModelLoadError, RobustModel, imagenet_classes, load_model
from synth.pgd import PRECISIONS, Settings, autocast_for, pgd
from training.data import DataError, InMemory, imagenet_indices, imagenet_transforms, open_split, read_wnid_names


# ---------------------------------------------------------------------------------------------- config
@dataclass
class Config:
    """A training run: the defaults are the cifar10 recipe; every field but the first two has a flag."""

    recipe: str = "cifar10"  # the RECIPES entry the run started from
    dataset: str = (
        "cifar10"  # folder layout and normalisation: cifar10, imagenet, tiny_imagenet, restricted_imagenet, a2b
    )
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
    init: str = ""  # start from this synth model (name or folder, same arch): all but its classifier
    precision: Literal[PRECISIONS] = "auto"  # auto: bf16 autocast where the device runs it fast
    hue: float = 0.0  # streamed images: ColorJitter's hue range (at most 0.5)
    grayscale: float = 0.0  # streamed images: the probability an image is made grey
    in_memory: bool = False  # 1: in memory (crop + flip); 0: streamed (resized crops, flip, jitter); unset: 1 to 64 px


def config_from_dict(d: dict) -> Config:
    """The config stored in a checkpoint (`asdict`); runs written before the rename call the recipe 'preset', and
    runs written before `in_memory` was stored get the rule of their time (inputs <= 64 px)."""
    d = dict(d)
    d.setdefault("in_memory", d.get("input_size", Config.input_size) <= 64)
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
    # 200 ImageNet classes at 64 px on a CPU session: CIFAR's eps 0.5 at 32 px scaled with the side, 2-step PGD
    Config(recipe="tiny_imagenet", dataset="tiny_imagenet", arch="resnet18_half", input_size=64, epochs=24,
           batch_size=128, lr=0.1, schedule="onecycle", eps=1.0, attack_steps=2, attack_lr=0.7, use_best=False),
    # the paper's domain model cut to a CPU session: fine-tuned from the 64 px ImageNet-class model at 128 px, eps 3
    # (the paper's 5 @ 224 px scaled with the side is 2.86; eps 1.5 translated zebras to horses half as often)
    Config(recipe="horse2zebra_cpu", dataset="a2b", arch="resnet18_half", input_size=128, epochs=60, batch_size=64,
           lr=0.02, schedule="onecycle", eps=3.0, attack_steps=3, attack_lr=2.0, use_best=False,
           init="tiny-imagenet-resnet18-half-l2-eps1"),
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
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (see above for flags)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers (streaming datasets)")
    p.add_argument("--limit-train", type=int, default=None, help="use only N training images (smoke tests)")
    p.add_argument("--eval-images", type=int, default=1000, help="test images for the per-epoch eval")
    p.add_argument(
        "--max-steps", type=int, default=None, help="stop after N optimizer steps in all (smoke tests; see above)"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="CUDA: deterministic kernels (bit-exact reruns and resumes; slower)",
    )
    args = p.parse_args(argv)
    if args.max_steps is not None and args.max_steps < 1:
        p.error("--max-steps must be at least 1")
    return args


def add_config_flags(p: argparse.ArgumentParser, config: type | None = None, fixed: tuple = FIXED):
    """One flag per field of `config` (Config unless given; its type, its choices, its comment as help), default
    None: keep the recipe's. The fields in `fixed` get none."""
    config = config or Config
    try:
        comments = dict(re.findall(r"^    (\w+): [^#\n]*#\s*(.*)$", inspect.getsource(config), re.MULTILINE))
    except OSError:  # no source (a frozen build): flags without help
        comments = {}
    types = get_type_hints(config)
    for f in fields(config):
        if f.name in fixed:
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
    if args.in_memory is None:  # thumbnails fit in memory; larger images are decoded as they are needed
        cfg.in_memory = cfg.input_size <= 64
    cfg.use_best, cfg.in_memory = bool(cfg.use_best), bool(cfg.in_memory)
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

    def warn(self, *a):
        if self.master:
            print(*a, file=sys.stderr, flush=True)


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
    in_memory = cfg.in_memory
    if in_memory and (cfg.hue or cfg.grayscale):
        sys.exit("error: --hue and --grayscale apply to streamed images; add --in-memory 0")
    if not 0 <= cfg.grayscale <= 1:
        sys.exit(f"error: --grayscale is a probability, got {cfg.grayscale}")
    try:
        if in_memory:
            train = InMemory.load(args.data, "train", size, kind, limit=args.limit_train)
        else:
            train = open_split(args.data, "train", imagenet_transforms(size, cfg.hue, cfg.grayscale)[0], kind)
        test = InMemory.load(args.data, "test", size, kind, limit=args.eval_images)
        classes = train.classes
        if cfg.dataset == "a2b":
            classes = next((names for ab, names in AB_NAMES.items() if cfg.recipe.startswith(ab)), classes)
        elif cfg.dataset == "tiny_imagenet":  # wnid folders -> the ImageNet models' readable names
            index = imagenet_indices(read_wnid_names(args.data))
            classes = [imagenet_classes()[index[w]] for w in classes]
    except (DataError, ValueError) as e:
        sys.exit(f"error: {e}")
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
    start = start_model(cfg) if cfg.init else None
    if start is not None:
        mean, std = start.mean.flatten().tolist(), start.std.flatten().tolist()
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
    model = RobustModel(**model_config)
    if start is not None:  # a new classifier for the new classes (`net.fc`: fc.*, or MobileNetV2's classifier.1.*)
        head = {id(p) for p in start.net.fc.parameters()}
        head = {k for k, p in start.net.named_parameters() if id(p) in head}
        model.net.load_state_dict({k: v for k, v in start.net.state_dict().items() if k not in head}, strict=False)
    model = model.to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return model, opt, model_config


def start_model(cfg: Config) -> RobustModel:
    """The model --init names, when its architecture is the run's; else a one-line exit."""
    try:
        start = load_model(cfg.init)
    except ModelLoadError as e:
        sys.exit(f"error: --init: {e}")
    if start.arch != cfg.arch:
        sys.exit(f"error: --init {cfg.init} is a {start.arch}, the run trains a {cfg.arch}")
    return start


# ---------------------------------------------------------------------------------------------- resume
CHECKPOINT_KEYS = {"model", "optimizer", "epoch", "history", "rng", "config", "model_config"}
HONOURED = ("epochs", "precision")  # config flags a resumed run takes from its command line


def checksum(payload: dict) -> str:
    """sha256 of a checkpoint's contents (keys, values, tensors' dtype, shape and bytes) rather than of its file,
    so the dict being saved and the dict torch.load returns give the same digest."""
    h = hashlib.sha256()

    def feed(obj):
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous().reshape(-1)
            h.update(f"tensor {t.dtype} {tuple(obj.shape)};".encode())
            h.update(t.view(torch.uint8).numpy())
        elif isinstance(obj, dict):
            for k in sorted(obj, key=repr):
                h.update(f"{k!r}:".encode())
                feed(obj[k])
        elif isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__} {len(obj)};".encode())
            for v in obj:
                feed(v)
        else:
            h.update(f"{obj!r};".encode())

    feed(payload)
    return "sha256:" + h.hexdigest()


def read_checkpoint(path: Path, note=None) -> dict:
    """checkpoint.pt on the CPU, its checksum verified. A missing, unreadable or damaged file exits with a
    one-line error: resuming from (or exporting) silently damaged weights would waste the run."""
    if not path.exists():
        sys.exit(f"error: no checkpoint at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, random bytes, a damaged pickle: torch raises many kinds
        why = (str(e).strip().splitlines() or [""])[0].split(". ")[0]  # torch's advice after it is for trusted files
        sys.exit(f"error: {path} is not a readable checkpoint: truncated or damaged ({type(e).__name__}: {why})")
    missing = CHECKPOINT_KEYS - set(ck) if isinstance(ck, dict) else CHECKPOINT_KEYS
    if missing:
        sys.exit(f"error: {path} is not a training checkpoint (no {', '.join(sorted(missing))})")
    stored = ck.pop("checksum", None)
    if stored is None:
        (note or (lambda m: print(m, file=sys.stderr)))(f"note: {path} has no checksum (an older run): not verified")
    elif stored != checksum(ck):
        sys.exit(f"error: {path} is damaged: its contents do not match the checksum stored with them")
    return ck


def resume_config(args, asked: Config, saved: Config, env: Env) -> Config:
    """The checkpoint's config, with --precision (the machine's) and --epochs when given (see the module's
    docstring for what that does to the lr schedule). Any other flag, --recipe or --budget value that differs
    from the checkpoint is ignored with a warning: changing the model, data or attack mid-run makes a run
    that is neither the old one nor the new one."""
    given = {k: f"--budget's {k}" for k in BUDGET} if args.budget else {}
    given |= {
        f.name: "--" + f.name.replace("_", "-") for f in fields(Config) if getattr(args, f.name, None) is not None
    }
    for k, flag in given.items():
        honoured = k in HONOURED and getattr(args, k) is not None
        if not honoured and getattr(asked, k) != getattr(saved, k):
            env.warn(
                f"warning: {flag} {getattr(asked, k)} ignored: --resume continues the checkpoint's run, "
                f"with {k} {getattr(saved, k)}"
            )
    cfg = replace(saved, precision=asked.precision, epochs=saved.epochs if args.epochs is None else asked.epochs)
    if cfg.epochs != saved.epochs:
        env.log(f"--epochs {cfg.epochs}: the run now ends after epoch {cfg.epochs} (was {saved.epochs})")
    return cfg


def restore(ck: dict, cfg: Config, model, opt, model_config: dict, env: Env) -> tuple[int, list]:
    """Weights, optimizer and RNG states from the checkpoint; the epochs done and their history."""
    if ck["model_config"].get("class_names") != model_config["class_names"]:
        sys.exit(f"error: the checkpoint's classes {ck['model_config'].get('class_names')} are not the data's")
    model.load_state_dict(ck["model"])  # load_state_dict copies the CPU tensors to the model's device
    opt.load_state_dict(ck["optimizer"])
    torch.set_rng_state(ck["rng"])
    if env.device.type == "cuda" and "cuda_rng" in ck:
        torch.cuda.set_rng_state(ck["cuda_rng"], env.device)
    done = " (nothing left to train)" if ck["epoch"] >= cfg.epochs else ""
    env.log(f"resumed at epoch {ck['epoch']} of {cfg.epochs}{done}")
    return ck["epoch"], ck["history"]


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
        Settings(cfg.eps, cfg.attack_lr, cfg.attack_steps),
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
    all processes (None when `steps_left`, if not None, ran out before the batches did: the epoch was cut
    short), and the number of optimizer steps taken."""
    model = ddp.module if isinstance(ddp, DistributedDataParallel) else ddp
    ddp.train()
    seen, correct, loss_sum, t0 = 0, 0, 0.0, time.time()
    bar = progress_bar(env, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}")
    steps, cut = 0, False
    for i, (x, y) in enumerate(batches):
        if steps_left is not None and steps >= steps_left:  # a batch is left: the epoch ends unfinished
            cut = True
            break
        x = x.to(env.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(env.device, non_blocking=True)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, epoch + i / steps_per_epoch)
        x_adv = attack(model, x, y, cfg, g)
        with autocast_for(x.device, cfg.precision):
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
    if bar:
        bar.close()
    if cut:
        return None, steps
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
    """Clean and robust accuracy on the fixed eval slice: synth.metrics.robust_accuracy, PGD with the run's
    eps and attack_steps in the evaluation convention (step 2.5*eps/steps from the clean image)."""
    model.eval()
    batches = ((x.to(device), y.to(device)) for x, y in test.batches(500))
    eps = cfg.eps if cfg.attack_steps > 0 else 0.0  # no attack steps: no robust accuracy to report
    res = robust_accuracy(model, batches, eps, max(cfg.attack_steps, 1), precision=cfg.precision)
    return {"eval_clean": res["clean"], "eval_adv": res["robust"]}


def atomic_save(obj, path: Path):
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename, or a power cut could leave an empty file behind it
    os.replace(tmp, path)  # a kill at any moment leaves either the old or the new file, never half of one


def save_epoch(out: Path, history, model, opt, cfg: Config, model_config: dict, device):
    """checkpoint.pt (all that --resume needs, and its checksum), then the epoch's line in log.jsonl: a kill
    between the two leaves the log an epoch short, and --resume rewrites the log from the checkpoint."""
    payload = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": history[-1]["epoch"],
        "history": history,
        "rng": torch.get_rng_state(),
        **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
        "config": asdict(cfg),
        "model_config": model_config,
    }
    atomic_save({**payload, "checksum": checksum(payload)}, out / "checkpoint.pt")
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(history[-1]) + "\n")


def write_log(out: Path, history: list):
    """log.jsonl anew, one line per epoch of `history` (the checkpoint's; none for a new run)."""
    tmp = out / "log.jsonl.tmp"
    tmp.write_text("".join(json.dumps(rec) + "\n" for rec in history))
    os.replace(tmp, out / "log.jsonl")


# ---------------------------------------------------------------------------------------------- epochs
def run_epochs(args, cfg: Config, env: Env, model, opt, data, model_config: dict, start_epoch: int, history: list):
    """Epochs start_epoch..cfg.epochs, each evaluated and checkpointed, until --max-steps optimizer steps in all."""
    train, test, n_train = data
    ddp = model
    if env.world > 1:
        ddp = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    steps_per_epoch = math.ceil(n_train // env.world / cfg.batch_size)
    opt_steps = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        if args.max_steps is not None and opt_steps >= args.max_steps:
            break
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)  # all of this epoch's randomness
        batches = epoch_batches(train, cfg, env, epoch, g, args.workers)
        t0 = time.time()
        steps_left = None if args.max_steps is None else args.max_steps - opt_steps
        train_stats, steps = train_epoch(ddp, opt, batches, g, cfg, env, epoch, steps_per_epoch, steps_left)
        opt_steps += steps
        if train_stats is None:  # saved as done, --resume would skip the rest of it
            kept = f"the checkpoint keeps epoch {epoch}" if epoch else "no checkpoint written"
            env.log(f"--max-steps {args.max_steps}: epoch {epoch + 1} stopped after {steps} steps, not saved ({kept})")
            break
        # quick eval on a fixed slice of the test set: clean, and under PGD at the training eps
        ev = quick_eval(model, test, cfg, env.device)
        rec = {"epoch": epoch + 1, **train_stats, "lr": lr_at(cfg, epoch + 1), **ev}
        rec["seconds"] = round(time.time() - t0, 1)
        history.append(rec)
        env.log(json.dumps(rec))
        if env.master:
            save_epoch(Path(args.out), history, model, opt, cfg, model_config, env.device)
    return history


# ---------------------------------------------------------------------------------------------- main
def main(argv=None) -> list[dict]:
    """Train; returns the history of the epochs completed and saved (an epoch cut short by --max-steps is not)."""
    args = parse_args(argv)
    cfg, out = make_config(args), Path(args.out)
    env = setup(args)
    ck = read_checkpoint(out / "checkpoint.pt", env.warn) if args.resume else None
    if ck:
        cfg = resume_config(args, cfg, config_from_dict(ck["config"]), env)
    train, test, classes, n_train = load_data(args, cfg, env)
    model, opt, model_config = build_model(cfg, classes, env.device)
    start_epoch, history = restore(ck, cfg, model, opt, model_config, env) if ck else (0, [])
    if env.master:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(dict(asdict(cfg), model=model_config), indent=2))
        write_log(out, history)  # the checkpoint is the truth: drops the lines a kill left beyond it
    env.log("config:", json.dumps(asdict(cfg)))
    history = run_epochs(args, cfg, env, model, opt, (train, test, n_train), model_config, start_epoch, history)
    if env.world > 1:
        dist.destroy_process_group()
    return history


if __name__ == "__main__":
    main()
