"""Inputs a careless or hostile user gives the Python API: each is refused with a message, or handled, never a
silently wrong image or a huge allocation."""

import numpy as np
import pytest
import torch
from conftest import blank_png
from PIL import Image, ImageFile

import synth
from synth.images import ImageError, load_image, load_mask


def test_size_is_checked_before_decoding(tmp_path, monkeypatch):
    bomb = blank_png(tmp_path / "bomb.png", 13000, 13000)  # 169 megapixels of zeros in a small file
    assert bomb.stat().st_size < 1_000_000

    def no_decoding(self):
        raise AssertionError("the image was decoded before its size was checked")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for read in (load_image, lambda p: load_mask(p, (13000, 13000))):
        with pytest.raises(ImageError, match="13000x13000, larger than 100 megapixels"):
            read(bomb)


def test_a_png_declaring_more_than_its_bytes_can_hold_is_refused_before_decoding(tmp_path, monkeypatch):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)  # 9000x9000 RGB, one row of data: 342 bytes
    lying = tmp_path / "lying.png"
    idat = zlib.compress(bytes(9000 * 3 + 1))
    lying.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    honest = blank_png(tmp_path / "honest.png", 9000, 9000)  # zeros, as deflate packs them at best
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(ImageError, match=r"declares 9000x9000, more than its \d+ bytes can hold"):
        synth.images.open_file(lying)  # before, decoded: 17 s and 3.7 GB
    assert synth.images.open_file(honest).size == (9000, 9000)


def test_a_device_or_folder_is_not_a_regular_file(tmp_path):
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    for path in (tmp_path / "zero.png", tmp_path):
        with pytest.raises(ImageError, match="not a regular file"):  # was "missing" for the device
            load_image(path)


def test_a_refused_file_is_closed_at_once(tmp_path):
    import gc
    import warnings

    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    big = blank_png(tmp_path / "bomb.png", 11000, 11000)
    gc.collect()  # other tests' garbage first: only these files' warnings count
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in (tmp_path / "cut.jpg", big):
            with pytest.raises(ImageError):
                load_image(path)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning) and str(tmp_path) in str(w.message)]


def test_numpy_arrays_are_scaled_by_dtype():
    grey16 = np.full((4, 4), 32768, dtype=np.uint16)
    assert load_image(grey16).getpixel((0, 0)) == (128, 128, 128)  # was clipped to white
    assert load_image(np.full((2, 2, 3), 0.5, dtype=np.float32)).getpixel((0, 0)) == (128, 128, 128)
    assert load_image(np.ones((2, 2), dtype=bool)).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(np.full((2, 2), 7, dtype=np.int64)).getpixel((0, 0)) == (7, 7, 7)
    with pytest.raises(ImageError, match="int64 image array"):
        load_image(np.full((2, 2), 1000, dtype=np.int64))
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((2, 2, 5), dtype=np.uint8))


def test_nan_is_refused(tiny):
    x = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    x[3, 4, 1] = np.nan  # one NaN made the whole image black
    with pytest.raises(ImageError, match="NaN"):
        synth.translate(tiny, x, target="cat", steps=1)


def test_truncated_image_is_a_message(tmp_path):
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(tmp_path / "cut.jpg")
    lazy = Image.open(tmp_path / "cut.jpg")  # a PIL image not yet decoded, as Gradio hands one over
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(lazy)


def test_transparent_mask_read_the_same_everywhere(photo):
    """A mask marked only by transparency: the app (fit=True, after a downscale) reads it as the API does."""
    rgba = Image.new("RGBA", photo.size, (255, 255, 255, 0))
    rgba.paste((255, 255, 255, 255), (10, 10, 30, 20))
    m = load_mask(rgba, photo.size)
    assert m.sum() == 200
    half = load_mask(rgba, (photo.width // 2, photo.height // 2), fit=True)
    assert half.sum() == 50
    with pytest.raises(ImageError, match="size"):
        load_mask(rgba, (photo.width // 2, photo.height // 2))


def test_seed_out_of_range_is_a_message(tiny):
    with pytest.raises(ValueError, match="seed"):
        synth.generate(tiny, "cat", seed=2**70, steps=1)
    with pytest.raises(ValueError, match="seed"):
        synth.generate(tiny, "cat", seed=float("nan"), steps=1)


@pytest.mark.parametrize("kw", [dict(steps=float("nan")), dict(steps="20"), dict(n=float("nan")), dict(n=2.5)])
def test_numbers_that_are_not_whole_are_named(tiny, kw):
    with pytest.raises(ValueError, match=f"{next(iter(kw))} must be a whole number"):
        synth.generate(tiny, "cat", **kw)


def test_tensor_conversions_are_exact_and_clamp():
    from synth.images import to_pil, to_tensor

    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8))
    x = to_tensor(img)
    assert x.shape == (1, 3, 7, 9) and np.array_equal(np.asarray(to_pil(x)), np.asarray(img))
    assert float(x[0, 1, 2, 3]) == float(np.float32(np.asarray(img)[2, 3, 1]) / np.float32(255))
    wild = torch.tensor([-1.0, -0.001, 0.5, 0.999, 1.001, 7.0]).view(1, 3, 1, 2)
    assert np.asarray(to_pil(wild)).ravel().tolist() == [0, 128, 255, 0, 255, 255]  # (R, G, B) per pixel
