"""The driver: one Ray task per input, at most `workers` at a time, results recorded as they come.

Ray does the scheduling, the retries of tasks whose worker or machine died (`max_retries`) and
the moving of model files; this loop only keeps `workers` tasks in flight, turns each answer
into a manifest row and draws the progress bar. Keeping the number in flight bounded (rather
than submitting thousands of tasks at once) keeps the manifest's "running" rows true and lets
Ctrl-C cancel little.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import ray

from app.batch.manifest import Manifest, ManifestRow
from app.batch.progress import ProgressBoard
from app.batch.task import PipelineSpec, VideoJob, VideoResult, one_line, run_video
from sdpose_core.progress import meter

__all__ = ["BatchRun", "RunTotals", "TASK_RETRIES"]

TASK_RETRIES = 3  # Ray re-runs a task this often when its worker process or machine dies
POLL_S = 0.5  # progress bar and manifest refresh
SAVE_RUNNING_EVERY_S = 1.0  # frame counts of running rows are saved at most this often


@dataclass
class RunTotals:
    """This run's work, for the summary line and the manifest's summary."""

    workers: int = 0
    videos: int = 0
    failed: int = 0
    frames: int = 0
    people: int = 0
    seconds: float = 0.0  # from the first submission to the last answer
    startup_seconds: list[float] = field(default_factory=list)  # per finished task

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def add(self, row: ManifestRow) -> None:
        self.videos += 1
        self.failed += row.state != "done"
        self.frames += row.frames or 0
        self.people += row.people or 0
        if row.startup_seconds is not None:
            self.startup_seconds.append(row.startup_seconds)


def _crashed(exc: ray.exceptions.RayError) -> VideoResult:
    """A task Ray gave up on (its worker died `TASK_RETRIES` + 1 times, or its machine left)."""
    return VideoResult("failed", TASK_RETRIES + 1, "", time.time(), 0.0, error=one_line(exc, with_type=True))


def _apply(row: ManifestRow, result: VideoResult, submitted: float) -> None:
    """The task's answer into its row; times are counted from the task's submission, so they
    include what a task waits for before its first frame (a worker, imports, models)."""
    row.state, row.error = result.state, result.error
    row.frames, row.people, row.tracks = result.frames, result.people, result.tracks
    row.seconds = round(time.time() - submitted, 3)
    row.startup_seconds = None
    if result.first_frame_seconds is not None:
        row.startup_seconds = round(result.started_at - submitted + result.first_frame_seconds, 3)
    row.attempts, row.worker = result.attempt, result.worker or row.worker


class BatchRun:
    """One run on the driver: the queue, the tasks in flight, the totals; `run()` works them off.

    Needs Ray connected. `jobs` are the manifest rows to process; `summary` goes into the
    manifest's summary beside the counts."""

    def __init__(
        self,
        jobs: list[ManifestRow],
        out_dir: Path,
        spec: PipelineSpec,
        manifest: Manifest,
        workers: int,
        threads: int,
        summary: dict,
    ) -> None:
        self.board = ray.remote(num_cpus=0)(ProgressBoard).remote()
        self.task = ray.remote(run_video).options(
            num_cpus=threads, max_retries=TASK_RETRIES, retry_exceptions=False
        )
        self.queue = deque(jobs)
        self.inflight: dict[ray.ObjectRef, tuple[ManifestRow, float]] = {}  # row, submission time
        self.out_dir, self.spec, self.manifest, self.summary = out_dir, spec, manifest, summary
        self.totals = RunTotals(workers)
        self.start = self.last_save = time.perf_counter()

    def submit(self) -> None:
        """Keep `workers` tasks in flight."""
        while self.queue and len(self.inflight) < self.totals.workers:
            row = self.queue.popleft()
            job = VideoJob(row.input, str(self.out_dir / row.output))
            self.inflight[self.task.remote(job, self.spec, self.board)] = (row, time.time())

    def collect(self, ready: list[ray.ObjectRef]) -> list[ManifestRow]:
        """Record the answers of finished tasks; returns their rows."""
        rows = []
        for ref in ready:
            row, submitted = self.inflight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                result = _crashed(exc)
            _apply(row, result, submitted)
            self.totals.add(row)
            rows.append(row)
        return rows

    def refresh_running(self) -> bool:
        """Copy the board's view of running tasks into their rows; True if one started or restarted."""
        running = ray.get(self.board.snapshot.remote())
        changed = False
        for row, _ in self.inflight.values():
            entry = running.get(row.input)
            if entry is not None:
                changed |= (row.state, row.worker, row.attempts) != (
                    "running",
                    entry["worker"],
                    entry["attempt"],
                )
                row.state, row.worker, row.attempts, row.frames = (
                    "running",
                    entry["worker"],
                    entry["attempt"],
                    entry["frames"],
                )
        return changed

    def save(self) -> None:
        totals = self.totals
        totals.seconds = time.perf_counter() - self.start
        self.last_save = time.perf_counter()
        self.manifest.save(
            {
                **self.summary,
                **self.manifest.counts(),
                "run_frames": totals.frames,
                "run_seconds": round(totals.seconds, 2),
                "run_frames_per_second": round(totals.frames_per_second, 2),
            }
        )

    def status(self) -> str:
        """done / failed / running, and frames per second over all workers since the start."""
        running = [row for row, _ in self.inflight.values() if row.state == "running"]
        frames = self.totals.frames + sum(row.frames or 0 for row in running)
        fps = frames / max(time.perf_counter() - self.start, 1e-9)
        done = self.totals.videos - self.totals.failed
        return f"done {done}, failed {self.totals.failed}, running {len(running)}, {fps:.1f} frames/s"

    def cancel(self) -> None:
        """Ctrl-C: stop the tasks in flight; their rows go back to pending."""
        for ref, (row, _) in self.inflight.items():
            ray.cancel(ref, force=True)
            row.state, row.frames, row.worker = "pending", None, ""

    def run(self, progress: bool) -> RunTotals:
        """Process every job; rows and the manifest are updated as tasks start and finish, and
        on Ctrl-C the tasks in flight are cancelled."""
        bar = meter(len(self.queue), unit="video", enabled=progress)
        try:
            while self.queue or self.inflight:
                self.submit()
                ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=POLL_S)
                for row in self.collect(ready):
                    bar.update(1)
                    if row.state != "done":
                        bar.write(f"failed: {row.input}: {row.error}")
                started = self.refresh_running()
                if ready or started or time.perf_counter() - self.last_save >= SAVE_RUNNING_EVERY_S:
                    self.save()
                bar.set_postfix_str(self.status())
        except KeyboardInterrupt:
            self.cancel()
            raise
        finally:
            bar.close()
            self.save()
        return self.totals
