"""The SDPose top-down pose model: backbone -> token head (MMPose `TopDown` key layout)."""

from __future__ import annotations

import torch
from torch import nn

from sdpose_core.models.config import ModelConfig
from sdpose_core.models.hrnet import HRNet3Stage
from sdpose_core.models.stemnet import StemNet
from sdpose_core.models.token_head import CycleOutputs, TokenHead

__all__ = ["SDPose"]


class SDPose(nn.Module):
    """SDPose for 256x192 crops.

    * `eval()` mode: `model(x)` runs ONE MCT cycle and returns the cycle-0 heatmaps
      (B, 17, 64, 48), exactly what the official inference keeps.
    * `train()` mode: `model(x)` runs every cycle and returns `CycleOutputs` (heatmaps and
      keypoint/visual tokens per cycle) for the losses.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = StemNet() if cfg.backbone == "stemnet" else HRNet3Stage()
        self.keypoint_head = TokenHead(cfg, self.backbone.out_channels)
        self.init_weights()

    @property
    def tokens(self) -> nn.Module:
        return self.keypoint_head.tokenpose

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 256, 192) normalised crops -> backbone feature (B, C, 64, 48)."""
        return self.backbone(x)

    def forward_cycles(self, x: torch.Tensor, num_cycles: int | None = None) -> CycleOutputs:
        """Every MCT cycle's outputs, in any mode (training, golden tests)."""
        return self.tokens.forward_cycles(self.forward_features(x), num_cycles)

    def forward(self, x: torch.Tensor) -> torch.Tensor | CycleOutputs:
        if self.training:
            return self.forward_cycles(x)
        return self.tokens.forward_first_cycle(self.forward_features(x))

    def init_weights(self) -> None:
        """As the authors initialise: convs N(0, 0.001); linears and keypoint tokens trunc-normal(0.02);
        norms weight 1, bias 0. The sine table is left as built."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.001)
            elif isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.tokens.keypoint_token, std=0.02)

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, all) parameter counts; `all` includes the fixed sine table."""
        params = list(self.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
