"""Overlapping, blended tiles (synth.tiles) and super-resolution through them on the tiny 32 px model."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import synth
import synth.tasks
from synth.images import to_tensor
from synth.tiles import Tiles, blend, coverage, cut, default_overlap, tile_boxes

S = 32  # the tiny model's input


def ramp(b: int, h: int, w: int) -> torch.Tensor:
    """A smooth (B,3,h,w) image: linear ramps, different per channel and image."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([torch.stack([yy, xx, (yy + xx) / 2]) * (k + 1) / b for k in range(b)])


def offset_tiles(x: torch.Tensor, boxes, jump: float) -> torch.Tensor:
    """x's tiles, each shifted by its own constant (0 or `jump` in a checkerboard): what independent PGD runs
    might do to neighbouring tiles, at its worst."""
    rows, cols = sorted({t for t, _ in boxes}), sorted({c for _, c in boxes})
    checker = torch.tensor([(rows.index(t) + cols.index(c)) % 2 for t, c in boxes] * len(x))
    return cut(x, boxes, S) + jump * checker.float().view(-1, 1, 1, 1)


def steps(x: torch.Tensor) -> float:
    """The largest difference between horizontally or vertically adjacent pixels."""
    return max(float(x.diff(dim=-1).abs().max()), float(x.diff(dim=-2).abs().max()))


@pytest.mark.parametrize("size", [(80, 104), (33, 97), (97, 33), (20, 50), (48, 80)])
def test_blend_of_cut_gives_the_image_back(size):
    x = ramp(2, *size)
    boxes = tile_boxes(*size, S)
    assert torch.allclose(blend(cut(x, boxes, S), boxes, size), x, atol=1e-6)


def test_no_step_along_tile_lines_on_a_smooth_ramp():
    size, jump = (96, 128), 0.3  # a whole number of tiles, for the old grid
    x = ramp(1, *size)
    # the old abutting grid (no overlap, plain pasting): each tile line is a step of the whole offset
    grid = tile_boxes(*size, S, overlap=0)
    assert len(grid) == 12 and {(t % S, c % S) for t, c in grid} == {(0, 0)}
    pasted = blend(offset_tiles(x, grid, jump), grid, size, overlap=0)
    assert steps(pasted) > jump
    # overlapping tiles blended by raised-cosine windows: the offsets are interpolated across each overlap, one
    # pixel moving at most sin(pi / 2 / overlap) of the offset (0.2 for 8 px) on top of the ramp's own slope
    boxes = tile_boxes(*size, S)
    assert len(boxes) == 20 and len({t for t, _ in boxes}) == 4  # 4 x 5 tiles, 8 px shared
    blended = blend(offset_tiles(x, boxes, jump), boxes, size)
    slope = steps(x)
    assert steps(blended) <= slope + jump * math.sin(math.pi / 2 / default_overlap(S)) + 1e-5
    assert steps(blended) < slope + jump / 4


@pytest.mark.parametrize("size", [(33, 97), (33, 33), (97, 33), (31, 97), (65, 64), (1, 1), (250, 37)])
def test_every_pixel_has_positive_weight(size):
    boxes = tile_boxes(*size, S)
    h, w = max(size[0], S), max(size[1], S)
    assert all(0 <= t <= h - S and 0 <= c <= w - S for t, c in boxes)  # inside the (padded) image: no padding
    weight = coverage(boxes, S, size)[: size[0], : size[1]]
    assert weight.min() > 0.5  # raised cosines that meet sum to 1; a wider overlap only adds
    # neighbours share at least the overlap, and no more tiles are used than that needs
    for n, offsets in ((size[0], {t for t, _ in boxes}), (size[1], {c for _, c in boxes})):
        o = sorted(offsets)
        assert all(b - a <= S - default_overlap(S) for a, b in itertools.pairwise(o))
        assert len(o) == max(1, math.ceil((n - S) / (S - default_overlap(S))) + 1)


def test_tiles_count_the_rows_pgd_works_on():
    assert Tiles((32, 32), S).count == Tiles((20, 20), S).count == Tiles((16, 24), S).count == 1
    assert Tiles((48, 80), S).count == 6  # 2 rows x 3 columns
    assert Tiles((2000, 2000), 224).count == 100  # 10 x 10 tiles of 224 sharing >= 22 px (an abutting grid: 9 x 9)
    assert Tiles((1024, 1024), 224).count == 25  # x4 of 256 px: as many as an abutting grid


@pytest.mark.parametrize("size", [(32, 32), (20, 20), (48, 80), (16, 24)])
def test_tiles_cut_to_the_model_input_and_join_back(size):
    tiles = Tiles(size, S)
    x = torch.rand(2, 3, *size)
    rows = tiles.cut(x)
    assert rows.shape == (2 * tiles.count, 3, S, S)
    back = tiles.join(rows)
    assert back.shape == x.shape
    if not tiles.fits or size[0] == S:  # tiles blend back exactly; a resize there and back is only close
        assert torch.allclose(back, x, atol=1e-6)
    assert tiles.whole == (size == (S, S))


def test_a_plan_counts_tiles_before_any_work(tiny, monkeypatch):
    monkeypatch.setattr(synth.tasks, "optimise", lambda *a, **k: pytest.fail("plan ran PGD"))
    small = Image.new("RGB", (24, 12), "gray")
    p = synth.plan(synth.super_resolve, tiny, [small, small], factor=4, steps=3)
    assert p.outputs == ((96, 48), (96, 48)) and p.rows == (Tiles((48, 96), S).count,) * 2
    assert p.pixel_steps == p.images * S * S * 3
    with pytest.raises(ValueError, match="output would be 96x48: over 0.004 megapixels"):
        p.check_outputs(4000)
    same_size = synth.plan(synth.translate, tiny, Image.new("RGB", (96, 48)), "cat")
    same_size.check_outputs(4000)  # a bound on enlarged images: an output the size of its input is not one


def test_super_resolve_tiles_in_one_pgd_call(tiny, monkeypatch):
    calls = []
    optimise = synth.tasks.optimise

    def spy(model, objective, x0, s, **kw):
        calls.append((tuple(x0.shape), kw["constraints"]))
        return optimise(model, objective, x0, s, **kw)

    monkeypatch.setattr(synth.tasks, "optimise", spy)
    small = Image.frombytes("RGB", (20, 12), bytes(range(256)) * 3)  # 20x12 x4 = 80x48: 3 x 2 tiles of 32
    out = synth.super_resolve(tiny, small, factor=4, steps=3)
    assert out.size == (80, 48)
    # one batch; its one constraint holds the push to the start's detail; the consistency projection is applied
    # to the whole image, once
    assert [shape for shape, _ in calls] == [(6, 3, S, S)] and len(calls[0][1]) == 1
    back = F.avg_pool2d(to_tensor(out), 4)
    assert (back - to_tensor(small)).abs().max() < 1.5 / 255  # consistent with its input, to 8-bit rounding
    # two images of one size: still one call, all their tiles in it
    calls.clear()
    outs = synth.super_resolve(tiny, [small, small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)], factor=4, steps=3)
    assert [o.size for o in outs] == [(80, 48)] * 2 and [c[0] for c in calls] == [(12, 3, S, S)]


def test_super_resolve_small_outputs_keep_one_tile(tiny, monkeypatch):
    calls = []
    optimise = synth.tasks.optimise
    monkeypatch.setattr(
        synth.tasks,
        "optimise",
        lambda m, o, x0, s, **kw: calls.append(len(kw["constraints"])) or optimise(m, o, x0, s, **kw),
    )
    square = Image.frombytes("RGB", (8, 8), bytes(range(192)))
    assert synth.super_resolve(tiny, square, factor=4, steps=2).size == (32, 32)  # the model's size: constrained
    assert synth.super_resolve(tiny, square, factor=2, steps=2).size == (16, 16)  # resized to one tile
    flat = Image.frombytes("RGB", (6, 4), bytes(range(72)))
    out = synth.super_resolve(tiny, flat, factor=4, steps=2)  # 24x16: one padded tile, cropped again
    assert out.size == (24, 16)
    assert (F.avg_pool2d(to_tensor(out), 4) - to_tensor(flat)).abs().max() < 1.5 / 255
    assert calls == [1, 0, 0]  # (one tile: no hold to the start's detail; at the model's size, consistency)


def test_many_tiles_are_worked_in_batches_with_the_same_result(tiny, monkeypatch):
    small = Image.frombytes("RGB", (20, 12), bytes(range(256)) * 3)  # 6 tiles of 32
    one = synth.super_resolve(tiny, small, factor=4, steps=3, precision="fp32")
    monkeypatch.setattr(synth.tasks, "TILE_BATCH_PIXELS", 4 * S * S)  # 4 tiles a batch: batches of 4 and 2
    sizes, progress = [], []
    optimise = synth.tasks.optimise
    monkeypatch.setattr(
        synth.tasks, "optimise", lambda m, o, x0, s, **kw: sizes.append(len(x0)) or optimise(m, o, x0, s, **kw)
    )
    parts = synth.super_resolve(
        tiny, small, factor=4, steps=3, precision="fp32", callback=lambda st: progress.append((st.i, st.steps))
    )
    assert sizes == [4, 2]
    assert progress == [(i, 6) for i in range(1, 7)]  # one progress bar over both batches
    assert (to_tensor(parts) - to_tensor(one)).abs().max() <= 1 / 255  # tiles are independent problems
