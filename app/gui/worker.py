"""The window's worker: capture, inference, recording and the session log, on one `QThread`.

The UI thread never runs inference (as in DeepLabCut-live-GUI). The window posts typed
commands (`app.gui.messages`) into a thread-safe queue that the loop drains between frames, so a
command waits at most one frame; results, states and records go back by signal. Display
hand-off is newest-frame-wins: at most `MAX_IN_FLIGHT` results are queued towards the UI and a
newer one replaces a held one, so a slow repaint never makes latency grow. Every failure
becomes an `error(str)` signal, never a traceback. The engine and detector are built on the
first frame (`app.gui.model_slot`), so the window appears at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from PyQt6.QtCore import QObject, pyqtSignal, pyqtSlot

from app.builders import BUILD_ERRORS, DetectorFactory, EngineSpec
from app.draw import DrawStyle
from app.exporters import OutputError
from app.gui.messages import (
    Command,
    Export,
    Open,
    Pause,
    Play,
    RecordStart,
    RecordStop,
    Seek,
    SetDetection,
    SetEngine,
    SetMaxSpeed,
    SetSmoothing,
    SetStyle,
    SourceInfo,
    Step,
    Toggle,
    Wake,
    WorkerStats,
    one_line,
)
from app.gui.model_slot import ModelSlot
from app.gui.playback import Player, WorkerState
from app.gui.session import Recorder, SessionLog, StatsMeter
from app.pipeline import DetectionSchedule, PosePipeline
from app.refine import CropRefinement
from app.sources import DEFAULT_FPS
from app.types import Frame, FrameResult

__all__ = ["PoseWorker", "WorkerState", "MAX_IN_FLIGHT"]

logger = logging.getLogger(__name__)

MAX_IN_FLIGHT = 2  # results emitted to the UI and not yet taken
STATS_PERIOD_S = 0.5


class PoseWorker(QObject):
    """Owns the source and (in a `ModelSlot`) the `PosePipeline`; call `post(command)` from any
    thread with one of the commands of `app.gui.messages` (`Open`, `Seek`, `SetEngine`, ...)."""

    result_ready = pyqtSignal(object)  # FrameResult
    stats = pyqtSignal(object)  # WorkerStats
    source_opened = pyqtSignal(object)  # SourceInfo
    state_changed = pyqtSignal(object)  # WorkerState
    error = pyqtSignal(str)
    message = pyqtSignal(str)
    model_ready = pyqtSignal(object)  # ModelInfo
    recording = pyqtSignal(bool, str)  # (on, path)
    exported = pyqtSignal(str, int)
    finished = pyqtSignal()

    def __init__(
        self,
        spec: EngineSpec,
        detector_factory: DetectorFactory,
        schedule: DetectionSchedule,
        *,
        flip_test: bool = False,
        smoothing: str = "kalman",
        strength: float = 0.5,
        style: DrawStyle | None = None,
        max_speed: bool = False,
        fallback: EngineSpec | None = None,
        refine: CropRefinement | None = None,
    ) -> None:
        super().__init__()
        self._commands: queue.Queue[Command] = queue.Queue()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._in_flight = 0
        self._held: FrameResult | None = None
        self._model = ModelSlot(
            spec,
            detector_factory,
            schedule,
            flip_test=flip_test,
            smoothing=smoothing,
            strength=strength,
            fallback=fallback,
            refine=refine,
            on_message=self.message.emit,
            on_error=self.error.emit,
            on_model=self.model_ready.emit,
        )
        self._player = Player(self.state_changed.emit, max_speed)
        self._seen_dropped = 0
        self._recorder = Recorder()
        self._recorder.style = style or DrawStyle()
        self._meter = StatsMeter()
        self._log = SessionLog()
        self._last_stats = 0.0

    # -- called from the UI thread -------------------------------------------------------------

    def post(self, command: Command) -> None:
        """Queue a command for the worker loop (thread-safe)."""
        self._commands.put(command)

    def ack(self) -> None:
        """The UI took one result off the signal queue."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def stop(self) -> None:
        """Ask the loop to exit; a live source is closed at once so a blocked read returns."""
        self._stopping.set()
        self.post(Wake())
        source = self._player.source
        if source is not None and source.is_live:
            source.close()

    @property
    def state(self) -> WorkerState:
        return self._player.state

    @property
    def _pipeline(self) -> PosePipeline | None:
        """The pipeline that runs (None until the first frame builds it)."""
        return self._model.pipeline

    # -- the loop ------------------------------------------------------------------------------

    @pyqtSlot()
    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._handle_commands(self._player.wait_time())
                if self._stopping.is_set():
                    break
                held = self._held
                if held is not None:
                    self._publish(held)
                if self._player.frame_due():
                    self._advance()
        except Exception as exc:  # the last line of defence: report, never kill the app
            logger.exception("worker failed")
            self.error.emit(f"worker stopped after an unexpected error: {one_line(exc)}")
        finally:
            self._final_exports()
            self._record_stop()
            self._player.close()
            self._log.cleanup()
            self._player.set_state(WorkerState.STOPPED)
            self.finished.emit()

    def _final_exports(self) -> None:
        """Exports asked for as the window closed (`--output`) still run; other commands lapse."""
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(command, Export):
                try:
                    self._export(command.path)
                except (OutputError, OSError, ValueError) as exc:
                    self.error.emit(one_line(exc))
                    logger.error("%s", one_line(exc))

    def _handle_commands(self, timeout: float) -> None:
        batch: list[Command] = []
        try:
            batch.append(self._commands.get(timeout=timeout) if timeout > 0 else self._commands.get_nowait())
            while True:
                batch.append(self._commands.get_nowait())
        except queue.Empty:
            pass
        for i, command in enumerate(batch):
            if isinstance(command, Seek) and i + 1 < len(batch) and isinstance(batch[i + 1], Seek):
                continue  # scrubbing the timeline: only the newest position matters
            try:
                self._handle(command)
            except BUILD_ERRORS as exc:
                self.error.emit(one_line(exc))
            except Exception as exc:  # a bug in one command must not end the session
                logger.exception("worker command %s failed", command)
                self.error.emit(f"{type(command).__name__} failed: {one_line(exc)}")

    def _handle(self, command: Command) -> None:
        match command:
            case Open(source):
                self._open(source)
            case Play():
                self._play()
            case Pause():
                self._player.pause()
            case Toggle():
                if self._player.state is WorkerState.PLAYING:
                    self._player.pause()
                else:
                    self._play()
            case Seek(index):
                self._seek(index)
            case Step(delta):
                self._reset_tracking(self._player.step(delta))
            case SetStyle(style):
                self._recorder.set_style(style)
            case SetSmoothing(kind, strength):
                self._model.set_smoothing(kind, strength)
            case SetDetection(every, adaptive):
                self._model.set_detection(every, adaptive)
            case SetEngine(model, backend, flip_test, weights, refine):
                self._set_engine(model, backend, flip_test, weights, refine)
            case SetMaxSpeed(on):
                self._player.max_speed = bool(on)
                self._player.next_due = time.perf_counter()
            case RecordStart(path):
                self._record_start(path)
            case RecordStop():
                self._record_stop()
            case Export(path):
                self._export(path)
            case Wake():
                pass
            case _:
                logger.error("unknown worker command %r", command)

    def _advance(self) -> None:
        """Read, process, record, log and publish one frame."""
        player = self._player
        one_shot = player.one_shot
        t0 = time.perf_counter()
        frame = player.next_frame()
        if frame is None:
            self._source_ended()
            return
        read_ms = (time.perf_counter() - t0) * 1e3
        assert player.source is not None
        dropped = player.source.dropped_frames
        self._meter.captured(1 + dropped - self._seen_dropped)
        self._seen_dropped = dropped
        result = self._process(frame, read_ms)
        self._write_outputs(result)
        self._meter.processed(result)
        self._publish(result)
        early = self._meter.frame_count < 10  # the first readings show up at once
        if one_shot or early or time.perf_counter() - self._last_stats >= STATS_PERIOD_S:
            self._emit_stats()

    def _process(self, frame: Frame, read_ms: float) -> FrameResult:
        pipeline = self._model.ensure()
        if pipeline is None:
            return FrameResult(frame, timings={"read": read_ms})  # no model: still show the video
        try:
            return pipeline.process(frame, read_ms)
        except BUILD_ERRORS as exc:
            logger.debug("frame %d failed", frame.index, exc_info=True)
            self.error.emit(f"frame {frame.index}: {one_line(exc)}")
        except Exception as exc:  # a fault inside a model must not end the session
            logger.exception("processing frame %d failed", frame.index)
            self.error.emit(f"frame {frame.index} failed: {one_line(exc)}")
        self._player.pause()
        return FrameResult(frame, timings={"read": read_ms})

    def _write_outputs(self, result: FrameResult) -> None:
        if self._recorder.active:
            try:
                self._recorder.write(result, self._record_fps())
            except (OutputError, OSError, ValueError) as exc:
                self.error.emit(f"not recording: {one_line(exc)}")
                self._record_stop()
        if self._pipeline is not None:
            try:
                self._log.write(result)
            except (OutputError, OSError) as exc:
                logger.warning("session log: %s", exc)

    def _record_fps(self) -> float:
        """A file's own rate; for a camera the rate inference keeps up with (frames are dropped)."""
        source = self._player.source
        fps = (source.fps if source is not None else None) or DEFAULT_FPS
        if source is not None and source.is_live:
            measured = self._meter.snapshot()["inference_fps"]
            fps = min(max(measured or fps, 1.0), fps)
        return fps

    def _publish(self, result: FrameResult) -> None:
        with self._lock:
            if self._in_flight >= MAX_IN_FLIGHT:
                self._held = result  # newest wins; shown once the UI catches up
                return
            self._in_flight += 1
            self._held = None
        self.result_ready.emit(result)

    def _emit_stats(self) -> None:
        self._last_stats = time.perf_counter()
        snap = self._meter.snapshot()
        if self._pipeline is None:
            snap["inference_fps"] = 0.0  # frames pass through unprocessed
        source = self._player.source
        self.stats.emit(
            WorkerStats(
                **snap,
                dropped=source.dropped_frames if source is not None else 0,
                model=self._model.label() if self._pipeline is not None else "not loaded",
            )
        )

    def _source_ended(self) -> None:
        source = self._player.source
        assert source is not None
        if source.error:
            self.error.emit(source.error)
        if source.is_live:
            if not source.error and not self._stopping.is_set():
                self.error.emit(f"{source.name} stopped sending frames")
            self._player.close()
        else:
            self.message.emit(f"end of {source.name}")
        self._emit_stats()
        self._player.set_state(WorkerState.ENDED)

    def _reset_tracking(self, needed: bool = True) -> None:
        if needed and self._pipeline is not None:
            self._pipeline.reset()

    # -- commands (run on the worker thread) -----------------------------------------------------

    def _open(self, spec: str | int) -> None:
        self.message.emit(f"opening {spec}…")
        source = self._player.open(spec)  # SourceError: reported, the old source carries on
        self._record_stop()  # a new size and rate: a new recording
        self._seen_dropped = 0
        self._meter.reset()
        self._log.start()
        self._reset_tracking()
        self.source_opened.emit(
            SourceInfo(
                str(spec), source.name, source.fps, source.frame_count, source.is_live, self._player.seekable
            )
        )

    def _play(self) -> None:
        self._reset_tracking(self._player.play())

    def _seek(self, index: int) -> None:
        self._reset_tracking(self._player.seek(index))

    def _set_engine(
        self, model: str, backend: str, flip_test: bool, weights: str | None, refine: bool
    ) -> None:
        switched = self._model.set_engine(model, backend, flip_test, weights, refine)
        if switched and self._player.state is WorkerState.PAUSED and self._player.last_index >= 0:
            self._seek(self._player.last_index)  # paused: show the change on this frame

    def _record_start(self, path: str) -> None:
        self._record_stop()
        self._recorder.start(path)  # the file opens with the next frame
        self.recording.emit(True, path)

    def _record_stop(self) -> None:
        if not self._recorder.active:
            return
        try:
            writer = self._recorder.stop()
        except OutputError as exc:  # the video could not be finished (a full disk): said, not raised
            self.recording.emit(False, "")
            self.error.emit(f"recording lost: {one_line(exc)}")
            return
        self.recording.emit(False, str(writer.path) if writer is not None else "")
        if writer is not None:
            self.message.emit(f"saved {writer.frames_written} frames to {writer.path}")

    def _export(self, path: str) -> None:
        self.exported.emit(path, self._log.export(path))
