"""Evaluate an SDPose checkpoint on a COCO-format keypoint set (COCO keypoint AP/AR).

Follows the authors' protocol (MMPose 0.29's TopDownCocoDataset): GT or detector boxes, cycle 0 with flip
test, DARK decoding, rescoring, OKS-NMS 0.9, pycocotools. Example:

    python -m sdpose_core.evaluation.evaluate --config sdpose_t --weights sdpose_t.pth \\
        --data-root coco/val2017 --ann coco/annotations/person_keypoints_val2017.json \\
        --det COCO_val2017_detections_AP_H_56_person.json --output results.json
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from sdpose_core import jsonio
from sdpose_core.checkpoint import load_checkpoint
from sdpose_core.cli import ArgumentParser, positive_int, run_cli
from sdpose_core.errors import UserError
from sdpose_core.evaluation import coco_keypoint_eval, format_table, predict_dataset
from sdpose_core.jsonio import check_outputs, output_error
from sdpose_core.models import VARIANT_NAMES, ModelConfig, build_model, load_model_config

__all__ = ["main", "stats_path_for", "write_json_atomic"]

logger = logging.getLogger(__name__)


def stats_path_for(results_path: str | os.PathLike) -> Path:
    """Where the metrics go: ``results.json`` -> ``results.stats.json`` in the same folder."""
    path = Path(results_path)
    return path.with_name(f"{path.stem}.stats.json")


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """`sdpose_core.jsonio.write_json_atomic` with a one-line error for an unwritable path."""
    try:
        return jsonio.write_json_atomic(path, data)
    except OSError as exc:
        raise output_error(path, exc, "--output") from None


def _pick_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} was requested but CUDA is not available; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}; use cpu or cuda") from None


def _check_inputs(args: argparse.Namespace) -> None:
    """Fail in a second with one line, before the model is built or any image is read: the
    outputs are checked now too, not after the whole set has been evaluated."""
    if not Path(args.ann).is_file():
        raise UserError(f"annotation file not found: {args.ann}")
    if not Path(args.data_root).is_dir():
        raise UserError(f"image folder not found: {args.data_root}")
    if args.det is not None and not Path(args.det).is_file():
        raise UserError(f"detection results file not found: {args.det}")
    if not Path(args.weights).is_file():
        raise UserError(f"checkpoint not found: {args.weights}")
    if args.workers < 0:
        raise UserError("--workers must be at least 0")
    stats = stats_path_for(args.output) if args.output else None  # both outputs, checked now
    check_outputs(
        {"--output": args.output, "--output (its .stats.json)": stats},
        {"--ann": args.ann, "--det": args.det, "--weights": args.weights},
    )


def _model_config(config: str, cycle: int) -> ModelConfig:
    """The variant to build, read once, with `--cycle` checked against its training cycles
    before any data is read."""
    cfg = load_model_config(config)
    if not 0 <= cycle < cfg.cycle_num:
        raise UserError(
            f"--cycle {cycle}: {cfg.name} trains {cfg.cycle_num} MCT cycles, numbered 0 to "
            f"{cfg.cycle_num - 1} (0 is the one inference runs)"
        )
    return cfg


def _warn_untrained_cycle(cycle: int, meta: dict[str, Any]) -> None:
    """Our checkpoints carry their recipe: a later cycle its last stage did not train is scored
    all the same, but the user is told (the bundled weights' last stages trained one cycle)."""
    trained = (meta.get("recipe") or {}).get("model", {}).get("cycle_num")
    if isinstance(trained, int) and cycle >= trained:
        logger.warning(
            "these weights' last training recipe ran %d MCT cycle(s): cycle %d was not trained "
            "with it, so its score says little about the recipe",
            trained,
            cycle,
        )


def _check_images(dataset: Any, ann: str) -> None:
    """Every image the evaluation will read is there: a missing one would otherwise stop a
    data-loader worker mid-run with a traceback. Paths resolve as the dataset resolves them."""
    from sdpose_core.data import DataError

    missing: dict[str, None] = {}
    for index in range(len(dataset)):
        try:
            dataset.image_path(index)
        except DataError as exc:
            missing[str(exc).removeprefix("image not found: ")] = None
    if missing:
        first = next(iter(missing))
        raise UserError(
            f"{len(missing)} image(s) listed in {ann} are missing, e.g. {first} (check --data-root)"
        )


def _build_dataset(args: argparse.Namespace) -> Any:
    # Imported here: the data package is heavier (cv2 augmentation) and only this command needs it.
    from sdpose_core.data import CocoKeypointDataset, DataError

    try:
        return CocoKeypointDataset(
            args.ann, args.data_root, train=False, det_file=args.det, det_score_thr=args.det_thr
        )
    except DataError as exc:
        raise UserError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m sdpose_core.evaluation.evaluate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--config", default="sdpose_t", help=f"variant ({', '.join(VARIANT_NAMES)}) or config YAML path"
    )
    parser.add_argument("--weights", required=True, help="checkpoint (.pth): the authors' release or our own")
    parser.add_argument("--data-root", required=True, help="folder holding the images (e.g. val2017)")
    parser.add_argument("--ann", required=True, help="COCO keypoints annotation json")
    parser.add_argument("--det", help="person detection results json (default: ground-truth boxes)")
    parser.add_argument(
        "--det-thr", type=float, default=0.0, help="drop detections scoring below this (official: 0.0)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--no-flip", action="store_true", help="skip the flip test (half the compute, lower AP)"
    )
    parser.add_argument(
        "--cycle",
        type=int,
        default=0,
        help="score this MCT cycle's heatmaps (default 0, the one inference runs; later cycles "
        "exist only in training, e.g. to see whether the self-distillation teachers read better)",
    )
    parser.add_argument(
        "--output", help="write the COCO results here and the metrics beside it (.stats.json)"
    )
    parser.add_argument("--workers", type=int, default=2, help="data loading processes")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _check_inputs(args)
    model_cfg = _model_config(args.config, args.cycle)
    device = _pick_device(args.device)
    dataset = _build_dataset(args)
    _check_images(dataset, args.ann)
    model = build_model(model_cfg)
    info = load_checkpoint(model, args.weights)
    _warn_untrained_cycle(args.cycle, info.meta)
    model.to(device)
    boxes = "detected" if args.det else "ground-truth"
    flip = "off" if args.no_flip else "on"
    logger.info(
        "evaluating %s cycle %d on %d %s boxes (%s, flip test %s)",
        model.cfg.name,
        args.cycle,
        len(dataset),
        boxes,
        device,
        flip,
    )
    start = time.perf_counter()
    results = predict_dataset(
        model,
        dataset,
        args.batch_size,
        device,
        flip_test=not args.no_flip,
        num_workers=args.workers,
        cycle=args.cycle,
    )
    logger.info("%d poses after OKS-NMS in %.1f s", len(results), time.perf_counter() - start)
    try:
        stats = coco_keypoint_eval(args.ann, results)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(format_table(stats, name=model.cfg.name))
    if args.output:
        write_json_atomic(args.output, results)
        summary = {
            "stats": stats,
            "config": args.config,
            "variant": model.cfg.name,
            "weights": str(args.weights),
            "ann": str(args.ann),
            "det": None if args.det is None else str(args.det),
            "det_thr": args.det_thr,
            "flip_test": not args.no_flip,
            "cycle": args.cycle,
            "num_results": len(results),
        }
        stats_path = write_json_atomic(stats_path_for(args.output), summary)
        logger.info("wrote %s and %s", args.output, stats_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
