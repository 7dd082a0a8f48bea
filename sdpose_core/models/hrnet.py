"""HRNet-W32 cut after stage 3 (SDPose-B's backbone, the authors' backbones/hrnet_3stage.py).

Non-standard: stage 1 is 128 channels wide (32 x expansion 4), and only the
highest-resolution branch (32 channels, stride 4) is returned.
"""

from __future__ import annotations

import torch
from torch import nn

from sdpose_core.models.blocks import BasicBlock, Bottleneck, conv_bn
from sdpose_core.models.stemnet import Stem

__all__ = ["HRNet3Stage", "HRModule"]

WIDTHS = (32, 64, 128)
BLOCKS_PER_BRANCH = 4


def _conv_bn_relu(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(*conv_bn(in_ch, out_ch, 3, stride=stride), nn.ReLU(inplace=True))


class HRModule(nn.Module):
    """Parallel branches of BasicBlocks followed by all-to-all fusion.

    Output i is ReLU(sum_j f_ij(x_j)), summed in branch order j = 0..n-1.
    """

    def __init__(self, widths: tuple[int, ...], multiscale_output: bool = True) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(w) for _ in range(BLOCKS_PER_BRANCH)]) for w in widths
        )
        num_out = len(widths) if multiscale_output else 1
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(self._fuse(widths, i, j) for j in range(len(widths))) for i in range(num_out)
        )
        self.relu = nn.ReLU(inplace=False)

    @staticmethod
    def _fuse(widths: tuple[int, ...], i: int, j: int) -> nn.Module:
        if i == j:
            return nn.Identity()
        if j > i:  # lower resolution to higher: 1x1 conv, BN, nearest upsampling
            conv, bn = conv_bn(widths[j], widths[i], 1)
            return nn.Sequential(conv, bn, nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
        steps = []  # higher resolution to lower: a chain of stride-2 3x3 convs
        for k in range(i - j):
            last = k == i - j - 1
            conv, bn = conv_bn(widths[j], widths[i] if last else widths[j], 3, stride=2)
            steps.append(nn.Sequential(conv, bn) if last else nn.Sequential(conv, bn, nn.ReLU(inplace=True)))
        return nn.Sequential(*steps)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        outputs = []
        for fuse_row in self.fuse_layers:
            total = fuse_row[0](xs[0])
            for fuse, x in zip(fuse_row[1:], xs[1:], strict=True):
                total = total + fuse(x)
            outputs.append(self.relu(total))
        return outputs


class HRNet3Stage(Stem):
    """Output (B, 32, H/4, W/4)."""

    out_channels = WIDTHS[0]

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(*[Bottleneck(64 if i == 0 else 128, 32) for i in range(4)])
        # Branch 0 keeps the resolution; a new branch nests one level deeper (checkpoint layout).
        self.transition1 = nn.ModuleList(
            [_conv_bn_relu(128, WIDTHS[0], 1), nn.Sequential(_conv_bn_relu(128, WIDTHS[1], 2))]
        )
        self.stage2 = nn.Sequential(HRModule(WIDTHS[:2]))
        # Only the new, third branch needs a transition; it starts from the 64-channel branch.
        self.transition2 = nn.ModuleList(
            [nn.Identity(), nn.Identity(), nn.Sequential(_conv_bn_relu(WIDTHS[1], WIDTHS[2], 2))]
        )
        self.stage3 = nn.Sequential(*[HRModule(WIDTHS, multiscale_output=m < 3) for m in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.forward_stem(x))
        ys = self.stage2([t(x) for t in self.transition1])
        xs = [self.transition2[0](ys[0]), self.transition2[1](ys[1]), self.transition2[2](ys[-1])]
        return self.stage3(xs)[0]
