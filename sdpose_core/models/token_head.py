"""SDPose token head: patch tokens + keypoint tokens through a weight-shared, multi-cycled
transformer (MCT), then an MLP that turns each keypoint token into a heatmap (the authors'
`SDPose` class in distilpose/models/heads/utils/tokenbase.py).

Module nesting (`Residual(PreNorm(...))`, `to_out.0`, `net.0`/`net.3`) follows the official
checkpoint keys, so the authors' weights load strictly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sdpose_core.models.config import ModelConfig

__all__ = ["sine_position_table", "TokenHead", "SDPoseTokens", "CycleOutputs"]


def sine_position_table(grid_h: int, grid_w: int, dim: int = 192) -> torch.Tensor:
    """The fixed 2-D sine table of the authors' `pos_embedding`, shape (1, grid_h*grid_w, dim), float32."""
    half = dim // 2
    two_pi = 2 * math.pi
    y = (torch.arange(1, grid_h + 1, dtype=torch.float32) / (grid_h + 1e-6) * two_pi)[:, None]
    x = (torch.arange(1, grid_w + 1, dtype=torch.float32) / (grid_w + 1e-6) * two_pi)[None, :]
    m = torch.arange(half, dtype=torch.float32)
    omega = 10000 ** (2 * torch.div(m, 2, rounding_mode="floor") / half)
    y_part = y[..., None].expand(grid_h, grid_w, 1) / omega  # (gh, gw, half)
    x_part = x[..., None].expand(grid_h, grid_w, 1) / omega
    even = m % 2 == 0
    y_emb = torch.where(even, torch.sin(y_part), torch.cos(y_part))
    x_emb = torch.where(even, torch.sin(x_part), torch.cos(x_part))
    return torch.cat([y_emb, x_emb], dim=-1).reshape(1, grid_h * grid_w, dim)


class PreNorm(nn.Module):
    """LayerNorm, then `fn`."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class Residual(nn.Module):
    """x + fn(x)."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fn(x)


class Attention(nn.Module):
    """Multi-head self-attention; logits scaled by the per-head width (24), no mask."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.to_qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # scale = head_dim ** -0.5
        return self.to_out(out.transpose(1, 2).reshape(b, n, c))


class FeedForward(nn.Module):
    """Linear -> exact GELU -> Linear (indices 0 and 3 as in the checkpoint)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Identity(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Transformer(nn.Module):
    """Pre-norm transformer; before every layer but the first, the sine table is re-added
    to the visual tokens ("sine-full", as the authors' transformer)."""

    def __init__(self, dim: int, depth: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    Residual(PreNorm(dim, Attention(dim, heads))),
                    Residual(PreNorm(dim, FeedForward(dim, ffn_dim))),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor, padded_pos: torch.Tensor) -> torch.Tensor:
        """`padded_pos` is (1, K+N, dim) with zeros over the K keypoint tokens."""
        for index, (attention, feed_forward) in enumerate(self.layers):
            if index > 0:
                x = x + padded_pos
            x = feed_forward(attention(x))
        return x


@dataclass
class CycleOutputs:
    """Per-cycle outputs of the MCT, index 0 = first cycle (the one inference uses).

    heatmaps: list of (B, K, 64, 48); kpt_tokens: list of (B, K, dim); vis_tokens: list of (B, N, dim).
    """

    heatmaps: list[torch.Tensor]
    kpt_tokens: list[torch.Tensor]
    vis_tokens: list[torch.Tensor]


class SDPoseTokens(nn.Module):
    """The official `tokenpose` module: embedding, the shared transformer and `mlp_head`."""

    def __init__(self, cfg: ModelConfig, in_channels: int) -> None:
        super().__init__()
        self.cfg = cfg
        ph, pw = cfg.patch_size
        gh, gw = cfg.grid_size
        self.keypoint_token = nn.Parameter(torch.zeros(1, cfg.num_keypoints, cfg.dim))
        self.pos_embedding = nn.Parameter(sine_position_table(gh, gw, cfg.dim), requires_grad=False)
        self.patch_to_embedding = nn.Linear(ph * pw * in_channels, cfg.dim)
        self.transformer_layer1 = Transformer(cfg.dim, cfg.depth, cfg.heads, cfg.ffn_dim)
        # Two linears with no activation between them, as the authors' mlp_head.
        self.mlp_head = nn.Sequential(
            nn.LayerNorm(cfg.dim),
            nn.Linear(cfg.dim, cfg.heatmap_hidden_dim),
            nn.LayerNorm(cfg.heatmap_hidden_dim),
            nn.Linear(cfg.heatmap_hidden_dim, cfg.heatmap_size[0] * cfg.heatmap_size[1]),
        )

    def embed(self, feature: torch.Tensor) -> torch.Tensor:
        """(B, C, 64, 48) feature -> (B, K+N, dim) token sequence, keypoint tokens first."""
        b, c, h, w = feature.shape
        ph, pw = self.cfg.patch_size
        gh, gw = h // ph, w // pw
        # Token t = gy*gw + gx; inside a token the checkpoint's layout is (dy, dx, c), channel
        # fastest. The linear over each patch is run as a strided convolution with the same
        # weights: identical sums, without the 6-D permute of the whole feature map, which
        # cost about 7 % of an fp32 crop in ONNX Runtime and 12 % of an int8 one.
        linear = self.patch_to_embedding
        kernel = linear.weight.reshape(-1, ph, pw, c).permute(0, 3, 1, 2)
        patches = F.conv2d(feature, kernel, linear.bias, stride=(ph, pw))
        tokens = patches.flatten(2).transpose(1, 2) + self.pos_embedding[:, : gh * gw]
        return torch.cat([self.keypoint_token.expand(b, -1, -1), tokens], dim=1)

    def heatmaps(self, kpt_tokens: torch.Tensor) -> torch.Tensor:
        """(B, K, dim) keypoint tokens -> (B, K, 64, 48) heatmaps (row-major, no activation)."""
        b, k, _ = kpt_tokens.shape
        return self.mlp_head(kpt_tokens).reshape(b, k, *self.cfg.heatmap_size)

    def _padded_pos(self) -> torch.Tensor:
        return F.pad(self.pos_embedding, (0, 0, self.cfg.num_keypoints, 0))

    def forward_first_cycle(self, feature: torch.Tensor) -> torch.Tensor:
        """Inference: one MCT cycle, cycle-0 heatmaps. Later cycles never change cycle 0."""
        x = self.transformer_layer1(self.embed(feature), self._padded_pos())
        return self.heatmaps(x[:, : self.cfg.num_keypoints])

    def forward_cycles(self, feature: torch.Tensor, num_cycles: int | None = None) -> CycleOutputs:
        """Training: run the same transformer `num_cycles` times (default `cfg.cycle_num`),
        each cycle taking the whole output sequence of the previous one."""
        k = self.cfg.num_keypoints
        pos = self._padded_pos()
        x = self.embed(feature)
        out = CycleOutputs([], [], [])
        for _ in range(num_cycles or self.cfg.cycle_num):
            x = self.transformer_layer1(x, pos)
            out.kpt_tokens.append(x[:, :k])
            out.vis_tokens.append(x[:, k:])
            out.heatmaps.append(self.heatmaps(x[:, :k]))
        return out


class TokenHead(nn.Module):
    """`keypoint_head`: holds only `tokenpose` (the official `SDPoseHead` layout)."""

    def __init__(self, cfg: ModelConfig, in_channels: int) -> None:
        super().__init__()
        self.tokenpose = SDPoseTokens(cfg, in_channels)
