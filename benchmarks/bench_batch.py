"""Throughput of `main.py batch` on Ray with 1 and 2 workers against a plain loop of `main.py --headless`.

    .venv/bin/python benchmarks/bench_batch.py [--max-frames 60] [--workers 1 2] [--json batch.json]

Every mode runs the same clips (the three videos in ../shared/data/video, cut to --max-frames)
as a user would, each as its own command, and is timed from outside: start-up included. For
each mode it reports frames/s over the whole command, the start-up a task pays before its first
frame (the loop: Python, torch and model loading every time; batch: Ray's worker, imports and
models on a fresh worker, almost nothing on a warm one), and the steady frames/s of one worker
once it runs, the figure a bigger machine or cluster multiplies. The machines are shared and
noisy: compare rows within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEOS = REPO.parent / "shared" / "data" / "video"
CLIPS = ("one-by-one-person-detection.mp4", "sports2d_demo.mp4", "vtest.mp4")
DONE = re.compile(r"done: (\d+) frames.*?([\d.]+) FPS")
RAY_UP = re.compile(r"up in ([\d.]+) s")


def _command(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "main.py", *args], cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}... failed ({proc.returncode}): {proc.stderr[-500:]}")
    return wall, proc.stderr


def plain_loop(clips: list[Path], max_frames: int, out: Path) -> dict:
    """`for clip in clips: python main.py --headless --source clip` (default threads)."""
    wall, frames, startups, fps = 0.0, 0, [], []
    for clip in clips:
        argv = ["--headless", "--no-progress", "--source", str(clip), "--max-frames", str(max_frames)]
        seconds, err = _command([*argv, "--output", str(out / f"{clip.stem}.jsonl")])
        match = DONE.search(err)
        n, clip_fps = int(match.group(1)), float(match.group(2))
        wall, frames = wall + seconds, frames + n
        startups.append(seconds - n / clip_fps)
        fps.append(clip_fps)
    return {
        "mode": "plain loop of main.py --headless",
        "wall_s": wall,
        "frames": frames,
        "startup_s": statistics.fmean(startups),
        "worker_fps": statistics.fmean(fps),  # main.py's own FPS: its first frame included
        "workers": 1,
        "ray_start_s": 0.0,
    }


def batch(clips: list[Path], max_frames: int, workers: int, out: Path) -> dict:
    """`python main.py batch` over the same clips, one thread per worker."""
    argv = ["batch", "--inputs", *map(str, clips), "--output-dir", str(out), "--max-frames", str(max_frames)]
    wall, err = _command([*argv, "--workers", str(workers), "--threads-per-worker", "1", "--no-progress"])
    rows = json.loads((out / "manifest.json").read_text())["inputs"]
    steady = sum(r["seconds"] - r["startup_seconds"] for r in rows)  # after each task's first frame
    return {
        "mode": f"batch, {workers} worker{'s' if workers > 1 else ''} x 1 thread",
        "wall_s": wall,
        "frames": sum(r["frames"] for r in rows),
        "startup_s": statistics.fmean(r["startup_seconds"] for r in rows),
        "startup_by_task_s": [r["startup_seconds"] for r in rows],
        "worker_fps": sum(r["frames"] - 1 for r in rows) / steady,
        "workers": workers,
        "ray_start_s": float(RAY_UP.search(err).group(1)),
    }


def cpu_per_frame(clips: list[Path], frames: int, warmup: int = 5) -> float:
    """CPU seconds one frame costs with 1 thread (models loaded, warm-up frames skipped), measured
    in this process: unlike wall time it barely depends on what else the machine runs, so
    1 / it is what one dedicated core gives, and N cores about N times that."""
    import itertools

    from app.builders import pipeline_from_config
    from app.pipeline import AppConfig
    from app.sources import open_source

    cfg = AppConfig.load()
    cfg.threads = 1
    pipeline = pipeline_from_config(cfg, None, None, None)
    spent, counted = 0.0, 0
    for clip in clips:
        pipeline.reset()
        with open_source(str(clip)) as source:
            results = pipeline.run(itertools.islice(source, warmup + frames))
            for _ in itertools.islice(results, warmup):
                pass
            start = time.process_time()
            counted += sum(1 for _ in results)
            spent += time.process_time() - start
    return spent / counted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-frames", type=int, default=60, help="frames per clip (default 60)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), help="video names in ../shared/data/video")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    clips = [VIDEOS / name for name in args.clips]
    load = os.getloadavg()[0]
    print(f"{len(clips)} clips x {args.max_frames} frames, {os.cpu_count()} CPUs, load average {load:.1f}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        rows.append(plain_loop(clips, args.max_frames, Path(tmp) / "loop"))
        for workers in args.workers:
            rows.append(batch(clips, args.max_frames, workers, Path(tmp) / f"batch{workers}"))
    base = rows[0]["frames"] / rows[0]["wall_s"]
    print(
        "\n| mode | wall s | frames | frames/s (whole command) | vs loop | Ray start s "
        "| start-up per task s | steady frames/s per worker | steady frames/s, all workers |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        fps = row["frames"] / row["wall_s"]
        row["fps"] = fps
        print(
            f"| {row['mode']} | {row['wall_s']:.1f} | {row['frames']} | {fps:.2f} | {fps / base:.2f}x "
            f"| {row['ray_start_s']:.1f} | {row['startup_s']:.1f} | {row['worker_fps']:.1f} "
            f"| {row['worker_fps'] * row['workers']:.1f} |"
        )
    for row in rows[1:]:
        tasks = ", ".join(f"{s:.1f}" for s in row["startup_by_task_s"])
        print(f"{row['mode']}: start-up of each task (s): {tasks}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    cpu = cpu_per_frame(clips, args.max_frames)
    print(
        f"CPU per frame with 1 thread: {cpu * 1e3:.0f} ms = {1 / cpu:.1f} frames/s per dedicated core; "
        f"projection for 16 single-thread workers: {16 / cpu:.0f} frames/s (before start-up and I/O)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load, "cpu_s_per_frame": cpu, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
