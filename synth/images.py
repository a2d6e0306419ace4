"""Image and mask I/O with clear errors: any PIL mode in, RGB [0,1] tensors inside, PIL out."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

# Size limits of the package: images and masks larger than MAX_PIXELS are refused when read (from the header,
# before decoding); super-resolution refuses outputs over MAX_OUTPUT_PIXELS. The app's tighter limits are its own.
MAX_PIXELS = 100_000_000
MAX_OUTPUT_PIXELS = 16_000_000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageError(ValueError):
    """An input image or mask cannot be used; the message says why."""


Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL itself refuses (DecompressionBombError) past twice this


def check_size(width: int, height: int, what: str = "image") -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(f"{what} is {width}x{height}, larger than {MAX_PIXELS // 1_000_000} megapixels")
    if width < 1 or height < 1:
        raise ImageError(f"{what} is empty")


# A PNG's pixels are deflated, and deflate packs at most 1032 bytes into one: a header declaring more pixel bytes
# than that many times the file's size is lying (a damaged or hostile file) and is refused before it is decoded.
DEFLATE_MAX_RATIO = 1032


def open_file(path) -> Image.Image:
    """An image file opened lazily: only its header is read and its size checked, nothing decoded yet."""
    if not os.path.exists(path):
        raise ImageError(f"no such file: {path}")
    if not os.path.isfile(path):  # a folder, a device (/dev/zero), a pipe: reading it could never end
        raise ImageError(f"{path}: not a regular file")
    try:
        img = Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{path}: not a readable image ({e.__class__.__name__})") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: image is larger than {MAX_PIXELS // 1_000_000} megapixels") from None
    try:
        check_size(img.width, img.height, str(path))
        if img.format == "PNG":
            raw = img.width * img.height * len(img.getbands()) * (16 if img.mode.startswith("I;16") else 8) // 8
            if raw > DEFLATE_MAX_RATIO * os.path.getsize(path) + 1_000_000:
                size = os.path.getsize(path)
                raise ImageError(f"{path}: declares {img.width}x{img.height}, more than its {size:,} bytes can hold")
    except ImageError:
        img.close()
        raise
    return img


def _decoded(img: Image.Image, name: str) -> Image.Image:
    try:
        img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:  # truncated, corrupt
        img.close()  # the file it holds open, now, not at garbage collection (a ResourceWarning)
        raise ImageError(f"{name}: not a readable image ({e.__class__.__name__}: {e})") from None
    return img


def _from_array(arr: np.ndarray) -> Image.Image:
    """uint8 as it is; uint16 and bool scaled by their range; floats in [0,1] (or, if larger, [0,255]); other
    integer types when their values fit 0..255. NaN and infinities are refused."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"array of shape {arr.shape}: expected (H, W) or (H, W, 1|3|4)")
    check_size(arr.shape[1], arr.shape[0], "array")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ImageError("image array contains NaN or infinite values")
        arr = arr * 255 if arr.max() <= 1 else arr
    elif arr.dtype == np.uint16:
        arr = arr / 257
    elif arr.dtype == bool:
        arr = arr * 255
    elif arr.dtype != np.uint8 and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 255):
        raise ImageError(f"{arr.dtype} image array: give uint8, uint16, bool or floats in [0, 1]")
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)


def _open(src) -> Image.Image:
    if isinstance(src, Image.Image):
        check_size(src.width, src.height)
        return _decoded(src, "image")
    if isinstance(src, np.ndarray):
        return _from_array(src)
    if isinstance(src, (str, os.PathLike)):
        return _decoded(open_file(src), str(src))
    raise ImageError(f"expected an image (PIL image, numpy array or file path), got {type(src).__name__}")


def _upright(img: Image.Image) -> Image.Image:
    """EXIF rotation applied; an image without one is returned as it is (exif_transpose would copy it)."""
    return ImageOps.exif_transpose(img) if img.getexif().get(0x0112, 1) != 1 else img


def load_image(src) -> Image.Image:
    """An RGB PIL image from a path/PIL/numpy input: EXIF rotation applied, alpha flattened onto white,
    16-bit and float images scaled to 8 bits, palette/grayscale/CMYK converted. An upright RGB PIL image is
    returned as it is, not copied."""
    img = _upright(_open(src))
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / hi * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")  # (convert copies even an RGB image)


def load_mask(src, size: tuple[int, int], fit: bool = False) -> torch.Tensor:
    """A binary (1,1,H,W) float mask: white/non-zero pixels (or, for images with transparency, painted
    pixels with alpha > 0) are 1. `size` is the (width, height) of the image it belongs to; a mask of another
    size is an error, or, with fit=True (the app, which may downscale a photo), resized to it."""
    return torch.from_numpy(read_mask(src, size, fit).astype(np.float32))[None, None]


def read_mask(src, size: tuple[int, int], fit: bool = False) -> np.ndarray:
    """`load_mask` as a (H,W) bool array: what the crop path needs of a 12 MP mask, at a quarter of the float
    mask's memory."""
    img = _upright(_open(src))
    if img.size != tuple(size) and not fit:
        raise ImageError(
            f"mask is {img.width}x{img.height} but the image is {size[0]}x{size[1]}; a mask must have the image's size"
        )
    if img.mode == "P":
        img = img.convert("RGBA")
    if "A" in img.getbands() and img.getchannel("A").getextrema()[0] < 255:
        m = np.asarray(img.getchannel("A")) > 0
    else:
        a = np.asarray(img.convert("RGB") if img.mode not in ("L", "1", "I", "I;16", "F") else img) > 0
        m = a if a.ndim == 2 else a.any(-1)
    if img.size != tuple(size):
        m = np.asarray(Image.fromarray(m).resize(tuple(size), Image.Resampling.NEAREST))
    return m


def mask_image(mask: torch.Tensor) -> Image.Image:
    """A (1,1,H,W) binary mask as an 'L' image (255 = the region)."""
    return Image.fromarray((mask[0, 0].numpy() * 255).astype(np.uint8), "L")


def check_mask(mask, allow_full: bool = False) -> None:
    """A mask (tensor or array, non-zero = the region) that is empty, or full without allow_full, is an error."""
    m = np.asarray(mask)
    n = np.count_nonzero(m)
    if n == 0:
        raise ImageError("the mask is empty: paint (white) the region to change")
    if n == m.size and not allow_full:
        raise ImageError("the mask covers the whole image: leave some of the image unmasked as context")


def to_tensor(img: Image.Image) -> torch.Tensor:
    """(1,3,H,W) float in [0,1], stored channels-last as PIL's pixels are: converted in one pass (a 12 MP photo in
    90 ms, against 230 for a channels-first copy)."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255)


def to_pil(x: torch.Tensor) -> Image.Image:
    """A (3,H,W) or (1,3,H,W) tensor in [0,1] (clamped, rounded) as an RGB image; in place on one float copy."""
    x = x.detach()[0] if x.dim() == 4 else x.detach()
    arr = x.float().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()
    return Image.fromarray(arr, "RGB")


def resize(x: torch.Tensor, size, mode: str = "bicubic", clamp: bool = True) -> torch.Tensor:
    """Resize (B,C,H,W) to size (int or (h, w)); antialiased when shrinking; 'area' for block averages.
    Images are clamped to [0,1] (bicubic overshoots); pass clamp=False for signed residuals."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    out = F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)
    return out.clamp(0, 1) if clamp else out


def resize_mask(m: torch.Tensor, size) -> torch.Tensor:
    """Binary mask resize that keeps thin strokes: a cell is masked if any of its area is."""
    return (
        (resize(m, size, "area") > 0).float()
        if m.shape[-1] > (size if isinstance(size, int) else size[1])
        else (resize(m, size, "nearest") > 0).float()
    )


def list_images(folder: str | Path) -> list[Path]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ImageError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {folder}")
    return files


def mask_from_layers(layers, size: tuple[int, int], background=None, threshold: float = 0.1) -> "Image.Image":
    """A binary 'L' mask (255 = painted) of `size` (width, height) from image-editor layers.

    `layers` are RGBA arrays/images of brush strokes (as an image editor returns them): a pixel is painted
    where any layer's alpha exceeds `threshold` (semi-transparent strokes count, faint anti-aliasing does
    not). Layers of another size (a resized canvas) are scaled to `size`. Layers without alpha are compared
    with `background` when given (pixels that differ are painted), else their non-black pixels count.
    """
    painted = np.zeros((size[1], size[0]), dtype=bool)
    for layer in layers or []:
        if layer is None:
            continue
        img = _open(layer)
        if img.size != tuple(size):
            img = img.resize(size, Image.Resampling.NEAREST)
        if "A" in img.getbands():
            a = np.asarray(img.getchannel("A"), dtype=np.float32) / 255
            painted |= a > threshold
        elif background is not None:
            bg = load_image(background).resize(size)
            painted |= (np.abs(np.asarray(img.convert("RGB"), np.int16) - np.asarray(bg, np.int16)) > 8).any(-1)
        else:
            painted |= np.asarray(img.convert("L")) > 0
    return Image.fromarray((painted * 255).astype(np.uint8), "L")
