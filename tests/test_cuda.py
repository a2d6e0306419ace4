"""On a GPU (skipped without one): the tasks run there, on the folded bf16 copy, and agree with the CPU."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training import test_resume_is_exact as resume_check

import synth
from synth.images import to_tensor

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
SAMPLES = sorted((Path(__file__).parent / "data" / "cifar10_samples").glob("*/0000.jpg"))[:4]


def px(images):
    return torch.stack([to_tensor(im)[0] for im in images])


@pytest.fixture(scope="module")
def models():
    cpu = synth.load_model()  # the in-process cached model: leave it on the CPU for the other tests
    return cpu, copy.deepcopy(cpu).cuda()


def run_all(model, photos):
    masks = [np.zeros((32, 32), np.uint8) for _ in photos]
    for m in masks:
        m[10:20, 12:22] = 255
    small = [p.resize((8, 8), 4) for p in photos]  # PIL.Image.BOX
    return {
        "generate": synth.generate(model, label="cat", n=4, seed=0),
        "inpaint": synth.inpaint(model, photos, masks),
        "super_resolve": synth.super_resolve(model, small, factor=4),
    }


def test_tasks_on_gpu_match_cpu(models):
    from PIL import Image

    cpu, gpu = models
    photos = [Image.open(p).convert("RGB") for p in SAMPLES]
    a, b = run_all(cpu, photos), run_all(gpu, photos)
    assert torch.bfloat16 in gpu.__dict__["_fused"]  # the GPU ran on the bf16 folded copy
    assert next(gpu.__dict__["_fused"][torch.bfloat16][1].parameters()).is_cuda
    for task in a:
        x, y = px(a[task]), px(b[task])
        diff = (x - y).abs().mean().item()
        print(f"{task}: mean |GPU - CPU| {diff:.4f}")
        assert diff < 0.02, f"{task}: GPU and CPU differ by {diff:.4f} on average"
        with torch.no_grad():
            same = (cpu.logits(x).argmax(1) == cpu.logits(y).argmax(1)).float().mean().item()
        assert same >= 0.75, f"{task}: the model's class agrees on only {same:.0%} of GPU vs CPU outputs"


def test_training_resumes_exactly_on_gpu(data, tmp_path):
    # the CPU test's run on the GPU (later flags win): the checkpoint's RNG state comes back to the CPU generator,
    # the CUDA generator's is restored, and with --deterministic the resumed run is bit-exact
    try:
        resume_check(data, tmp_path, extra=("--device", "cuda", "--deterministic"))
    finally:  # --deterministic sets process-wide flags: leave the rest of the session as it was
        torch.use_deterministic_algorithms(False)
