"""End-to-end FPS and per-stage latency of the app's pipeline on real videos.

    .venv/bin/python benchmarks/bench_pipeline.py [--weights PATH] [--frames 150] [--threads 2]
    .venv/bin/python benchmarks/bench_pipeline.py --stages [--rounds 2] [--frames 100]

Runs `python main.py --headless`'s pipeline (detector -> SDPose-T -> tracker -> JSONL writer)
for torch vs ONNX Runtime and detection every frame vs every 5th, on the one-person
`one-by-one-person-detection.mp4`, `sports2d_demo.mp4` (2 people) and `vtest.mp4` (4-7 small
people), then times the pose engine alone with 1, 2, 4 and 8 people per frame.
The machines are shared and noisy: compare rows within one run.

`--stages` times the default pipeline (ONNX, detector every 5 frames) as each speed-up changed it,
one change at a time: fp32 with the `.pt` detector and no overlap, then int8 SDPose, then the
OpenVINO detector, then decoding ahead and writing behind (`app.overlap`, as `main.py
--headless` runs), then ONNX Runtime's threads blocking instead of spinning while they wait.
The configurations take turns for `--rounds` rounds on each video, so a busy spell slows them
alike; per-stage times are means over all rounds, FPS the median round.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.builders import pipeline_from_config  # noqa: E402
from app.engine import PoseEngine  # noqa: E402
from app.exporters import JsonlWriter  # noqa: E402
from app.overlap import ReadAhead, WriteBehind  # noqa: E402
from app.pipeline import AppConfig  # noqa: E402
from app.sources import open_source  # noqa: E402

# video -> (detector input size, first frame): the one-person clip starts inside a visit
# (a person is in view over frames 228-448), so every timed frame has someone in it.
VIDEOS = {
    "one-by-one-person-detection.mp4": (640, 230),
    "sports2d_demo.mp4": (640, 0),  # 2 people, large: the default detector size
    "vtest.mp4": (960, 0),  # 4-7 small pedestrians: needs a bigger detector input
}
STAGES = ("read", "detect", "crop", "pose", "decode", "track", "write")


def run_video(
    path: Path,
    cfg: AppConfig,
    weights: str | None,
    frames: int,
    start: int = 0,
    warmup: int = 5,
    overlap: bool = False,
    pipeline=None,
    boxes: list[np.ndarray] | None = None,
) -> dict:
    """FPS, CPU ms, people per frame and mean ms per stage over `frames` frames after `warmup`. With
    `overlap`, frames are decoded ahead and written behind as `main.py --headless` does, and the
    time runs until the last one is written. `boxes` receives each timed frame's person boxes."""
    pipeline = pipeline or pipeline_from_config(cfg, weights, None, None)
    pipeline.reset()
    totals: dict[str, list[float]] = defaultdict(list)
    people = []
    with open_source(str(path)) as source, tempfile.TemporaryDirectory() as tmp:
        if start:
            source.seek(start)
        writer = JsonlWriter(Path(tmp) / "poses.jsonl")
        clock = {"start": time.perf_counter(), "cpu": time.process_time()}
        count = [0]

        def write(result) -> None:
            t0 = time.perf_counter()
            writer.write(result)
            write_ms = (time.perf_counter() - t0) * 1e3
            count[0] += 1
            if count[0] == warmup + 1:
                clock["start"], clock["cpu"] = t0, time.process_time()
            if count[0] > warmup:
                for stage in STAGES:
                    totals[stage].append(result.timings.get(stage, write_ms if stage == "write" else 0.0))
                people.append(len(result))
                if boxes is not None:
                    boxes.append(result.boxes)

        stream = itertools.islice(source, frames + warmup)
        reader = ReadAhead(stream) if overlap else stream
        behind = WriteBehind(write) if overlap else None
        for result in pipeline.run(reader):
            (behind.put if behind else write)(result)
        if behind:
            behind.close()
            reader.close()
        elapsed = time.perf_counter() - clock["start"]
        cpu_s = time.process_time() - clock["cpu"]
        writer.close()
    n = len(people)
    return {
        "fps": n / elapsed,
        "cpu_ms": cpu_s * 1e3 / n,  # CPU time of all threads per frame: less sensitive to other jobs
        "people": float(np.mean(people)),
        **{stage: statistics.fmean(totals[stage]) for stage in STAGES},
    }


def crops_scaling(cfg: AppConfig, weights: str | None, backend: str, repeats: int = 20) -> dict[int, float]:
    """Pose-engine ms per frame (crop + network + decode) with K people in one batch."""
    engine = PoseEngine(cfg.model, weights, backend, threads=cfg.threads or None)
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    out = {}
    for k in (1, 2, 4, 8):
        boxes = np.array([[100 + 140 * i, 100, 220 + 140 * i, 420] for i in range(k)], np.float32)
        for _ in range(3):
            engine.estimate(frame, boxes)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            engine.estimate(frame, boxes)
            times.append(time.perf_counter() - t0)
        out[k] = statistics.median(times) * 1e3
    return out


# (label, precision, detector export, overlapped stages, ONNX Runtime spinning): each row adds
# one speed-up to the one before.
CHANGES = (
    ("fp32, .pt detector", "fp32", "none", False, True),
    ("+ int8 SDPose", "int8", "none", False, True),
    ("+ OpenVINO detector", "int8", "openvino", False, True),
    ("+ read ahead/write behind", "int8", "openvino", True, True),
    ("+ ORT threads block", "int8", "openvino", True, False),
)


def stage_table(args, shared: Path) -> int:
    """Per-stage ms and FPS of the default pipeline before and after each change, interleaved."""
    videos = [v for v in args.videos if v != "one-by-one-person-detection.mp4"] or args.videos
    print(
        f"{args.threads} threads, ONNX Runtime, detector every 5 frames, {args.frames} frames per run after "
        f"5 warm-up frames, {args.rounds} rounds taken in turn; ms per frame (write: off the hot path "
        "when overlapped)"
    )
    header = f"{'video':<14} {'change':<26} {'FPS':>6} {'people':>6} " + " ".join(f"{s:>6}" for s in STAGES)
    print(header)
    print("-" * len(header))
    for video in videos:
        imgsz, start = VIDEOS.get(video, (640, 0))
        runs: dict[str, list[dict]] = defaultdict(list)
        pipelines = {}
        for label, precision, export, _, spinning in CHANGES:
            cfg = AppConfig.load()
            cfg.threads, cfg.precision, cfg.onnx_spinning = args.threads, precision, spinning
            cfg.detector.export, cfg.detector.imgsz = export, imgsz
            pipelines[label] = (cfg, pipeline_from_config(cfg, args.weights, None, None))
        for _ in range(args.rounds):
            for label, _, _, overlap, _ in CHANGES:
                cfg, pipeline = pipelines[label]
                row = run_video(
                    shared / video, cfg, args.weights, args.frames, start, overlap=overlap, pipeline=pipeline
                )
                runs[label].append(row)
        for label, *_ in CHANGES:
            rows = runs[label]
            fps = statistics.median(r["fps"] for r in rows)
            cells = " ".join(f"{statistics.fmean(r[s] for r in rows):>6.1f}" for s in STAGES)
            print(f"{video[:14]:<14} {label:<26} {fps:>6.1f} {rows[0]['people']:>6.2f} {cells}")
        sys.stdout.flush()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="pose checkpoint (default: the bundled weights)")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--videos", nargs="+", default=list(VIDEOS))
    parser.add_argument(
        "--force-carry",
        action="store_true",
        help="keep every person between detections whatever their keypoint scores (measures the "
        "cost of a model confident enough to carry boxes, independently of the weights' quality)",
    )
    parser.add_argument("--stages", action="store_true", help="the issue-20 changes one at a time")
    parser.add_argument("--rounds", type=int, default=2, help="--stages: turns each configuration takes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shared = REPO.parent / "shared" / "data" / "video"
    if args.stages:
        return stage_table(args, shared)

    carry = ", people carried between detections regardless of scores" if args.force_carry else ""
    print(f"{args.threads} threads, {args.frames} frames per run after 5 warm-up frames{carry}; ms per frame")
    header = f"{'video':<18} {'backend':<6} {'det':>4} {'FPS':>6} {'people':>6} " + " ".join(
        f"{s:>6}" for s in STAGES
    )
    print(header)
    print("-" * len(header))
    for video in args.videos:
        for backend in ("torch", "onnx"):
            for every in (1, 5):
                cfg = AppConfig.load()
                cfg.backend, cfg.threads = backend, args.threads
                imgsz, start = VIDEOS.get(video, (640, 0))
                cfg.detection.every, cfg.detector.imgsz = every, imgsz
                if args.force_carry:
                    cfg.detection.kpt_score = 0.0
                row = run_video(shared / video, cfg, args.weights, args.frames, start)
                print(
                    f"{video[:18]:<18} {backend:<6} {every:>4} {row['fps']:>6.1f} {row['people']:>6.1f} "
                    + " ".join(f"{row[s]:>6.1f}" for s in STAGES)
                )
                sys.stdout.flush()

    print("\npose engine alone (crop + SDPose-T + decode), ms per frame by people in the frame")
    print(f"{'backend':<8} " + " ".join(f"{k:>3} people" for k in (1, 2, 4, 8)))
    for backend in ("torch", "onnx"):
        cfg = AppConfig.load()
        cfg.threads = args.threads
        ms = crops_scaling(cfg, args.weights, backend)
        print(f"{backend:<8} " + " ".join(f"{ms[k]:>10.1f}" for k in (1, 2, 4, 8)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
