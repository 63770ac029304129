"""Reference PyTorch models for the model-zoo specs (a helper script, not a test module).

``REFERENCES`` maps a spec name (``specs/<name>.yaml``) to ``(builder, input_shape)``: ``builder()``
returns the reference model (randomly initialised, in eval mode) and ``input_shape`` is the
spec's ``input`` as ``(C, H, W)`` (no batch dimension). Only specs with a torchvision counterpart
have an entry. Each model family adds its entries in its own clearly marked section below; the
helpers are generic (any ``nn.Module``).

Helpers:

* :func:`module_output_shapes` -- the output shape (batch dim dropped) of every named module,
  from forward hooks; compare with the spec's static per-layer shapes for every shared name.
* :func:`conv_linear_macs` -- multiply-accumulates of every ``nn.Conv2d`` / ``nn.Linear``
  (bias excluded), per sample: torchvision's ``_ops`` convention.
* :func:`param_count` -- number of parameters.

Usage::

    python tests/reference_models.py            # prints params / MACs of every reference
    python tests/reference_models.py googlenet  # and the per-module shapes of one
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "REDUCED_INPUTS",
    "REFERENCES",
    "REGNET_INIT",
    "conv_linear_macs",
    "example_input",
    "module_output_shapes",
    "param_count",
]

Builder = Callable[[], nn.Module]

REFERENCES: dict[str, tuple[Builder, tuple[int, ...]]] = {}


# --------------------------------------------------------------------------------------------
# generic helpers
# --------------------------------------------------------------------------------------------

def example_input(shape: tuple[int, ...], batch: int = 1) -> torch.Tensor:
    """A deterministic random input of ``(batch, *shape)``."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn((batch, *shape), generator=gen)


def _first_tensor(out: object) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]  # namedtuple outputs (GoogLeNetOutputs, InceptionOutputs): the logits
    return None


@torch.no_grad()
def module_output_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """``{qualified module name: output shape without the batch dim}`` for one forward pass.

    Every named module gets a forward hook (the root model is ``""``). A module called more than
    once (e.g. ResNet's shared ``relu``) keeps the shape of its *first* call. Modules that do not
    run (GoogLeNet's aux heads in eval mode) are absent. Non-tensor outputs are skipped.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module, _inputs, output):
            t = _first_tensor(output)
            if t is not None and name not in shapes:
                shapes[name] = tuple(t.shape[1:])
        return hook

    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_hook(make_hook(name)))
        model(x)
    finally:
        for h in handles:
            h.remove()
    return shapes


@torch.no_grad()
def conv_linear_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Per-sample multiply-accumulates of all ``nn.Conv2d`` and ``nn.Linear`` calls (bias excluded).

    conv: output elements * in_channels / groups * kh * kw; linear: output elements * in_features
    (= in * out for a flat input). Every call counts (a module called twice counts twice).
    """
    total = 0
    handles = []
    batch = x.shape[0]

    def conv_hook(m: nn.Conv2d, _inputs, output):
        nonlocal total
        kh, kw = m.kernel_size
        total += output.numel() // batch * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inputs, output):
        nonlocal total
        total += output.numel() // batch * m.in_features

    try:
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                handles.append(module.register_forward_hook(conv_hook))
            elif isinstance(module, nn.Linear):
                handles.append(module.register_forward_hook(linear_hook))
        model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def param_count(model: nn.Module) -> int:
    """Number of parameters (each shared tensor once), buffers excluded."""
    return sum(p.numel() for p in model.parameters())


def _eval(build: Builder) -> Builder:
    def builder() -> nn.Module:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build()
        return model.eval()
    builder.__name__ = getattr(build, "__name__", "builder")
    builder.__doc__ = getattr(build, "__doc__", None)
    return builder


# --------------------------------------------------------------------------------------------
# BEGIN classic & multi-branch families: AlexNet, VGG, SqueezeNet, GoogLeNet, Inception-v3
# (specs/alexnet.yaml, vgg*.yaml, squeezenet1_*.yaml, googlenet.yaml, inception_v3.yaml).
# lenet, alexnet_original, nin, inception_bn and specs/studies/* have no torchvision
# counterpart (their numbers are cited in the specs' comments).
# --------------------------------------------------------------------------------------------

def _classic_references() -> dict[str, tuple[Builder, tuple[int, ...]]]:
    from torchvision import models as tvm

    def googlenet() -> nn.Module:
        # The spec's default aux_logits=false is the architecture of torchvision's pretrained
        # googlenet(weights=DEFAULT) (the builder drops aux1/aux2 after loading; meta num_params
        # 6,624,904). googlenet(weights=None) alone would keep the aux heads (class default True);
        # that variant is CLASSIC_VARIANTS["googlenet_aux"] (spec with --set aux_logits=true).
        return tvm.googlenet(weights=None, aux_logits=False, init_weights=False)

    def inception_v3() -> nn.Module:
        # torchvision's builder default keeps AuxLogits (aux_logits=True, meta num_params 27,161,264)
        # and transform_input=False when weights=None; the spec's defaults are the same.
        return tvm.inception_v3(weights=None, aux_logits=True, transform_input=False, init_weights=False)

    rgb224 = (3, 224, 224)
    return {
        "alexnet": (_eval(lambda: tvm.alexnet(weights=None)), rgb224),
        "vgg11": (_eval(lambda: tvm.vgg11(weights=None)), rgb224),
        "vgg13": (_eval(lambda: tvm.vgg13(weights=None)), rgb224),
        "vgg16": (_eval(lambda: tvm.vgg16(weights=None)), rgb224),
        "vgg19": (_eval(lambda: tvm.vgg19(weights=None)), rgb224),
        "vgg16_bn": (_eval(lambda: tvm.vgg16_bn(weights=None)), rgb224),
        "vgg11_bn": (_eval(lambda: tvm.vgg11_bn(weights=None)), rgb224),
        "vgg13_bn": (_eval(lambda: tvm.vgg13_bn(weights=None)), rgb224),
        "vgg19_bn": (_eval(lambda: tvm.vgg19_bn(weights=None)), rgb224),
        "squeezenet1_0": (_eval(lambda: tvm.squeezenet1_0(weights=None)), rgb224),
        "squeezenet1_1": (_eval(lambda: tvm.squeezenet1_1(weights=None)), rgb224),
        "googlenet": (_eval(googlenet), rgb224),
        "inception_v3": (_eval(inception_v3), (3, 299, 299)),
    }


REFERENCES.update(_classic_references())

# Variants of a spec under parameter overrides: {key: (spec name, overrides, builder, input)}.
# (Not part of REFERENCES, whose keys are spec names.)
CLASSIC_VARIANTS: dict[str, tuple[str, dict, Builder, tuple[int, ...]]] = {}


def _classic_variants() -> None:
    from torchvision import models as tvm

    CLASSIC_VARIANTS["googlenet_aux"] = (
        "googlenet", {"aux_logits": True},
        _eval(lambda: tvm.googlenet(weights=None, aux_logits=True, init_weights=False)), (3, 224, 224))
    CLASSIC_VARIANTS["inception_v3_noaux"] = (
        "inception_v3", {"aux_logits": False},
        _eval(lambda: tvm.inception_v3(weights=None, aux_logits=False, init_weights=False)), (3, 299, 299))
    CLASSIC_VARIANTS["alexnet_10"] = (
        "alexnet", {"num_classes": 10},
        _eval(lambda: tvm.alexnet(weights=None, num_classes=10)), (3, 224, 224))


_classic_variants()

# --------------------------------------------------------------------------------------------
# END classic & multi-branch families
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# BEGIN residual, dense & efficient families: ResNet, ResNeXt, Wide ResNet, CIFAR ResNet,
# SE-ResNet (timm), Inception-v4 (timm), DenseNet, ShuffleNet V2, MobileNetV2/V3, MNASNet,
# EfficientNet V1/V2, ConvNeXt, and the
# studies/basic_block_256 / studies/bottleneck_block_256 blocks
# (specs/resnet*.yaml, resnext*.yaml, wide_resnet*.yaml, resnet_cifar.yaml,
# se_resnet50.yaml, inception_v4.yaml, densenet*.yaml, shufflenet_v2_*.yaml, mobilenet_v*.yaml,
# mnasnet*.yaml, efficientnet_*.yaml, convnext_*.yaml,
# studies/basic_block_256.yaml, studies/bottleneck_block_256.yaml).
# resnet_cifar has no torchvision/timm counterpart: CifarResNet below is a plain PyTorch version of
# He et al. 2015 sec. 4.2 (option-A shortcuts), checked against the paper's parameter counts.
# --------------------------------------------------------------------------------------------

class _CifarBasicBlock(nn.Module):
    """The CIFAR basic block with the option-A shortcut (subsample by 2, zero-pad channels)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad = planes - inplanes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride != 1 or self.pad:
            shortcut = x[:, :, ::self.stride, ::self.stride]
            shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return self.relu(out + shortcut)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for CIFAR (He et al. 2015, sec. 4.2); names as specs/resnet_cifar.yaml.

    Parameters with 10 classes: depth 20 -> 269,722; 32 -> 464,154; 44 -> 658,586;
    56 -> 853,018; 110 -> 1,727,962; 1202 -> 19,421,274 (the paper: 0.27M, 0.46M, 0.66M, 0.85M,
    1.7M, 19.4M).
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 3, width: int = 16):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        inplanes = width
        for stage, planes in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(_CifarBasicBlock(inplanes, planes, stride))
                inplanes = planes
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _residual_references() -> dict[str, tuple[Builder, tuple[int, ...]]]:
    import timm
    from torchvision import models as tvm

    rgb224 = (3, 224, 224)
    refs: dict[str, tuple[Builder, tuple[int, ...]]] = {}
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                 "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
                 "densenet121", "densenet161", "densenet169", "densenet201", "shufflenet_v2_x0_5",
                 "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "mobilenet_v2",
                 "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0",
                 "mnasnet1_3"):
        refs[name] = (_eval(lambda name=name: getattr(tvm, name)(weights=None)), rgb224)
    for name in ("convnext_tiny", "convnext_small", "convnext_base", "convnext_large"):
        refs[name] = (_eval(lambda name=name: getattr(tvm, name)(weights=None)), rgb224)
    # EfficientNet at torchvision's evaluation crop of each (its weights' transforms().crop_size).
    for name, size in (("efficientnet_b0", 224), ("efficientnet_b1", 240), ("efficientnet_b2", 288),
                       ("efficientnet_b3", 300), ("efficientnet_b4", 380), ("efficientnet_b5", 456),
                       ("efficientnet_b6", 528), ("efficientnet_b7", 600), ("efficientnet_v2_s", 384),
                       ("efficientnet_v2_m", 480), ("efficientnet_v2_l", 480)):
        refs[name] = (_eval(lambda name=name: getattr(tvm, name)(weights=None)), (3, size, size))
    refs["resnet_cifar"] = (_eval(lambda: CifarResNet(20)), (3, 32, 32))
    refs["se_resnet50"] = (_eval(lambda: timm.create_model("seresnet50", pretrained=False)), rgb224)
    refs["inception_v4"] = (_eval(lambda: timm.create_model("inception_v4", pretrained=False)),
                            (3, 299, 299))
    return refs


REFERENCES.update(_residual_references())


# RegNet: torchvision computes the stage widths with tensor arithmetic (BlockParams), which the meta
# device cannot run, so the block parameters are computed on the CPU and the network is built on
# whatever device is current. The arguments are each builder's in torchvision/models/regnet.py
# (test_regnet_references_are_torchvisions_builders compares them with torchvision's metadata).
REGNET_INIT: dict[str, dict] = {
    "regnet_y_400mf": {"depth": 16, "w_0": 48, "w_a": 27.89, "w_m": 2.09, "group_width": 8,
                       "se_ratio": 0.25},
    "regnet_y_800mf": {"depth": 14, "w_0": 56, "w_a": 38.84, "w_m": 2.4, "group_width": 16,
                       "se_ratio": 0.25},
    "regnet_y_1_6gf": {"depth": 27, "w_0": 48, "w_a": 20.71, "w_m": 2.65, "group_width": 24,
                       "se_ratio": 0.25},
    "regnet_y_3_2gf": {"depth": 21, "w_0": 80, "w_a": 42.63, "w_m": 2.66, "group_width": 24,
                       "se_ratio": 0.25},
    "regnet_y_8gf": {"depth": 17, "w_0": 192, "w_a": 76.82, "w_m": 2.19, "group_width": 56,
                     "se_ratio": 0.25},
    "regnet_y_16gf": {"depth": 18, "w_0": 200, "w_a": 106.23, "w_m": 2.48, "group_width": 112,
                      "se_ratio": 0.25},
    "regnet_y_32gf": {"depth": 20, "w_0": 232, "w_a": 115.89, "w_m": 2.53, "group_width": 232,
                      "se_ratio": 0.25},
    "regnet_y_128gf": {"depth": 27, "w_0": 456, "w_a": 160.83, "w_m": 2.52, "group_width": 264,
                       "se_ratio": 0.25},
    "regnet_x_400mf": {"depth": 22, "w_0": 24, "w_a": 24.48, "w_m": 2.54, "group_width": 16},
    "regnet_x_800mf": {"depth": 16, "w_0": 56, "w_a": 35.73, "w_m": 2.28, "group_width": 16},
    "regnet_x_1_6gf": {"depth": 18, "w_0": 80, "w_a": 34.01, "w_m": 2.25, "group_width": 24},
    "regnet_x_3_2gf": {"depth": 25, "w_0": 88, "w_a": 26.31, "w_m": 2.25, "group_width": 48},
    "regnet_x_8gf": {"depth": 23, "w_0": 80, "w_a": 49.56, "w_m": 2.88, "group_width": 120},
    "regnet_x_16gf": {"depth": 22, "w_0": 216, "w_a": 55.59, "w_m": 2.1, "group_width": 128},
    "regnet_x_32gf": {"depth": 23, "w_0": 320, "w_a": 69.86, "w_m": 2.0, "group_width": 168},
}


def _regnet(name: str) -> Builder:
    from functools import partial

    from torchvision.models.regnet import BlockParams, RegNet

    def build() -> nn.Module:
        with torch.device("cpu"):
            params = BlockParams.from_init_params(**REGNET_INIT[name])
        return RegNet(params, norm_layer=partial(nn.BatchNorm2d, eps=1e-05, momentum=0.1))
    build.__name__ = name
    return _eval(build)


REFERENCES.update({name: (_regnet(name), (3, 224, 224)) for name in REGNET_INIT})

# Inputs at which tests that run a reference forward on CPU (fvcore's trace) check the largest
# models: the counting rules are the same at any size, and full size would cost the suite tens of
# seconds (efficientnet_b7 at 600x600 is 38 GMACs, regnet_y_128gf 128). Parameters, buffers, MACs and
# every shape
# are still checked at the spec's own input, on the meta device.
REDUCED_INPUTS: dict[str, tuple[int, ...]] = {
    name: (3, 128, 128) for name in ("efficientnet_b4", "efficientnet_b5", "efficientnet_b6",
                                     "efficientnet_b7", "efficientnet_v2_s", "efficientnet_v2_m",
                                     "efficientnet_v2_l", "regnet_x_8gf", "regnet_x_16gf",
                                     "regnet_x_32gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf",
                                     "regnet_y_128gf")}


def _residual_study_references() -> dict[str, tuple[Builder, tuple[int, ...]]]:
    from torchvision.models.resnet import BasicBlock, Bottleneck

    # Each study spec is one block, named like the torchvision block's own submodules.
    return {
        "basic_block_256": (_eval(lambda: BasicBlock(256, 256)), (256, 56, 56)),
        "bottleneck_block_256": (_eval(lambda: Bottleneck(256, 64)), (256, 56, 56)),
    }


# specs/studies/<name>.yaml -> (builder, input); kept out of REFERENCES (whose keys are
# specs/<name>.yaml).
RESIDUAL_STUDY_REFERENCES: dict[str, tuple[Builder, tuple[int, ...]]] = _residual_study_references()

# Variants of a spec under parameter overrides: {key: (spec name, overrides, builder, input)};
# `input` is the spec's input under the overrides (archdsl.load(path, **overrides)).
RESIDUAL_VARIANTS: dict[str, tuple[str, dict, Builder, tuple[int, ...]]] = {}


def _residual_variants() -> None:
    from torchvision import models as tvm

    for depth in (32, 44, 56, 110, 1202):
        RESIDUAL_VARIANTS[f"resnet_cifar_{depth}"] = (
            "resnet_cifar", {"depth": depth}, _eval(lambda depth=depth: CifarResNet(depth)), (3, 32, 32))
    for mult in (0.5, 0.75, 1.4):
        RESIDUAL_VARIANTS[f"mobilenet_v2_{mult}"] = (
            "mobilenet_v2", {"width_mult": mult},
            _eval(lambda mult=mult: tvm.mobilenet_v2(weights=None, width_mult=mult)), (3, 224, 224))
    RESIDUAL_VARIANTS["resnet18_fmnist"] = (  # the course: 1-channel Fashion-MNIST, 10 classes
        "resnet18", {"num_classes": 10, "in_channels": 1},
        _eval(lambda: _with_in_channels(tvm.resnet18(num_classes=10), 1)), (1, 224, 224))
    RESIDUAL_VARIANTS["resnet_cifar_w10_d32"] = (  # the `width` a sweep varies
        "resnet_cifar", {"width": 10, "depth": 32},
        _eval(lambda: CifarResNet(32, width=10)), (3, 32, 32))
    RESIDUAL_VARIANTS["resnet_cifar_fmnist"] = (
        "resnet_cifar", {"in_channels": 1}, _eval(lambda: CifarResNet(20, in_channels=1)), (1, 32, 32))
    RESIDUAL_VARIANTS["densenet121_10"] = (
        "densenet121", {"num_classes": 10}, _eval(lambda: tvm.densenet121(weights=None, num_classes=10)),
        (3, 224, 224))


def _with_in_channels(model: nn.Module, channels: int) -> nn.Module:
    """Replace a ResNet's first conv by the same conv on ``channels`` input channels."""
    old = model.conv1
    model.conv1 = nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                            bias=old.bias is not None)
    return model


_residual_variants()

# --------------------------------------------------------------------------------------------
# END residual, dense & efficient families
# --------------------------------------------------------------------------------------------


def _main(argv: list[str]) -> None:
    names = argv or sorted(REFERENCES)
    for name in names:
        build, shape = REFERENCES[name]
        model = build()
        x = example_input(shape)
        print(f"{name:16s} input={shape} params={param_count(model):>12,d} "
              f"macs={conv_linear_macs(model, x):>15,d}")
        if argv:
            for mod, s in module_output_shapes(model, x).items():
                print(f"    {mod or '<model>':40s} {s}")


if __name__ == "__main__":
    _main(sys.argv[1:])
