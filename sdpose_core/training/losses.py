"""SDPose training losses (the authors' TokenDistilLoss): GT heatmap supervision of every MCT cycle plus
token self-distillation between consecutive cycles.

Follows MMPose 0.29 ``JointsMSELoss`` and the official ``SDPoseHead.get_loss`` /
``TokenDistilLoss`` arithmetic so that training reproduces the released recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sdpose_core.models import CycleOutputs

__all__ = ["LossWeights", "joints_mse_loss", "token_distill_loss", "cycle_distill_loss", "SDPoseLoss"]


@dataclass(frozen=True)
class LossWeights:
    """Loss weights; the defaults are the official ones (heatmap 1, both distillations 5e-6)."""

    heatmap: float = 1.0
    vis_dist: float = 5e-6
    kpt_dist: float = 5e-6


def joints_mse_loss(pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
    """MMPose 0.29 ``JointsMSELoss(use_target_weight=True)``, loss weight 1, no 1/2 factor.

    pred/target (B,K,H,W), target_weight (B,K,1) or (B,K). Per joint: mean over (B, H*W) of
    (pred*w - target*w)^2 (so the weight enters squared; the same for 0/1 weights), then the
    mean over joints. Equal to one mean over all elements because every joint has B*H*W terms.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            f"pred and target must both be (B,K,H,W), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    b, k = pred.shape[:2]
    weight = target_weight.reshape(b, k, 1, 1).to(pred.dtype)
    return F.mse_loss(pred * weight, target * weight)


def token_distill_loss(student: torch.Tensor, teacher: torch.Tensor, weight: float = 5e-6) -> torch.Tensor:
    """Official ``TokenDistilLoss``: weight x MSE (mean over all elements).

    Deliberately no ``detach`` on either side: in SDPose gradients flow into both cycles.
    """
    return weight * F.mse_loss(student, teacher)


def cycle_distill_loss(tokens: list[torch.Tensor], weight: float = 5e-6) -> torch.Tensor:
    """Chain distillation over cycles: sum over c of ``token_distill_loss(tokens[c], tokens[c+1])``.

    Cycle c is the student and cycle c+1 its teacher; C cycles give C-1 pairs (0 for one cycle).
    """
    if not tokens:
        raise ValueError("need the tokens of at least one cycle")
    total = tokens[0].new_zeros(())
    for student, teacher in zip(tokens[:-1], tokens[1:], strict=True):
        total = total + token_distill_loss(student, teacher, weight)
    return total


class SDPoseLoss(nn.Module):
    """``SDPoseHead.get_loss``: returns ``heatmap_loss``, ``vis_dist_loss``, ``kpt_dist_loss``
    and their sum ``loss`` (the one to back-propagate); the parts are kept for logging."""

    def __init__(self, weights: LossWeights | None = None) -> None:
        super().__init__()
        self.weights = weights or LossWeights()

    def forward(
        self, outputs: CycleOutputs, target: torch.Tensor, target_weight: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if not outputs.heatmaps:
            raise ValueError("outputs hold no cycle")
        heatmap = outputs.heatmaps[0].new_zeros(())
        for cycle_heatmaps in outputs.heatmaps:  # every cycle is supervised by the GT
            heatmap = heatmap + joints_mse_loss(cycle_heatmaps, target, target_weight)
        heatmap = self.weights.heatmap * heatmap
        vis = cycle_distill_loss(outputs.vis_tokens, self.weights.vis_dist)
        kpt = cycle_distill_loss(outputs.kpt_tokens, self.weights.kpt_dist)
        return {
            "heatmap_loss": heatmap,
            "vis_dist_loss": vis,
            "kpt_dist_loss": kpt,
            "loss": heatmap + vis + kpt,
        }
