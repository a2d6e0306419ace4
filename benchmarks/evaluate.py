"""How good is it? The paper's measurements, on a test set you give, printed as tables and written as JSON.

    python -m benchmarks.evaluate {generation,superres,inpainting,translation,robustness,all} [...] --data PATH [--model M]

PATH is an ImageFolder (class folders named like the model's classes, or by WordNet id with a classes.tsv as in
Tiny ImageNet; PATH/test or PATH/val is used when it exists). Every row runs the public task functions
(`synth.generate`, `synth.super_resolve`, `synth.inpaint`) under a preset - 'ours' (the default) and 'paper' (the
authors' method) - next to classical baselines. Judged by an *independent* classifier: the model's standard
(non-robust) twin, never the model that synthesised.

- generation: n samples per class; agreement of the judge with the requested class, an Inception-style score
  and a Frechet distance on the judge's penultimate features against held-out test images; real test images
  as the reference row. `--inception` adds the true Inception-v3 IS/FID (torchvision weights, downloaded).
- superres: area-downsample by 4 (and 8 where the size allows), restore; PSNR against the original, and how
  often the judge recognises the true class.
- inpainting: one random square patch (~10% of the image) per image; PSNR inside it, the judge's feature
  distance to the original, mean change outside the patch (8-bit levels).
- translation: each test image pushed toward the next class (the other domain of a horse/zebra model); how often
  the judge calls the result that class, the mean absolute change, seconds per image.
- robustness: clean and L2-PGD accuracy at the model's eps.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from synth.images import list_images, load_image, resize, to_pil, to_tensor
from synth.metrics import PSNR_CAP, psnr, robust_accuracy  # noqa: F401 - PSNR_CAP: part of this harness's API
from synth.models import ModelLoadError, load_model, standard_twin, wordnet_names
from synth.starts import downsample, mean_fill, smooth_fill, upsample
from synth.tasks import generate, inpaint, super_resolve, translate


def frechet_distance(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N,D): |mu1-mu2|^2 +
    tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), in float64 via symmetric eigendecompositions (no scipy)."""
    a, b = f1.double(), f2.double()
    mu = a.mean(0) - b.mean(0)
    s1, s2 = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    w, v = torch.linalg.eigh(s1)
    r1 = (v * w.clamp_min(0).sqrt()) @ v.T
    cross = torch.linalg.eigvalsh(r1 @ s2 @ r1).clamp_min(0).sqrt().sum()
    return float(mu @ mu + s1.trace() + s2.trace() - 2 * cross)


def inception_score(probs: torch.Tensor) -> float:
    """exp E_x KL(p(y|x) || p(y)) of class probabilities (N,K): 1 for uninformative, K for confident and
    uniformly spread predictions."""
    p = probs.double().clamp_min(1e-12)
    py = p.mean(0, keepdim=True)
    return float((p * (p.log() - py.log())).sum(1).mean().exp())


@torch.no_grad()
def judge_outputs(judge, x: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """The judge's penultimate features and class probabilities for images (N,3,H,W) in [0,1]."""
    feats, probs = [], []
    for i in range(0, len(x), batch_size):
        f = judge.features(x[i : i + batch_size]).float()
        feats.append(f)
        probs.append(judge.net.fc(f).float().softmax(1))
    return torch.cat(feats), torch.cat(probs)


def load_inception():
    """torchvision's ImageNet Inception-v3 (downloaded to the torch hub cache on first use)."""
    from torchvision.models import Inception_V3_Weights, inception_v3

    return inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1)


def inception_metrics(images: torch.Tensor, reference: torch.Tensor, net=None) -> dict:
    """The paper's Table 1 metrics with torchvision's Inception-v3 (ImageNet weights; downloaded when `net` is
    None): Inception Score of `images` and FID against `reference`, both (N,3,H,W) in [0,1]."""
    net = (net or load_inception()).eval()
    pooled = {}
    hook = net.avgpool.register_forward_hook(lambda m, i, o: pooled.__setitem__("f", o.flatten(1)))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def run(x):
        fs, ps = [], []
        with torch.no_grad():
            for i in range(0, len(x), 50):
                z = F.interpolate(x[i : i + 50].float(), size=(299, 299), mode="bilinear", align_corners=False)
                ps.append(net((z - mean) / std).softmax(1))
                fs.append(pooled["f"])
        return torch.cat(fs), torch.cat(ps)

    try:
        f_img, p_img = run(images)
        f_ref, _ = run(reference)
    finally:
        hook.remove()
    return {"inception_score": inception_score(p_img), "fid": frechet_distance(f_img, f_ref)}


# --------------------------------------------------------------------------------------------- data
def load_test_set(root, model, per_class: int | None = None, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N,3,s,s) at the model's size and labels (N,) from an ImageFolder: files `offset` ..
    `offset + per_class` (sorted by name) of every class folder, classes matched to the model by name (or by
    wnid, see `_class_of`). A two-domain folder (testA/, testB/, as horse2zebra) gives classes 0 and 1."""
    xs, ys = [], []
    for folder, label in _class_folders(Path(root), model):
        files = list_images(folder)[offset : None if per_class is None else offset + per_class]
        for f in files:
            xs.append(resize(to_tensor(load_image(f)), model.input_size))
            ys.append(label)
    if not xs:
        raise FileNotFoundError(f"{root}: no images")
    return torch.cat(xs), torch.tensor(ys)


def _class_folders(root: Path, model) -> list[tuple[Path, int]]:
    domains = [root / "testA", root / "testB"]
    if all(d.is_dir() for d in domains) and model.num_classes == 2:
        return list(zip(domains, (0, 1)))
    for sub in ("test", "val"):
        if (root / sub).is_dir():
            root = root / sub
            break
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"{root}: expected one folder per class (an ImageFolder)")
    synonyms = _wordnet_names(root)
    return [(f, _class_of(model, f.name, synonyms.get(f.name, ()))) for f in folders]


def _wordnet_names(split_folder: Path) -> dict[str, list[str]]:
    """wnid -> its names, from a classes.tsv (wnid TAB names, the Tiny ImageNet layout) beside the split or above
    it; {} without one."""
    names = wordnet_names(split_folder) or wordnet_names(split_folder.parent)
    return {wnid: [s.strip() for s in synonyms.split(",")] for wnid, synonyms in names.items()}


def _class_of(model, folder: str, synonyms) -> int:
    """The model's class for a folder named like one of its classes, or by a wnid whose names include one."""
    for name in (folder, *synonyms):
        try:
            return model.class_index(name)
        except ValueError:
            continue
    return model.class_index(folder)  # the error names the folder


def quantize(x: torch.Tensor) -> torch.Tensor:
    """What a user's 8-bit file holds."""
    return (x * 255).round() / 255


def first_per_class(y: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the first n examples of every class present in y, class by class."""
    return torch.cat([torch.nonzero(y == c).flatten()[:n] for c in y.unique()])


def _pils(x: torch.Tensor):
    return [to_pil(t) for t in x]


def _tensors(images) -> torch.Tensor:
    return torch.cat([to_tensor(im) for im in images])


def square_masks(n: int, size: int, fraction: float = 0.1, seed: int = 0) -> torch.Tensor:
    """(n,1,size,size) masks, each one square patch covering ~`fraction` of the image at a random place."""
    k = max(1, round(size * math.sqrt(fraction)))
    g = torch.Generator().manual_seed(seed)
    at = torch.randint(0, size - k + 1, (n, 2), generator=g)
    m = torch.zeros(n, 1, size, size)
    for i, (r, c) in enumerate(at.tolist()):
        m[i, :, r : r + k, c : c + k] = 1
    return m


# --------------------------------------------------------------------------------------------- evaluations
def eval_generation(model, judge, data, n: int, presets=("paper", "ours"), seed: int = 0, inception=None) -> dict:
    """n samples per class under each preset vs held-out real images. `data` = (x, y) of the test set: the
    first n per class form the 'real' row, the rest the reference set of the Frechet distance."""
    x, y = data
    real_idx = first_per_class(y, n)
    ref_mask = torch.ones(len(y), dtype=torch.bool)
    ref_mask[real_idx] = False
    f_ref, _ = judge_outputs(judge, x[ref_mask])
    labels = torch.arange(model.num_classes).repeat_interleave(n)

    def row(images, wanted, seconds=None):
        f, p = judge_outputs(judge, images)
        r = {
            "agreement": float((p.argmax(1) == wanted).float().mean()),
            "score": inception_score(p),
            "frechet": frechet_distance(f, f_ref),
            "n": len(images),
        }
        if seconds is not None:
            r["seconds"] = round(seconds, 1)
        if inception is not None:
            r.update(inception_metrics(images, x[ref_mask], inception))
        return r

    rows = {"real test images": row(x[real_idx], y[real_idx])}
    for preset in presets:
        t = time.perf_counter()
        imgs, seeds = generate(model, labels.tolist(), n=len(labels), seed=seed, preset=preset, return_seeds=True)
        if "class seeds (start)" not in rows:
            rows["class seeds (start)"] = row(_tensors(seeds), labels)
        rows[f"synth.generate, preset={preset}"] = row(_tensors(imgs), labels, time.perf_counter() - t)
    return rows


def eval_superres(model, judge, data, factors=(4, 8), presets=("paper", "ours"), **overrides) -> dict:
    """Downsample by area averaging, restore; PSNR against the original and judge accuracy on the true class.
    `overrides` (eps=, step_size=, ...) go to every `synth.super_resolve` call."""
    x, y = data
    out = {}
    for factor in factors:
        if model.input_size // factor < 4:
            continue
        small = quantize(downsample(x, factor))
        rows = {}

        def row(restored, seconds=None):
            _, p = judge_outputs(judge, restored)
            r = {"psnr": float(psnr(restored, x).mean()), "judge_accuracy": float((p.argmax(1) == y).float().mean())}
            if seconds is not None:
                r["seconds"] = round(seconds, 1)
            return r

        rows["nearest"] = row(upsample(small, factor, "nearest"))
        rows["bicubic"] = row(upsample(small, factor, "bicubic"))
        for preset in presets:
            t = time.perf_counter()
            restored = _tensors(super_resolve(model, _pils(small), factor=factor, preset=preset, **overrides))
            rows[f"synth.super_resolve, preset={preset}"] = row(restored, time.perf_counter() - t)
        rows["original (upper bound)"] = row(x)
        rows["original (upper bound)"]["psnr"] = None
        out[f"x{factor}"] = rows
    return out


def eval_inpainting(model, judge, data, fraction: float = 0.1, presets=("paper", "ours"), seed: int = 0) -> dict:
    """One random square patch per image: PSNR inside it, judge-feature distance to the original, change outside."""
    x, _ = data
    m = square_masks(len(x), model.input_size, fraction, seed)
    f_orig, _ = judge_outputs(judge, x)

    def row(filled, seconds=None):
        f, _ = judge_outputs(judge, filled)
        outside = ((filled - x).abs() * (1 - m)).flatten(1).sum(1) / (3 * (1 - m).flatten(1).sum(1))
        r = {
            "psnr_in_patch": float(psnr(filled, x, m).mean()),
            "feature_distance": float((f - f_orig).norm(dim=1).mean()),
            "change_outside_8bit": float(outside.mean() * 255),
        }
        if seconds is not None:
            r["seconds"] = round(seconds, 1)
        return r

    rows = {"mean fill (the paper's start)": row(mean_fill(x, m)), "smooth fill (harmonic)": row(smooth_fill(x, m))}
    masks = [to_pil(mi.expand(3, -1, -1)) for mi in m]
    for preset in presets:
        t = time.perf_counter()
        filled = _tensors(inpaint(model, _pils(x), masks, preset=preset))
        rows[f"synth.inpaint, preset={preset}"] = row(filled, time.perf_counter() - t)
    return {"patch": f"{int(m[0].sum())} px of {model.input_size}x{model.input_size}", "rows": rows}


def eval_translation(model, judge, data, presets=("paper", "ours"), **overrides) -> dict:
    """Each test image pushed toward the next class (the other domain of a two-domain model): how often the judge
    calls the result that class, and the mean absolute change (8-bit levels), by direction. `overrides` (eps=,
    steps=, ...) go to every `synth.translate` call."""
    x, y = data
    target = (y + 1) % model.num_classes
    names = model.class_names
    groups = {f"{names[c]} -> {names[(c + 1) % model.num_classes]}": y == c for c in y.unique().tolist()}
    if len(groups) > 2:
        groups = {"each class -> the next": torch.ones_like(y, dtype=torch.bool)}

    def rows_of(out, method, seconds=None):
        _, p = judge_outputs(judge, out)
        hit = p.argmax(1) == target
        change = (out - x).abs().flatten(1).mean(1) * 255
        for direction, keep in groups.items():
            r = {"success": float(hit[keep].float().mean()), "change_8bit": float(change[keep].mean())}
            if seconds is not None:
                r["seconds_per_image"] = round(seconds / len(x), 2)
            rows[f"{direction}, {method}"] = r

    rows = {}
    rows_of(x, "unchanged")
    for preset in presets:
        t = time.perf_counter()
        out = _tensors(translate(model, _pils(x), target.tolist(), preset=preset, **overrides))
        rows_of(out, f"synth.translate, preset={preset}", time.perf_counter() - t)
    return dict(sorted(rows.items()))


def eval_robustness(models: dict, data, eps: float, steps: int = 20) -> dict:
    x, y = data
    batches = lambda: ((x[i : i + 250], y[i : i + 250]) for i in range(0, len(x), 250))  # noqa: E731
    return {name: robust_accuracy(m, batches(), eps, steps) for name, m in models.items()}


# --------------------------------------------------------------------------------------------- tables
def _fmt(v, pct=False):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1%}" if pct else f"{v:.2f}"
    return str(v)


def table(rows: dict, columns: list[tuple[str, str, bool]]) -> str:
    """Markdown table: one line per row name; columns = (key, header, as_percent)."""
    head = "| method | " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|---" * (len(columns) + 1) + "|"
    body = [f"| {name} | " + " | ".join(_fmt(r.get(k), p) for k, _, p in columns) + " |" for name, r in rows.items()]
    return "\n".join([head, sep, *body])


def report(results: dict) -> str:
    parts = []
    if "generation" in results:
        g = results["generation"]
        cols = [("agreement", "judge agrees with class", True), ("score", "judge IS", False)]
        cols += [("frechet", "judge Frechet (lower is better)", False)]
        if any("fid" in r for r in g.values()):
            cols += [("inception_score", "Inception-v3 IS", False), ("fid", "Inception-v3 FID", False)]
        parts.append("### Generation\n\n" + table(g, cols + [("seconds", "seconds", False)]))
    if "superres" in results:
        for f, rows in results["superres"].items():
            cols = [("psnr", "PSNR (dB)", False), ("judge_accuracy", "judge recognises true class", True)]
            parts.append(f"### Super-resolution {f}\n\n" + table(rows, cols + [("seconds", "seconds", False)]))
    if "inpainting" in results:
        r = results["inpainting"]
        cols = [("psnr_in_patch", "PSNR in patch (dB)", False), ("feature_distance", "judge feature distance", False)]
        cols += [("change_outside_8bit", "mean change outside (8-bit)", False), ("seconds", "seconds", False)]
        parts.append(f"### Inpainting (patch {r['patch']})\n\n" + table(r["rows"], cols))
    if "translation" in results:
        cols = [("success", "judge calls it the target", True), ("change_8bit", "mean change (8-bit)", False)]
        cols += [("seconds_per_image", "seconds per image", False)]
        parts.append("### Translation\n\n" + table(results["translation"], cols))
    if "robustness" in results:
        cols = [("n", "images", False), ("clean", "clean", True), ("robust", "L2 PGD", True)]
        any_r = next(iter(results["robustness"].values()))
        parts.append(
            f"### Robustness (L2 eps {any_r['eps']}, {any_r['steps']} steps)\n\n" + table(results["robustness"], cols)
        )
    return "\n\n".join(parts)


# --------------------------------------------------------------------------------------------- CLI
TASKS = ("generation", "superres", "inpainting", "translation", "robustness")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("task", nargs="+", choices=(*TASKS, "all"), help="one or more, or all")
    ap.add_argument("--data", required=True, help="ImageFolder of test images (PATH/test or PATH/val if present)")
    ap.add_argument("--model", default=None, help="the synthesising model (default: the embedded robust model)")
    ap.add_argument("--judge", default=None, help="the independent classifier (default: the model's standard twin)")
    ap.add_argument("--n", type=int, default=20, help="test images per class for superres/inpainting/robustness")
    ap.add_argument("--gen-n", type=int, default=100, help="samples per class for generation")
    ap.add_argument("--presets", nargs="+", default=["paper", "ours"], choices=["ours", "paper", "fast"])
    ap.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--eps", type=float, default=None, help="robustness: attack radius (default: the model's eps)")
    ap.add_argument("--steps", type=int, default=20, help="robustness: attack steps")
    ap.add_argument("--inception", action="store_true", help="generation: add Inception-v3 IS/FID (downloads)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="evaluation.json", help="where to write the results")
    return ap


def main(argv=None) -> dict:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        model = load_model(args.model)
        judge_name = args.judge or standard_twin(model)
        if judge_name is None:
            ap.error(f"model {model.name!r} has no standard twin: pass --judge")
        judge = load_model(judge_name)
        if judge.class_names != model.class_names:
            ap.error("the judge must have the model's classes")
    except (ModelLoadError, ValueError) as e:
        sys.exit(f"error: {e}")
    tasks = TASKS if "all" in args.task else tuple(args.task)
    try:
        if "generation" in tasks:  # needs the whole test set; the other tasks take its first n per class
            gen_data = load_test_set(args.data, model)
            keep = first_per_class(gen_data[1], args.n)
            data = (gen_data[0][keep], gen_data[1][keep])
        else:
            data = load_test_set(args.data, model, args.n)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    results = {
        "model": args.model or model.name,
        "judge": judge_name,
        "images": len(data[1]),
        "command": "python -m benchmarks.evaluate " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    if "generation" in tasks:
        net = None
        if args.inception:
            try:
                net = load_inception()
            except Exception as e:  # offline: say so, keep the judge's numbers
                print(f"warning: Inception-v3 weights unavailable ({e.__class__.__name__}); skipping IS/FID")
        results["generation"] = eval_generation(model, judge, gen_data, args.gen_n, args.presets, args.seed, net)
    if "superres" in tasks:
        results["superres"] = eval_superres(model, judge, data, args.factors, args.presets)
    if "inpainting" in tasks:
        results["inpainting"] = eval_inpainting(model, judge, data, presets=args.presets, seed=args.seed)
    if "translation" in tasks:
        results["translation"] = eval_translation(model, judge, data, args.presets)
    if "robustness" in tasks:
        eps = args.eps if args.eps is not None else model.eps
        results["robustness"] = eval_robustness({judge_name: judge, results["model"]: model}, data, eps, args.steps)
    print(report(results))
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()
