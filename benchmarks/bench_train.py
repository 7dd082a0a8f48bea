"""Training images/s and what limits it: data loading alone, the model step alone, both.

    .venv/bin/python benchmarks/bench_train.py --device cuda [--configs sdpose_t sdpose_b] \
        [--workers 14] [--steps 40] [--data-root DIR --train-ann FILE] [--compile] [--profile] \
        [--json out.json]

Each recipe (configs/, e.g. sdpose_t: batch 64, bf16 AMP on CUDA) is timed three ways:
* loader: the training DataLoader alone (JPEG decode, MMPose augmentation, targets, collation);
* step: forward of all MCT cycles, loss, backward and Adam on one batch already on the device
  (what the authors' reference figure measures);
* full: `Trainer.train_epoch`, i.e. both together as `python -m sdpose_core.training.train` runs them.
The smaller of loader and step is the bound; "full" shows how well they overlap.

Without --data-root/--train-ann it writes a stand-in data set: frames of the bundled demo video
resized to 640x480 JPEGs (COCO's typical size, so decode cost is realistic) with two people
per frame and keypoints drawn at random inside their boxes. Throughput does not depend on
the labels, and the stand-in travels with the checkout to a GPU machine that has no ../shared.
On a CPU the same command runs with tiny settings: useful to check the script.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sdpose_core.data import build_loader, set_loader_epoch  # noqa: E402
from sdpose_core.training.recipe import load_recipe  # noqa: E402
from sdpose_core.training.trainer import Trainer, TrainPaths  # noqa: E402

DEMO_VIDEO = REPO / "assets" / "demo" / "sports2d_demo.mp4"
H100_REFERENCE_IMAGES_S = {"sdpose_t": 899, "sdpose_s_v1": 793, "sdpose_s_v2": 186, "sdpose_b": 210}


def write_stand_in_dataset(folder: Path, frames: int, seed: int = 0) -> Path:
    """COCO-format stand-in: demo frames as 640x480 JPEGs, two random people each."""
    rng = np.random.default_rng(seed)
    capture = cv2.VideoCapture(str(DEMO_VIDEO))
    images, annotations = [], []
    for image_id in range(1, frames + 1):
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
        if not ok:
            raise SystemExit(f"error: cannot read frames from {DEMO_VIDEO}")
        name = f"{image_id:06d}.jpg"
        cv2.imwrite(str(folder / name), cv2.resize(frame, (640, 480)), [cv2.IMWRITE_JPEG_QUALITY, 90])
        images.append({"id": image_id, "file_name": name, "width": 640, "height": 480})
        for _ in range(2):
            w, h = rng.uniform(80, 300), rng.uniform(150, 460)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            points = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17), np.full(17, 2.0)], 1)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "iscrowd": 0,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "num_keypoints": 17,
                    "keypoints": points.reshape(-1).round(2).tolist(),
                }
            )
    ann = folder / "annotations.json"
    categories = [{"id": 1, "name": "person"}]
    ann.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return ann


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loader(trainer: Trainer, steps: int) -> float:
    """Images/s of the training loader alone (a second pass, so workers are already up)."""
    loader = trainer.loader
    for epoch in range(2):
        set_loader_epoch(loader, epoch)
        seen, start = 0, time.perf_counter()
        for index, batch in enumerate(loader):
            seen += batch["image"].shape[0]
            if index + 1 == steps:
                break
        rate = seen / (time.perf_counter() - start)
    return rate


def time_step(trainer: Trainer, steps: int, profile: bool = False) -> float:
    """Images/s of `Trainer.train_step` (forward, loss, backward, Adam) on one batch kept on
    the device.

    ``profile``: also print the operators that take the most time over three more steps
    (torch.profiler), to see whether convolutions, attention or the MLP head dominate.
    """
    batch = next(iter(build_loader(trainer.train_set, trainer.cfg.batch_size, shuffle=False, workers=0)))
    images = batch["image"].to(trainer.device)
    target = batch["target"].to(trainer.device)
    weight = batch["target_weight"].to(trainer.device)
    trainer.net.train()

    def step() -> None:
        trainer.train_step(images, target, weight)

    for _ in range(3):
        step()
    _sync(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(trainer.device)
    rate = steps * images.shape[0] / (time.perf_counter() - start)
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        activities = [ProfilerActivity.CPU]
        if trainer.device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        with torch_profile(activities=activities) as prof:
            for _ in range(3):
                step()
            _sync(trainer.device)
        key = "self_cuda_time_total" if trainer.device.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=15))
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", nargs="+", default=["sdpose_t", "sdpose_b"], help="recipes in configs/")
    parser.add_argument("--workers", type=int, help="loader workers (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, help="default: the recipe's")
    parser.add_argument("--steps", type=int, default=40, help="batches timed per measurement")
    parser.add_argument("--frames", type=int, default=400, help="stand-in data set size (images)")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--train-ann", type=Path)
    parser.add_argument("--cpu-amp", action="store_true", help="bf16 autocast on a CPU too")
    parser.add_argument("--compile", action="store_true", help="torch.compile the step (as train --compile)")
    parser.add_argument("--profile", action="store_true", help="print the top operators of the model step")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if (args.data_root is None) != (args.train_ann is None):
        parser.error("give both --data-root and --train-ann, or neither (stand-in data)")
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print("error: --device cuda but no CUDA GPU is visible; use --device cpu", file=sys.stderr)
            return 2
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(0)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"

    with tempfile.TemporaryDirectory(prefix="sdpose-bench-train-") as tmp:
        tmp_dir = Path(tmp)
        data_root, train_ann = args.data_root, args.train_ann
        if data_root is None:
            data_root, train_ann = tmp_dir, write_stand_in_dataset(tmp_dir, args.frames)
        print(f"{name}  torch {torch.__version__}  training images/s  (data: {train_ann})")
        header = (
            f"{'recipe':12} {'batch':>5} {'workers':>7} {'amp':>4} {'compiled':>8} {'loader':>8} {'step':>8} "
            f"{'full':>8} {'full/H100 ref':>13}  bound"
        )
        print(header)
        print("-" * len(header))
        rows = []
        for config in args.configs:
            recipe = load_recipe(config)
            overrides = {k: v for k, v in (("workers", args.workers), ("batch_size", args.batch_size)) if v}
            recipe = replace(recipe, train=replace(recipe.train, **overrides))
            paths = TrainPaths(Path(data_root), Path(train_ann), tmp_dir / f"work_{recipe.model.name}")
            trainer = Trainer(
                recipe,
                paths,
                args.device,
                max_steps_per_epoch=args.steps,
                show_progress=False,
                cpu_amp=args.cpu_amp,
                compile_model=args.compile,
            )
            loader_rate = time_loader(trainer, args.steps)
            step_rate = time_step(trainer, args.steps, args.profile)
            trainer.train_epoch()  # warm-up pass (workers, cudnn autotuning)
            trainer.epoch += 1
            full_rate = trainer.train_epoch()["images_per_s"]
            bound = "data loading" if loader_rate < step_rate else "model step"
            reference = H100_REFERENCE_IMAGES_S.get(recipe.model.name)
            ratio = f"{full_rate / reference:13.2f}" if reference else f"{'-':>13}"
            print(
                f"{config:12} {recipe.train.batch_size:5d} {recipe.train.workers:7d} "
                f"{str(trainer.use_amp):>4} {str(args.compile):>8} "
                f"{loader_rate:8.1f} {step_rate:8.1f} {full_rate:8.1f} "
                f"{ratio}  {bound}"
            )
            rows.append(
                dict(
                    recipe=config,
                    batch=recipe.train.batch_size,
                    workers=recipe.train.workers,
                    amp=trainer.use_amp,
                    compiled=args.compile,
                    loader_images_per_s=loader_rate,
                    step_images_per_s=step_rate,
                    full_images_per_s=full_rate,
                    bound=bound,
                )
            )
            del trainer
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
