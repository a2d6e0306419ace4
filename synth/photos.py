"""Between a user's photos and the model's input: load a batch at the model's size, cut large images into tiles,
and paste results back into the originals at their own size."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .images import check_mask, load_image, load_mask, resize, resize_mask, to_pil, to_tensor


def as_list(x) -> tuple[list, bool]:
    """(items, batched): a list or tuple is a batch, anything else one item."""
    return (list(x), True) if isinstance(x, (list, tuple)) else ([x], False)


def one_or_many(outs: list, batched: bool):
    return outs if batched else outs[0]


def load_batch(images: list, size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The originals as (1,3,H,W) tensors and a (B,3,size,size) batch of them at the model's resolution."""
    originals = [to_tensor(load_image(im)) for im in images]
    return originals, torch.cat([resize(o, size) for o in originals])


def load_masked_batch(images: list, masks: list, size: int, allow_full: bool = False):
    """`load_batch` plus the masks: (originals, batch, full-size masks, masks at the model's resolution)."""
    if len(masks) != len(images):
        raise ValueError(f"{len(masks)} masks for {len(images)} images")
    originals, x = load_batch(images, size)
    full = [load_mask(m, (o.shape[-1], o.shape[-2])) for m, o in zip(masks, originals)]
    for fm in full:
        check_mask(fm, allow_full=allow_full)
    return originals, x, full, torch.cat([resize_mask(fm, size) for fm in full])


def paste_residual(originals, start: torch.Tensor, result: torch.Tensor, masks=None) -> list:
    """Each original plus the change PGD made (result - start) resized to it, only inside its mask when given:
    keeps the original's detail at its own size."""
    outs = []
    for k, (o, s, r) in enumerate(zip(originals, start, result)):
        mode = "bilinear" if o.shape[-1] >= s.shape[-1] else "area"
        delta = resize((r - s)[None], o.shape[-2:], mode, clamp=False)
        if masks is not None:
            delta = delta * masks[k]
        outs.append(to_pil((o + delta).clamp(0, 1)))
    return outs


def paste_inside(originals, masks, result: torch.Tensor) -> list:
    """Each result resized to its original and used only inside the mask; outside, the original's own pixels."""
    return [
        to_pil(o * (1 - m) + resize(r[None], o.shape[-2:], "bicubic") * m) for o, m, r in zip(originals, masks, result)
    ]


def tile_grid(h: int, w: int, s: int) -> tuple[int, int] | None:
    """Rows and columns of s x s tiles that cover an h x w image; None for a square image no larger than s (it is
    resized to one tile)."""
    return None if h <= s and w <= s and h == w else (math.ceil(h / s), math.ceil(w / s))


def tile(x: torch.Tensor, s: int):
    """(1,3,H,W) -> (N,3,s,s) tiles (replicate-padded to a multiple of s) and the grid shape (`tile_grid`)."""
    h, w = x.shape[-2:]
    grid = tile_grid(h, w, s)
    if grid is None:
        return resize(x, s), None
    gh, gw = grid
    xp = F.pad(x, (0, gw * s - w, 0, gh * s - h), mode="replicate")
    t = xp.unfold(2, s, s).unfold(3, s, s)  # 1,3,gh,gw,s,s
    return t.permute(0, 2, 3, 1, 4, 5).reshape(gh * gw, 3, s, s), (gh, gw)


def untile(t: torch.Tensor, grid, size) -> torch.Tensor:
    """The inverse of `tile`: (N,3,s,s) tiles back to one (1,3,*size) image."""
    if grid is None:
        return resize(t, size)
    gh, gw = grid
    s = t.shape[-1]
    x = t.view(gh, gw, 3, s, s).permute(2, 0, 3, 1, 4).reshape(1, 3, gh * s, gw * s)
    return x[..., : size[0], : size[1]]
