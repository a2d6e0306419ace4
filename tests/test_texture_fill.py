"""Inpainting keeps the photo's own texture: the exemplar start (`synth.exemplar`) and `inpaint(fill='texture')`."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import synth
from synth.exemplar import exemplar_fill
from synth.images import to_tensor
from synth.photos import Crops
from synth.starts import smooth_fill

FAST = {"steps": 2}
LAPLACE = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)


def textured(h: int = 300, w: int = 400) -> Image.Image:
    """Fine diagonal stripes (3 px period) under noise: a texture only pixels at full size can hold."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    stripes = 0.5 + 0.35 * np.sin((xx + yy) * 2 * np.pi / 3)
    a = np.clip(stripes[..., None] * [1.0, 0.8, 0.6] + rng.normal(0, 0.05, (h, w, 3)), 0, 1)
    return Image.fromarray((a * 255).astype("uint8"))


def centre_hole(im: Image.Image, side: int) -> tuple[Image.Image, np.ndarray]:
    m = np.zeros((im.height, im.width), bool)
    t, lf = (im.height - side) // 2, (im.width - side) // 2
    m[t : t + side, lf : lf + side] = True
    return Image.fromarray(m.astype("uint8") * 255), m


def detail(img, m: np.ndarray) -> float:
    """Std of the Laplacian inside the hole (its border left out)."""
    x = to_tensor(img) if isinstance(img, Image.Image) else img
    lap = F.conv2d(x.mean(1, keepdim=True), LAPLACE, padding=1)[0, 0].numpy()
    inner = m & np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1)
    return float(lap[inner].std())


def test_exemplar_fill_has_the_texture_the_smooth_fill_lacks():
    im = textured()
    _, m = centre_hole(im, 90)
    x, mask = to_tensor(im), torch.from_numpy(m).float()[None, None]
    own, ex, smooth = detail(x, m), detail(exemplar_fill(x, mask), m), detail(smooth_fill(x, mask), m)
    assert ex > 0.6 * own  # the stripes are drawn in, not averaged away
    assert ex > 10 * smooth
    out = exemplar_fill(x, mask)
    assert torch.equal(out[mask.expand_as(x) == 0], x[mask.expand_as(x) == 0])


@pytest.mark.parametrize("size", [(300, 400), (48, 64)])  # worked on a crop around the hole / the photo whole
def test_texture_inpaint_keeps_the_photo_outside_and_its_texture_inside(tiny, size):
    im = textured(*size)
    mask, m = centre_hole(im, size[0] // 4)
    out = synth.inpaint(tiny, im, mask, **FAST)  # fill='texture' is the default
    assert out.size == im.size
    assert (np.asarray(out)[~m] == np.asarray(im)[~m]).all()
    smooth = synth.inpaint(tiny, im, mask, fill="smooth", **FAST)
    assert detail(out, m) > 3 * detail(smooth, m)
    assert (np.asarray(out)[m] != np.asarray(im)[m]).any()


def test_texture_inpaint_adds_pgds_change_to_the_textured_start(tiny):
    """More steps change the fill, but the start's texture stays under the change (it is added, not resampled)."""
    im = textured()
    mask, m = centre_hole(im, 75)
    crops = Crops([im], [mask], tiny.input_size)
    crops.fill(exemplar_fill)
    start = np.asarray(crops.paste_residual(crops.batch)[0]).astype(float)  # zero change: the start itself
    out = np.asarray(synth.inpaint(tiny, im, mask, steps=8, eps=5.0)).astype(float)
    change = out - start
    assert np.abs(change[m]).mean() > 1  # PGD did something
    assert np.abs(change[~m]).max() == 0
    # the change is smooth (upsampled from the model's size): the start's high frequencies pass through it
    assert detail(Image.fromarray(out.astype("uint8")), m) > 0.8 * detail(Image.fromarray(start.astype("uint8")), m)


def test_a_fixed_seed_gives_the_same_fill(tiny):
    im = textured()
    mask, m = centre_hole(im, 75)
    a = np.asarray(synth.inpaint(tiny, im, mask, seed=3, **FAST))
    b = np.asarray(synth.inpaint(tiny, im, mask, seed=3, **FAST))
    c = np.asarray(synth.inpaint(tiny, im, mask, seed=4, **FAST))
    assert (a == b).all()
    assert (a[m] != c[m]).any()  # the seed drives the fill's random search


def test_a_mask_with_no_patch_outside_falls_back_to_the_membrane_fill():
    x = to_tensor(textured(40, 40))
    mask = torch.ones(1, 1, 40, 40)
    mask[..., :2, :] = 0  # a 2 px strip: no whole 7x7 patch to copy
    out = exemplar_fill(x, mask)
    assert torch.isfinite(out).all() and torch.equal(out[..., :2, :], x[..., :2, :])
    assert detail(out, mask[0, 0].bool().numpy()) < 0.1 * detail(x, np.ones((40, 40), bool))


def test_unknown_fill_is_a_clear_error(tiny, photo, mask48x64):
    with pytest.raises(ValueError, match="fill must be one of texture, smooth, mean"):
        synth.inpaint(tiny, photo, mask48x64, fill="blur", **FAST)


def test_feature_painting_adds_its_change_to_the_photo_unresampled(tiny):
    im = textured()
    mask, m = centre_hole(im, 75)
    out = synth.paint_features(tiny, im, mask, feature=3, steps=8, eps=20.0)
    assert (np.asarray(out)[~m] == np.asarray(im)[~m]).all()
    assert (np.asarray(out)[m] != np.asarray(im)[m]).any()
    assert detail(out, m) > 0.8 * detail(im, m)  # the stripes survive under the painted feature


def test_a_thumbnail_the_model_sees_whole_gets_the_smooth_fill(tiny):
    """A 32 px image on a 32 px model has no finer texture to keep: 'texture' gives exactly the smooth fill's result."""
    im = textured(32, 32)
    mask, _ = centre_hole(im, 10)
    a = synth.inpaint(tiny, im, mask, **FAST)
    b = synth.inpaint(tiny, im, mask, fill="smooth", **FAST)
    assert (np.asarray(a) == np.asarray(b)).all()


def test_cli_fill_and_seed(tiny_dir, tmp_path):
    from synth.cli import main

    im = textured()
    mask, m = centre_hole(im, 75)
    im.save(tmp_path / "p.png"), mask.save(tmp_path / "m.png")
    common = [
        "inpaint",
        "--model",
        str(tiny_dir),
        "--input",
        str(tmp_path / "p.png"),
        "--mask",
        str(tmp_path / "m.png"),
    ]
    for name, extra in [("texture", []), ("smooth", ["--fill", "smooth"]), ("seeded", ["--seed", "5"])]:
        main([*common, *extra, "--steps", "2", "--out", str(tmp_path / name)])
    read = lambda name: np.asarray(Image.open(tmp_path / name / "p.png"))
    assert detail(Image.fromarray(read("texture")), m) > 3 * detail(Image.fromarray(read("smooth")), m)
    assert (read("texture")[m] != read("seeded")[m]).any()
    with pytest.raises(SystemExit):
        main([*common, "--fill", "blur", "--out", str(tmp_path / "x")])
