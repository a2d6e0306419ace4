"""PGD speed on this machine: ms per image-step (forward + input gradient) for a ResNet-50 at 224x224.

    python -m benchmarks.bench_pgd [--arch resnet50] [--size 224] [--batches 1 8] [--device cpu|cuda]
    python -m benchmarks.bench_pgd --against resnet50 --arch mobilenet_v2 --sizes 128 224


Columns: the naive path (fp32, parameters requiring grad, NCHW); bf16 autocast (where the device supports it) +
channels_last + no parameter gradients; + BatchNorm folded into the convolutions; + the weights stored in bf16
and, on a CPU, pre-packed for oneDNN (synth's path: `RobustModel.for_synthesis(torch.bfloat16)`). Each figure
is the best of --repeats timed runs of --steps steps (this VM's timings vary by 10-20% run to run).
Random weights: speed does not depend on them.
Also checks that bf16 does not change results: final class loss of a 10-step PGD run, fp32 vs bf16.
--against ARCH instead prints synth's path only, --arch beside ARCH at each of --sizes and --batches, and the ratio.
"""

import argparse
import time

import torch
import torch.nn.functional as F

from synth.models import RobustModel
from synth.pgd import Settings, pgd, uses_bf16


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timings(run, device, repeats) -> list[float]:
    """Seconds of `repeats` calls of run(), sorted (the first is the best)."""
    out = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        run()
        sync(device)
        out.append(time.perf_counter() - t)
    return sorted(out)


def time_steps(model, x, y, steps, precision, repeats):
    loss = lambda z: F.cross_entropy(model.logits(z).float(), y, reduction="none")  # noqa: E731
    pgd(loss, x, Settings(10.0, 1.0, 1), precision=precision)  # warm-up
    run = lambda: pgd(loss, x, Settings(10.0, 1.0, steps), precision=precision)  # noqa: E731
    return timings(run, x.device, repeats)[0] * 1000 / steps / len(x)


def profile(model, b, size, dev, steps=3):
    """The torch profiler's top operators for `steps` PGD steps at batch `b`, in ms per image-step."""
    from torch.profiler import profile as torch_profile

    x = torch.rand(b, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (b,), device=dev)
    loss = lambda z: F.cross_entropy(model.logits(z).float(), y, reduction="none")  # noqa: E731
    pgd(loss, x, Settings(10.0, 1.0, 1))
    with torch_profile() as prof:
        pgd(loss, x, Settings(10.0, 1.0, steps))
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    per = 1000 * steps * b
    print(f"\nprofile, batch {b}: {sum(e.self_cpu_time_total for e in events) / per:.1f} ms per image-step (CPU time)")
    for e in events[:8]:
        print(f"  {e.key:50s} {e.self_cpu_time_total / per:6.2f}")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--profile", action="store_true", help="also print where a step of synth's path goes")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--against", default=None, help="compare --arch with this architecture on synth's path")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="with --against: the input sizes")
    return ap.parse_args()


def synth_path(arch: str, size: int, dev) -> RobustModel:
    """A random-weight model as synth's tasks run it (BatchNorm folded; bf16 and pre-packed where that pays)."""
    model = RobustModel(arch, 1000, input_size=size).eval().to(dev)
    model.requires_grad_(False).to(memory_format=torch.channels_last)
    return model.for_synthesis(torch.bfloat16 if uses_bf16(dev) else torch.float32)


def against(args, dev):
    """ms per image-step of synth's path, --arch and --against side by side, and their ratio."""
    print(f"synth's path, bf16: {uses_bf16(dev)}, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(f"| size | batch | {args.arch} (ms/img-step) | {args.against} (ms/img-step) | ratio |")
    print("|---|---|---|---|---|")
    for size in args.sizes or [args.size]:
        models = [synth_path(a, size, dev) for a in (args.arch, args.against)]
        for b in args.batches:
            x = torch.rand(b, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
            y = torch.randint(0, 1000, (b,), device=dev)
            t = [time_steps(m, x, y, args.steps, "auto", args.repeats) for m in models]
            print(f"| {size} | {b} | {t[0]:.1f} | {t[1]:.1f} | {t[0] / t[1]:.2f} |", flush=True)


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    if args.against:
        return against(args, dev)
    naive = RobustModel(args.arch, 1000, input_size=args.size).eval().to(dev)
    fast = RobustModel(args.arch, 1000, input_size=args.size).eval().to(dev)
    fast.load_state_dict(naive.state_dict())
    fast.requires_grad_(False).to(memory_format=torch.channels_last)
    bf16 = uses_bf16(dev)
    folded = fast.for_synthesis()
    ours = fast.for_synthesis(torch.bfloat16 if bf16 else torch.float32)  # what synth's tasks run on
    where = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"
    )
    print(f"{args.arch} {args.size}x{args.size}, {where}, torch {torch.__version__}, bf16: {bf16}\n")
    print(
        "| batch | fp32 naive (ms/img-step) | bf16 + channels_last | + BatchNorm folded | + bf16 weights, pre-packed (synth) | speed-up |"
    )
    print("|---|---|---|---|---|---|")
    for b in args.batches:
        x = torch.rand(b, 3, args.size, args.size, device=dev)
        y = torch.randint(0, 1000, (b,), device=dev)
        xc = x.contiguous(memory_format=torch.channels_last)
        t0 = time_steps(naive, x, y, args.steps, "fp32", args.repeats)
        t1 = time_steps(fast, xc, y, args.steps, "auto", args.repeats)
        t2 = time_steps(folded, xc, y, args.steps, "auto", args.repeats)
        t3 = time_steps(ours, xc, y, args.steps, "auto", args.repeats)
        print(f"| {b} | {t0:.1f} | {t1:.1f} | {t2:.1f} | {t3:.1f} | {t0 / t3:.2f}x |", flush=True)
    x = torch.rand(1, 3, args.size, args.size, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.tensor([1], device=dev)
    loss = lambda z: F.cross_entropy(ours.logits(z).float(), y, reduction="none")  # noqa: E731
    # a user-facing figure: the median too, not only the best
    runs = timings(lambda: pgd(loss, x, Settings(40.0, 1.0, 60)), dev, args.repeats)
    print(
        f"\n60-step generation, one {args.size}x{args.size} image (synth's path): best {runs[0]:.2f} s, "
        f"median {runs[len(runs) // 2]:.2f} s of {len(runs)}"
    )
    if args.profile:
        profile(ours, args.batches[-1], args.size, dev)
    bf16_agreement(fast, args.size, dev)


def bf16_agreement(fast, size: int, dev):
    """bf16 vs fp32: the same 10-step run, final losses compared."""
    x = torch.rand(4, 3, size, size, device=dev)
    y = torch.randint(0, 1000, (4,), device=dev)
    loss = lambda z: F.cross_entropy(fast.logits(z).float(), y, reduction="none")  # noqa: E731
    with torch.no_grad():
        l0 = loss(x)
    a = pgd(loss, x, Settings(10.0, 1.0, 10), precision="fp32")
    b = pgd(loss, x, Settings(10.0, 1.0, 10), precision="bf16")
    with torch.no_grad():
        la, lb = loss(a), loss(b)
    print(
        f"10-step PGD final loss (start {l0.mean():.3f}): fp32 {la.mean():.4f}, bf16 {lb.mean():.4f}, "
        f"max |diff| {(la - lb).abs().max():.4f}; max pixel diff {(a - b).abs().max():.4f}"
    )


if __name__ == "__main__":
    main()
