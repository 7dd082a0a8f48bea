"""Two checkpoints' keypoints on a video, each against YOLO11n-pose's: a demo regression check.

    YOLO_OFFLINE=1 .venv/bin/python main.py --source ../shared/data/video/sports2d_demo.mp4 \\
        --headless --output /tmp/a.jsonl [--weights OLD.pth]
    .venv/bin/python benchmarks/bench_video_agreement.py /tmp/a.jsonl /tmp/b.jsonl \\
        [--labels ../shared/data/pseudo_labels/sports2d_demo.yolo11n-pose.json] [--draw-threshold 0.3]

`shared/data/pseudo_labels` holds YOLO11n-pose's detections on each bundled video: a model's
output, not ground truth, so the figures here say which of two of our checkpoints sits closer
to a stronger COCO model on frames no label set covers (the demo clip's backlit walker), not how
accurate either is. Each of our people (a `main.py --output` JSON Lines file) is matched to the
YOLO person of the same frame with the highest box IoU (>= `--iou`); per matched person, the
COCO OKS terms (`OKS_SIGMAS`, the YOLO box's w*h as the scale) over the joints YOLO scores >=
`--min-score` give its agreement. The table gives the mean over people for all joints, arms
(elbows, wrists) and legs (knees, ankles), and the share of our knees and ankles at or above
`--draw-threshold` (what the window and the saved video draw).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sdpose_core.geometry import box_iou, box_xywh_to_xyxy  # noqa: E402
from sdpose_core.keypoints import oks_terms  # noqa: E402

DEFAULT_LABELS = REPO.parent / "shared" / "data" / "pseudo_labels" / "sports2d_demo.yolo11n-pose.json"
ARMS = [7, 8, 9, 10]
LEGS = [13, 14, 15, 16]


def load_labels(path: Path) -> dict[int, list[dict]]:
    """YOLO detections grouped by frame index."""
    by_frame: dict[int, list[dict]] = {}
    for det in json.loads(path.read_text())["detections"]:
        by_frame.setdefault(int(det["frame"]), []).append(det)
    return by_frame


def score_run(path: Path, labels: dict[int, list[dict]], args: argparse.Namespace) -> dict[str, float]:
    """Mean agreement of one JSON Lines run with the labels, over matched people."""
    with path.open() as lines:
        return score_frames((json.loads(line) for line in lines), labels, args)


def score_frames(
    frames: Iterable[dict], labels: dict[int, list[dict]], args: argparse.Namespace
) -> dict[str, float]:
    """Mean agreement of a run's frames (the JSON Lines records) with the labels, over matched people."""
    rows: dict[str, list[float]] = {"all": [], "arms": [], "legs": [], "legs drawn": []}
    matched = total = 0
    for frame in frames:
        candidates = labels.get(int(frame["frame"]), [])
        total += len(frame["people"])
        if not candidates:
            continue
        theirs = box_xywh_to_xyxy(np.array([c["bbox"] for c in candidates]))
        for person in frame["people"]:
            ious = box_iou(box_xywh_to_xyxy(np.array(person["bbox"])), theirs)[0]
            if ious.max() < args.iou:
                continue
            matched += 1
            label = candidates[int(np.argmax(ious))]
            ref = np.asarray(label["keypoints"], dtype=np.float64).reshape(17, 3)
            ours = np.asarray(person["keypoints"], dtype=np.float64).reshape(17, 3)
            terms = oks_terms(
                ((ours[:, :2] - ref[:, :2]) ** 2).sum(axis=1), label["bbox"][2] * label["bbox"][3]
            )
            counted = ref[:, 2] >= args.min_score
            for name, joints in (("all", list(range(17))), ("arms", ARMS), ("legs", LEGS)):
                mask = np.zeros(17, bool)
                mask[joints] = True
                mask &= counted
                if mask.any():
                    rows[name].append(float(terms[mask].mean()))
            rows["legs drawn"].append(float((ours[LEGS, 2] >= args.draw_threshold).mean()))
    result = {name: float(np.mean(values)) if values else float("nan") for name, values in rows.items()}
    result["matched"] = matched
    result["people"] = total
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="main.py --output JSON Lines files")
    p.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="a shared/data/pseudo_labels file")
    p.add_argument("--iou", type=float, default=0.5, help="box IoU a match needs")
    p.add_argument("--min-score", type=float, default=0.5, help="YOLO joint score a joint needs to count")
    p.add_argument("--draw-threshold", type=float, default=0.3, help="our confidence the renderer draws from")
    args = p.parse_args(argv)
    for path in [args.labels, *args.runs]:
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    labels = load_labels(args.labels)
    print(f"against {args.labels.name} (model output, not ground truth)")
    print(f"{'run':40} | matched | agreement all | arms  | legs  | knees+ankles drawn")
    for path in args.runs:
        r = score_run(path, labels, args)
        print(
            f"{str(path)[-40:]:40} | {r['matched']:3d}/{r['people']:<3d} |         {r['all']:.3f} | "
            f"{r['arms']:.3f} | {r['legs']:.3f} | {r['legs drawn']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
