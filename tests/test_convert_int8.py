"""training.convert_int8: a MobileNetV2 quantized and traced here comes back as synth's float mobilenet_v2 holding
exactly the int8 file's dequantized weights, and computes what the int8 model computes."""

import warnings

import pytest
import torch
import torch.nn.functional as F

import synth
from synth.models import DATASET_STATS
from training.convert_int8 import INT8_ENGINE, convert, float_model, int8_layers, load_traced, main

pytestmark = pytest.mark.skipif(
    INT8_ENGINE not in torch.backends.quantized.supported_engines, reason=f"this torch has no {INT8_ENGINE} engine"
)
MEAN, STD = (torch.tensor(v).view(1, 3, 1, 1) for v in DATASET_STATS["imagenet"])
SIZE = 64


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """torchvision's quantizable MobileNetV2 (10 classes) quantized as the 2019 file was (eager mode, fused,
    per-tensor qnnpack qconfig), and its trace saved: (the eager int8 model, the traced file)."""
    import torch.ao.quantization as tq
    from torchvision.models.quantization import mobilenet_v2 as quantizable

    torch.backends.quantized.engine = INT8_ENGINE
    torch.manual_seed(0)
    net = quantizable(quantize=False, num_classes=10)
    x = (torch.rand(64, 3, SIZE, SIZE) - MEAN) / STD
    with torch.no_grad():
        net.train()
        for bn in net.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.momentum = None  # statistics of the batch: activations normalised, as in a trained network
        net(x)
        for block in net.features:  # like a trained network's, residual branches add small corrections; at full
            if getattr(block, "use_res_connect", False):  # gain 17 random blocks amplify int8 rounding to noise
                block.conv[-1].weight.mul_(0.3)
    net.eval().fuse_model()
    net.qconfig = tq.get_default_qconfig(INT8_ENGINE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized dtypes and torch.jit are deprecated
        tq.prepare(net, inplace=True)
        with torch.no_grad():
            net(x)  # calibration
        tq.convert(net, inplace=True)
        path = tmp_path_factory.mktemp("int8") / "mobilenet_int8.pt"
        torch.jit.trace(net, x[:1]).save(str(path))
    return net, path


def test_rebuilt_weights_are_the_files_dequantized_ones_exactly(quantized):
    net, path = quantized
    model = float_model(int8_layers(load_traced(path)), input_size=SIZE)
    assert model.arch == "mobilenet_v2" and model.num_classes == 10 and model.eps == 0
    modules = dict(model.net.named_modules())
    checked = 0
    for name, q in net.named_modules():
        if not (hasattr(q, "weight") and callable(q.weight)):  # the quantized conv / linear layers
            continue
        w, b = q.weight().dequantize(), q.bias()
        layer = modules[name]
        assert torch.equal(layer.weight, w), name
        if isinstance(layer, torch.nn.Linear):
            assert torch.equal(layer.bias, b), name
        else:
            parent, _, i = name.rpartition(".")
            bn = modules[parent][int(i) + 1]
            assert torch.equal(bn.bias, b) and bn.weight.eq(1).all() and bn.running_mean.eq(0).all(), name
        checked += 1
    assert checked == 53  # 52 convolutions and the classifier


def test_float_logits_agree_with_the_int8_model(quantized):
    _, path = quantized
    model = float_model(int8_layers(load_traced(path)), input_size=SIZE)
    traced = load_traced(path)
    x = torch.rand(64, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model.logits(x), traced((x - MEAN) / STD)
    agree = (ours.argmax(1) == theirs.argmax(1)).float().mean()
    cosine = F.cosine_similarity(ours, theirs).min()
    assert agree >= 0.9 and cosine >= 0.99, (agree, cosine)


def test_converted_folder_loads_as_a_synth_model(quantized, tmp_path, capsys):
    _, path = quantized
    main([str(path), "--to", str(tmp_path / "out"), "--input-size", str(SIZE)])
    assert "model.safetensors" in capsys.readouterr().out
    loaded = synth.load_model(tmp_path / "out")
    direct = float_model(int8_layers(load_traced(path)), input_size=SIZE)
    assert loaded.input_size == SIZE and (tmp_path / "out" / "README.md").is_file()
    for k, v in direct.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    half = convert(path, tmp_path / "half", SIZE, half=True)
    assert synth.load_model(half).net.fc.weight.dtype == torch.float32  # stored float16, loaded float32
    assert (half / "model.safetensors").stat().st_size < 0.6 * (tmp_path / "out" / "model.safetensors").stat().st_size


def test_a_file_that_is_not_a_trace_is_one_line(tmp_path, capsys):
    f = tmp_path / "notes.pt"
    f.write_text("not a model")
    with pytest.raises(SystemExit) as e:
        main([str(f), "--to", str(tmp_path / "out")])
    msg = str(e.value.code)
    assert msg.startswith(f"error: {f}:") and "\n" not in msg


def test_imagenet_photos_benchmark_reads_labels_from_wnids_and_measures_both(quantized, tmp_path, capsys):
    """benchmarks.imagenet_photos: a photo's class is its wnid's line; the float conversion and the int8 file are
    measured side by side, at each size, on the standard centre crop."""
    from PIL import Image

    from benchmarks.imagenet_photos import main as photos_main
    from training.data import centre_crop

    _, path = quantized
    folder = convert(path, tmp_path / "model", SIZE)
    wnids = [f"n{i:08d}" for i in range(10)]
    (tmp_path / "wnids.txt").write_text("\n".join(wnids))
    (tmp_path / "photos").mkdir()
    for i, w in enumerate(wnids[:4]):
        Image.new("RGB", (90 + 10 * i, 70), (20 * i, 90, 200)).save(tmp_path / "photos" / f"{w}_thing.jpg")
    flags = f"--wnids {tmp_path / 'wnids.txt'} --models {folder} --sizes 32 48 --int8 {path} --eps 0.5 --steps 1"
    rows = photos_main([str(tmp_path / "photos"), *flags.split()])
    assert len(rows) == 4 and all(0 <= r["clean"] <= 1 for r in rows.values())
    assert rows[f"{folder} @ 32"]["robust"] is not None and "| clean top-1 |" in capsys.readouterr().out
    crop = centre_crop(torch.rand(1, 3, 70, 140), 64)  # short side to 64 * 256 / 224 = 73, then the centre 64
    assert crop.shape == (1, 3, 64, 64)
