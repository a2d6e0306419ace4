"""Start images and constraints: the classical pieces the default preset adds to the paper's method."""

import torch
import torch.nn.functional as F

from synth.pgd import Settings, pgd
from synth.starts import consistent_with, downsample, mean_fill, smooth_fill, upsample


def square_mask(b=2, size=32, at=8, k=10):
    m = torch.zeros(b, 1, size, size)
    m[..., at : at + k, at : at + k] = 1
    return m


def test_smooth_fill_of_constant_image_is_that_constant():
    x = torch.full((2, 3, 32, 32), 0.3)
    m = square_mask()
    x_holed = x * (1 - m)  # what is under the hole must not matter
    assert (smooth_fill(x_holed, m) - 0.3).abs().max() < 1e-6


def test_smooth_fill_interpolates_a_linear_ramp_and_keeps_known_pixels():
    ramp = torch.linspace(0, 1, 48).view(1, 1, 1, 48).expand(1, 3, 48, 48).contiguous()
    m = square_mask(1, 48, 14, 20)
    z = smooth_fill(ramp * (1 - m), m, iters=200)
    assert torch.equal(z * (1 - m), ramp * (1 - m))  # outside the hole: untouched
    inside = (z - ramp).abs()[m.expand_as(z) > 0]
    assert inside.max() < 0.02  # a ramp is harmonic: the fill reproduces it
    mean_err = (mean_fill(ramp, m) - ramp).abs()[m.expand_as(z) > 0].mean()
    assert inside.mean() < mean_err / 5


def test_consistency_projection_is_exact_and_idempotent():
    g = torch.Generator().manual_seed(0)
    small = 0.25 + 0.5 * torch.rand(2, 3, 8, 8, generator=g)
    project = consistent_with(small, 4)
    x = project(0.4 + 0.2 * torch.rand(2, 3, 32, 32, generator=g))  # no pixel hits the box
    assert (downsample(x, 4) - small).abs().max() < 1e-5
    assert (project(x) - x).abs().max() < 1e-5
    # near black/white too: the projection clamps and shifts, and still lands in the set
    dark = torch.full((1, 3, 8, 8), 0.02)
    z = consistent_with(dark, 4)(torch.rand(1, 3, 32, 32, generator=g))
    assert (downsample(z, 4) - dark).abs().max() < 1e-5 and z.min() >= 0


def test_upsampling_starts():
    g = torch.Generator().manual_seed(0)
    x = F.interpolate(torch.rand(4, 3, 8, 8, generator=g), scale_factor=4, mode="bilinear")  # a smooth image
    small = downsample(x, 4)
    near, bic, bp = (upsample(small, 4, mode) for mode in ("nearest", "bicubic", "backprojected"))
    assert torch.allclose(downsample(near, 4), small, atol=1e-6)
    err = lambda z: ((z - x) ** 2).mean()  # noqa: E731
    assert err(bp) < err(bic) < err(near)  # on smooth images, back-projected bicubic is the closest
    assert (downsample(bp, 4) - small).abs().max() < (downsample(bic, 4) - small).abs().max()


def test_pgd_with_consistency_constraint_stays_consistent():
    small = torch.rand(1, 3, 4, 4)
    x0 = upsample(small, 4, "bicubic")
    target = torch.rand(1, 3, 16, 16)
    x = pgd(
        lambda z: ((z - target) ** 2).flatten(1).sum(1),
        x0,
        Settings(5.0, 0.5, 10),
        constraints=[consistent_with(small, 4)],
    )
    assert (downsample(x, 4) - small).abs().max() < 1e-5
    assert (x - x0).abs().max() > 0.01  # it moved, inside the consistent set
