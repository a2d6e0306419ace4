"""The metrics the product reports: PSNR (the app's super-resolution panel) and clean + robust accuracy (training's
per-epoch evaluation and the model cards). The experiment harness that uses them is `benchmarks/evaluate.py`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .pgd import L2Ball, Settings, autocast_for, pgd

PSNR_CAP = 100.0  # dB, for identical images


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR (dB) of (B,C,H,W) images in [0,1], over the pixels where mask (B,1,H,W) is 1 if given.
    Identical images give PSNR_CAP."""
    err = (a.float() - b.float()) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        mask = mask.expand_as(err)
        mse = (err * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)
    return (10 * torch.log10(1 / mse.clamp_min(1e-30))).clamp(max=PSNR_CAP)


def robust_accuracy(model, batches, eps: float, steps: int = 20, precision: str = "fp32", ball=L2Ball) -> dict:
    """Clean accuracy and accuracy under PGD (maximise CE from the clean image, step 2.5*eps/steps, no random
    start: the robustness library's evaluation convention). `batches` yields (x, y)."""
    clean = robust = n = 0
    for x, y in batches:
        with torch.no_grad(), autocast_for(x.device, precision):
            clean += int((model.logits(x).argmax(1) == y).sum())
        if eps > 0:
            x_adv = pgd(
                lambda z, y=y: F.cross_entropy(model.logits(z).float(), y, reduction="none"),
                x,
                Settings(eps, 2.5 * eps / steps, steps),
                ball=ball,
                maximize=True,
                precision=precision,
            )
            with torch.no_grad(), autocast_for(x.device, precision):
                robust += int((model.logits(x_adv).argmax(1) == y).sum())
        n += len(y)
    return {"clean": clean / n, "robust": robust / n if eps > 0 else None, "n": n, "eps": eps, "steps": steps}
