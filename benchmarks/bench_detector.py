"""The person detector per call: the `.pt` in PyTorch against Ultralytics' ONNX and OpenVINO
exports of it (`detector: export:` in configs/app.yaml), and whether they find the same boxes.

    .venv/bin/python benchmarks/bench_detector.py [--threads 2] [--frames 8] [--repeats 2] [--imgsz 640]

Frames are taken evenly from the first 150 of each video in `shared/data/video`; every runtime
detects each frame in turn (interleaved, so a busy spell on a shared machine slows them alike).
Boxes are compared with the `.pt`'s on the same frames: people found, the lowest IoU of a
matched box, its largest corner shift in pixels and score change.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.detector import Detections, PersonDetector  # noqa: E402
from app.detector_export import EXPORTS  # noqa: E402
from app.tracker import box_iou  # noqa: E402

VIDEOS = REPO.parent / "shared" / "data" / "video"


def sample_frames(per_video: int, first: int = 150) -> list[np.ndarray]:
    frames = []
    for video in sorted(VIDEOS.glob("*.mp4")):
        cap = cv2.VideoCapture(str(video))
        wanted = set(np.linspace(0, first - 1, per_video).astype(int).tolist())
        for index in range(first):
            ok, frame = cap.read()
            if not ok:
                break
            if index in wanted:
                frames.append(frame)
        cap.release()
    return frames


def agreement(reference: list[Detections], other: list[Detections]) -> dict[str, float]:
    """People found by each, and for boxes matched by IoU: lowest IoU, largest shift, score change."""
    found = [0, 0]
    ious, shifts, scores = [1.0], [0.0], [0.0]
    for a, b in zip(reference, other, strict=True):
        found[0], found[1] = found[0] + len(a), found[1] + len(b)
        if len(a) and len(b):
            overlap = box_iou(a.boxes, b.boxes)
            match = overlap.argmax(axis=1)
            ious += overlap.max(axis=1).tolist()
            shifts += np.abs(a.boxes - b.boxes[match]).max(axis=1).tolist()
            scores += np.abs(a.scores - b.scores[match]).tolist()
    return {"ref": found[0], "found": found[1], "iou": min(ious), "px": max(shifts), "score": max(scores)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8, help="frames per video")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--exports", nargs="+", default=list(EXPORTS), choices=EXPORTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    frames = sample_frames(args.frames)
    detectors = {fmt: PersonDetector(imgsz=args.imgsz, export=fmt) for fmt in args.exports}
    times: dict[str, list[float]] = {fmt: [] for fmt in detectors}
    found: dict[str, list[Detections]] = {fmt: [] for fmt in detectors}
    for detector in detectors.values():
        detector(frames[0])  # warm-up
    for repeat in range(args.repeats):
        for frame in frames:
            for fmt, detector in detectors.items():
                start = time.perf_counter()
                result = detector(frame)
                times[fmt].append((time.perf_counter() - start) * 1e3)
                if repeat == 0:
                    found[fmt].append(result)
    base = args.exports[0]
    print(
        f"person detector, imgsz {args.imgsz}, {len(frames)} frames x {args.repeats}, torch threads "
        f"{args.threads}; ms per call (median), boxes against {base}"
    )
    columns = ("ms", 7), ("speed-up", 8), ("people", 7), ("min IoU", 8), ("max px", 7), ("max score", 9)
    print(f"{'runtime':<10} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for fmt in detectors:
        ms = statistics.median(times[fmt])
        agree = agreement(found[base], found[fmt])
        speed = statistics.median(times[base]) / ms
        print(
            f"{fmt:<10} {ms:>7.1f} {speed:>7.2f}x {agree['found']:>3}/{agree['ref']:<3} {agree['iou']:>8.3f} "
            f"{agree['px']:>7.1f} {agree['score']:>9.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
