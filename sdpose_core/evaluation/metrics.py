"""The scores of keypoint predictions: COCO keypoint AP/AR as MMPose 0.29's
``TopDownCocoDataset.evaluate`` computes it (rescoring by confident keypoints, per-image OKS-NMS,
pycocotools), and PCK against human annotations.

`predict.py` produces the predictions these functions score.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sdpose_core.keypoints import OKS_SIGMAS, oks_iou

logger = logging.getLogger(__name__)

# COCOeval.stats order for keypoints, named as MMPose reports them.
STAT_NAMES: tuple[str, ...] = (
    "AP",
    "AP .5",
    "AP .75",
    "AP (M)",
    "AP (L)",
    "AR",
    "AR .5",
    "AR .75",
    "AR (M)",
    "AR (L)",
)


def oks_nms(
    kpts_db: Sequence[Mapping[str, Any]],
    thr: float = 0.9,
    sigmas: np.ndarray = OKS_SIGMAS,
    vis_thr: float | None = None,
) -> np.ndarray:
    """Greedy OKS-NMS over the poses of ONE image (MMPose 0.29 ``oks_nms``).

    Each entry has ``keypoints`` (K,3), ``score`` and ``area`` (its box area). Highest score
    first; every remaining pose with OKS > thr against a kept one is dropped. Returns the
    kept indices, in keep order.
    """
    if len(kpts_db) == 0:
        return np.zeros(0, dtype=np.int64)
    scores = np.array([float(k["score"]) for k in kpts_db])
    kpts = np.array([np.asarray(k["keypoints"], dtype=np.float64).reshape(-1) for k in kpts_db])
    areas = np.array([float(k["area"]) for k in kpts_db])
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        overlap = oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, vis_thr)
        order = order[np.nonzero(overlap <= thr)[0] + 1]
    return np.array(keep, dtype=np.int64)


def rescore(box_score: np.ndarray | float, kpt_scores: np.ndarray, vis_thr: float = 0.2) -> np.ndarray:
    """Instance score = box score x mean of the keypoint scores above ``vis_thr`` (0 if none).

    box_score (N,) or scalar, kpt_scores (N,K) (a trailing 1 axis is accepted). Returns (N,)
    float64. Ranks poses by both detector and pose confidence, as MMPose does before NMS.
    """
    kpt_scores = np.asarray(kpt_scores, dtype=np.float64)
    kpt_scores = kpt_scores.reshape(kpt_scores.shape[0], -1)
    passed = kpt_scores > vis_thr
    count = passed.sum(axis=1)
    mean = np.where(count > 0, np.where(passed, kpt_scores, 0.0).sum(axis=1) / np.maximum(count, 1), 0.0)
    return np.asarray(box_score, dtype=np.float64) * mean


def coco_keypoint_eval(
    gt_ann_file: str | os.PathLike, results: Sequence[Mapping[str, Any]], sigmas: np.ndarray = OKS_SIGMAS
) -> dict[str, float]:
    """COCO keypoint AP/AR of ``results`` (COCO result dicts) against a ground-truth file.

    pycocotools' chatter goes to the debug log. No results give all-zero stats (pycocotools
    cannot load an empty result list). Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` for results on images the file does not hold.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not os.path.isfile(gt_ann_file):
        raise FileNotFoundError(f"annotation file not found: {gt_ann_file}")
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):
        coco_gt = COCO(os.fspath(gt_ann_file))
        if not results:
            logger.warning("no keypoint results to evaluate; all metrics are 0")
            return dict.fromkeys(STAT_NAMES, 0.0)
        unknown = {int(r["image_id"]) for r in results} - set(coco_gt.getImgIds())
        if unknown:
            raise ValueError(
                f"{len(unknown)} result image id(s) are not in {gt_ann_file}, e.g. {min(unknown)}"
            )
        # loadRes writes area/bbox/id into the dicts it gets: give it copies.
        coco_dt = coco_gt.loadRes([dict(r) for r in results])
        coco_eval = COCOeval(coco_gt, coco_dt, "keypoints")
        coco_eval.params.useSegm = None
        coco_eval.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    logger.debug("%s", chatter.getvalue())
    return {name: float(value) for name, value in zip(STAT_NAMES, coco_eval.stats, strict=True)}


PCK_ALPHA = 0.2
LIMB_JOINTS = tuple(range(5, 17))  # shoulders to ankles: the joints every keypoint layout shares
_TORSO = (5, 12)  # left shoulder, right hip


def torso_pck(
    pred: np.ndarray, gt: np.ndarray, labelled: np.ndarray, alpha: float = PCK_ALPHA
) -> tuple[int, int, int]:
    """PCK of N people's limb joints: (joints within ``alpha`` x the torso, labelled limb joints,
    people counted). Shapes (N,17,2), (N,17,2), (N,17) bool. The torso is |left shoulder -
    right hip| from the labels; people without both labelled are left out (they have no scale).
    """
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    labelled = np.asarray(labelled, dtype=bool)
    a, b = _TORSO
    torso = np.linalg.norm(gt[:, a] - gt[:, b], axis=1)
    scaled = labelled[:, a] & labelled[:, b] & (torso > 0)
    limbs = np.zeros(labelled.shape[1], dtype=bool)
    limbs[list(LIMB_JOINTS)] = True
    counted = labelled[scaled] & limbs
    dist = np.linalg.norm(pred[scaled] - gt[scaled], axis=2)
    hits = (dist <= alpha * torso[scaled, None]) & counted
    return int(hits.sum()), int(counted.sum()), int(scaled.sum())


def pck_against_annotations(
    results: Sequence[Mapping[str, Any]], gt: Mapping[str, Any], alpha: float = PCK_ALPHA
) -> dict[str, float]:
    """`torso_pck` of COCO results against a COCO keypoint file's people (a loaded dict).

    Each labelled person takes the unused result of its image with the highest OKS (with GT
    boxes every person has one); a person with none scores no hits. Returns ``PCK`` and the
    ``PCK people`` counted.
    """
    by_image: dict[int, list[np.ndarray]] = {}
    for r in results:
        by_image.setdefault(int(r["image_id"]), []).append(np.asarray(r["keypoints"], np.float64))
    preds, gts, labelled = [], [], []
    for ann in gt["annotations"]:
        kpts = np.asarray(ann.get("keypoints") or [], dtype=np.float64).reshape(-1, 3)
        if len(kpts) != 17 or not (kpts[:, 2] > 0).any() or ann.get("iscrowd", 0):
            continue
        candidates = by_image.get(int(ann["image_id"]), [])
        pred = np.full((17, 2), np.inf)  # no result left: every joint misses
        if candidates:
            area = float(ann.get("area") or np.prod(ann["bbox"][2:]))
            best = int(
                np.argmax(oks_iou(kpts.reshape(-1), np.stack(candidates), area, [area] * len(candidates)))
            )
            pred = candidates.pop(best).reshape(17, 3)[:, :2]
        preds.append(pred)
        gts.append(kpts[:, :2])
        labelled.append(kpts[:, 2] > 0)
    if not preds:
        return {"PCK": 0.0, "PCK people": 0.0}
    hits, joints, people = torso_pck(np.stack(preds), np.stack(gts), np.stack(labelled), alpha)
    return {"PCK": hits / joints if joints else 0.0, "PCK people": float(people)}


def format_table(stats: Mapping[str, float], name: str | None = None) -> str:
    """The usual one-row markdown table (HRNet/MMPose README style) of the ten COCO stats."""
    names = [n for n in STAT_NAMES if n in stats] + [n for n in stats if n not in STAT_NAMES]
    header = (["Model"] if name is not None else []) + names
    values = ([name] if name is not None else []) + [f"{float(stats[n]):.3f}" for n in names]
    widths = [max(len(h), len(v)) for h, v in zip(header, values, strict=True)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |",
    ]
    return "\n".join(lines)
