"""Every task end to end on a tiny model, plus the bad inputs a user will try."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import synth
from synth.images import ImageError, load_image, to_tensor

FAST = dict(steps=3)


def arr(img):
    return np.asarray(img).astype(np.int16)


def test_generate(tiny):
    imgs = synth.generate(tiny, label="cat", n=3, seed=0, **FAST)
    assert len(imgs) == 3 and all(i.size == (32, 32) and i.mode == "RGB" for i in imgs)
    again = synth.generate(tiny, label="cat", n=3, seed=0, **FAST)
    assert all((arr(a) == arr(b)).all() for a, b in zip(imgs, again))  # seeded -> reproducible
    other = synth.generate(tiny, label=3, n=3, seed=1, **FAST)
    assert any((arr(a) != arr(b)).any() for a, b in zip(imgs, other))


def test_generate_changes_seed_toward_class(tiny):
    imgs, seeds = synth.generate(tiny, label="dog", n=2, seed=0, steps=20, return_seeds=True)
    y = torch.full((2,), 5)
    ce = synth.class_loss(y)
    before = ce(tiny, torch.cat([to_tensor(s) for s in seeds]))
    after = ce(tiny, torch.cat([to_tensor(i) for i in imgs]))
    assert (after < before).all()


def test_generate_without_seed_bank_warns():
    from conftest import make_tiny

    m = make_tiny(with_seeds=False)
    with pytest.warns(UserWarning, match="generic seed"):
        imgs = synth.generate(m, label=0, n=1, **FAST)
    assert imgs[0].size == (32, 32)


@pytest.mark.parametrize("preset", ["ours", "paper"])
def test_inpaint_keeps_unmasked_pixels(tiny, photo, mask48x64, preset):
    out = synth.inpaint(tiny, photo, mask48x64, preset=preset, **FAST)
    assert out.size == photo.size and out.mode == "RGB"
    m = np.asarray(mask48x64) > 0
    assert (arr(out)[~m] == arr(photo)[~m]).all()
    assert (arr(out)[m] != arr(photo)[m]).any()


def test_paint_keeps_unmasked_pixels(tiny, photo, mask48x64):
    out = synth.paint_features(tiny, photo, mask48x64, feature=5, **FAST)
    assert out.size == photo.size
    m = np.asarray(mask48x64) > 0
    assert (arr(out)[~m] == arr(photo)[~m]).all()
    assert (arr(out)[m] != arr(photo)[m]).any()


def test_translate_sketch_visualize_sizes(tiny, photo):
    assert synth.translate(tiny, photo, target="horse", **FAST).size == photo.size
    assert synth.sketch_to_image(tiny, photo, **FAST).size == photo.size
    frames = synth.visualize(tiny, photo, target="ship", frames=4, **FAST)
    assert len(frames) == 4 and frames[-1].size == (32, 32)
    assert (arr(frames[0]) != arr(frames[-1])).any()


def test_super_resolve(tiny):
    small = Image.fromarray((np.random.default_rng(0).random((8, 8, 3)) * 255).astype("uint8"))
    for start in ("nearest", "bicubic", "backprojected"):
        out = synth.super_resolve(tiny, small, factor=4, start=start, **FAST)
        assert out.size == (32, 32)
    with pytest.raises(ValueError, match="start .* must be one of nearest, bicubic, backprojected; got 'lanczos'"):
        synth.super_resolve(tiny, small, factor=4, start="lanczos")
    # the default ('ours') keeps the result consistent with its input: area-downsampling gives it back
    out = synth.super_resolve(tiny, small, factor=4, steps=3)
    back = F.avg_pool2d(to_tensor(out), 4)
    assert (back - to_tensor(small)).abs().max() < 1.5 / 255  # up to 8-bit rounding
    paper = synth.super_resolve(tiny, small, factor=4, preset="paper", steps=3)
    assert (F.avg_pool2d(to_tensor(paper), 4) - to_tensor(small)).abs().max() > 1.5 / 255  # unconstrained
    big = synth.super_resolve(tiny, small.resize((20, 12)), factor=4, **FAST)  # 80x48 -> tiles of 32
    assert big.size == (80, 48)


def test_super_resolve_holds_flat_areas_flat(tiny):
    """'ours' scales the push by the start's local detail: a flat half stays exactly the grey it was (before, a
    pattern grew on flat areas: a lattice on skies and walls), a textured half still changes; detail=0 lets the
    push act everywhere."""
    rng = np.random.default_rng(0)
    a = np.full((12, 20, 3), 128, np.uint8)
    a[:, 10:] = (rng.random((12, 10, 3)) * 255).astype("uint8")
    small = Image.fromarray(a)
    start = synth.starts.upsample(to_tensor(small), 4, "backprojected")
    out = to_tensor(synth.super_resolve(tiny, small, factor=4, steps=5))
    free = to_tensor(synth.super_resolve(tiny, small, factor=4, steps=5, detail=0))
    flat = (slice(None), slice(None), slice(None), slice(0, 20))  # 20 px from the textured half (from 40 px on)
    assert (out[flat] - 128 / 255).abs().max() < 1 / 255
    assert (free[flat] - 128 / 255).abs().max() > 2 / 255
    assert (out[..., 48:] - start[..., 48:]).abs().max() > 4 / 255  # the textured half gets the push
    with pytest.raises(ValueError, match="detail must be a number >= 0"):
        synth.super_resolve(tiny, small, factor=4, detail=-1)


def test_batch_of_images(tiny, photo, mask48x64):
    outs = synth.inpaint(tiny, [photo, photo], [mask48x64, mask48x64], **FAST)
    assert len(outs) == 2 and (arr(outs[0]) == arr(outs[1])).all()


def test_settings_scale_with_the_model_side_and_fast_keeps_the_paper_path(tiny):
    import copy

    big = copy.copy(tiny)
    big.input_size, big.dataset = 4 * tiny.input_size, "imagenet"
    small = copy.copy(big)
    small.input_size = tiny.input_size
    for task in ("inpaint", "translate", "visualize"):
        a, b = synth.settings(small, task, "paper"), synth.settings(big, task, "paper")
        assert b.eps == pytest.approx(4 * a.eps) and b.step_size == pytest.approx(4 * a.step_size)
        assert a.steps == b.steps
        fast = synth.settings(small, task, "fast")  # the paper's path (at most two diameters) in fewer steps
        assert fast.steps < a.steps and fast.schedule == "linear" and fast.eps == a.eps
        assert fast.step_size * fast.steps / 2 == pytest.approx(min(a.step_size * a.steps, 4 * a.eps))
    # CIFAR-10 generation uses the authors' own CIFAR values, at any side: not scaled from 224 px
    c10 = copy.copy(tiny)
    c10.input_size = 2 * tiny.input_size
    assert synth.settings(c10, "generate", "paper") == synth.settings(tiny, "generate", "paper")
    # super-resolution x7 has the authors' own values (paper); other factors share one
    sr = lambda f, p="paper": synth.settings(tiny, "super_resolve", p, factor=f)  # noqa: E731
    assert sr(7) != sr(4) == sr(8) and sr(7, "ours") == sr(4, "ours")


def test_overrides_and_recipe_choices_win_over_the_preset(tiny):
    assert synth.settings(tiny, "translate", steps=7).steps == 7
    assert synth.settings(tiny, "translate", steps=None) == synth.settings(tiny, "translate")
    assert synth.recipe("super_resolve", "paper", start="bicubic")["start"] == "bicubic"
    # paper is the authors' method (mean fill, soft penalty); ours changes it; fast is the paper's method
    assert synth.recipe("inpaint", "paper") == synth.recipe("inpaint", "fast") != synth.recipe("inpaint")
    with pytest.raises(ValueError, match="preset must be"):
        synth.settings(tiny, "inpaint", "best")
    with pytest.raises(ValueError, match="unknown task"):
        synth.settings(tiny, "sketch")


def test_unknown_class_suggests(tiny):
    with pytest.raises(ValueError, match="did you mean 'cat'"):
        synth.generate(tiny, label="caat", **FAST)
    with pytest.raises(ValueError, match="out of range"):
        synth.generate(tiny, label=10, **FAST)


@pytest.mark.parametrize("kw", [dict(eps=0), dict(eps=-2), dict(steps=0), dict(step_size=-1)])
def test_bad_parameters(tiny, photo, kw):
    with pytest.raises(ValueError, match="must be"):
        synth.translate(tiny, photo, target="cat", **kw)


def test_masks(tiny, photo, mask48x64):
    with pytest.raises(ImageError, match="empty"):
        synth.inpaint(tiny, photo, Image.new("L", photo.size, 0), **FAST)
    with pytest.raises(ImageError, match="whole image"):
        synth.inpaint(tiny, photo, Image.new("L", photo.size, 255), **FAST)
    with pytest.raises(ImageError, match="size"):
        synth.inpaint(tiny, photo, mask48x64.resize((10, 10)), **FAST)
    # RGBA painted strokes: alpha marks the region even when the colour is black
    rgba = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (0, 0, 5, 5))
    m = synth.load_mask(rgba, photo.size)
    assert m.sum() == 25


def test_image_modes_and_exif(tmp_path):
    rgba = Image.new("RGBA", (10, 6), (255, 0, 0, 0))
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    assert load_image(Image.new("L", (4, 4), 128)).mode == "RGB"
    sixteen = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert load_image(sixteen).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(Image.new("P", (4, 4))).mode == "RGB"
    assert load_image(Image.new("CMYK", (4, 4))).mode == "RGB"
    img = Image.new("RGB", (10, 6))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (6, 10)
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")


def test_huge_image_is_resized_and_pasted_back(tiny):
    big = Image.new("RGB", (4000, 3000), (120, 130, 140))
    out = synth.translate(tiny, big, target="cat", steps=2)
    assert out.size == (4000, 3000)


def test_paint_feature_range(tiny, photo, mask48x64):
    with pytest.raises(ValueError, match="feature"):
        synth.paint_features(tiny, photo, mask48x64, feature=10_000, **FAST)


def test_top_features_and_classify(tiny, photo, mask48x64):
    feats = synth.top_features(tiny, photo, mask48x64, k=3)
    assert len(feats) == 3 and feats[0][1] >= feats[1][1]
    top = synth.classify(tiny, photo, top=3)
    assert len(top) == 3 and abs(sum(p for _, p in synth.classify(tiny, photo, top=10)) - 1) < 1e-4


def test_fit_seed_bank_from_folder(tmp_path):
    for k, colour in enumerate([(250, 10, 10), (10, 10, 250)]):
        d = tmp_path / f"c{k}"
        d.mkdir()
        for i in range(4):
            Image.new("RGB", (40, 40), tuple(min(255, c + 3 * i) for c in colour)).save(d / f"{i}.png")
    bank = synth.fit_seed_bank(tmp_path, 16, rank=2)
    assert bank.num_classes == 2 and bank.grain == 1
    x = bank.sample(torch.tensor([0, 1]), torch.Generator().manual_seed(0))
    assert x.shape == (2, 3, 16, 16)
    assert x[0, 0].mean() > 0.8 and x[1, 2].mean() > 0.8  # red seeds for class 0, blue for class 1
    path = tmp_path / "seeds.safetensors"
    bank.save(path)
    assert torch.equal(synth.SeedBank.load(path).mean, bank.mean)


def test_paste_back_keeps_signed_changes(tiny):
    """At the model's own size the pasted-back result is exactly the PGD result (darkening changes too)."""
    img = Image.fromarray((np.random.default_rng(1).random((32, 32, 3)) * 255).astype("uint8"))
    out = synth.translate(tiny, img, target="cat", steps=3)
    s = synth.settings(tiny, "translate", steps=3)
    direct = synth.images.to_pil(synth.tasks.optimise(tiny, synth.class_loss(torch.tensor([3])), to_tensor(img), s)[0])
    assert np.abs(arr(out) - arr(direct)).max() <= 1
    assert (arr(out) < arr(img)).any() and (arr(out) > arr(img)).any()


def test_one_image_gives_one_result_a_list_gives_a_list(tiny, photo, mask48x64):
    calls = [
        lambda x, m: synth.inpaint(tiny, x, m, **FAST),
        lambda x, m: synth.paint_features(tiny, x, m, feature=1, **FAST),
        lambda x, m: synth.translate(tiny, x, target="cat", **FAST),
        lambda x, m: synth.sketch_to_image(tiny, x, **FAST),
        lambda x, m: synth.super_resolve(tiny, x, factor=2, **FAST),
    ]
    for call in calls:
        assert isinstance(call(photo, mask48x64), Image.Image)
        many = call([photo, photo], [mask48x64, mask48x64])
        assert isinstance(many, list) and len(many) == 2 and all(isinstance(i, Image.Image) for i in many)
    frames = synth.visualize(tiny, photo, target="frog", frames=3, **FAST)
    assert len(frames) == 3 and all(isinstance(f, Image.Image) for f in frames)
    strips = synth.visualize(tiny, [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)], "frog", frames=3, **FAST)
    assert len(strips) == 2 and all(len(s) == 3 for s in strips)
    assert (arr(strips[0][0]) == arr(frames[0])).all() and (arr(strips[0][-1]) == arr(frames[-1])).all()


def test_seed_only_where_random(tiny, photo):
    with pytest.raises(TypeError, match="seed"):
        synth.translate(tiny, photo, target="cat", seed=0, **FAST)
