"""Masked tasks on large photos: square crops around each region of the mask (synth.photos.crop_boxes, Crops),
one batch for all of them, pasted back so that only masked pixels change."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

import synth
import synth.tasks
from synth.images import resize, to_tensor
from synth.photos import CROP_CONTEXT, MAX_CROPS, crop_boxes

FAST = {"steps": 2}


def noise(h, w, seed=0):
    return Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype("uint8"))


def holes(h, w, *boxes):
    """A bool mask with the (top, left, bottom, right) boxes set."""
    m = np.zeros((h, w), bool)
    for t, lf, b, r in boxes:
        m[t:b, lf:r] = True
    return m


@pytest.fixture
def starts(monkeypatch):
    """The start batch of every `optimise` call the tasks make."""
    seen = []
    real = synth.tasks.optimise

    def spy(model, objective, x0, s, **kw):
        seen.append(x0.clone())
        return real(model, objective, x0, s, **kw)

    monkeypatch.setattr(synth.tasks, "optimise", spy)
    return seen


def test_large_photo_is_worked_on_a_crop_around_the_hole(tiny, starts):
    photo, mask = noise(300, 400), holes(300, 400, (100, 200, 130, 230))
    (crop,) = crop_boxes(mask, 32)
    t, lf, b, r = crop.tolist()
    assert b - t == r - lf == math.ceil(CROP_CONTEXT * 30) and t < 100 and b > 130 and lf < 200 and r > 230
    synth.paint_features(tiny, photo, mask, feature=1, **FAST)  # starts from the photo itself
    expected = resize(to_tensor(np.asarray(photo)[t:b, lf:r]), 32)
    assert len(starts) == 1 and torch.equal(starts[0], expected)


def test_small_photo_is_worked_whole(tiny, photo, mask48x64, starts):
    assert crop_boxes(np.asarray(mask48x64) > 0, 32) is None
    synth.paint_features(tiny, photo, mask48x64, feature=1, **FAST)
    assert torch.equal(starts[0], resize(to_tensor(photo), 32))


def test_mask_covering_most_of_the_photo_is_worked_whole(tiny, starts):
    photo, mask = noise(300, 400), holes(300, 400, (20, 50, 280, 330))
    assert crop_boxes(mask, 32) is None
    synth.inpaint(tiny, photo, mask, **FAST)
    assert starts[0].shape[0] == 1


def test_crops_are_squares_inside_the_photo_that_hold_the_mask_and_do_not_overlap():
    mask = holes(300, 400, (0, 0, 10, 5), (100, 200, 130, 230), (150, 10, 151, 11), (299, 399, 300, 400))
    crops = crop_boxes(mask, 32)
    assert len(crops) == 4
    covered = np.zeros_like(mask, int)
    for t, lf, b, r in crops.tolist():
        assert b - t == r - lf >= 32 and 0 <= t and b <= 300 and 0 <= lf and r <= 400
        covered[t:b, lf:r] += 1
    assert covered.max() == 1 and (covered[mask] == 1).all()
    assert [b - t for t, _, b, _ in crops.tolist() if (t, b) == (134, 166)] == [32]  # 1x1 hole: the model's side


def test_nearby_regions_share_a_crop():
    near = crop_boxes(holes(300, 400, (100, 100, 110, 110), (100, 120, 110, 130)), 32)
    far = crop_boxes(holes(300, 400, (10, 10, 20, 20), (250, 350, 260, 360)), 32)
    assert len(near) == 1 and len(far) == 2


@pytest.mark.parametrize("task", ["inpaint", "paint"])
@pytest.mark.parametrize("boxes", [[(100, 200, 130, 230)], [(0, 0, 12, 20), (100, 200, 130, 230), (150, 10, 151, 11)]])
def test_only_masked_pixels_change(tiny, task, boxes, starts):
    photo, mask = noise(300, 400), holes(300, 400, *boxes)
    if task == "inpaint":
        out = synth.inpaint(tiny, photo, mask, **FAST)
    else:
        out = synth.paint_features(tiny, photo, mask, feature=3, **FAST)
    a, p = np.asarray(out), np.asarray(photo)
    assert out.size == photo.size and (a[~mask] == p[~mask]).all() and (a[mask] != p[mask]).any()
    assert len(starts) == 1 and starts[0].shape == (len(boxes), 3, 32, 32)  # every region in one PGD batch


def test_the_callers_photo_is_not_written_to(tiny, tmp_path):
    photo, mask = noise(300, 400), holes(300, 400, (100, 200, 130, 230))
    before = photo.tobytes()
    photo.save(tmp_path / "p.png")
    from_pil = synth.paint_features(tiny, photo, mask, feature=3, **FAST)
    from_file = synth.paint_features(tiny, tmp_path / "p.png", mask, feature=3, **FAST)  # read here: pasted in place
    assert photo.tobytes() == before and from_pil is not photo
    assert from_file.tobytes() == from_pil.tobytes()


def test_all_crops_of_all_photos_are_one_batch_with_a_label_per_photo(tiny, starts):
    photos = [noise(300, 400), noise(48, 64, seed=1)]
    masks = [holes(300, 400, (10, 10, 20, 20), (250, 350, 260, 360)), holes(48, 64, (10, 20, 30, 40))]
    outs = synth.inpaint(tiny, photos, masks, label=["cat", "dog"], **FAST)
    assert [o.size for o in outs] == [(400, 300), (64, 48)] and starts[0].shape[0] == 3
    rows = torch.tensor([0, 0, 1])
    assert synth.tasks._labels(tiny, ["cat", "dog"], starts[0], photo_of=rows).tolist() == [3, 3, 5]


def test_scattered_specks_are_bounded(tiny, starts):
    g = np.random.default_rng(0)
    mask = np.zeros((500, 500), bool)
    mask[g.integers(0, 500, 300), g.integers(0, 500, 300)] = True
    crops = crop_boxes(mask, 32)
    assert crops is None or len(crops) <= MAX_CROPS
    photo = noise(500, 500)
    out = np.asarray(synth.inpaint(tiny, photo, mask, **FAST))
    assert (out[~mask] == np.asarray(photo)[~mask]).all() and starts[0].shape[0] <= MAX_CROPS


def test_large_photo_with_ten_regions(tiny, starts):
    photo = Image.new("RGB", (4096, 4096), (120, 130, 140))
    mask = holes(4096, 4096, *[(400 * k, 350 * k + 9, 400 * k + 20, 350 * k + 29) for k in range(10)])
    out = np.asarray(synth.inpaint(tiny, photo, mask, steps=1))
    assert starts[0].shape == (10, 3, 32, 32) and (out[~mask] == (120, 130, 140)).all()
