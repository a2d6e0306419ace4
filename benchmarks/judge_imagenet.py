"""ImageNet-class models judged by a model that never synthesised: generation, translation and inpainting.

    python -m benchmarks.judge_imagenet PHOTOS --wnids WNIDS.txt --judge JUDGE.tflite --models M [M ...]
        [--tasks generate translate inpaint] [--classes common|every10] [--limit N] [--json out.json]

The judge is the TF-slim MobileNetV2 (int8 TFLite, `pip install ai-edge-litert`; benchmarks only): trained by
others, never used here to train or synthesise. Its output k+1 is ImageNet class k (0 is "background"). Each
model runs its default ("ours") settings; a 1000-class model loaded from a folder gets the ImageNet seed bank that
every registered imagenet-* model has.

- generate: one sample per class, seed 0; the judge sees it resized whole to 224 px; the figure is how often its
  top-1 is the class.
- translate: each dev photo (`<wnid>_<name>.jpg`, PHOTOS) of a class the model knows, pushed toward the class half
  the model's class list away; the judge sees the result as a photo (short side 256, centre 224); the figures:
  how often its top-1 is the target, and the mean absolute change in 8-bit levels.
- inpaint: a central square hole a fifth of the photo's short side, filled with the model's own prediction as the
  label; colour shift: the distance (8-bit levels, RGB) between the fill's mean colour and the mean colour of the
  ring around it (as wide as half the hole); grid: the peak over the median of the fill's Laplacian magnitude
  spectrum (Hann window, DC row and column left out): a regular pattern adds up at its frequency. The original
  photo's own figures in the same places are printed beside them.

--classes common (default) keeps only the classes every listed model knows, so a 200-class and a 1000-class model
are judged on the same classes and photos; every10: classes 5, 15, ..., 995 (1000-class models only). Photos are
for measuring only: they choose between models, they never train anything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import synth
from synth.images import list_images, load_image, to_tensor
from synth.models import imagenet_classes, imagenet_seed_bank
from training.data import centre_crop


class Judge:
    def __init__(self, path: str):
        from ai_edge_litert.interpreter import Interpreter

        self.net = Interpreter(path, num_threads=2)
        self.net.allocate_tensors()
        self.inp, self.out = self.net.get_input_details()[0]["index"], self.net.get_output_details()[0]["index"]

    def top1(self, x: torch.Tensor) -> int:
        """ImageNet index of the judge's top-1 for a (1,3,224,224) image in [0,1] (-1: background)."""
        u8 = (x[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()[None]
        self.net.set_tensor(self.inp, u8)
        self.net.invoke()
        return int(np.argmax(self.net.get_tensor(self.out)[0])) - 1

    def of_sample(self, im: Image.Image) -> int:
        return self.top1(F.interpolate(to_tensor(im), size=(224, 224), mode="bicubic", antialias=True))

    def of_photo(self, im: Image.Image) -> int:
        return self.top1(centre_crop(to_tensor(im), 224))


def imagenet_index(model) -> list[int]:
    """The ImageNet index of each of the model's classes (by name)."""
    index = {n: i for i, n in enumerate(imagenet_classes())}
    return [index[n] for n in model.class_names]


def name_of(model) -> dict[int, str]:
    """ImageNet index -> the model's name for that class."""
    return dict(zip(imagenet_index(model), model.class_names))


def generate(model, judge, classes: list[int]) -> dict:
    names = list(map(name_of(model).get, classes))
    samples = []
    for i in range(0, len(names), 50):  # 50 samples a batch
        samples += synth.generate(model, names[i : i + 50], n=len(names[i : i + 50]))
    hits = [judge.of_sample(s) == c for s, c in zip(samples, classes)]
    return {"classes": len(classes), "judged_as_class": float(np.mean(hits))}


def translate(model, judge, photos: list[Path], labels: list[int], known: list[int]) -> dict:
    hits, change, names = [], [], name_of(model)
    for f, y in zip(photos, labels):
        target = known[(known.index(y) + len(known) // 2) % len(known)]
        im = load_image(f)
        out = synth.translate(model, im, names[target])
        hits.append(judge.of_photo(out) == target)
        change.append(float((to_tensor(out) - to_tensor(im)).abs().mean() * 255))
    return {"photos": len(photos), "judged_as_target": float(np.mean(hits)), "mean_change": float(np.mean(change))}


def hole_and_ring(h: int, w: int) -> tuple[tuple[slice, slice], np.ndarray]:
    side = min(h, w) // 5
    t, lf = (h - side) // 2, (w - side) // 2
    ring = np.zeros((h, w), bool)
    pad = side // 2
    ring[max(t - pad, 0) : t + side + pad, max(lf - pad, 0) : lf + side + pad] = True
    ring[t : t + side, lf : lf + side] = False
    return (slice(t, t + side), slice(lf, lf + side)), ring


def colour_shift(x: np.ndarray, hole, ring) -> float:
    return float(np.linalg.norm(x[hole].reshape(-1, 3).mean(0) - x[ring].mean(0)))


def grid_peak(fill: np.ndarray) -> float:
    grey = torch.from_numpy(fill.mean(-1))[None, None].float()
    lap = F.conv2d(grey, torch.tensor([[[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]], dtype=torch.float32))[0, 0]
    n = lap.shape[0]
    spectrum = torch.fft.fft2(lap * torch.outer(torch.hann_window(n), torch.hann_window(n))).abs()
    spectrum[0, :] = spectrum[:, 0] = float("nan")
    values = spectrum[~spectrum.isnan()]
    return float(values.max() / values.median())


def inpaint(model, photos: list[Path]) -> dict:
    rows = {"fill": [], "original": []}
    for f in photos:
        im = load_image(f).convert("RGB")
        hole, ring = hole_and_ring(im.height, im.width)
        mask = np.zeros((im.height, im.width), np.uint8)
        mask[hole] = 255
        out = np.asarray(synth.inpaint(model, im, Image.fromarray(mask)), np.float64)
        for key, x in (("fill", out), ("original", np.asarray(im, np.float64))):
            rows[key].append((colour_shift(x, hole, ring), grid_peak(x[hole])))
    return {
        f"{key}_{name}": float(np.mean([r[i] for r in v]))
        for key, v in rows.items()
        for i, name in enumerate(("colour_shift", "grid_peak"))
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos")
    ap.add_argument("--wnids", required=True)
    ap.add_argument("--judge", required=True, help="the TF-slim MobileNetV2 .tflite")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--tasks", nargs="+", default=["generate", "translate", "inpaint"])
    ap.add_argument("--classes", choices=["common", "every10"], default="common")
    ap.add_argument("--limit", type=int, default=None, help="the first N photos by file name")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    judge = Judge(args.judge)
    models = {name: synth.load_model(name) for name in args.models}
    for m in models.values():  # a 1000-class model from a folder starts from the seeds every imagenet-* name gets
        if m.seed_bank is None and len(m.class_names) == 1000:
            m.seed_bank = imagenet_seed_bank()
    known = sorted(set.intersection(*(set(imagenet_index(m)) for m in models.values())))
    classes = known if args.classes == "common" else [c for c in range(5, 1000, 10) if c in known]
    order = {w: i for i, w in enumerate(Path(args.wnids).read_text().split())}
    files = list_images(args.photos)[: args.limit]
    labels = [order[f.name.split("_", 1)[0]] for f in files]
    ours = [(f, y) for f, y in zip(files, labels) if y in known]
    rows = {}
    for name, model in models.items():
        row = rows[name] = {}
        with torch.inference_mode(False):
            if "generate" in args.tasks:
                row["generate"] = generate(model, judge, classes)
            if "translate" in args.tasks:
                row["translate"] = translate(model, judge, [f for f, _ in ours], [y for _, y in ours], known)
            if "inpaint" in args.tasks:
                row["inpaint"] = inpaint(model, files)
        print(name, json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
