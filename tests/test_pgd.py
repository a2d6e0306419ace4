"""Properties of the one PGD primitive."""

import pytest
import torch
import torch.nn.functional as F

from synth import L2Ball, LinfBall, Settings, class_loss, feature, masked_fidelity, pgd


def ce(model, y):
    return lambda x: F.cross_entropy(model.logits(x).float(), y, reduction="none")


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(4, 3, 32, 32, generator=g), torch.tensor([0, 3, 5, 9])


def test_stays_in_ball_and_box(tiny, batch):
    x0, y = batch
    for ball, eps in [(L2Ball, 1.0), (LinfBall, 0.05)]:
        x = pgd(ce(tiny, y), x0, Settings(eps, 0.5, 10), ball=ball, precision="fp32")
        d = (x - x0).flatten(1)
        size = d.norm(dim=1) if ball is L2Ball else d.abs().max(1).values
        assert (size <= eps + 1e-5).all()
        assert x.min() >= 0 and x.max() <= 1
        assert (size > 0.5 * eps).all()  # it actually moved


@pytest.mark.parametrize("ball", [L2Ball, LinfBall])
def test_a_random_start_is_inside_the_ball_and_repeats_with_its_seed(tiny, batch, ball):
    x0, y = batch
    x0 = 0.25 + 0.5 * x0  # far from the box edges: the start is the ball's point itself
    seen = []
    run = lambda seed: pgd(  # noqa: E731
        ce(tiny, y),
        x0,
        Settings(0.05, 1e-6, 1),
        ball=ball,
        random_start=True,
        generator=torch.Generator().manual_seed(seed),
        precision="fp32",
        callback=lambda s: seen.append(s.x),
    )
    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    d = (a - x0).flatten(1)
    size = d.norm(dim=1) if ball is L2Ball else d.abs().max(1).values
    assert (size <= 0.05 + 1e-5).all() and (size > 0.025).all()


def test_minimise_and_maximise(tiny, batch):
    x0, y = batch
    f = ce(tiny, y)
    lo = pgd(f, x0, Settings(5.0, 0.2, 20), precision="fp32")
    hi = pgd(f, x0, Settings(5.0, 0.2, 20), maximize=True, precision="fp32")
    with torch.no_grad():
        assert (f(lo) < f(x0)).all() and (f(hi) > f(x0)).all()


def test_l2_step_length_is_step_size(tiny, batch):
    x0, y = batch
    x0 = 0.25 + 0.5 * x0  # far from the box edges
    x = pgd(ce(tiny, y), x0, Settings(100.0, 0.05, 1), precision="fp32")
    assert torch.allclose((x - x0).flatten(1).norm(dim=1), torch.full((4,), 0.05), atol=1e-5)


def test_linf_step_is_sign(tiny, batch):
    x0, y = batch
    x0 = 0.25 + 0.5 * x0
    x = pgd(ce(tiny, y), x0, Settings(1.0, 0.01, 1), ball=LinfBall, precision="fp32")
    assert torch.allclose((x - x0).abs().max(), torch.tensor(0.01), atol=1e-6)


def test_batch_equals_one_by_one(tiny, batch):
    x0, y = batch
    together = pgd(ce(tiny, y), x0, Settings(2.0, 0.3, 5), precision="fp32")
    for i in range(4):
        alone = pgd(ce(tiny, y[i : i + 1]), x0[i : i + 1], Settings(2.0, 0.3, 5), precision="fp32")
        assert torch.allclose(
            alone, together[i : i + 1], atol=1e-3
        )  # float reordering only; a batch-wide norm would be off by O(0.1)


def test_bf16_agrees_with_fp32(tiny, batch):
    x0, y = batch
    f = ce(tiny, y)
    a = pgd(f, x0, Settings(3.0, 0.2, 15), precision="fp32")
    b = pgd(f, x0, Settings(3.0, 0.2, 15), precision="bf16")
    with torch.no_grad():
        la, lb = f(a), f(b)
    assert torch.allclose(la, lb, atol=0.05 + 0.1 * la.abs().max().item())


def test_use_best_keeps_lowest(tiny, batch):
    x0, y = batch
    f = ce(tiny, y)
    # a huge step oscillates; the tracked best is never worse than the start or the last iterate
    last = pgd(f, x0, Settings(8.0, 4.0, 6), precision="fp32")
    best = pgd(f, x0, Settings(8.0, 4.0, 6), use_best=True, precision="fp32")
    with torch.no_grad():
        assert (f(best) <= f(last) + 1e-6).all() and (f(best) <= f(x0) + 1e-6).all()


def test_callback_and_cancel(tiny, batch):
    x0, y = batch
    seen = []
    pgd(ce(tiny, y), x0, Settings(1.0, 0.1, 4), callback=lambda s: seen.append((s.i, s.steps, s.x.shape)))
    assert [s[0] for s in seen] == [1, 2, 3, 4] and seen[0][2] == x0.shape

    class Stop(Exception):
        pass

    def cancel(step):
        if step.i == 2:
            raise Stop

    with pytest.raises(Stop):
        pgd(ce(tiny, y), x0, Settings(1.0, 0.1, 100), callback=cancel)


def test_no_parameter_gradients(batch):
    from conftest import make_tiny

    m = make_tiny().requires_grad_(True)
    x0, y = batch
    pgd(ce(m, y), x0, Settings(1.0, 0.1, 2))
    assert all(p.grad is None for p in m.parameters())


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(eps=0), "eps"),
        (dict(eps=-1), "eps"),
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(step_size=0), "step_size"),
        (dict(schedule="cosine"), "schedule"),
        (dict(eps=float("inf")), "eps must be a finite number > 0, got inf"),
        (dict(eps=float("nan")), "eps must be a finite number"),
        (dict(step_size=float("inf")), "step_size must be a finite number"),
        (dict(steps=10**12), "steps must be a whole number from 1 to 100000"),
    ],
)
def test_bad_settings_are_refused_when_made(kw, msg):
    args = dict(eps=1.0, step_size=0.1, steps=2)
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        Settings(**args)


@pytest.mark.parametrize("kw", [dict(eps=float("inf")), dict(step_size=float("nan")), dict(steps=10**12)])
def test_the_python_api_refuses_absurd_numbers_before_any_work(tiny, kw):
    import synth

    with pytest.raises(ValueError, match="must be a"):
        synth.generate(tiny, label="cat", n=1, **kw)


def test_pgd_takes_settings_not_loose_numbers(tiny, batch):
    x0, y = batch
    with pytest.raises(TypeError, match="Settings"):
        pgd(ce(tiny, y), x0, dict(eps=1.0, step_size=0.1, steps=2))
    with pytest.raises(ValueError, match="precision"):
        pgd(ce(tiny, y), x0, Settings(1.0, 0.1, 2), precision="fp8")


def test_objectives_compose(tiny, batch):
    x0, y = batch
    ref, m = x0.clone(), torch.zeros_like(x0)
    obj = class_loss(y) + 10 * masked_fidelity(ref, m)
    assert torch.allclose(obj(tiny, x0), class_loss(y)(tiny, x0))  # no change -> zero penalty
    moved = x0 + 0.1
    assert torch.allclose(masked_fidelity(ref, m)(tiny, moved), torch.full((4,), 0.01), atol=1e-6)
    paint = 0.1 * feature(3) - 90 * masked_fidelity(ref, m)
    assert paint(tiny, x0).shape == (4,)
    assert torch.allclose(paint(tiny, x0), 0.1 * tiny.features(x0)[:, 3])
