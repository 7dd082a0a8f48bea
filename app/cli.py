"""Command line of the app: the headless runner (progress bar, outputs written as frames finish,
summary) and the hand-off to the desktop GUI.

A run checks in order of cost, so that a mistake is reported in a second and no file is opened
before it is known the run can start: flags and config, output paths (`app.preflight`), a file
source, then the model, then a camera or stream, and only then the outputs. Expected mistakes
end in one line and exit code 2; SIGTERM ends a run as Ctrl-C does (outputs finished, exit 143).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from app.builders import pipeline_from_config
from app.engine import BACKENDS, PRECISIONS, check_engine_choice
from app.exporters import FORMATS, OutputError, finish_writers, open_writers
from app.limits import device_flag, flag_type
from app.overlap import ReadAhead, WriteBehind
from app.pipeline import AppConfig, DetectorConfig, PosePipeline
from app.preflight import check_paths
from app.smoothing import SMOOTHING_KINDS
from app.sources import DEFAULT_FPS, Source, SourceError, is_live_spec, open_source
from app.types import Frame
from sdpose_core.cli import ArgumentParser, describe_error, interrupt_exit_code, positive_int, run_cli
from sdpose_core.config import ConfigError
from sdpose_core.errors import EXPECTED_ERRORS
from sdpose_core.models import VARIANT_NAMES
from sdpose_core.progress import meter

__all__ = ["main", "build_parser", "DEMO_CLIP"]

logger = logging.getLogger("sdpose-app")

DEMO_CLIP = Path(__file__).resolve().parent.parent / "assets" / "demo" / "sports2d_demo.mp4"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python main.py",
        description="Real-time human pose estimation with SDPose: webcam, video, images or streams.",
    )
    src = parser.add_argument_group("input")
    src.add_argument(
        "--source",
        default=str(DEMO_CLIP),
        help="'webcam', a camera index, a video file, an image folder or an rtsp/http URL "
        "(default: the bundled demo clip)",
    )
    src.add_argument(
        "--realtime",
        action="store_true",
        help="play a video file at its own frame rate, dropping frames like a camera",
    )
    src.add_argument("--max-frames", type=positive_int, help="stop after N frames")

    out = parser.add_argument_group("output")
    out.add_argument("--headless", action="store_true", help="no window: print progress, write files")
    out.add_argument("--output", help="keypoints file (jsonl or coco) or folder (openpose)")
    out.add_argument("--format", choices=FORMATS, default="jsonl", help="format of --output (default jsonl)")
    out.add_argument("--save-video", help="write the annotated video here (.mp4 or .avi)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar (logs stay)")
    out.add_argument(
        "--exit-after-frames", type=positive_int, metavar="N", help="window: quit after N frames were shown"
    )
    out.add_argument("--screenshot", metavar="PNG", help="window: save a picture of it here when quitting")

    model = parser.add_argument_group("pose model")
    model.add_argument("--config", help="app settings file (default configs/app.yaml)")
    model.add_argument("--model", help=f"SDPose variant ({', '.join(VARIANT_NAMES)}) or a config path")
    model.add_argument("--weights", help="checkpoint (.pth, the authors' or ours) or exported .onnx")
    model.add_argument("--backend", choices=BACKENDS)
    model.add_argument("--device", type=device_flag, help="cpu, cuda or cuda:N")
    model.add_argument(
        "--flip-test",
        action=argparse.BooleanOptionalAction,
        help="average with mirrored crops (--no-flip-test: one pass, whatever the settings say)",
    )
    model.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        help="read each person again in a box around their first-pass joints (up to 2x pose time;"
        " --no-refine: one read, whatever the settings or the window remembered)",
    )
    model.add_argument(
        "--threads", type=flag_type(AppConfig, "threads"), help="CPU threads for the pose model (0: all)"
    )
    model.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="bf16: bfloat16 autocast (torch backend); int8: quantized model (onnx backend)",
    )

    det = parser.add_argument_group("person detection and tracking")
    det.add_argument("--detector", help="an Ultralytics model file (default: bundled yolo11n-pose.pt)")
    det.add_argument(
        "--det-size",
        type=flag_type(DetectorConfig, "imgsz"),
        help="detector input size (960-1280 for small people)",
    )
    det.add_argument(
        "--det-conf", type=flag_type(DetectorConfig, "conf"), help="minimum person box confidence (0-1)"
    )
    det.add_argument("--det-every", help="run the detector every N frames, or 'auto' (adaptive)")
    det.add_argument("--smoothing", choices=SMOOTHING_KINDS, help="keypoint smoothing")
    return parser


def _apply_flags(cfg: AppConfig, args: argparse.Namespace) -> AppConfig:
    """Command-line flags override `configs/app.yaml`."""
    for flag in ("model", "backend", "device", "flip_test", "threads", "precision"):
        value = getattr(args, flag)
        if value is not None:
            setattr(cfg, flag, value)
    if args.refine is not None:
        cfg.refine.enabled = bool(args.refine)
    if args.det_size is not None:
        cfg.detector.imgsz = args.det_size
    if args.det_conf is not None:
        cfg.detector.conf = args.det_conf
    if args.det_every is not None:
        if args.det_every == "auto":
            cfg.detection.adaptive = True
        elif args.det_every.isdigit() and int(args.det_every) >= 1:
            cfg.detection.every = int(args.det_every)
            cfg.detection.adaptive = False
        else:
            raise ConfigError(f"--det-every takes a positive integer or 'auto', not {args.det_every!r}")
    check_engine_choice(cfg.backend, cfg.precision)  # the same rule for the window and the CLI
    return cfg


class RunStats:
    """Frame, people and per-stage time totals for the closing summary."""

    def __init__(self) -> None:
        self.frames = 0
        self.people = 0
        self.track_ids: set[int] = set()
        self.stage_ms: dict[str, float] = defaultdict(float)
        self.start = time.perf_counter()

    def add(self, result, write_ms: float) -> None:
        self.frames += 1
        self.people += len(result)
        if result.track_ids is not None:
            self.track_ids.update(int(i) for i in result.track_ids)
        for stage, ms in result.timings.items():
            self.stage_ms[stage] += ms
        self.stage_ms["write"] += write_ms

    def summary(self) -> str:
        elapsed = time.perf_counter() - self.start
        n = max(self.frames, 1)
        stages = " ".join(f"{k} {v / n:.1f}" for k, v in self.stage_ms.items())
        return (
            f"{self.frames} frames, {self.people} people ({self.people / n:.1f}/frame, "
            f"{len(self.track_ids)} tracks), {self.frames / max(elapsed, 1e-9):.1f} FPS; "
            f"ms per frame: {stages}"
        )


@dataclass
class RunEnd:
    """How the frame loop ended: finished, interrupted (Ctrl-C or SIGTERM) or stopped by an error."""

    interrupted: KeyboardInterrupt | None = None
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.interrupted is None and self.error is None


def _first_frame(source: Source) -> Frame:
    first = next(iter(source), None)
    if first is None:
        raise SourceError(source.error or f"{source.name} has no frames")
    return first


def run_headless(args: argparse.Namespace, cfg: AppConfig) -> int:
    with contextlib.ExitStack() as stack:
        source: Source | None = None
        if not is_live_spec(args.source):  # a file or folder: a wrong path costs a second, not a model load
            source = stack.enter_context(open_source(args.source))
            first = _first_frame(source)
        pipeline = pipeline_from_config(cfg, args.weights, args.detector, args.smoothing)
        if source is None or args.realtime:  # live frames start only now, so none drop while loading
            if source is not None:
                source.close()
            source = stack.enter_context(open_source(args.source, realtime=args.realtime))
            first = _first_frame(source)
        height, width = first.image.shape[:2]
        writers = open_writers(
            args.output,
            args.format,
            args.save_video,
            source.fps or DEFAULT_FPS,
            (width, height),
            Path(source.name).stem,
            paced_video=source.is_live,  # live sources drop frames: keep the video's timing real
        )
        stream = itertools.chain([first], source)
        if args.max_frames:
            stream = itertools.islice(stream, args.max_frames)
        stats, end = _loop(pipeline, stream, writers, source, args)
        kept, failures = finish_writers(writers, complete=end.complete)
    if failures and end.complete:
        end.error = describe_error(failures.pop(0))
    for failure in failures:  # an output lost as well as the error that ended the run: said too
        logger.error("%s", describe_error(failure))
    return _report(stats, end, kept, bool(writers))


def _loop(pipeline: PosePipeline, stream, writers, source, args) -> tuple[RunStats, RunEnd]:
    """Run and write every frame; returns how it ended (a write error or an interrupt ends it
    early, so that the outputs are closed and reported, never left half-written).

    A file's next frames are decoded on a thread while this one poses (a camera or stream has
    its own reader already), and results are written on another, in order (`app.overlap`);
    every result handed over is written before the outputs close, also after Ctrl-C."""
    total = source.frame_count
    if args.max_frames and total:
        total = min(total, args.max_frames)
    stats = RunStats()
    bar = meter(total, unit="frame", enabled=not args.no_progress)
    end = RunEnd()

    def write(result) -> None:  # on the writer thread; `stats` counts what is written
        t0 = time.perf_counter()
        for writer in writers:
            writer.write(result)
        stats.add(result, (time.perf_counter() - t0) * 1e3)
        bar.update(1)
        bar.set_postfix(people=len(result), refresh=False)

    frames = stream if source.is_live else ReadAhead(stream)
    behind = WriteBehind(write)
    try:
        for result in pipeline.run(frames):
            behind.put(result)
    except KeyboardInterrupt as exc:
        end.interrupted = exc
    except OutputError as exc:
        end.error = describe_error(exc)
    else:
        end.error = source.error
    finally:
        if isinstance(frames, ReadAhead):
            frames.close()
        try:
            behind.close()  # writes every finished frame
        except OutputError as exc:
            end.error = end.error or describe_error(exc)
        bar.close()
    return stats, end


def _report(stats: RunStats, end: RunEnd, kept: list[str], had_outputs: bool) -> int:
    """The last line of the run says how it ended and, after an error, what was kept."""
    if end.interrupted is not None:
        print("interrupted after " + stats.summary(), file=sys.stderr)
        return interrupt_exit_code(end.interrupted)
    if end.error is None:
        print("done: " + stats.summary(), file=sys.stderr)
        return 0
    print("stopped after " + stats.summary(), file=sys.stderr)
    if kept:
        saved = f"the {stats.frames} frames before it were kept in {', '.join(kept)}"
    elif had_outputs:
        saved = "no output was saved"
    else:
        saved = f"the {stats.frames} frames before it were processed"
    print(f"error: {end.error}; {saved}", file=sys.stderr)
    return 1


def run_gui(args: argparse.Namespace, cfg: AppConfig) -> int:
    on_screen = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform != "linux"
    if not on_screen and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        raise SourceError(
            "no display found: add --headless (and --output poses.jsonl) to run without a window"
        )
    try:
        from app.gui import run_app
    except ImportError:
        raise SourceError("the desktop app is not in this build yet: add --headless") from None
    return run_app(args, cfg)


def configure_logging() -> None:
    """Our messages at INFO; third-party libraries (the ONNX exporter is chatty) at WARNING."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("app", "sdpose_core", "sdpose-app"):
        logging.getLogger(name).setLevel(logging.INFO)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    cfg = _apply_flags(AppConfig.load(args.config), args)
    check_paths(args)
    return run_headless(args, cfg) if args.headless else run_gui(args, cfg)


def main(argv: list[str] | None = None) -> int:
    """`python main.py ...`: the exit code (0 done, 1 stopped by an error mid-run, 2 a mistake
    found before the run, 130 / 143 Ctrl-C / SIGTERM)."""
    configure_logging()
    return run_cli(_run, argv, errors=EXPECTED_ERRORS)
