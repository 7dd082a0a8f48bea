"""ResNet residual blocks shared by StemNet and HRNet (attribute names match MMPose 0.29)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Bottleneck", "BasicBlock", "conv_bn"]


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """A bias-free conv (padding keeps size at stride 1) and its BatchNorm."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False)
    return conv, nn.BatchNorm2d(out_ch)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 bottleneck with expansion 4 and an optional projected shortcut."""

    expansion = 4

    def __init__(self, in_ch: int, mid_ch: int) -> None:
        super().__init__()
        out_ch = mid_ch * self.expansion
        self.conv1, self.bn1 = conv_bn(in_ch, mid_ch, 1)
        self.conv2, self.bn2 = conv_bn(mid_ch, mid_ch, 3)
        self.conv3, self.bn3 = conv_bn(mid_ch, out_ch, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if in_ch != out_ch:
            self.downsample = nn.Sequential(*conv_bn(in_ch, out_ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut (HRNet branches never change width here)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(channels, channels, 3)
        self.conv2, self.bn2 = conv_bn(channels, channels, 3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)
