"""Our default pipeline against Ultralytics' own pose tracking, on the same frames, in one run.

    .venv/bin/python benchmarks/bench_vs_ultralytics.py [--frames 150] [--rounds 2] [--threads 2]

A user comparing tools runs `YOLO("yolo11n-pose.pt").track(source=video, stream=True,
persist=True)`, which decodes the file, detects and poses every frame and tracks. Ours is what
`main.py --headless --source VIDEO --output poses.jsonl` runs with configs/app.yaml (detector
every 5 frames, frames decoded ahead and written behind), once as configured and once with
`--precision int8`. Each tool runs the first `--frames` frames (after 5 warm-up frames) of
`sports2d_demo.mp4` (2 people) and `vtest.mp4` (small pedestrians); the tools take turns,
`--rounds` times, so a busy spell on a shared machine slows them alike. The table gives the
median FPS and its ratio to Ultralytics', the CPU time all threads spent per frame (less
sensitive to other jobs on the machine) and Ultralytics' over ours, people per frame, and how
many of the people Ultralytics outputs ours outputs too (a box of ours with IoU >= 0.5 in the
same frame).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pipeline import run_video  # noqa: E402

from app.builders import pipeline_from_config  # noqa: E402
from app.detector import default_detector_path  # noqa: E402
from app.pipeline import AppConfig  # noqa: E402
from app.tracker import box_iou  # noqa: E402

VIDEOS = REPO.parent / "shared" / "data" / "video"
WARMUP = 5
ULTRALYTICS = "ultralytics track"


@dataclass
class Runs:
    """One tool on one video: FPS and CPU ms per frame of each round, boxes of each timed frame
    (first round)."""

    fps: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)


def ultralytics_track(video: Path, frames: int) -> tuple[float, float, list[np.ndarray]]:
    """FPS, CPU ms per frame and per-frame boxes of Ultralytics' pose tracking, as a user runs it."""
    from ultralytics import YOLO

    model = YOLO(str(default_detector_path()))
    stream = model.track(source=str(video), stream=True, persist=True, verbose=False)
    boxes, start, cpu = [], time.perf_counter(), time.process_time()
    for index, result in enumerate(itertools.islice(stream, frames + WARMUP)):
        if index == WARMUP - 1:
            start, cpu = time.perf_counter(), time.process_time()
        elif index >= WARMUP:
            boxes.append(result.boxes.xyxy.cpu().numpy())
    n = len(boxes)
    return n / (time.perf_counter() - start), (time.process_time() - cpu) * 1e3 / n, boxes


def shared_people(ours: list[np.ndarray], theirs: list[np.ndarray], iou: float = 0.5) -> int:
    """How many of Ultralytics' people ours also outputs, frame by frame (greedy one-to-one
    matching, highest IoU first)."""
    found = 0
    for a, b in zip(ours, theirs, strict=True):
        if not (len(a) and len(b)):
            continue
        overlap = box_iou(np.asarray(b, np.float32), np.asarray(a, np.float32))
        mine, yours = set(), set()
        for flat in np.argsort(-overlap, axis=None):
            i, j = np.unravel_index(flat, overlap.shape)
            if overlap[i, j] < iou:
                break
            if i not in yours and j not in mine:
                yours.add(i)
                mine.add(j)
        found += len(yours)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--videos", nargs="+", default=["sports2d_demo.mp4", "vtest.mp4"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("YOLO_OFFLINE", "1")

    ours = {}
    for label, precision in (("ours (app.yaml)", None), ("ours --precision int8", "int8")):
        cfg = AppConfig.load()
        cfg.threads = args.threads
        cfg.precision = precision or cfg.precision
        ours[label] = (cfg, pipeline_from_config(cfg, None, None, None))
    tools = [*ours, ULTRALYTICS]
    results = {(video, tool): Runs() for video in args.videos for tool in tools}
    for round_index in range(args.rounds):
        for video in args.videos:
            order = tools if round_index % 2 == 0 else tools[::-1]
            for tool in order:
                runs = results[video, tool]
                boxes: list[np.ndarray] = []
                if tool == ULTRALYTICS:
                    fps, cpu_ms, boxes = ultralytics_track(VIDEOS / video, args.frames)
                else:
                    cfg, pipeline = ours[tool]
                    row = run_video(VIDEOS / video, cfg, None, args.frames, 0, WARMUP, True, pipeline, boxes)
                    fps, cpu_ms = row["fps"], row["cpu_ms"]
                runs.fps.append(fps)
                runs.cpu_ms.append(cpu_ms)
                if not runs.boxes:
                    runs.boxes = boxes

    cfg = next(iter(ours.values()))[0]
    print(
        f"{args.threads} threads, {args.frames} frames after {WARMUP} warm-up, {args.rounds} rounds in turn; "
        f"ours: detector every {cfg.detection.every} frames ({cfg.detector.export}, conf "
        f"{cfg.detector.conf}), precision {cfg.precision} unless said"
    )
    header = (
        f"{'video':<15} {'tool':<22} {'FPS':>6} {'vs UL':>6} {'CPU ms':>7} {'UL/this':>7} "
        f"{'people/frame':>12} {'vs UL':>6} {'UL people found':>15}"
    )
    print(header)
    print("-" * len(header))
    for video in args.videos:
        theirs = results[video, ULTRALYTICS]
        their_fps, their_cpu = statistics.median(theirs.fps), statistics.median(theirs.cpu_ms)
        their_people = sum(len(b) for b in theirs.boxes)
        for tool in tools:
            runs = results[video, tool]
            fps, cpu_ms = statistics.median(runs.fps), statistics.median(runs.cpu_ms)
            people = sum(len(b) for b in runs.boxes)
            found = shared_people(runs.boxes, theirs.boxes)
            print(
                f"{video[:15]:<15} {tool:<22} {fps:>6.1f} {fps / their_fps:>5.2f}x "
                f"{cpu_ms:>7.1f} {their_cpu / cpu_ms:>6.2f}x "
                f"{people / len(runs.boxes):>12.2f} {people / max(their_people, 1):>5.2f}x "
                f"{found:>7} / {their_people:<5}"
            )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
