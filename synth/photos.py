"""Between a user's photos and the model's input: load a batch at the model's size, crop a large photo around the
regions of its mask (`Crops`), and paste results back into the originals at their own size."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .images import check_mask, load_image, read_mask, resize, resize_mask, to_pil, to_tensor


def as_list(x) -> tuple[list, bool]:
    """(items, batched): a list or tuple is a batch, anything else one item."""
    return (list(x), True) if isinstance(x, (list, tuple)) else ([x], False)


def one_or_many(outs: list, batched: bool):
    return outs if batched else outs[0]


def load_batch(images: list, size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The originals as (1,3,H,W) tensors and a (B,3,size,size) batch of them at the model's resolution."""
    originals = [to_tensor(load_image(im)) for im in images]
    return originals, torch.cat([resize(o, size) for o in originals])


def paste_residual(originals, start: torch.Tensor, result: torch.Tensor) -> list:
    """Each original plus the change PGD made (result - start) resized to it: keeps the original's detail at its
    own size."""
    return [to_pil(_with_change(o, s[None], r[None])) for o, s, r in zip(originals, start, result)]


def _with_change(o: torch.Tensor, start: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
    """o (1,3,H,W) plus result - start resized to it, unclamped (to_pil clamps)."""
    mode = "bilinear" if o.shape[-1] >= start.shape[-1] else "area"
    return o + resize(result - start, o.shape[-2:], mode, clamp=False)


# Masked tasks work on a square crop around each region of the mask, as IOPaint's "Crop" strategy does: a small
# hole in a large photo is then worked near the model's own resolution instead of shrunk with the whole photo.
CROP_CONTEXT = 1.5  # crop side / the region's longer side; chosen with benchmarks/sweep_crop_context.py
WHOLE_UP_TO = 2  # photos at most this many model inputs long are worked whole: any crop would be most of them
MOST = 0.5  # crops covering more of a photo than this: one image of all of it is cheaper and has all the context
MAX_CROPS = 16  # more separate regions than this: the photo is worked whole, so a photo costs at most this many images
GRID = 32  # the mask is first read in at most GRID x GRID cells, which bounds the pieces `crop_boxes` merges


def crop_boxes(mask: np.ndarray, size: int, context: float | None = None) -> np.ndarray | None:
    """Disjoint square crops (rows of top, left, bottom, right; exclusive ends) that hold every masked pixel of a
    (H,W) bool mask, or None: work the photo whole (it is small, a region does not fit in a square inside it, or the
    crops would cover over MOST of it or number over MAX_CROPS).

    Each region (touching pieces of the mask) is centred in a square `context` (default CROP_CONTEXT) times its
    longer side, at least the model's input `size` (a tiny hole is not upsampled past 1:1) and at most the photo's
    shorter side, shifted inside the photo. Squares that overlap become the smallest square around them, until
    none do: merging keeps each region's context without growing it in proportion to the merged span."""
    h, w = mask.shape
    if max(h, w) <= WHOLE_UP_TO * size:
        return None
    regions = _joined(_pieces(mask, max(-(-size // 2), -(-max(h, w) // GRID))), gap=1)
    crops = _squares(regions, np.maximum(np.ceil((context or CROP_CONTEXT) * _side(regions)), size), h, w)
    while crops is not None and len(joined := _joined(crops)) < len(crops):
        crops = _squares(joined, _side(joined), h, w)
    if crops is None or len(crops) > MAX_CROPS or (_side(crops) ** 2).sum() > MOST * h * w:
        return None
    return crops


def _pieces(mask: np.ndarray, cell: int) -> np.ndarray:
    """(n,4) boxes (top, left, bottom, right) of the masked pixels in each cell x cell block that has any:
    vectorised, and at most GRID x GRID of them, so a mask of a million specks costs no more than one of a few."""
    h, w = mask.shape
    gh, gw = -(-h // cell), -(-w // cell)
    padded = np.zeros((gh * cell, gw * cell), bool)
    padded[:h, :w] = mask
    blocks = padded.reshape(gh, cell, gw, cell)
    rows, cols = blocks.any(3).transpose(0, 2, 1), blocks.any(1)  # (gh, gw, cell): which rows/columns have any
    gi, gj = np.nonzero(rows.any(2))
    r, c = rows[gi, gj], cols[gi, gj]
    top, left, bottom, right = r.argmax(1), c.argmax(1), cell - r[:, ::-1].argmax(1), cell - c[:, ::-1].argmax(1)
    return np.stack([gi * cell + top, gj * cell + left, gi * cell + bottom, gj * cell + right], 1)


def _side(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def _squares(boxes: np.ndarray, sides: np.ndarray, h: int, w: int) -> np.ndarray | None:
    """Squares of the given sides (at most the photo's shorter one) centred on the boxes and shifted inside the
    h x w photo; None when a box does not fit in its square."""
    c = np.minimum(sides.astype(int), min(h, w))
    if (_side(boxes) > c).any():
        return None
    top = np.clip((boxes[:, 0] + boxes[:, 2] - c) // 2, 0, h - c)
    left = np.clip((boxes[:, 1] + boxes[:, 3] - c) // 2, 0, w - c)
    return np.stack([top, left, top + c, left + c], 1)


def _joined(boxes: np.ndarray, gap: int = 0) -> np.ndarray:
    """One box around each group of boxes that overlap (or come within `gap` pixels, 1: touch) in a chain."""
    t, lf, b, r = boxes.T
    meet = (t[:, None] < b + gap) & (t < b[:, None] + gap) & (lf[:, None] < r + gap) & (lf < r[:, None] + gap)
    i, j = np.nonzero(np.triu(meet, 1))
    if not len(i):
        return boxes
    groups = _groups(i, j, len(boxes))
    return np.array([[*boxes[groups == g, :2].min(0), *boxes[groups == g, 2:].max(0)] for g in np.unique(groups)])


def _groups(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """The connected groups of n items joined by the pairs (i, j): each item's group's smallest member."""
    parent = list(range(n))

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(a) for a in range(n)])


def squares_for(mask: np.ndarray, size: int) -> list[tuple[int, int, int, int]]:
    """The boxes (top, left, bottom, right) a masked task works a (H,W) bool mask's photo in: `crop_boxes`, or the
    whole photo."""
    squares = crop_boxes(mask, size)
    return [(0, 0, *mask.shape)] if squares is None else squares.tolist()


class Crops:
    """The photos of a masked task, their masks and the batch PGD works on: a row per square crop (`crop_boxes`),
    or for a photo worked whole one row of all of it resized, as the unmasked tasks are. Rows of all the photos
    are one batch, photo by photo; results are pasted into the photos inside their masks (into a copy of a photo the
    caller gave as a PIL image), so every pixel outside a mask is the photo's own, bit for bit; only the boxes are
    converted to tensors and back. Pasting is done once: a Crops is used for one call."""

    def __init__(self, images: list, masks: list, size: int, allow_full: bool = False):
        if len(masks) != len(images):
            raise ValueError(f"{len(masks)} masks for {len(images)} images")
        self.photos, self.owned, self.masks = [], [], []
        self.boxes = []  # (photo, top, left, height, width) per row
        for i, (image, mask) in enumerate(zip(images, masks)):
            img = load_image(image)
            m = read_mask(mask, img.size)
            check_mask(m, allow_full=allow_full)
            self.photos.append(img)  # kept as PIL: crops and pastes touch the boxes only, never the whole photo
            self.owned.append(img is not image)  # read from a file or converted: pasted into, not copied
            self.masks.append(m)
            self.boxes += [(i, t, lf, b - t, r - lf) for t, lf, b, r in squares_for(m, size)]
        self.size = size
        self.starts = None  # each row's start at full size, once `fill` made them
        self.batch = torch.cat([resize(self._crop(k), size) for k in range(len(self.boxes))])
        self.batch_masks = torch.cat([resize_mask(self._crop(k, self.masks), size) for k in range(len(self.boxes))])
        self.photo_of = torch.tensor([b[0] for b in self.boxes])  # each row's photo

    def _crop(self, k: int, of=None) -> torch.Tensor:
        """Row k's box of its photo (or, of=self.masks, of its mask) as a (1,C,h,w) float tensor."""
        i, t, lf, h, w = self.boxes[k]
        if of is None:
            return to_tensor(self.photos[i].crop((lf, t, lf + w, t + h)))
        return torch.from_numpy(of[i][t : t + h, lf : lf + w].astype(np.float32))[None, None]

    def finer_than_batch(self) -> bool:
        """Whether any row's box has more pixels than its row of the batch (the model's input) holds."""
        return any(max(h, w) > self.size for *_, h, w in self.boxes)

    def fill(self, fill) -> None:
        """Start every row from fill(crop, crop_mask) at the photo's own resolution: the batch becomes those starts
        at the model's size, and `paste_residual` adds PGD's change to them instead of to the photo."""
        self.starts = [fill(self._crop(k), self._crop(k, self.masks)) for k in range(len(self.boxes))]
        self.batch = torch.cat([resize(s, self.size) for s in self.starts])

    def paste_inside(self, result: torch.Tensor) -> list:
        """Each row of result resized to its box (bicubic) and used inside the mask; elsewhere the photo's own."""
        return self._paste(lambda k, box: resize(result[k : k + 1], box, "bicubic"))

    def paste_residual(self, result: torch.Tensor) -> list:
        """Each row's start (the photo, or `fill`'s start) plus the change PGD made to it (result - batch) resized
        to its box, inside the mask."""
        start = self._crop if self.starts is None else self.starts.__getitem__
        return self._paste(lambda k, box: _with_change(start(k), self.batch[k : k + 1], result[k : k + 1]))

    def _paste(self, new) -> list:
        """The photos with new(k, (h, w)) (1,3,h,w) written into row k's box where the mask is set. All rows are
        made before any is pasted, so a photo of ours (not the caller's: `owned`) is written in place, not copied."""
        pieces = [to_pil(new(k, (h, w))) for k, (_, _, _, h, w) in enumerate(self.boxes)]
        outs = [p if owned else p.copy() for p, owned in zip(self.photos, self.owned)]
        for piece, (i, t, lf, h, w) in zip(pieces, self.boxes):
            inside = Image.fromarray(self.masks[i][t : t + h, lf : lf + w])  # mode "1": pasted where set, as is
            outs[i].paste(piece, (lf, t), inside)
        return outs
