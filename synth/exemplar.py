"""A textured start for inpainting: fill a hole with the photo's own pixels, at the photo's resolution.

PatchMatch (Barnes et al. 2009) image completion (Wexler et al. 2007): every patch that overlaps the hole is
matched to a patch of the photo outside it, and the hole is re-drawn from its matches (voting), coarse to fine.
It runs at a bounded working size (WORK_SIDE), so its cost does not grow with the photo; the match field it
finds is then used at full size (`_transfer`): each pixel of the hole copies the photo pixel at its match's
offset, scaled up, so the copied texture is the photo's own at its own resolution.

PyPatchMatch (the maintained C++ library) fills at full size only and returns no match field: its time grows
with the hole's pixels (benchmarks/bench_texture_fill.py), which a 12 MP photo cannot afford.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .images import resize
from .starts import smooth_fill

WORK_SIDE = 128  # the match field is solved on the hole's box scaled to at most this many pixels a side
COARSEST = 20  # the pyramid's smallest level, in pixels a side
MIN_SOURCES = 64  # a level starts the pyramid only with at least this many patches to copy
RADIUS = 3  # patches are (2 * RADIUS + 1)^2 pixels at each level
DETAIL_WEIGHT = 8.0  # patches match on colour and, this much weighted, on the texture each of their pixels hides
EM_ROUNDS = 2  # match + vote rounds per level
SEARCH_ROUNDS = 3  # PatchMatch propagation + random-search rounds per match
_STEPS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # propagation: a neighbour's match, shifted back by the step


def exemplar_fill(x: torch.Tensor, mask: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """x (1,3,H,W) in [0,1] with its masked pixels (mask (1,1,H,W) == 1) drawn from the unmasked ones; every
    other pixel is x's own. Where no patch of x lies wholly outside the mask, the membrane fill (`smooth_fill`)
    at the working size, upsampled. Same seed, same fill."""
    hole = mask[0, 0] > 0.5
    if not hole.any():
        return x.clone()
    g = torch.Generator().manual_seed(seed)
    h, w = x.shape[-2:]
    scale = min(1.0, WORK_SIDE / max(h, w))
    size = (max(round(h * scale), 1), max(round(w * scale), 1))
    mean = resize(x, size, "area")
    detail = (resize(x * x, size, "area") - mean * mean).clamp_min(0).sqrt()  # the texture a cell averages away
    small_hole = resize(mask, size, "area")[0, 0] > 0
    match = _complete(torch.cat([mean, DETAIL_WEIGHT * detail], 1), small_hole, g)
    if match is None:
        smooth = resize(smooth_fill(mean, small_hole[None, None].float()), (h, w), "bilinear")
        return torch.where(hole, smooth, x)
    return _transfer(x, hole, match)


# ----------------------------------------------------------------------------------------- at the working size
def _complete(img: torch.Tensor, hole: torch.Tensor, g) -> torch.Tensor | None:
    """The match field (h,w,2: source row, column; its own position outside the hole's patches) of Wexler et
    al.'s completion of img's hole, coarse to fine; None when no patch lies wholly outside the hole."""
    sizes = [tuple(hole.shape)]
    while min(sizes[-1]) >= 2 * COARSEST:
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    match = fill = None
    for size in reversed(sizes):
        level = resize(img, size, "area")
        level_hole = resize(hole[None, None].float(), size, "area")[0, 0] > 0
        valid, targets = _sources(level_hole), _dilated(level_hole)
        if valid.sum() < MIN_SOURCES and size != sizes[0]:
            continue  # too coarse for the margin around the hole to hold whole patches: start finer
        if not valid.any():
            return None
        if match is None:  # the coarsest level starts from the membrane fill
            fill = smooth_fill(level, level_hole[None, None].float())
            match = _random_match(valid, targets, g)
        else:
            match = _upsampled(match, size, valid, targets, g)
            fill = _vote(level, level_hole, match)
        for _ in range(EM_ROUNDS):
            match = _search(fill, valid, targets, match, g)
            fill = _vote(level, level_hole, match)
    return match


def _dilated(hole: torch.Tensor) -> torch.Tensor:
    """The centres of the patches that overlap the hole."""
    k = 2 * RADIUS + 1
    return F.max_pool2d(hole[None, None].float(), k, 1, RADIUS)[0, 0] > 0


def _sources(hole: torch.Tensor) -> torch.Tensor:
    """The centres of the patches wholly inside the image and outside the hole: where matches may point."""
    ok = ~_dilated(hole)
    ok[:RADIUS], ok[-RADIUS:], ok[:, :RADIUS], ok[:, -RADIUS:] = False, False, False, False
    return ok


def _identity(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([ys, xs], -1)


def _random_match(valid: torch.Tensor, targets: torch.Tensor, g) -> torch.Tensor:
    """Each target a source drawn at random; other pixels their own position."""
    match = _identity(*valid.shape)
    pool = valid.nonzero()
    match[targets] = pool[torch.randint(len(pool), (int(targets.sum()),), generator=g)]
    return match


def _upsampled(match: torch.Tensor, size, valid, targets, g) -> torch.Tensor:
    """A coarser level's match field at `size`: offsets doubled; targets that land on no source drawn anew."""
    h, w = size
    coarse = _identity(*match.shape[:2])
    offset = (match - coarse).permute(2, 0, 1)[None].float()
    offset = F.interpolate(offset, size=size, mode="nearest")[0].permute(1, 2, 0) * 2
    up = (_identity(h, w) + offset.long()).clamp_min(0)
    up[..., 0].clamp_(max=h - 1)
    up[..., 1].clamp_(max=w - 1)
    fresh = _random_match(valid, targets, g)
    bad = targets & ~valid[up[..., 0], up[..., 1]]
    up[bad] = fresh[bad]
    up[~targets] = _identity(h, w)[~targets]
    return up


def _patches(img: torch.Tensor) -> torch.Tensor:
    """(h*w, 3*k*k): the patch around every pixel (edges replicated)."""
    k = 2 * RADIUS + 1
    return F.unfold(F.pad(img, (RADIUS,) * 4, mode="replicate"), k)[0].T.contiguous()


def _search(fill: torch.Tensor, valid, targets, match: torch.Tensor, g) -> torch.Tensor:
    """SEARCH_ROUNDS rounds of PatchMatch for the targets of `fill`: each takes a neighbour's match shifted back
    by the step (propagation, all targets at once) or a random source in a halving window around its own
    (random search), where the patch distance is lower."""
    h, w = valid.shape
    patches = _patches(fill)
    where = targets.nonzero()
    own = patches[where[:, 0] * w + where[:, 1]]
    best = match[targets]
    cost = _cost(own, patches, best, w)

    def consider(cand):
        nonlocal best, cost
        cand = torch.stack([cand[:, 0].clamp(0, h - 1), cand[:, 1].clamp(0, w - 1)], 1)
        c = torch.where(valid[cand[:, 0], cand[:, 1]], _cost(own, patches, cand, w), torch.inf)
        better = c < cost
        best, cost = torch.where(better[:, None], cand, best), torch.where(better, c, cost)

    field = match.clone()  # the current matches of every pixel, for propagation
    for _ in range(SEARCH_ROUNDS):
        for dy, dx in _STEPS:
            field[targets] = best
            ny, nx = (where[:, 0] + dy).clamp(0, h - 1), (where[:, 1] + dx).clamp(0, w - 1)
            consider(field[ny, nx] - torch.tensor([dy, dx]))
        radius = max(h, w)
        while radius >= 1:
            consider(best + torch.randint(-radius, radius + 1, best.shape, generator=g))
            radius //= 2
    field[targets] = best
    return field


def _cost(own: torch.Tensor, patches: torch.Tensor, src: torch.Tensor, w: int) -> torch.Tensor:
    return (own - patches.index_select(0, src[:, 0] * w + src[:, 1])).square_().sum(1)


def _vote(img: torch.Tensor, hole: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    """img with each hole pixel the mean of what the patches over it say it is (their sources' pixels there)."""
    h, w = hole.shape
    ys, xs = hole.nonzero().unbind(1)
    pixels = img[0].flatten(1).T.contiguous()  # (h*w, 3)
    flat = match.flatten(0, 1)
    total = torch.zeros(len(ys), img.shape[1])
    for dy in range(-RADIUS, RADIUS + 1):
        for dx in range(-RADIUS, RADIUS + 1):
            centre = (ys - dy).clamp(0, h - 1) * w + (xs - dx).clamp(0, w - 1)  # its patch covers the pixel
            src = flat.index_select(0, centre)
            total += pixels.index_select(0, (src[:, 0] + dy).clamp(0, h - 1) * w + (src[:, 1] + dx).clamp(0, w - 1))
    out = img.clone()
    out[0, :, ys, xs] = (total / (2 * RADIUS + 1) ** 2).T
    return out


# ----------------------------------------------------------------------------------------- at full size
def _transfer(x: torch.Tensor, hole: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    """x with each hole pixel copied from x at its position plus the working-size match offset, scaled to full
    size; the offsets of the 4 nearest working-size pixels are blended bilinearly, so where they agree the copy is
    exact (the photo's own texture) and where they differ it cross-fades. Sources that fall in the hole or off
    the image do not count; a pixel with none left keeps the upsampled working-size fill."""
    H, W = hole.shape
    h, w = match.shape[:2]
    offset = (match - _identity(h, w)).float()  # working-size pixels
    ys, xs = hole.nonzero().unbind(1)
    cy, cx = (ys + 0.5) * h / H - 0.5, (xs + 0.5) * w / W - 0.5
    y0, x0 = cy.floor().long(), cx.floor().long()
    fy, fx = cy - y0, cx - x0
    pixels, known = x[0].flatten(1).T.contiguous(), ~hole.flatten()  # (H*W, 3), (H*W,)
    offset = offset.flatten(0, 1)
    total, weight = torch.zeros(len(ys), 3), torch.zeros(len(ys))
    for ay, ax, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        o = offset.index_select(0, (y0 + ay).clamp(0, h - 1) * w + (x0 + ax).clamp(0, w - 1))
        sy, sx = (ys + o[:, 0] * H / h).round_().long(), (xs + o[:, 1] * W / w).round_().long()
        inside = (sy >= 0) & (sy < H) & (sx >= 0) & (sx < W)
        src = sy.clamp(0, H - 1) * W + sx.clamp(0, W - 1)
        wt = wt * (inside & known.index_select(0, src))
        total += pixels.index_select(0, src) * wt[:, None]
        weight += wt
    out = x.clone()
    out[0, :, ys, xs] = (total / weight.clamp_min(1e-8)[:, None]).T
    if not (weight > 0).all():
        none = weight == 0
        out[0, :, ys[none], xs[none]] = _working_fill(x, hole, match)[0, :, ys[none], xs[none]]
    return out


def _working_fill(x: torch.Tensor, hole: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    """The working-size fill (voted from `match`) upsampled to x's size."""
    h, w = match.shape[:2]
    small = resize(x, (h, w), "area")
    small_hole = resize(hole[None, None].float(), (h, w), "area")[0, 0] > 0
    return resize(_vote(small, small_hole, match), hole.shape, "bilinear")
