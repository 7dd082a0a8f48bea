"""StemNet backbone of SDPose-T/S (the authors' backbones/stemnet.py): two stride-2 convs and
four bottlenecks."""

from __future__ import annotations

import torch
from torch import nn

from sdpose_core.models.blocks import Bottleneck, conv_bn

__all__ = ["StemNet", "Stem"]


class Stem(nn.Module):
    """conv1/bn1/conv2/bn2 with ReLUs: 3 -> 64 channels at output stride 4."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(3, 64, 3, stride=2)
        self.conv2, self.bn2 = conv_bn(64, 64, 3, stride=2)
        self.relu = nn.ReLU(inplace=True)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))


class StemNet(Stem):
    """Output (B, 256, H/4, W/4)."""

    out_channels = 256

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(*[Bottleneck(64 if i == 0 else 256, 64) for i in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer1(self.forward_stem(x))
