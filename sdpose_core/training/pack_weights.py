"""Pack a training checkpoint into a small weights file for shipping (no optimiser state).

    python -m sdpose_core.training.pack_weights --src runs/distill_t/latest.pth \\
        --dst assets/weights/sdpose_t_default.pth --half --note "what these weights are"

`--half` stores float16 tensors (half the size); `load_checkpoint` casts them back to the
model's float32 on load. The recipe, epoch and metrics of the run are kept as metadata.
A trainer's checkpoint holds two sets of weights, and the trainer's log scores both each epoch:
the moving average (`state_dict`, packed by default) and the raw weights the optimiser was moving
(`--raw`). At a low learning rate the two score alike on average, but the raw weights swing
several times more from epoch to epoch (docs/training.md, stage 43), so a raw checkpoint that
leads needs a wider margin, and figures it was not chosen on, before it ships.
"""

from __future__ import annotations

import os
from pathlib import Path

from sdpose_core.checkpoint import (
    OUR_FORMAT,
    TRAIN_WEIGHTS_KEY,
    extract_state_dict,
    identify_variant,
    read_checkpoint_file,
    save_payload,
)
from sdpose_core.cli import ArgumentParser, run_cli
from sdpose_core.errors import UserError
from sdpose_core.jsonio import check_outputs
from sdpose_core.training.recipe import portable_recipe_path

__all__ = ["pack_weights"]

KEEP = ("variant", "epoch", "iteration", "recipe", "metrics", "weights")


def _with_raw_weights(checkpoint: dict, src: str | os.PathLike) -> dict:
    """The checkpoint with its raw weights as `state_dict`, labelled so, and their validation score
    as `val` (the trainer's `val` scored the average; it is kept as `val_average`)."""
    if not isinstance(checkpoint.get(TRAIN_WEIGHTS_KEY), dict):
        raise UserError(f"{src} holds no raw weights ({TRAIN_WEIGHTS_KEY}): pack it without --raw")
    packed = {**checkpoint, "state_dict": checkpoint[TRAIN_WEIGHTS_KEY], "weights": "raw"}
    metrics = checkpoint.get("metrics")
    if isinstance(metrics, dict) and "val_train_weights" in metrics:
        metrics = dict(metrics)
        metrics["val_average"] = metrics.pop("val", None)
        metrics["val"] = metrics.pop("val_train_weights")
        packed["metrics"] = metrics
    return packed


def pack_weights(
    src: str | os.PathLike, dst: str | os.PathLike, half: bool = True, note: str = "", raw: bool = False
) -> Path:
    checkpoint = read_checkpoint_file(src)
    if raw:
        checkpoint = _with_raw_weights(checkpoint, src)
    state, _ = extract_state_dict(checkpoint)
    variant = identify_variant(state)
    if variant is None:
        raise UserError(f"{src} is not a checkpoint of a known SDPose variant")
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {"format": OUR_FORMAT, **{k: checkpoint[k] for k in KEEP if k in checkpoint}}
    recipe = payload.get("recipe")
    if isinstance(recipe, dict) and "path" in recipe:  # runs from before recipes named it portably
        payload["recipe"] = {**recipe, "path": portable_recipe_path(recipe["path"])}
    payload.setdefault("weights", "weight average" if TRAIN_WEIGHTS_KEY in checkpoint else "trained")
    payload.update(variant=variant, state_dict=state, note=note, packed_from=Path(src).name)
    return save_payload(dst, payload)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m sdpose_core.training.pack_weights", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--half", action="store_true", help="store float16 tensors")
    parser.add_argument("--note", default="", help="a sentence saying what the weights are")
    parser.add_argument(
        "--raw", action="store_true", help="pack the raw training weights instead of their moving average"
    )
    args = parser.parse_args(argv)
    check_outputs({"--dst": args.dst}, {"--src": args.src})  # packing over --src would lose its optimiser
    path = pack_weights(args.src, args.dst, args.half, args.note, raw=args.raw)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
