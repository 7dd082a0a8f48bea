"""How well the teacher labels people with human joints, with and without test-time augmentation.

    .venv/bin/python benchmarks/bench_teacher_labels.py [--people 300] [--threads 1]

MoveNet Thunder reads LSP and LSPET athletes (human joints are the truth; LSPET's validation
range im08501-im09000 is left out) with each labelling setting `pseudo_label` offers: one pass,
flip TTA, 4-way orientation TTA, and both. For each it prints PCK@0.2 of the visible limb joints
(torso = |left shoulder - right hip| from the labels, the whole image as the box, as the pool2
README measures), the same over the joints the teacher is confident about (score >= 0.3, the
ones a label file keeps), and the share of labelled joints that are kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

from sdpose_core.evaluation import torso_pck  # noqa: E402
from sdpose_core.labels.lsp import LSP, LSPET, LspSet, lsp_to_coco  # noqa: E402
from sdpose_core.labels.teachers import MoveNetTeacher  # noqa: E402

MOVENET = DATA / "models" / "movenet" / "movenet-thunder.onnx"
SETTINGS = {
    "one pass": {"flip_tta": False, "orientations": (0,)},
    "flip": {"flip_tta": True, "orientations": (0,)},
    "4 orientations": {"flip_tta": False, "orientations": (0, 90, 180, 270)},
    "4 orientations + flip": {"flip_tta": True, "orientations": (0, 90, 180, 270)},
}


def people(lsp_set: LspSet, folder: Path, count: int, seed: int = 0) -> list[tuple[Path, np.ndarray]]:
    """``count`` random people of a release (LSPET's validation range left out), COCO-17 order."""
    paths, joints = lsp_set.read(folder)
    keep = [i for i, p in enumerate(paths) if not (lsp_set.extended and p.stem >= "im08501")]
    chosen = np.random.default_rng(seed).choice(keep, min(count, len(keep)), replace=False)
    return [(paths[i], lsp_to_coco(joints[i], lsp_set.extended)) for i in sorted(chosen)]


def score(teacher: MoveNetTeacher, sample: list[tuple[Path, np.ndarray]], min_score: float) -> dict:
    preds, gts, labelled, confident, seconds = [], [], [], [], 0.0
    for path, human in sample:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        start = time.perf_counter()
        keypoints, scores = teacher(image, np.array([[0.0, 0.0, w, h]]))
        seconds += time.perf_counter() - start
        preds.append(keypoints[0])
        gts.append(human[:, :2])
        labelled.append(human[:, 2] > 0)
        confident.append(scores[0] >= min_score)
    preds, gts, labelled, confident = map(np.stack, (preds, gts, labelled, confident))
    hits, joints, counted = torso_pck(preds, gts, labelled)
    kept_hits, kept, _ = torso_pck(preds, gts, labelled & confident)
    return {
        "pck": hits / joints,
        "pck_kept": kept_hits / max(kept, 1),
        "kept": kept / joints,
        "people": counted,
        "ms": 1e3 * seconds / len(sample),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=300, help="people per set")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-kpt-score", type=float, default=0.3)
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    sets = {
        "LSP": people(LSP, DATA / "pool" / "lsp", args.people),
        "LSPET": people(LSPET, DATA / "pool2" / "lspet", args.people),
    }
    print(f"MoveNet Thunder, whole image as the box, {args.people} random people per set")
    print(f"{'setting':24s} | {'set':5s} | PCK@0.2 | PCK kept | kept | people | ms/person")
    for name, options in SETTINGS.items():
        teacher = MoveNetTeacher(MOVENET, threads=args.threads, **options)
        for set_name, sample in sets.items():
            r = score(teacher, sample, args.min_kpt_score)
            print(
                f"{name:24s} | {set_name:5s} | {r['pck']:7.3f} | {r['pck_kept']:8.3f} | {r['kept']:4.2f} | "
                f"{r['people']:6d} | {r['ms']:9.1f}"
            )
    print(
        "PCK@0.2: visible limb joints within 0.2 x |left shoulder - right hip|; 'kept': the share of them "
        f"scored >= {args.min_kpt_score} (what a label file keeps), 'PCK kept' their PCK"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
