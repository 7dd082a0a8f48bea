"""The training curves: `log.jsonl`'s losses and validation figures drawn into `curves.png`, kept
apart from the loop so the plotting (matplotlib) is one small function to read or replace.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sdpose_core.jsonio import atomic_path

__all__ = ["plot_log"]


def plot_log(log_path: Path, png_path: Path) -> None:
    """Loss and AP curves from `log.jsonl` into a PNG (written atomically); where the run keeps a
    weight average, its raw weights' figures are drawn dashed beside the average's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in records]
    for key in ("loss", "heatmap_loss"):
        ax_loss.plot(epochs, [r.get(key, math.nan) for r in records], label=key)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("training loss")
    ax_loss.legend()
    for metric in ("AP", "PCK"):
        val = [(r["epoch"], r["val"][metric]) for r in records if metric in r.get("val", {})]
        if val:
            (line,) = ax_ap.plot(*zip(*val, strict=True), marker="o", label=metric)
            # A run with a weight average also scores its raw weights: same colour, dashed.
            raw = [
                (r["epoch"], r["val_train_weights"][metric])
                for r in records
                if metric in r.get("val_train_weights", {})
            ]
            if raw:
                ax_ap.plot(
                    *zip(*raw, strict=True),
                    linestyle="--",
                    marker=".",
                    color=line.get_color(),
                    label=f"{metric}, raw weights",
                )
    ax_ap.set_xlabel("epoch")
    ax_ap.set_title("validation (COCO AP, PCK@0.2)")
    if ax_ap.lines:
        ax_ap.legend()
    fig.tight_layout()
    try:
        with atomic_path(png_path) as tmp:
            fig.savefig(tmp, dpi=80)
    finally:
        plt.close(fig)
