"""Distillation runs side by side: dev accuracy against images seen (a PNG and a markdown table) and, with
--paint, what each student's input gradients paint on the project's own photos.

    python -m benchmarks.distill_report RUN [RUN ...] [--labels A B ...] [--out docs/distill_curve.png]
        [--teacher-clean 0.675] [--paint docs/distill_paint.png]

RUN is a training.distill run folder (its log.jsonl) or a warm folder (its state.json history). Each run is one
colour: clean top-1 a thick line, robust top-1 (L2 PGD-10 at the run's eps) a thin one; --teacher-clean draws the
teacher's clean top-1 on the same photos, dashed. --paint: four project photos, each pushed toward one class
(targeted L2 PGD at the model's size, eps 8, 40 steps: the pilots' check) by the teacher and by each run's student.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

import synth

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def history(run: Path) -> list[dict]:
    if (run / "log.jsonl").is_file():
        return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return json.loads((run / "state.json").read_text())["history"]


def plot(curves: dict[str, list[dict]], out: Path, teacher_clean: float | None = None, size=(760, 420)) -> None:
    w, h, pad = *size, 56
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    x_max = max(r["images_seen"] for rows in curves.values() for r in rows)
    px = lambda n: pad + (w - 2 * pad) * n / x_max
    py = lambda acc: h - pad - (h - 2 * pad) * acc
    d.rectangle([pad, pad, w - pad, h - pad], outline="black")
    for acc in (0, 0.25, 0.5, 0.75, 1.0):
        d.line([pad, py(acc), w - pad, py(acc)], fill=(225, 225, 225))
        d.text((8, py(acc) - 6), f"{acc:.0%}", fill="black")
    for n in range(0, x_max + 1, max(1, x_max // 4)):
        d.text((px(n) - 14, h - pad + 6), f"{n // 1000}k", fill="black")
    d.text((w // 2 - 60, h - 22), "training images seen", fill="black")
    if teacher_clean is not None:
        for x0 in range(pad, w - pad, 12):
            d.line([x0, py(teacher_clean), min(x0 + 6, w - pad), py(teacher_clean)], fill="grey")
        d.text((w - pad - 110, py(teacher_clean) - 14), "teacher, clean", fill="grey")
    for i, (label, rows) in enumerate(curves.items()):
        c = COLOURS[i % len(COLOURS)]
        for key, width in (("dev_clean", 3), ("dev_robust", 1)):
            pts = [(px(r["images_seen"]), py(r[key])) for r in rows]
            d.line(pts, fill=c, width=width) if len(pts) > 1 else None
            for x, y in pts:
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=c)
        d.text((pad + 8, pad + 6 + 14 * i), f"{label}: clean (thick), robust (thin)", fill=c)
    img.save(out)


PAINT = [
    ("photos/chelsea.jpg", "zebra"),
    ("photos/coffee.jpg", "goldfish"),
    ("horse2zebra/horse.jpg", "school bus"),
    ("photos/astronaut.jpg", "tabby"),
]


def student(run: Path):
    """A run's student: the warm folder's model, or the run checkpoint's weights in the teacher's architecture."""
    import torch

    from training import distill

    if (run / "model.safetensors").is_file():
        return synth.RobustModel.from_pretrained(run).eval()
    ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    _, model = distill.models(distill.Config(**ck["config"]))
    model.load_state_dict(ck["model"])
    return model.eval()


def paint(models: dict, out: Path, eps: float = 8.0, steps: int = 40, shown: int = 256) -> None:
    """Rows: a project photo (centre square at the models' size) and its target; columns: each model's result,
    drawn at `shown` px."""
    from benchmarks.figures import labelled

    examples = Path(__file__).resolve().parents[1] / "examples"
    size = next(iter(models.values())).input_size
    rows = []
    for name, target in PAINT:
        photo = synth.load_image(examples / name)
        side = min(photo.size)
        left, top = (photo.width - side) // 2, (photo.height - side) // 2
        photo = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
        outs = [
            synth.visualize(m, photo, target, frames=2, eps=eps, steps=steps, step_size=eps / 10)[-1]
            for m in models.values()
        ]
        big = [im.resize((shown, shown), Image.Resampling.BICUBIC) for im in (photo, *outs)]
        rows.append(labelled(big, [f"photo -> {target}", *models]))
    canvas = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        canvas.paste(r, (0, y))
        y += r.height
    canvas.save(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--labels", nargs="+", default=None)
    ap.add_argument("--teacher-clean", type=float, default=None, help="the teacher's clean top-1 (0..1)")
    ap.add_argument("--out", default="distill_curve.png")
    ap.add_argument("--paint", default=None, help="also the painting figure, to this file")
    ap.add_argument("--teacher", default="imagenet-mobilenetv2-standard", help="--paint: the teacher beside them")
    args = ap.parse_args(argv)
    labels = args.labels or [Path(r).name for r in args.runs]
    curves = {label: history(Path(r)) for label, r in zip(labels, args.runs)}
    plot(curves, Path(args.out), args.teacher_clean)
    if args.paint:
        from training import distill

        students = {label: student(Path(r)) for label, r in zip(labels, args.runs)}
        size = next(iter(students.values())).input_size
        teacher = distill.models(distill.Config(teacher=args.teacher, input_size=size))[1].eval()  # at their size
        models = {"teacher": teacher} | students
        paint(models, Path(args.paint))
    print("| run | images seen | eps | clean top-1 | robust top-1 |\n|---|---|---|---|---|")
    for label, rows in curves.items():
        for r in rows:
            print(f"| {label} | {r['images_seen']:,} | {r['eps']:.2f} | {r['dev_clean']:.1%} | {r['dev_robust']:.1%} |")
    return curves


if __name__ == "__main__":
    main()
