"""Architectures: torchvision ResNets and MobileNetV2 for ImageNet-size models, a small CIFAR ResNet for 32x32 ones.

Every network here exposes the same interface used by `RobustModel`:
``trunk(x)`` (everything up to the last activation, pre-activation), ``final_act(z, fake)`` (that activation:
ReLU, or MobileNetV2's ReLU6), ``head(z)`` (pool + flatten -> penultimate vector) and ``fc`` (the classifier).
That lets `features(..., fake_relu=True)` replace exactly the one activation the authors replaced.
"""

from __future__ import annotations

import functools
import threading

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenetv2 as tv_mobilenet
from torchvision.models import resnet as tv_resnet


class FakeReLU(torch.autograd.Function):
    """max(x, 0) forward, identity backward (the authors' `FakeReLU`)."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad


class FakeReLU6(torch.autograd.Function):
    """min(max(x, 0), 6) forward, identity backward: MobileNetV2's last activation, made fake like `FakeReLU`."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(0, 6)

    @staticmethod
    def backward(ctx, grad):
        return grad


def final_relu(z: torch.Tensor, fake_relu: bool) -> torch.Tensor:
    return FakeReLU.apply(z) if fake_relu else F.relu(z)


def final_relu6(z: torch.Tensor, fake_relu: bool) -> torch.Tensor:
    return FakeReLU6.apply(z) if fake_relu else F.relu6(z)


# --- CIFAR ResNet (He et al. 2016, "ResNet-20/32/56", optional width multiplier) -----------------


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x, pre_act: bool = False):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out)) + self.shortcut(x)
        return out if pre_act else F.relu(out)


MAX_CIFAR_DEPTH = 1202  # the deepest in He et al. 2016
MAX_CIFAR_WIDTH = 1024  # far past any trained one; keeps shapes well inside int64 element counts


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs; `width` multiplies the 16/32/64 channel plan."""

    def __init__(self, depth: int = 20, width: int = 1, num_classes: int = 10):
        super().__init__()
        # bounded because names come from untrusted config.json files: a depth of 10^6 would take minutes and
        # gigabytes of module objects even on the meta device, where loaders build a network to check its shapes
        if (depth - 2) % 6 or not 8 <= depth <= MAX_CIFAR_DEPTH:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 in 8..{MAX_CIFAR_DEPTH}, got {depth}")
        if not 1 <= width <= MAX_CIFAR_WIDTH:
            raise ValueError(f"CIFAR ResNet width must be in 1..{MAX_CIFAR_WIDTH}, got {width}")
        n, w = (depth - 2) // 6, [16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(3, w[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        blocks, cin = [], w[0]
        for stage, cout in enumerate(w):
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, 2 if (i == 0 and stage > 0) else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)
        self.num_features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def trunk(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for b in self.blocks[:-1]:
            x = b(x)
        return self.blocks[-1](x, pre_act=True)

    final_act = staticmethod(final_relu)

    def head(self, z):
        return torch.flatten(F.adaptive_avg_pool2d(z, 1), 1)

    def forward(self, x):
        return self.fc(self.head(F.relu(self.trunk(x))))


# --- torchvision ResNets, with the same trunk/head split ------------------------------------------


def _tv_trunk(net: tv_resnet.ResNet, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    x = net.layer3(net.layer2(net.layer1(x)))
    for b in net.layer4[:-1]:
        x = b(x)
    b = net.layer4[-1]  # the last block by hand, stopping before its final ReLU
    identity = x if b.downsample is None else b.downsample(x)
    out = b.relu(b.bn1(b.conv1(x)))
    if isinstance(b, tv_resnet.Bottleneck):
        out = b.relu(b.bn2(b.conv2(out)))
        out = b.bn3(b.conv3(out))
    else:
        out = b.bn2(b.conv2(out))
    return out + identity


class TVResNet(tv_resnet.ResNet):
    """torchvision's ResNet (identical parameter names) plus trunk/head; `base` < 64 narrows every stage (channels
    base, 2 base, 4 base, 8 base) for models small enough to ship and to train on a CPU."""

    def __init__(self, block, layers, num_classes: int, width_per_group: int = 64, base: int = 64):
        self._base = base
        super().__init__(block, layers, num_classes=num_classes, width_per_group=width_per_group)
        if base != 64:  # torchvision builds the stem and classifier at 64 and 512 channels
            self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(base)
            self.fc = nn.Linear(8 * base * block.expansion, num_classes)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:  # the first stage: its input is the (narrowed) stem
            self.inplanes = self._base
        return super()._make_layer(block, planes * self._base // 64, blocks, stride, dilate)

    def trunk(self, x):
        return _tv_trunk(self, x)

    final_act = staticmethod(final_relu)

    def head(self, z):
        return torch.flatten(self.avgpool(z), 1)

    @property
    def num_features(self):
        return self.fc.in_features


TV_ARCHS = {
    # name: (block, layers, width_per_group)
    "resnet18": (tv_resnet.BasicBlock, [2, 2, 2, 2], 64),
    "resnet34": (tv_resnet.BasicBlock, [3, 4, 6, 3], 64),
    "resnet50": (tv_resnet.Bottleneck, [3, 4, 6, 3], 64),
    "resnet101": (tv_resnet.Bottleneck, [3, 4, 23, 3], 64),
    "resnet152": (tv_resnet.Bottleneck, [3, 8, 36, 3], 64),
    "wide_resnet50_2": (tv_resnet.Bottleneck, [3, 4, 6, 3], 128),
    "wide_resnet50_4": (tv_resnet.Bottleneck, [3, 4, 6, 3], 256),
}
NARROW_ARCHS = {"resnet18_half": ("resnet18", 32)}  # name: (torchvision layout, stem channels)


# --- torchvision MobileNetV2 (Sandler et al. 2018), the same split ----------------------------------


class TVMobileNetV2(tv_mobilenet.MobileNetV2):
    """torchvision's MobileNetV2 (identical parameter names: features.*, classifier.1.*) plus trunk/head. The
    trunk stops before the ReLU6 of the last 1x1 convolution (features.18); `fc` is classifier.1 (the dropout
    before it is left out: synthesis and evaluation run the network in eval mode, where it does nothing)."""

    def __init__(self, num_classes: int):
        super().__init__(num_classes=num_classes)

    def trunk(self, x):
        *body, last = self.features
        for m in body:
            x = m(x)
        conv, bn, _ = last  # Conv2dNormActivation: conv, BatchNorm (an Identity once folded), ReLU6
        return bn(conv(x))

    final_act = staticmethod(final_relu6)

    def head(self, z):
        return torch.flatten(F.adaptive_avg_pool2d(z, 1), 1)

    @property
    def fc(self) -> nn.Linear:
        return self.classifier[1]

    @property
    def num_features(self):
        return self.last_channel

    def forward(self, x):
        return self.fc(self.head(F.relu6(self.trunk(x))))


MOBILENET_ARCHS = {"mobilenet_v2": TVMobileNetV2}


def cifar_arch_params(name: str) -> tuple[int, int] | None:
    """'cifar_resnet20' -> (20, 1); 'cifar_resnet20x2' -> (20, 2); other names -> None."""
    if not name.startswith("cifar_resnet"):
        return None
    rest = name[len("cifar_resnet") :]
    depth, _, width = rest.partition("x")
    try:
        return int(depth), int(width or 1)
    except ValueError:
        return None


def list_archs() -> list[str]:
    return (
        sorted(TV_ARCHS)
        + sorted(NARROW_ARCHS)
        + sorted(MOBILENET_ARCHS)
        + ["cifar_resnet<depth>[x<width>] (e.g. cifar_resnet20, cifar_resnet20x2)"]
    )


def build_arch(name: str, num_classes: int) -> nn.Module:
    layout, base = NARROW_ARCHS.get(name, (name, 64))
    if layout in TV_ARCHS:
        block, layers, wpg = TV_ARCHS[layout]
        return TVResNet(block, layers, num_classes=num_classes, width_per_group=wpg, base=base)
    if name in MOBILENET_ARCHS:
        return MOBILENET_ARCHS[name](num_classes)
    params = cifar_arch_params(name)
    if params:
        return CifarResNet(params[0], params[1], num_classes)
    raise ValueError(f"unknown architecture {name!r}; supported: {', '.join(list_archs())}")


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm into the convolution before it (in place; returns `net`): `convN`/`bnN`
    attribute pairs (torchvision and CIFAR ResNets) and Conv2d, BatchNorm2d pairs inside nn.Sequential
    (shortcuts, downsample). Same function, one op fewer per layer - for inference and input gradients only."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for m in list(net.modules()):
        for name, child in list(m.named_children()):
            if isinstance(child, nn.BatchNorm2d) and name.startswith("bn"):
                conv = getattr(m, "conv" + name[2:], None)
                if isinstance(conv, nn.Conv2d):
                    setattr(m, "conv" + name[2:], fuse_conv_bn_eval(conv, child))
                    setattr(m, name, nn.Identity())
        if isinstance(m, nn.Sequential):
            for i in range(len(m) - 1):
                if isinstance(m[i], nn.Conv2d) and isinstance(m[i + 1], nn.BatchNorm2d):
                    m[i], m[i + 1] = fuse_conv_bn_eval(m[i], m[i + 1]), nn.Identity()
    return net


# --- oneDNN weight pre-packing (CPU, bf16) -------------------------------------------------------
# A plain conv hands oneDNN a dense weight, which it reorders into its blocked layout on every call, and into a
# second (transposed) layout for the input gradient. PackedConv2d keeps both reorders, made once per input
# shape, and calls oneDNN's prepacked convolution (forward) and transposed convolution (input gradient). Same
# kernels, bit-identical results; at batch 1 (ResNet-50, 224 px) a PGD step is ~25% faster (bench_pgd.py).
# One exception: a strided conv with few input channels (the stem) gets its input gradient as a polyphase
# stride-1 convolution instead, 2.5x faster and equal up to bf16 rounding.
# These are the private ops torch.compile's CPU backend uses for frozen weights; where they are missing,
# prepack_convolutions changes nothing.


def can_prepack() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    names = ("_convolution_pointwise", "_convolution_transpose_pointwise")
    names += ("_reorder_convolution_weight", "_reorder_convolution_transpose_weight")
    if not (torch.backends.mkldnn.is_available() and all(hasattr(ops, n) for n in names)):
        return False
    # oneDNN packs bf16 weights only where the CPU has bf16 instructions (AVX512-BW/VL/DQ or AVX-NE-CONVERT); on
    # others (AVX2) the reorder raises, and synth's tasks run in fp32 there anyway (`pgd.uses_bf16`)
    supported = getattr(ops, "_is_mkldnn_bf16_supported", None)
    return supported is None or bool(supported())


class _PackedConvFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, conv, packed, input_grad):
        ctx.input_grad = input_grad
        return torch.ops.mkldnn._convolution_pointwise(
            x, packed, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation), 1, "none", [], ""
        )

    @staticmethod
    def backward(ctx, g):  # input gradient only: the weights are frozen
        return ctx.input_grad(g.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)), None, None, None


def _transposed_grad(g, conv, transposed, output_padding):
    """The input gradient as oneDNN's transposed convolution on a pre-packed weight."""
    args = (list(conv.padding), output_padding, list(conv.stride), list(conv.dilation), 1)
    return torch.ops.mkldnn._convolution_transpose_pointwise(g, transposed, None, *args, "none", [], "")


def polyphase_kernel(w: torch.Tensor, stride, padding) -> tuple[torch.Tensor, list[int], list[int]]:
    """The input gradient of conv2d(x, w, stride, padding) (dilation 1) as a stride-1 convolution: returns K,
    dmin, dmax such that pixel_shuffle(conv2d(pad(g), K), stride) is that gradient. Phase r of an axis
    (x[s*a + r]) gets w[u] * g[a + d] for every tap u with d = (r + p - u) / s an integer, so K stacks the
    stride**2 phases as output channels over taps d in dmin..dmax."""
    taps = [
        [(r, u, (r + p - u) // s) for r in range(s) for u in range(k) if (r + p - u) % s == 0]
        for s, p, k in zip(stride, padding, w.shape[2:])
    ]
    dmin = [min(t[2] for t in axis) for axis in taps]
    dmax = [max(t[2] for t in axis) for axis in taps]
    o, c = w.shape[:2]
    k = w.new_zeros(c, *stride, o, dmax[0] - dmin[0] + 1, dmax[1] - dmin[1] + 1)
    for r, u, d in taps[0]:
        for q, v, e in taps[1]:
            k[:, r, q, :, d - dmin[0], e - dmin[1]] = w[:, :, u, v].t()
    return k.reshape(-1, o, *k.shape[-2:]), dmin, dmax


def _polyphase_grad(g, packed, pads, stride, size):
    """The input gradient as a stride-1 convolution (see polyphase_kernel), its phases shuffled into place."""
    out = torch.ops.mkldnn._convolution_pointwise(F.pad(g, pads), packed, None, [0, 0], [1, 1], [1, 1], 1, "none", [], "")  # fmt: skip
    n, _, a, b = out.shape
    out = out.view(n, -1, *stride, a, b).permute(0, 1, 4, 2, 5, 3).reshape(n, -1, a * stride[0], b * stride[1])
    return out[:, :, : size[0], : size[1]]


class PackedConv2d(nn.Module):
    """A frozen bf16 Conv2d (groups 1, zero padding) on pre-packed oneDNN weights; input cast to bf16."""

    max_shapes = 4  # packs kept (each a copy of the weight in two layouts); the oldest input shape goes first
    polyphase_below = 8  # strided convs with fewer input channels: polyphase input gradient (0: never)
    _lock = threading.Lock()

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv
        self.packs: dict[tuple, tuple] = {}

    def _pack(self, shape):
        c, (n, _, h, w) = self.conv, shape
        out = [(s + 2 * p - d * (k - 1) - 1) // st + 1 for s, p, d, k, st in zip((h, w), c.padding, c.dilation, c.kernel_size, c.stride)]  # fmt: skip
        args = (list(c.padding), list(c.stride), list(c.dilation), 1)
        packed = torch.ops.mkldnn._reorder_convolution_weight(c.weight, *args, list(shape))
        if c.in_channels < self.polyphase_below and c.stride != (1, 1) and c.dilation == (1, 1):
            # A strided conv with few input channels (the stem): oneDNN's transposed convolution writes 3 channels,
            # a fraction of a vector, at full resolution (ResNet-50's stem: 3.7 ms/img at batch 8). The same
            # gradient as a stride-1 convolution writing in_channels * stride**2 phases: 1.4 ms/img.
            kernel, dmin, dmax = polyphase_kernel(c.weight, c.stride, c.padding)
            phases = [-(-s // st) for s, st in zip((h, w), c.stride)]  # ceil(size / stride) rows per phase
            pads = [-dmin[1], dmax[1] + phases[1] - out[1], -dmin[0], dmax[0] + phases[0] - out[0]]
            pads_shape = [n, c.out_channels, out[0] + pads[2] + pads[3], out[1] + pads[0] + pads[1]]
            kpacked = torch.ops.mkldnn._reorder_convolution_weight(kernel, [0, 0], [1, 1], [1, 1], 1, pads_shape)
            input_grad = functools.partial(_polyphase_grad, packed=kpacked, pads=pads, stride=c.stride, size=(h, w))
        else:
            op = [s - ((o - 1) * st - 2 * p + d * (k - 1) + 1) for s, o, st, p, d, k in zip((h, w), out, c.stride, c.padding, c.dilation, c.kernel_size)]  # fmt: skip
            transposed = torch.ops.mkldnn._reorder_convolution_transpose_weight(
                c.weight, list(c.padding), op, list(c.stride), list(c.dilation), 1, [n, c.out_channels, *out]
            )
            input_grad = functools.partial(_transposed_grad, conv=c, transposed=transposed, output_padding=op)
        if len(self.packs) >= self.max_shapes:
            self.packs.pop(next(iter(self.packs)))
        self.packs[shape] = (packed, input_grad)
        return self.packs[shape]

    def forward(self, x):
        x = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        shape = tuple(x.shape)
        entry = self.packs.get(shape)
        if entry is None:
            with self._lock:  # the app runs tasks in threads; packing is rare, so one lock for all is enough
                entry = self.packs.get(shape) or self._pack(shape)
        packed, input_grad = entry
        return _PackedConvFn.apply(x, self.conv, packed, input_grad)


def prepack_convolutions(net: nn.Module) -> nn.Module:
    """Wrap every bf16 CPU Conv2d with groups 1 and zero padding in a PackedConv2d (in place; returns `net`).
    For frozen synthesis copies only (no weight gradients, no device moves afterwards)."""
    if not can_prepack():
        return net
    for m in list(net.modules()):
        for name, c in list(m.named_children()):
            if (
                isinstance(c, nn.Conv2d)
                and c.groups == 1
                and c.padding_mode == "zeros"
                and not isinstance(c.padding, str)
                and c.weight.dtype == torch.bfloat16
                and c.weight.device.type == "cpu"
            ):
                setattr(m, name, PackedConv2d(c))
    return net
