"""What one Ray task does: one video (or image folder) through the app's own pipeline and writers.

The pipeline is `app.builders.pipeline_from_config`, the writers `app.exporters.open_writers`, and the
frames pass exactly as in `main.py --headless`, so a batch output equals a single run's with the
same flags. A worker process keeps its loaded detector and pose model between videos (the
expensive part of a start); each video gets a new tracker, so track ids start at 1 as they do
in a single run.

Failures of the video itself (a damaged file, no frames) come back as a `failed` result with
one line: they are not retried and do not stop other videos. A worker that dies is not an
answer at all: Ray runs the task again elsewhere, and the half-written output of the dead
attempt, under its temporary name, is never mistaken for a finished one.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray

from app.batch.models import ShippedFile
from app.batch.outputs import commit, discard, temp_path
from app.builders import pipeline_from_config
from app.cli import RunStats
from app.exporters import close_writers, open_writers
from app.pipeline import AppConfig, PosePipeline
from app.sources import DEFAULT_FPS, SourceError, open_source
from app.tracker import Tracker
from sdpose_core.cli import describe_error
from sdpose_core.errors import EXPECTED_ERRORS

__all__ = ["PipelineSpec", "VideoJob", "VideoResult", "run_video", "one_line"]

REPORT_EVERY_S = 0.5  # how often a task posts its frame count to the progress board


@dataclass(frozen=True)
class PipelineSpec:
    """Everything but the input that decides an output: the same for every task of a run."""

    cfg: AppConfig  # configs/app.yaml with the command line's flags applied, as main.py does
    fmt: str  # jsonl, coco or openpose
    pose: ShippedFile  # the pose weights (.onnx for the onnx backend)
    detector: ShippedFile | None  # None: the bundled detector
    smoothing: str | None
    max_frames: int | None

    def models_key(self) -> str:
        """Identifies the loaded models, so a worker reloads only when they change."""
        det = self.detector.digest if self.detector else ""
        return repr((self.cfg, self.pose.digest, det, self.smoothing))


@dataclass(frozen=True)
class VideoJob:
    source: str  # video file or image folder (absolute)
    output: str  # final output path (absolute)


@dataclass
class VideoResult:
    """What a task reports back; the driver turns it into the input's manifest row."""

    state: str  # done or failed
    attempt: int  # 1, or more when Ray re-ran the task after its worker died
    worker: str  # host:pid
    started_at: float  # time.time() when this attempt began
    seconds: float  # this attempt's duration
    first_frame_seconds: float | None = None  # from the attempt's start until frame 1 was written
    frames: int = 0
    people: int = 0
    tracks: int = 0
    error: str = ""


_loaded: dict[str, PosePipeline] = {}  # per worker process: at most one set of models


def _models(spec: PipelineSpec) -> PosePipeline:
    key = spec.models_key()
    if key not in _loaded:
        _loaded.clear()
        detector = str(spec.detector.local_path()) if spec.detector else None
        _loaded[key] = pipeline_from_config(spec.cfg, str(spec.pose.local_path()), detector, spec.smoothing)
    return _loaded[key]


def _fresh_pipeline(spec: PipelineSpec) -> PosePipeline:
    """The loaded detector and engine with a new tracker (ids from 1, as in a single run)."""
    base = _models(spec)
    return PosePipeline(base.detector, base.engine, Tracker(base.tracker.config), base.schedule)


def one_line(exc: BaseException, with_type: bool = False) -> str:
    """An exception as one manifest line; `with_type` for the unexpected ones (a bug, Ray's own)."""
    text = describe_error(exc)
    return f"{type(exc).__name__}: {text}" if with_type and not text.startswith(type(exc).__name__) else text


class _Reporter:
    """Posts the frame count to the board at most every `REPORT_EVERY_S`; notes when frame 1 was done."""

    def __init__(self, board, key: str) -> None:
        self.board, self.key = board, key
        self.first_frame: float | None = None
        self.last = time.perf_counter()

    def __call__(self, frames: int) -> None:
        now = time.perf_counter()
        if self.first_frame is None:
            self.first_frame = now
        if now - self.last >= REPORT_EVERY_S:
            self.last = now
            self.board.frames.remote(self.key, frames)


def _process(
    pipeline: PosePipeline,
    spec: PipelineSpec,
    source_path: str,
    output: Path,
    on_frame: Callable[[int], None],
) -> RunStats:
    """Run one source into `output` as `main.py --headless` does (same reader, pipeline, writers)."""
    source = open_source(source_path)
    with source:
        frames = iter(source)
        first = next(frames, None)
        if first is None:
            raise SourceError(source.error or f"{source.name} has no frames")
        height, width = first.image.shape[:2]
        name = Path(source.name).stem
        writers = open_writers(str(output), spec.fmt, None, source.fps or DEFAULT_FPS, (width, height), name)
        stats = RunStats()
        try:
            for result in pipeline.run(itertools.islice(itertools.chain([first], frames), spec.max_frames)):
                for writer in writers:
                    writer.write(result)
                stats.add(result, 0.0)
                on_frame(stats.frames)
        finally:
            close_writers(writers)
        if source.error:
            raise SourceError(f"{source.error} (after {stats.frames} frames; the partial output is not kept)")
    return stats


def run_video(job: VideoJob, spec: PipelineSpec, board) -> VideoResult:
    """The Ray task: process one input under a temporary name, then rename it to `job.output`."""
    start, started_at = time.perf_counter(), time.time()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    attempt = int(ray.get(board.started.remote(job.source, worker)))
    final = Path(job.output)
    temp = temp_path(final)
    reporter = _Reporter(board, job.source)
    result = VideoResult("failed", attempt, worker, started_at, 0.0)
    try:
        stats = _process(_fresh_pipeline(spec), spec, job.source, temp, reporter)
        commit(temp, final)
        result.state = "done"
        result.frames, result.people, result.tracks = stats.frames, stats.people, len(stats.track_ids)
    except EXPECTED_ERRORS as exc:
        result.error = one_line(exc)
    except Exception as exc:  # a bug or a library's surprise: this video fails, the rest go on
        result.error = one_line(exc, with_type=True)
    finally:
        discard(temp)
        board.finished.remote(job.source)
    result.seconds = round(time.perf_counter() - start, 3)
    if reporter.first_frame is not None:
        result.first_frame_seconds = round(reporter.first_frame - start, 3)
    return result
