"""Overlapping tiles for images larger than the model's input (super-resolution's outputs).

Tiles pushed by PGD one by one differ, so tiles that merely abut show their grid as seams. Here neighbouring
tiles share `overlap` pixels (a tenth of a tile, at least 8 px, by default); each tile's result is weighted by a
window that ramps down (raised cosine) over the pixels it shares with a neighbour, and the sum is divided by the
summed weights, so every output pixel is a smooth blend of the tiles that cover it. Windows are never zero and
are not faded at the image's border, where no neighbour takes over.

Tiles of all the images of one size are cut as one batch, image-major: (B * len(boxes), C, s, s). `Tiles` is
that plan as a value, as `synth.photos.Crops` is for masked tasks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .images import resize


def default_overlap(s: int) -> int:
    """A tenth of the tile, at least 8 px (at most a quarter tile): the blend needs a ramp of a few pixels to hide
    a seam, and each pixel of overlap costs tiles, (s / (s - overlap))^2 times an abutting grid's. A 1024 px
    output of 224 px tiles takes 25 tiles with a tenth, 36 with a quarter (bench_photos.py)."""
    return min(max(s // 10, 8), s // 4)


def starts(n: int, s: int, overlap: int) -> list[int]:
    """Offsets of the fewest tiles of side s that cover [0, n) with neighbours sharing at least `overlap`
    pixels, spread evenly so that the last ends at n (nothing past the border to invent); [0] when n <= s."""
    if not 0 <= overlap < s:
        raise ValueError(f"overlap must be from 0 to {s - 1} for tiles of {s}, got {overlap}")
    if n <= s:
        return [0]
    gaps = math.ceil((n - s) / (s - overlap))
    return [round(i * (n - s) / gaps) for i in range(gaps + 1)]


def tile_boxes(h: int, w: int, s: int, overlap: int | None = None) -> list[tuple[int, int]]:
    """(top, left) of the s x s tiles that cover an h x w image, row by row. A side shorter than s is one tile
    (`cut` pads it and `blend` crops it off again)."""
    overlap = default_overlap(s) if overlap is None else overlap
    return [(t, left) for t in starts(h, s, overlap) for left in starts(w, s, overlap)]


def window(s: int, overlap: int, fade_start: bool = True, fade_end: bool = True) -> torch.Tensor:
    """(s,) weights along one side of a tile: 1, ramping down over `overlap` pixels at an end a neighbour shares.

    Raised cosine sampled at pixel centres: two ramps that overlap exactly sum to 1 (sin^2 + cos^2), the blend
    has no kink, and no weight is 0, so every pixel keeps some weight even where the tiles' overlap is larger."""
    w = torch.ones(s)
    if overlap:
        ramp = torch.sin(math.pi / 2 * (torch.arange(overlap) + 0.5) / overlap) ** 2
        if fade_start:
            w[:overlap] = torch.minimum(w[:overlap], ramp)
        if fade_end:
            w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def _padded(size, s: int) -> tuple[int, int]:
    return max(size[0], s), max(size[1], s)


def _windows(boxes, s: int, size, overlap: int):
    """Each box's (s, s) window, made as needed (thousands of tiles: no stack of them is kept)."""
    h, w = _padded(size, s)
    tops, lefts = {t for t, _ in boxes}, {c for _, c in boxes}
    rows = {t: window(s, overlap, t > 0, t + s < h) for t in tops}  # one 1-D window per distinct offset
    cols = {c: window(s, overlap, c > 0, c + s < w) for c in lefts}
    for t, c in boxes:
        yield rows[t][:, None] * cols[c]


def cut(x: torch.Tensor, boxes, s: int) -> torch.Tensor:
    """(B,C,H,W) -> (B * len(boxes), C, s, s), image-major. A side shorter than s is replicate-padded first."""
    h, w = _padded(x.shape[-2:], s)
    x = F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]), mode="replicate")
    tiles = torch.stack([x[..., t : t + s, c : c + s] for t, c in boxes], 1)
    return tiles.flatten(0, 1)


def coverage(boxes, s: int, size, overlap: int | None = None) -> torch.Tensor:
    """(H, W) summed window weights of the tiles over the (padded) image: `blend` divides by it."""
    overlap = default_overlap(s) if overlap is None else overlap
    total = torch.zeros(_padded(size, s))
    for (t, c), win in zip(boxes, _windows(boxes, s, size, overlap)):
        total[t : t + s, c : c + s] += win
    return total


def blend(tiles: torch.Tensor, boxes, size, overlap: int | None = None) -> torch.Tensor:
    """The inverse of `cut`: (B * len(boxes), C, s, s) tiles -> (B, C, *size), each pixel the window-weighted mean
    of the tiles covering it. Accumulates into one image-sized sum (no per-tile full-size map)."""
    s = tiles.shape[-1]
    overlap = default_overlap(s) if overlap is None else overlap
    per = tiles.unflatten(0, (-1, len(boxes)))  # B, N, C, s, s
    total = tiles.new_zeros(*per.shape[:1], tiles.shape[1], *_padded(size, s))
    for k, ((t, c), win) in enumerate(zip(boxes, _windows(boxes, s, size, overlap))):
        total[..., t : t + s, c : c + s] += per[:, k] * win.to(tiles)
    out = total / coverage(boxes, s, size, overlap).to(tiles)
    return out[..., : size[0], : size[1]]


class Tiles:
    """How images of `size` (h, w) are worked on a model of input `side`: a square no larger than the model's
    input is resized to it whole (one row per image, no seams to hide); anything else is cut into the overlapping
    tiles of `tile_boxes` (`count` rows per image) and blended back."""

    def __init__(self, size: tuple[int, int], side: int):
        self.size, self.side = (int(size[0]), int(size[1])), side
        self.fits = self.size[0] == self.size[1] <= side
        self.boxes = None if self.fits else tile_boxes(*self.size, side)
        self.count = 1 if self.fits else len(self.boxes)  # rows (model-input images of PGD work) per image
        self.whole = self.fits and self.size[0] == side  # the model sees the whole image at its own size

    def cut(self, x: torch.Tensor) -> torch.Tensor:
        """(B,C,h,w) -> the (B * count, C, side, side) rows PGD works on."""
        return resize(x, self.side) if self.fits else cut(x, self.boxes, self.side)

    def join(self, rows: torch.Tensor) -> torch.Tensor:
        """The inverse of `cut`: the worked rows -> (B,C,h,w)."""
        return resize(rows, self.size) if self.fits else blend(rows, self.boxes, self.size)
