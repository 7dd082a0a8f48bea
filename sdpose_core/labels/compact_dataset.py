"""Shrink a COCO keypoint training set to one small JPEG per person, to ship it to a GPU machine.

    python -m sdpose_core.labels.compact_dataset --train-ann labels.json --data-root images/ \\
        --output-dir compact/ [--max-height 288] [--margin 1.5] [--quality 90]

Every person the trainer would use (`CocoKeypointDataset`'s GT records) is cut out of its image
with context: the training crop's padded box (padding 1.25, aspect 0.75, the same centre and
scale) times ``margin``, clipped to the image. The cut-out is scaled down, never up, so that
the padded box is at most ``max_height`` pixels tall, and saved as JPEG. The output is a COCO
keypoint file with one image per person (its box and joints moved into the cut-out's pixels,
every other field kept) that ``sdpose_core.training.train`` reads as it is.

Training crops from it match crops from the full images, with three differences: context
beyond the margin is black, as past an image's edge; people the scale augmentation zooms into
beyond ``max_height`` are upsampled; and the pixels went through one more resize and JPEG pass.
A 6,000-person pool of full frames (hundreds of MB) becomes a few tens of MB, and each sample
decodes a small JPEG instead of a whole frame.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sdpose_core.cli import run_cli
from sdpose_core.data import CocoKeypointDataset, DataConfig, DataError
from sdpose_core.errors import UserError
from sdpose_core.geometry import PIXEL_STD
from sdpose_core.jsonio import write_json_atomic
from sdpose_core.labels.coco_labels import coco_categories
from sdpose_core.progress import track

__all__ = ["CompactSettings", "cut_out", "compact_dataset", "main"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactSettings:
    """How much context to keep and how small to make it; recorded in the output's ``info``."""

    max_height: int = 288  # padded box height cap, px (training crops are 256 tall)
    margin: float = 1.5  # context around the padded box, as a multiple of its size
    quality: int = 90  # JPEG quality

    def __post_init__(self) -> None:
        if self.max_height < 16 or self.margin < 1.0 or not 1 <= self.quality <= 100:
            raise ValueError("max_height must be >= 16, margin >= 1 and quality in 1..100")


@dataclass(frozen=True)
class _Cut:
    """One person's cut-out: the source region [x0, x1) x [y0, y1) and its resize factor."""

    x0: int
    y0: int
    x1: int
    y1: int
    factor: float

    def points(self, xy: np.ndarray) -> np.ndarray:
        """Source pixel coordinates -> cut-out pixel coordinates (cv2.resize's pixel centres)."""
        xy = np.asarray(xy, dtype=np.float64)
        return (xy - [self.x0, self.y0] + 0.5) * self.factor - 0.5


def cut_out(
    center: np.ndarray, scale: np.ndarray, width: int, height: int, settings: CompactSettings
) -> _Cut:
    """The region and resize factor for one person whose padded box is (center, scale)."""
    box_w, box_h = np.asarray(scale, dtype=np.float64) * PIXEL_STD
    half_w, half_h = box_w * settings.margin / 2, box_h * settings.margin / 2
    x0, y0 = max(0, math.floor(center[0] - half_w)), max(0, math.floor(center[1] - half_h))
    x1, y1 = min(width, math.ceil(center[0] + half_w)), min(height, math.ceil(center[1] + half_h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"person box at {center.tolist()} lies outside its {width}x{height} image")
    return _Cut(x0, y0, x1, y1, min(1.0, settings.max_height / box_h))


def _moved_annotation(
    ann: dict[str, Any], clean_box: tuple[float, float, float, float], cut: _Cut, image_id: int, ann_id: int
) -> dict[str, Any]:
    """The annotation in the cut-out's pixels: the (cleaned) box and labelled joints moved and
    scaled; every other field kept."""
    x, y, w, h = clean_box
    # MMPose's box cleaning takes one pixel off the width and height ("x1 + w - 1"); add it back
    # so that cleaning the new box gives the moved box, and so the same centre and scale.
    (bx0, by0), (bx1, by1) = cut.points(np.array([[x, y], [x + w, y + h]]))
    kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
    labelled = kpts[:, 2] > 0
    kpts[labelled, :2] = cut.points(kpts[labelled, :2])
    flat: list[float] = []
    for px, py, v in kpts:
        flat.extend((round(float(px), 2), round(float(py), 2), int(v)) if v > 0 else (0, 0, 0))
    box = [
        round(float(bx0), 2),
        round(float(by0), 2),
        round(float(bx1 - bx0 + 1), 2),
        round(float(by1 - by0 + 1), 2),
    ]
    # A detector's box (`detector_boxes`) is in the source image's pixels: it is found again on
    # the cut-outs, not moved.
    kept = {k: v for k, v in ann.items() if k not in ("detector_bbox", "detector_score")}
    return {
        **kept,
        "id": ann_id,
        "image_id": image_id,
        "bbox": box,
        "area": round(float(ann.get("area") or w * h) * cut.factor**2, 2),
        "keypoints": flat,
    }


def _cut_image(job: tuple[str, list[tuple[int, np.ndarray, np.ndarray]], CompactSettings, str]) -> list[dict]:
    """Worker: read one source image, write the cut-out of each of its people; their records."""
    path, people, settings, out_dir = job
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"cannot read image {path}")
    height, width = image.shape[:2]
    done = []
    for index, center, scale in people:
        try:
            cut = cut_out(center, scale, width, height, settings)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from None
        region = image[cut.y0 : cut.y1, cut.x0 : cut.x1]
        if cut.factor < 1.0:  # one factor for both axes, which cv2 then uses for the mapping
            region = cv2.resize(region, None, fx=cut.factor, fy=cut.factor, interpolation=cv2.INTER_AREA)
        name = f"{index + 1:06d}.jpg"
        ok, data = cv2.imencode(".jpg", region, [cv2.IMWRITE_JPEG_QUALITY, settings.quality])
        if not ok:
            raise DataError(f"cannot encode the cut-out of person {index + 1} of {path}")
        (Path(out_dir) / name).write_bytes(data.tobytes())
        done.append(
            {
                "index": index,
                "file_name": name,
                "cut": cut,
                "width": region.shape[1],
                "height": region.shape[0],
            }
        )
    return done


def _jobs(dataset: CocoKeypointDataset, settings: CompactSettings, out_dir: Path) -> Iterator[tuple]:
    """One job per source image, holding all its people, so each frame is decoded once."""
    by_path: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for index, record in enumerate(dataset.records):
        by_path.setdefault(str(dataset.image_path(index)), []).append((index, record.center, record.scale))
    for path, people in by_path.items():
        yield path, people, settings, str(out_dir)


def _check_output(output_dir: Path, images_dir: Path, data_root: Path, overwrite: bool) -> None:
    """Refuse an output that is a file, that is the source images' folder (or holds it), or
    that already has cut-outs, unless ``overwrite``."""
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output-dir {output_dir} is a file, not a folder")
    source = data_root.resolve()
    if images_dir.resolve() == source or images_dir.resolve() in source.parents:
        raise UserError(f"--output-dir {output_dir} would overwrite the source images in {data_root}")
    if images_dir.is_dir() and any(images_dir.iterdir()) and not overwrite:
        raise UserError(f"{images_dir} already holds images; pass --overwrite to replace them")


def compact_dataset(
    train_ann: str | Path,
    data_root: str | Path,
    output_dir: str | Path,
    settings: CompactSettings | None = None,
    workers: int = 2,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``output_dir/annotations.json`` and ``output_dir/images/``; returns a summary.

    An ``images/`` folder that already holds files is replaced only with ``overwrite``, and
    never when it holds the source images themselves."""
    settings = settings or CompactSettings()
    try:
        dataset = CocoKeypointDataset(train_ann, data_root, train=False, use_gt_boxes=True, cfg=DataConfig())
    except DataError as exc:
        raise UserError(str(exc)) from None
    output_dir = Path(output_dir)
    images_dir = output_dir / "images"
    _check_output(output_dir, images_dir, Path(data_root), overwrite)
    if images_dir.exists():
        shutil.rmtree(images_dir)
    images_dir.mkdir(parents=True)
    cut_people: list[dict] = []
    try:
        jobs = list(_jobs(dataset, settings, images_dir))
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            cuts = pool.map(_cut_image, jobs, chunksize=8)
            for done in track(cuts, total=len(jobs), desc="cut", unit="image", enabled=progress):
                cut_people.extend(done)
    except DataError as exc:
        raise UserError(str(exc)) from None
    cut_people.sort(key=lambda person: person["index"])
    images, annotations = [], []
    for k, person in enumerate(cut_people, start=1):
        images.append(
            {"id": k, "file_name": person["file_name"], "width": person["width"], "height": person["height"]}
        )
        record = dataset.records[person["index"]]
        annotations.append(_moved_annotation(record.annotation, record.clean_box, person["cut"], k, k))
    info = {
        **dataset.info,
        "compacted_from": str(train_ann),
        "compact_settings": asdict(settings),
    }
    out_file = output_dir / "annotations.json"
    write_json_atomic(
        out_file,
        {"info": info, "images": images, "annotations": annotations, "categories": coco_categories()},
    )
    size = sum(f.stat().st_size for f in images_dir.iterdir())
    return {
        "people": len(annotations),
        "source_images": len(jobs),
        "mib": size / 2**20,
        "annotations_file": str(out_file),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sdpose_core.labels.compact_dataset", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--train-ann", required=True, help="COCO keypoint file to compact")
    p.add_argument("--data-root", required=True, help="folder of its images")
    p.add_argument("--output-dir", required=True, help="gets annotations.json and images/")
    defaults = CompactSettings()
    p.add_argument("--max-height", type=int, default=defaults.max_height, help="padded box height cap (px)")
    p.add_argument("--margin", type=float, default=defaults.margin, help="context around the padded box")
    p.add_argument("--quality", type=int, default=defaults.quality, help="JPEG quality")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--overwrite", action="store_true", help="replace the cut-outs of an earlier run")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = CompactSettings(args.max_height, args.margin, args.quality)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    summary = compact_dataset(
        args.train_ann,
        args.data_root,
        args.output_dir,
        settings,
        args.workers,
        not args.no_progress,
        args.overwrite,
    )
    print(
        f"{summary['people']} people from {summary['source_images']} images -> "
        f"{summary['annotations_file']} ({summary['mib']:.1f} MiB of JPEGs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
