"""Train an SDPose variant: every MCT cycle supervised by the GT heatmaps plus token
self-distillation between consecutive cycles (the authors' TokenDistilLoss).

    python -m sdpose_core.training.train --config configs/sdpose_t.yaml --data-root DIR \\
        --train-ann FILE --val-ann FILE --work-dir DIR [--epochs N] [--batch-size B] \\
        [--device cpu|cuda] [--resume] [--time-budget MINUTES]

Multi-GPU: the same command under `torchrun --nproc_per_node K` (PyTorch DDP). The work dir
gets `log.jsonl` (one line per epoch), `curves.png`, `latest.pth` and `best.pth` (our
checkpoint format, written atomically; `load_checkpoint` and the app read them), and
`recipe.yaml`, the recipe as it ran (after any `--time-budget` compression).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from sdpose_core.cli import run_cli
from sdpose_core.data import DataError
from sdpose_core.errors import UserError
from sdpose_core.training.recipe import load_recipe
from sdpose_core.training.trainer import Trainer, TrainingDiverged, TrainPaths

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from sdpose_core.cli import ArgumentParser, positive_int

    p = ArgumentParser(prog="python -m sdpose_core.training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="variant name or recipe YAML (configs/)")
    p.add_argument("--data-root", required=True, help="folder of the training images")
    p.add_argument("--train-ann", required=True, help="COCO keypoint annotation file for training")
    p.add_argument("--val-ann", help="COCO keypoint annotation file for validation")
    p.add_argument("--val-root", help="folder of the validation images (default: --data-root)")
    p.add_argument("--val-det", help="person detections (COCO results json) for validation boxes")
    p.add_argument("--work-dir", required=True, help="where logs, curves and checkpoints go")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int, help="per GPU")
    p.add_argument("--lr", type=float)
    p.add_argument("--workers", type=int)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--resume", action="store_true", help="continue from WORK_DIR/latest.pth")
    p.add_argument("--init-weights", help="start from these weights (fine-tuning)")
    p.add_argument("--max-steps-per-epoch", type=positive_int, help="cap on steps per epoch (quick runs)")
    p.add_argument(
        "--cpu-amp",
        action="store_true",
        help="bf16 autocast on the CPU too: about 3x faster with AVX-512 BF16 or AMX, slower without",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model for the training steps: a few minutes to compile at the "
        "start, then faster steps; on a CPU it needs a C++ compiler",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        metavar="MINUTES",
        help="compress the recipe's schedule to end within this time (measured after two epochs)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar: a log line every log_interval steps (the default where stderr is a file)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    from sdpose_core.jsonio import check_outputs

    args = _parser().parse_args(argv)
    # Before the recipe, the data and the model: a work dir that cannot take a checkpoint is
    # found now, not when the first epoch ends.
    check_outputs({"--work-dir": args.work_dir}, folders=("--work-dir",))
    recipe = load_recipe(args.config)
    overrides = {
        k: v
        for k, v in {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "workers": args.workers,
        }.items()
        if v is not None
    }
    if overrides:
        recipe = replace(recipe, train=replace(recipe.train, **overrides))
    for flag in ("train_ann", "val_ann", "val_det"):
        value = getattr(args, flag)
        if value and not Path(value).is_file():
            raise UserError(f"--{flag.replace('_', '-')}: file not found: {value}")
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}")
    if args.time_budget is not None and (args.time_budget <= 0 or args.resume):
        raise UserError("--time-budget needs a positive number of minutes and cannot go with --resume")
    if not Path(args.data_root).is_dir():
        raise UserError(f"--data-root: folder not found: {args.data_root}")
    paths = TrainPaths(
        Path(args.data_root),
        Path(args.train_ann),
        Path(args.work_dir),
        Path(args.val_ann) if args.val_ann else None,
        Path(args.val_root) if args.val_root else None,
        Path(args.val_det) if args.val_det else None,
    )
    trainer = Trainer(
        recipe,
        paths,
        args.device,
        args.resume,
        args.init_weights,
        args.max_steps_per_epoch,
        show_progress=not args.no_progress,
        cpu_amp=args.cpu_amp,
        compile_model=args.compile,
    )
    try:
        trainer.fit(None if args.time_budget is None else args.time_budget * 60.0)
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except torch._dynamo.exc.TorchDynamoException as exc:  # --compile on a machine that cannot
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise UserError(f"--compile failed ({first}); train without --compile") from None
    except DataError as exc:  # from a loader worker: its message carries the worker's traceback
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise UserError(
            lines[-1].split("DataError: ", 1)[-1] if lines else "a training image could not be read"
        ) from None
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
