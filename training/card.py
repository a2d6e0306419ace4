"""Model cards (README.md with Hub YAML metadata) for exported models."""

from __future__ import annotations

from huggingface_hub import ModelCard, ModelCardData

from .data import JITTER

CITATION = """@inproceedings{santurkar2019image,
  title={Image Synthesis with a Single (Robust) Classifier},
  author={Santurkar, Shibani and Tsipras, Dimitris and Tran, Brandon and Ilyas, Andrew and Engstrom, Logan and Madry, Aleksander},
  booktitle={Advances in Neural Information Processing Systems},
  year={2019}
}"""

HF_DATASETS = {"cifar10": "cifar10", "imagenet": "imagenet-1k", "restricted_imagenet": "imagenet-1k"}


def render(
    model,
    *,
    title: str,
    training: dict | None = None,
    metrics: dict | None = None,
    eval_command: str | None = None,
    train_command: str | None = None,
    notes: str = "",
) -> ModelCard:
    """The card: Hub metadata, then what the model is, how it scores, how it was trained, what it is not."""
    cfg = model.config
    data = ModelCardData(
        library_name="pytorch",
        license="mit",
        pipeline_tag="image-classification",
        tags=[
            "adversarial-robustness",
            "image-classification",
            "image-synthesis",
            "robust-classifier",
            "synth",
            "pytorch_model_hub_mixin",
        ],
        datasets=[HF_DATASETS[cfg["dataset"]]] if cfg["dataset"] in HF_DATASETS else None,
        metrics=["accuracy"],
    )
    lines = _intro(model, title)
    lines += _evaluation(cfg, metrics, eval_command) if metrics else []
    lines += _training(training, train_command) if training else []
    lines += _limits(model)
    lines += [notes, ""] if notes else []
    lines += ["## Citation", "", "```bibtex", CITATION, "```", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _intro(model, title: str) -> list[str]:
    cfg = model.config
    kind = (
        f"robust (L2 adversarially trained, eps = {cfg['eps']})" if cfg["eps"] > 0 else "standard (eps = 0, not robust)"
    )
    return [
        f"# {title}",
        "",
        f"A {kind} `{cfg['arch']}` classifier for {cfg['input_size']}x{cfg['input_size']} {cfg['dataset']} images, "
        "in the format of the `synth` package (config.json + model.safetensors"
        f"{' + seeds.safetensors' if model.seed_bank is not None else ''}); it is the classifier behind "
        'the image synthesis tasks of Santurkar et al. (2019), "Image Synthesis with a Single (Robust) Classifier".',
        "",
        "```python",
        "import synth",
        'model = synth.load_model("<this repo id or folder>")',
        'imgs = synth.generate(model, label="' + model.class_names[0] + '", n=4)',
        "```",
        "",
    ]


def _evaluation(cfg: dict, metrics: dict, eval_command: str | None) -> list[str]:
    robust = metrics.get("robust") is not None
    lines = [
        "## Evaluation",
        "",
        f"On {metrics['n']} {cfg['dataset']} test images:",
        "",
        "| clean accuracy | "
        + (f"L2 PGD accuracy (eps {metrics['eps']}, {metrics['steps']} steps) |" if robust else "|"),
        "|---|" + ("---|" if robust else ""),
        f"| {metrics['clean']:.2%} | " + (f"{metrics['robust']:.2%} |" if robust else "|"),
        "",
    ]
    return lines + ([f"Command: `{eval_command}`", ""] if eval_command else [])


def _training(t: dict, train_command: str | None) -> list[str]:
    attack = (
        f"each batch attacked by L2 PGD, eps {t['eps']}, {t['attack_steps']} steps of {t['attack_lr']:.3g} "
        "from a random start in the ball."
        if t["eps"] > 0
        else "ordinary training on clean images (eps 0)."
    )
    lines = [
        "## Training",
        "",
        f"Adversarial training (Madry et al.) with `python -m training.train` (recipe "
        f"`{t.get('recipe', t.get('preset'))}`): {t['epochs']} epochs, batch {t['batch_size']}, SGD momentum 0.9, "
        f"lr {t['lr']} ({t['schedule']} schedule), weight decay {t['weight_decay']}{_augmentation(t)}; {attack}"
        + (f" Started from `{t['init']}` (all but its classifier)." if t.get("init") else ""),
        "",
    ]
    return lines + ([f"Command: `{train_command}`", ""] if train_command else [])


def _augmentation(t: dict) -> str:
    """The training images' augmentation, as `training.data` applied it (nothing where the run did not record it)."""
    if "in_memory" not in t:
        return ""
    if t["in_memory"]:
        return ", random crop + flip"
    jitter = f"brightness, contrast, saturation {JITTER}" + (f", hue {t['hue']}" if t.get("hue") else "")
    grey = f" + greyscale with probability {t['grayscale']}" if t.get("grayscale") else ""
    return f", random resized crops + flip + colour jitter ({jitter}){grey}"


def _limits(model) -> list[str]:
    cfg, names = model.config, model.class_names
    return [
        "## Intended use and limits",
        "",
        f"Research and demos of robust-classifier image synthesis (generation, inpainting, translation, "
        f"super-resolution, sketch-to-image, feature painting). It is a {cfg['input_size']}x{cfg['input_size']} "
        f"model of {len(names)} classes ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''}): not a "
        "general photo classifier, not a high-resolution generator, and "
        + (
            "its robustness holds only for the stated L2 radius."
            if cfg["eps"] > 0
            else "not robust: its input gradients are not the perceptual features the method needs."
        ),
        "",
    ]


def save_with_card(model, to, card: ModelCard):
    """Write `to`/README.md (the card) then config.json + model.safetensors (+ seeds) next to it; into the package
    (synth/pretrained), the package's sha256 list is rewritten too."""
    from pathlib import Path

    from synth.checks import write_embedded_sums
    from synth.registry import PRETRAINED_DIR

    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    card.save(to / "README.md")
    model.save_pretrained(to)  # keeps an existing README.md
    if to.resolve().parent == PRETRAINED_DIR.resolve():
        write_embedded_sums()
    return to
