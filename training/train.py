"""Adversarial training, top to bottom (Madry et al.; the paper's appendix Tables 3-4).

    python -m training.train --preset cifar10 --data DATA --out runs/c10 [--budget] [--resume]
    torchrun --nproc_per_node N -m training.train --preset imagenet --data /imagenet --out runs/in

Each batch: PGD-L2 from a random start in the eps-ball maximises the loss (model in eval mode, the same
`synth.pgd` primitive the synthesis tasks use); the model takes an SGD step on those examples (train mode).
--eps 0 is ordinary training (the "standard twin"). A checkpoint is written atomically every epoch; the
learning rate is a pure function of progress and all randomness of epoch e comes from a generator seeded
with (seed, e), so --resume continues exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from synth.models import DATASET_STATS, RobustModel
from synth.pgd import autocast_for, pgd
from training.data import DataError, InMemory, imagenet_transforms, open_split

# ---------------------------------------------------------------------------------------------- presets
PRESETS = {  # the paper's appendix: SGD momentum 0.9, weight decay 5e-4, data augmentation
    "cifar10": dict(
        arch="cifar_resnet56x2",
        epochs=350,
        lr=0.01,
        batch_size=256,
        milestones=[150, 250],
        eps=0.5,
        attack_steps=7,
        attack_lr=0.1,
        input_size=32,
        dataset="cifar10",
    ),
    "restricted_imagenet": dict(
        arch="resnet50",
        epochs=110,
        lr=0.1,
        batch_size=128,
        milestones=[30, 60],
        eps=3.5,
        attack_steps=7,
        attack_lr=0.1,
        input_size=224,
        dataset="restricted_imagenet",
    ),
    "imagenet": dict(
        arch="resnet50",
        epochs=110,
        lr=0.1,
        batch_size=256,
        milestones=[100],
        eps=3.0,
        attack_steps=7,
        attack_lr=0.5,
        input_size=224,
        dataset="imagenet",
    ),
}
for _name in ("horse2zebra", "apple2orange", "summer2winter"):
    PRESETS[_name] = dict(
        arch="resnet50",
        epochs=350,
        lr=0.01,
        batch_size=64,
        milestones=[50, 100],
        eps=5.0,
        attack_steps=7,
        attack_lr=0.9,
        input_size=224,
        dataset="a2b",
    )
AB_NAMES = {
    "horse2zebra": ["horse", "zebra"],
    "apple2orange": ["apple", "orange"],
    "summer2winter": ["summer", "winter"],
}
# --budget: what fits a 2-core CPU in about 80 minutes for CIFAR-10 (fewer epochs, 2 attack steps with a
# proportionally larger step, a ResNet-20, a one-cycle learning rate).
BUDGET = dict(arch="cifar_resnet20", epochs=40, attack_steps=2, lr=0.2, schedule="onecycle", use_best=False)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m training.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=sorted(PRESETS), required=True)
    p.add_argument("--data", required=True, help="ImageFolder root with train/ and test/ (or val/), or A/B folders")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--budget", action="store_true", help=f"CPU budget: {BUDGET}")
    for k, t in [
        ("arch", str),
        ("epochs", int),
        ("lr", float),
        ("batch_size", int),
        ("eps", float),
        ("attack_steps", int),
        ("attack_lr", float),
        ("input_size", int),
        ("weight_decay", float),
    ]:
        p.add_argument("--" + k.replace("_", "-"), type=t, default=None)
    p.add_argument("--milestones", type=int, nargs="*", default=None, help="epochs where lr drops x0.1")
    p.add_argument("--schedule", choices=["step", "onecycle"], default=None)
    p.add_argument("--use-best", type=int, choices=[0, 1], default=None, help="attack keeps its best iterate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers (streaming datasets)")
    p.add_argument("--in-memory", type=int, choices=[0, 1], default=None, help="default: 1 for inputs <= 64 px")
    p.add_argument("--limit-train", type=int, default=None, help="use only N training images (smoke tests)")
    p.add_argument("--eval-images", type=int, default=1000, help="test images for the per-epoch eval")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (smoke tests)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="CUDA: deterministic kernels (bit-exact reruns and resumes; slower)",
    )
    return p.parse_args(argv)


def make_config(args) -> dict:
    cfg = dict(PRESETS[args.preset], weight_decay=5e-4, schedule="step", use_best=True)
    preset_steps, preset_attack_lr = cfg["attack_steps"], cfg["attack_lr"]
    if args.budget:
        cfg.update(BUDGET)
    for k in (
        "arch",
        "epochs",
        "lr",
        "batch_size",
        "eps",
        "attack_steps",
        "attack_lr",
        "input_size",
        "weight_decay",
        "milestones",
        "schedule",
        "use_best",
    ):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    if args.attack_lr is None:  # fewer steps -> a proportionally larger step (same total path length)
        cfg["attack_lr"] = preset_attack_lr * preset_steps / max(cfg["attack_steps"], 1)
    if args.milestones is None and cfg["epochs"] != PRESETS[args.preset]["epochs"]:
        scale = cfg["epochs"] / PRESETS[args.preset]["epochs"]
        cfg["milestones"] = [max(1, round(m * scale)) for m in PRESETS[args.preset]["milestones"]]
    cfg.update(preset=args.preset, seed=args.seed, use_best=bool(cfg["use_best"]))
    return cfg


def lr_at(cfg: dict, progress: float) -> float:
    """Learning rate at `progress` epochs (fractional)."""
    if cfg["schedule"] == "onecycle":  # linear warm-up over 15%, then linear decay to 0
        t = progress / cfg["epochs"]
        return cfg["lr"] * (t / 0.15 if t < 0.15 else max(0.0, (1 - t) / 0.85))
    return cfg["lr"] * 0.1 ** sum(progress >= m for m in cfg["milestones"])


def attack(model, x, y, cfg, generator=None):
    """Untargeted L2 PGD from a random start (eval mode); returns x itself when eps == 0."""
    if cfg["eps"] <= 0 or cfg["attack_steps"] <= 0:
        return x
    was_training = model.training
    model.eval()
    x_adv = pgd(
        lambda z: F.cross_entropy(model.logits(z).float(), y, reduction="none"),
        x,
        eps=cfg["eps"],
        step_size=cfg["attack_lr"],
        steps=cfg["attack_steps"],
        maximize=True,
        random_start=True,
        use_best=cfg["use_best"],
        precision=cfg["precision"],
        generator=generator,
    )
    model.train(was_training)
    return x_adv


def atomic_save(obj, path: Path):
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill at any moment leaves either the old or the new file, never half of one


# ---------------------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    cfg = make_config(args)
    cfg["precision"] = args.precision
    out = Path(args.out)

    # distributed (torchrun sets these); rank 0 logs and writes checkpoints
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    device = torch.device(args.device)
    if args.deterministic:  # CPU runs are deterministic already; cuDNN/cuBLAS need to be told
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    master = rank == 0
    log = (lambda *a: print(*a, flush=True)) if master else (lambda *a: None)

    # data
    size = cfg["input_size"]
    kind = {"restricted_imagenet": "restricted_imagenet", "a2b": "ab"}.get(cfg["dataset"], "folder")
    in_memory = bool(args.in_memory if args.in_memory is not None else size <= 64)
    try:
        if in_memory:
            train = InMemory.load(args.data, "train", size, kind, limit=args.limit_train)
            test = InMemory.load(args.data, "test", size, kind, limit=args.eval_images)
            classes = train.classes
        else:
            tf_train, tf_test = imagenet_transforms(size)
            train = open_split(args.data, "train", tf_train, kind)
            test = InMemory.load(args.data, "test", size, kind, limit=args.eval_images)
            classes = train.classes
    except DataError as e:
        sys.exit(f"error: {e}")
    if cfg["dataset"] == "a2b":
        classes = AB_NAMES.get(args.preset, classes)
    n_train = len(train) if args.limit_train is None else min(len(train), args.limit_train)
    log(
        f"data: {n_train} train / {len(test)} eval images, {len(classes)} classes, {size}px, "
        f"{'in memory' if in_memory else 'streaming'}"
    )

    # model: the synth wrapper (normalisation inside), so what we train is what synth loads
    mean, std = DATASET_STATS.get(cfg["dataset"], DATASET_STATS["a2b"])
    model_config = dict(
        arch=cfg["arch"],
        num_classes=len(classes),
        class_names=list(classes),
        mean=list(mean),
        std=list(std),
        input_size=size,
        eps=cfg["eps"],
        norm="l2",
        dataset=cfg["dataset"],
    )
    torch.manual_seed(cfg["seed"])
    model = RobustModel(**model_config).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"])
    start_epoch, history = 0, []
    ckpt_path = out / "checkpoint.pt"
    if args.resume:
        if not ckpt_path.exists():
            sys.exit(f"error: --resume but no checkpoint at {ckpt_path}")
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ck["config"]["arch"] != cfg["arch"]:
            sys.exit(f"error: checkpoint is a {ck['config']['arch']}, this run asks for {cfg['arch']}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, history = ck["epoch"], ck["history"]
        torch.set_rng_state(ck["rng"].cpu())  # map_location moved it to the device; the CPU generator wants it back
        if device.type == "cuda" and "cuda_rng" in ck:
            torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), device)
        cfg = dict(ck["config"], precision=args.precision)
        log(f"resumed from {ckpt_path} at epoch {start_epoch}")
    raw = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if master:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(dict(cfg, model=model_config), indent=2))
    log("config:", json.dumps(cfg))

    steps_per_epoch = math.ceil(n_train // world / cfg["batch_size"])
    opt_steps = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg["epochs"]):
        g = torch.Generator().manual_seed(cfg["seed"] * 100003 + epoch)  # all of this epoch's randomness
        if in_memory:
            batches = train.batches(cfg["batch_size"], g, augment=True, rank=rank, world=world)
        else:
            sampler = (
                torch.utils.data.DistributedSampler(train, world, rank, seed=cfg["seed"])
                if world > 1
                else torch.utils.data.RandomSampler(train, generator=g)
            )
            if world > 1:
                sampler.set_epoch(epoch)
            batches = torch.utils.data.DataLoader(
                train, cfg["batch_size"], sampler=sampler, num_workers=args.workers, pin_memory=device.type == "cuda"
            )
        model.train()
        seen, correct, loss_sum, t0 = 0, 0, 0.0, time.time()
        bar = None
        if master and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg['epochs']}", leave=False)
        for i, (x, y) in enumerate(batches):
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, epoch + i / steps_per_epoch)
            x_adv = attack(raw, x, y, cfg, g)
            with autocast_for(x, args.precision):
                logits = model(x_adv)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            opt_steps += 1
            seen += len(y)
            correct += (logits.argmax(1) == y).sum().item()
            loss_sum += loss.item() * len(y)
            if bar:
                bar.update()
                bar.set_postfix(
                    loss=f"{loss_sum / seen:.3f}",
                    acc=f"{correct / seen:.3f}",
                    img_s=f"{seen * world / (time.time() - t0):.0f}",
                )
            if args.max_steps and opt_steps >= args.max_steps:
                break
        if bar:
            bar.close()
        stats = torch.tensor([seen, correct, loss_sum], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(stats)
        seen_all = int(stats[0])
        # quick eval on a fixed slice of the test set: clean, and under the training attack
        clean, robust = evaluate_quick(raw, test, cfg, device)
        rec = dict(
            epoch=epoch + 1,
            samples=seen_all,
            train_loss=float(stats[2]) / seen_all,
            train_acc=float(stats[1]) / seen_all,
            lr=lr_at(cfg, epoch + 1),
            eval_clean=clean,
            eval_adv=robust,
            seconds=round(time.time() - t0, 1),
        )
        history.append(rec)
        log(json.dumps(rec))
        if master:
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            atomic_save(
                dict(
                    model=raw.state_dict(),
                    optimizer=opt.state_dict(),
                    epoch=epoch + 1,
                    history=history,
                    rng=torch.get_rng_state(),
                    **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                    config=cfg,
                    model_config=model_config,
                ),
                ckpt_path,
            )
        if args.max_steps and opt_steps >= args.max_steps:
            break
    if world > 1:
        dist.destroy_process_group()
    return history


@torch.no_grad()
def _clean_correct(model, x, y, precision):
    with autocast_for(x, precision):
        return (model.logits(x).argmax(1) == y).sum().item()


def evaluate_quick(model, test: InMemory, cfg, device, batch_size=500):
    model.eval()
    clean = robust = n = 0
    for x, y in test.batches(batch_size):
        x, y = x.to(device), y.to(device)
        clean += _clean_correct(model, x, y, cfg["precision"])
        if cfg["eps"] > 0:
            x_adv = attack(model, x, y, dict(cfg, use_best=False))
            robust += _clean_correct(model, x_adv, y, cfg["precision"])
        n += len(y)
    return clean / n, (robust / n if cfg["eps"] > 0 else None)


if __name__ == "__main__":
    main()
