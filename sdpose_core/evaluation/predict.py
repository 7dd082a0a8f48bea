"""Top-down inference over a validation dataset, as MMPose 0.29 evaluates: one MCT cycle with
flip test, DARK decoding, rescoring and per-image OKS-NMS, giving COCO result dicts that
`metrics.coco_keypoint_eval` scores; the published checkpoints reproduce their published AP."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from sdpose_core.decode import decode_heatmaps, flip_back
from sdpose_core.evaluation.metrics import oks_nms, rescore
from sdpose_core.geometry import PIXEL_STD
from sdpose_core.keypoints import OKS_SIGMAS

__all__ = ["infer_heatmaps", "predict_dataset"]

logger = logging.getLogger(__name__)


def infer_heatmaps(
    model: nn.Module, images: torch.Tensor, flip_test: bool = True, cycle: int = 0
) -> torch.Tensor:
    """Heatmaps (N,K,H,W) of normalised crops; with ``flip_test`` the average with the mirrored
    crops' maps brought back by ``flip_back`` (channel swap, mirror, one-column shift).

    The model must be in eval mode. ``cycle`` 0 is what the app and the paper deploy: one MCT
    cycle. A later cycle (``model.forward_cycles``, only the cycles up to it) is for checking how
    the training cycles read, e.g. whether the later ones, the self-distillation teachers, read
    better than the first.
    """
    if cycle < 0:
        raise ValueError(f"cycle must be 0 or more, got {cycle}")

    def run(x: torch.Tensor) -> torch.Tensor:
        return model(x) if cycle == 0 else model.forward_cycles(x, cycle + 1).heatmaps[cycle]

    heatmaps = run(images)
    if flip_test:
        heatmaps = (heatmaps + flip_back(run(images.flip(-1)))) * 0.5
    return heatmaps


def _collate(samples: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Keep only what evaluation reads, so extra dataset keys (paths, None values) never matter."""
    return {
        "image": torch.stack([torch.as_tensor(s["image"]) for s in samples]),
        "center": np.stack([np.asarray(s["center"], dtype=np.float64).reshape(2) for s in samples]),
        "scale": np.stack([np.asarray(s["scale"], dtype=np.float64).reshape(2) for s in samples]),
        "image_id": [int(s["image_id"]) for s in samples],
        "bbox_score": np.array([float(s.get("bbox_score", 1.0)) for s in samples], dtype=np.float64),
    }


def predict_dataset(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    flip_test: bool = True,
    num_workers: int = 0,
    vis_thr: float = 0.2,
    oks_thr: float = 0.9,
    sigmas: np.ndarray = OKS_SIGMAS,
    cycle: int = 0,
) -> list[dict[str, Any]]:
    """Top-down predictions for every box of a validation dataset, as COCO result dicts.

    Samples need ``image`` (3,256,192) normalised crop, ``center``, ``scale`` (MMPose units),
    ``image_id`` and ``bbox_score``. Runs one MCT cycle (+ flip test; ``cycle`` reads a later
    training cycle instead, see `infer_heatmaps`), DARK decoding, rescoring and OKS-NMS per
    image. Returns dicts with ``image_id``, ``category_id`` (1), ``keypoints``
    (K*3 floats: x, y, score) and ``score``, grouped by image in dataset order.
    """
    device = torch.device(device)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )
    was_training = model.training
    model.eval()
    per_image: dict[int, list[dict[str, Any]]] = {}
    try:
        with torch.inference_mode():
            for step, batch in enumerate(loader):
                images = batch["image"].to(device=device, dtype=torch.float32, non_blocking=True)
                heatmaps = infer_heatmaps(model, images, flip_test, cycle).float().cpu().numpy()
                preds, maxvals = decode_heatmaps(heatmaps, batch["center"], batch["scale"])
                scores = rescore(batch["bbox_score"], maxvals[..., 0], vis_thr)
                areas = np.prod(batch["scale"] * PIXEL_STD, axis=1)
                for i, image_id in enumerate(batch["image_id"]):
                    per_image.setdefault(image_id, []).append(
                        {
                            "keypoints": np.concatenate([preds[i], maxvals[i]], axis=1),
                            "score": float(scores[i]),
                            "area": float(areas[i]),
                        }
                    )
                if (step + 1) % 50 == 0:
                    logger.info("evaluated %d / %d batches", step + 1, len(loader))
    finally:
        model.train(was_training)
    results = []
    for image_id, poses in per_image.items():
        for index in oks_nms(poses, oks_thr, sigmas):
            pose = poses[index]
            results.append(
                {
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": [float(v) for v in pose["keypoints"].reshape(-1)],
                    "score": pose["score"],
                }
            )
    return results
