"""Keypoint smoothers replayed on a video's raw poses: shake and lag of each setting.

How much each setting steadies the skeleton, and what its lag costs against YOLO11n-pose's
per-frame keypoints.

    YOLO_OFFLINE=1 .venv/bin/python main.py --source ../shared/data/video/sports2d_demo.mp4 \\
        --headless --smoothing none --output /tmp/raw.jsonl
    .venv/bin/python benchmarks/bench_smoothing.py /tmp/raw.jsonl \\
        [--labels ../shared/data/pseudo_labels/sports2d_demo.yolo11n-pose.json] \\
        [--setting kalman:0.5 --setting oneeuro:0.3:oneeuro_beta=2 ...]

Why a replay: the tracker matches people on raw keypoints and smooths only its output
(`app.tracker`), so a `--smoothing none` run holds everything a smoother sees (track ids, frame
times, joints and scores) and every setting can be tried on it without running the models again.
Each setting goes through `app.smoothing` as the tracker calls it, with the tracker's time rule
(`increasing_time`); the file keeps times to the millisecond and joints to 0.01 px, so the
replay matches what the tracker drew to within about a pixel (0.06 px on average at 30 FPS).
A run written with smoothing on would be smoothed twice: the file cannot say so, hence the flag.

Two figures per setting, both over the people of every frame:
* jitter: the mean size of each joint's frame-to-frame acceleration, |p(t+1) - 2 p(t) + p(t-1)|,
  over three consecutive frames of one track where our raw score is >= `--min-score` in all
  three, in per cent of the person's size (sqrt of box area). What a viewer sees as shaking;
  true motion has some too, so it never reaches 0.
* agreement with YOLO11n-pose (`bench_video_agreement`'s OKS terms): YOLO reads each frame on
  its own, so a smoother that lags behind fast limbs loses agreement, and one that removes our
  frame-to-frame noise without lagging gains it. A model's output, not ground truth.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_video_agreement import DEFAULT_LABELS, load_labels, score_frames  # noqa: E402

from app.smoothing import SMOOTHING_KINDS, SmoothingConfig, make_smoother  # noqa: E402
from app.tracker import TrackerConfig, increasing_time  # noqa: E402

# The window's strength slider around its default (0.5: `configs/tracker.yaml` as written).
DEFAULT_SETTINGS = [
    "none",
    *(f"kalman:{s}" for s in (0.3, 0.4, 0.5, 0.6, 0.7)),
    *(f"oneeuro:{s}" for s in (0.3, 0.4, 0.5, 0.6, 0.7)),
]


@dataclass
class Setting:
    """One smoother to try: `kind[:strength[:key=value,...]]`, keys of `SmoothingConfig`."""

    label: str
    config: SmoothingConfig

    @classmethod
    def parse(cls, text: str, base: SmoothingConfig) -> Setting:
        """Raises ValueError with a one-line reason for anything it cannot take."""
        kind, _, rest = text.partition(":")
        if kind not in SMOOTHING_KINDS:
            raise ValueError(
                f"unknown smoothing {kind!r} in {text!r}; choose one of {', '.join(SMOOTHING_KINDS)}"
            )
        strength, _, params = rest.partition(":")
        changes: dict[str, float | str] = {"kind": kind}
        if strength:
            changes["strength"] = _number(strength, "strength", text)
        other = {"kalman": "oneeuro_", "oneeuro": "kalman_", "none": ("kalman_", "oneeuro_")}[kind]
        for pair in filter(None, params.split(",")):
            key, _, value = pair.partition("=")
            if key not in SmoothingConfig.__dataclass_fields__ or key in ("kind", "strength"):
                raise ValueError(f"unknown smoothing parameter {key!r} in {text!r}")
            if key.startswith(other):
                raise ValueError(f"{key} does not apply to {kind} in {text!r}")
            changes[key] = _number(value, key, text)
        return cls(text, replace(base, **changes))


def _number(value: str, name: str, text: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"bad number {value!r} for {name} in {text!r}")
    return number


def read_run(path: Path) -> list[dict]:
    """The frames of a `main.py --output` JSON Lines file, in order. Raises ValueError (one line)
    for a file that is not one, or whose people have no track ids (-1: the tracker was off)."""
    frames = []
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                frame = json.loads(line)
                people = frame["people"]
                float(frame["time"]), int(frame["frame"])
                ids = [person["track_id"] for person in people]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise ValueError(f"{path} line {number} is not a main.py JSON Lines frame") from None
            if any(i is None or int(i) < 0 for i in ids):
                raise ValueError(f"{path} has people without track ids; write it with the tracker on")
            frames.append(frame)
    if not frames:
        raise ValueError(f"{path} holds no frames")
    return frames


def smoothed(frames: list[dict], config: SmoothingConfig, fallback_dt: float) -> list[dict]:
    """`frames` with each person's keypoints passed through a fresh smoother of `config`, one
    `update` per person and frame with the frame's time, as `app.tracker.Tracker` does (with its
    `fallback_dt`, `TrackerConfig`'s, for a clock that does not move forward)."""
    smoother = make_smoother(config=config)
    out = []
    t: float | None = None
    for frame in frames:
        t = increasing_time(frame["time"], t, fallback_dt)
        people = []
        for person in frame["people"]:
            kpts = np.asarray(person["keypoints"], dtype=np.float64).reshape(17, 3)
            xy = smoother.update(int(person["track_id"]), t, kpts[:, :2], kpts[:, 2])
            people.append({**person, "keypoints": np.column_stack([xy, kpts[:, 2]]).tolist()})
        out.append({**frame, "people": people})
    return out


def jitter(frames: list[dict], raw: list[dict], min_score: float) -> float:
    """Mean joint acceleration per frame, in per cent of the person's size (see module doc).
    `raw` (the unsmoothed frames) decides which joints count, so every setting is measured on
    the same joints."""
    tracks: dict[int, dict[int, tuple[np.ndarray, np.ndarray, float]]] = {}
    for frame, raw_frame in zip(frames, raw, strict=True):
        for person, raw_person in zip(frame["people"], raw_frame["people"], strict=True):
            kpts = np.asarray(person["keypoints"], dtype=np.float64).reshape(17, 3)[:, :2]
            score = np.asarray(raw_person["keypoints"], dtype=np.float64).reshape(17, 3)[:, 2]
            w, h = person["bbox"][2], person["bbox"][3]
            tracks.setdefault(int(person["track_id"]), {})[int(frame["frame"])] = (
                kpts,
                score,
                np.sqrt(w * h),
            )
    steps = []
    for by_frame in tracks.values():
        for f, (now, score, size) in by_frame.items():
            if f - 1 not in by_frame or f + 1 not in by_frame or size <= 0:
                continue
            before, after = by_frame[f - 1], by_frame[f + 1]
            counted = (score >= min_score) & (before[1] >= min_score) & (after[1] >= min_score)
            accel = np.linalg.norm(after[0] - 2 * now + before[0], axis=1)[counted]
            steps.extend(100.0 * accel / size)
    return float(np.mean(steps)) if steps else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "run",
        type=Path,
        help="a main.py --smoothing none --output JSON Lines file (smoothing on: smoothed twice)",
    )
    p.add_argument(
        "--labels", type=Path, default=DEFAULT_LABELS, help="the video's shared/data/pseudo_labels file"
    )
    p.add_argument("--setting", action="append", help="kind[:strength[:key=value,...]] (repeatable)")
    p.add_argument(
        "--min-score", type=float, default=0.3, help="our raw joint score a joint needs for jitter"
    )
    p.add_argument("--iou", type=float, default=0.5, help="box IoU a match with YOLO needs")
    p.add_argument("--label-score", type=float, default=0.5, help="YOLO joint score a joint needs to count")
    p.add_argument("--draw-threshold", type=float, default=0.3, help="our confidence the renderer draws from")
    args = p.parse_args(argv)
    for path in (args.labels, args.run):
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    tracker = TrackerConfig.load()
    try:
        settings = [Setting.parse(text, tracker.smoothing) for text in args.setting or DEFAULT_SETTINGS]
        raw = read_run(args.run)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    labels = load_labels(args.labels)
    agreement_args = argparse.Namespace(
        iou=args.iou, min_score=args.label_score, draw_threshold=args.draw_threshold
    )
    print(f"{args.run.name}: {len(raw)} frames; agreement against {args.labels.name} (not ground truth)")
    print(f"{'setting':60} | jitter % | agreement all | arms  | legs ")
    for setting in settings:
        frames = smoothed(raw, setting.config, tracker.fallback_dt)
        r = score_frames(frames, labels, agreement_args)
        shake = jitter(frames, raw, args.min_score)
        figures = f"{r['all']:.3f} | {r['arms']:.3f} | {r['legs']:.3f}"
        print(f"{setting.label[:60]:60} | {shake:8.2f} |         {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
