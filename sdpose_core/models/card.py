"""Print each SDPose variant's size and cost, to compare with the paper's README table.

    python -m sdpose_core.models.card [--variants sdpose_t sdpose_b]

GFLOPs follow the paper's convention: multiply-accumulates of conv and linear layers for ONE
MCT cycle, without the attention matrix products (as the paper counts them). The attention products and
the all-cycles training cost are printed beside it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from sdpose_core.cli import run_cli
from sdpose_core.models import VARIANT_NAMES, SDPose, build_model

__all__ = ["ModelCard", "model_card", "PAPER"]

# Paper README: params (M), GFLOPs, COCO val AP.
PAPER = {
    "sdpose_t": (4.4, 1.8, 69.7),
    "sdpose_s_v1": (6.6, 2.4, 72.3),
    "sdpose_s_v2": (6.2, 4.7, 73.5),
    "sdpose_b": (13.2, 5.2, 73.7),
}

_MATMUL_OPS = {"convolution", "addmm", "mm", "bmm"}


@dataclass(frozen=True)
class ModelCard:
    name: str
    trainable_params: int
    all_params: int
    gmacs_one_cycle: float  # conv + linear, the paper's "GFLOPs"
    gmacs_attention: float  # q.k^T and attn.v for one cycle
    gmacs_all_cycles: float  # conv + linear with every training cycle


def _dense_gmacs(fn) -> float:
    """Conv + linear GMACs of `fn()`; FlopCounterMode counts 2 FLOPs per multiply-accumulate."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    counts = counter.get_flop_counts()["Global"]
    return sum(v for op, v in counts.items() if str(op).removeprefix("aten.") in _MATMUL_OPS) / 2e9


def _attention_gmacs(model: SDPose) -> float:
    """q.k^T and attn.v of one cycle: per layer 2 * tokens^2 * dim MACs. Counted by formula
    because the fused CPU attention kernel has no FLOP formula in the counter."""
    tokens = model.cfg.num_keypoints + model.cfg.num_patches
    return model.cfg.depth * 2 * tokens**2 * model.cfg.dim / 1e9


def model_card(name: str) -> ModelCard:
    model = build_model(name).eval()
    x = torch.zeros(1, 3, *model.cfg.image_size)
    trainable, total = model.parameter_counts()
    return ModelCard(
        name,
        trainable,
        total,
        gmacs_one_cycle=_dense_gmacs(lambda: model(x)),
        gmacs_attention=_attention_gmacs(model),
        gmacs_all_cycles=_dense_gmacs(lambda: model.forward_cycles(x)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sdpose_core.models.card", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES))
    args = parser.parse_args(argv)
    header = (
        f"{'variant':<12} {'params M':>9} {'(all)':>7} {'paper':>6}  {'GFLOPs':>7} {'paper':>6}"
        f"  {'+attn':>6} {'all cycles':>10} {'paper AP':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in args.variants:
        card = model_card(name)
        params, gflops, ap = PAPER.get(name, (float("nan"),) * 3)
        print(
            f"{name:<12} {card.trainable_params / 1e6:>9.2f} {card.all_params / 1e6:>7.2f} {params:>6.1f}"
            f"  {card.gmacs_one_cycle:>7.2f} {gflops:>6.1f}"
            f"  {card.gmacs_one_cycle + card.gmacs_attention:>6.2f}"
            f" {card.gmacs_all_cycles:>10.2f} {ap:>8.1f}"
        )
    print(
        "params: trainable (the paper's count) and all (with the fixed sine table);"
        " GFLOPs: conv+linear MACs, one MCT cycle"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
