"""The window's worker: capture, inference, recording and the session log, on one `QThread`.

The UI thread never runs inference (as in DeepLabCut-live-GUI). The window posts
commands into a thread-safe queue that the loop drains between frames, so a command waits at
most one frame; results go back by signal. Display hand-off is newest-frame-wins: at most
`MAX_IN_FLIGHT` results are queued towards the UI and a newer one replaces a held one, so a slow
repaint never makes latency grow. Every failure becomes an `error(str)` signal, never a traceback.
The engine and detector are built on the first frame, so the window appears at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import replace
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal, pyqtSlot

from app.draw import DrawStyle
from app.exporters import OutputError
from app.gui.models import (
    BUILD_ERRORS,
    DetectorFactory,
    EngineSpec,
    build_engine,
    build_pipeline,
    set_schedule,
    set_smoothing,
)
from app.gui.playback import Player, WorkerState
from app.gui.session import Recorder, SessionLog, StatsMeter
from app.pipeline import DetectionSchedule, PosePipeline
from app.types import Frame, FrameResult

__all__ = ["PoseWorker", "WorkerState", "MAX_IN_FLIGHT"]

logger = logging.getLogger(__name__)

MAX_IN_FLIGHT = 2  # results emitted to the UI and not yet taken
STATS_PERIOD_S = 0.5


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class PoseWorker(QObject):
    """Owns the source and the `PosePipeline`; call `post(name, *args)` from any thread.

    Commands: open(spec), play, pause, toggle, seek(index), step(delta), style(DrawStyle),
    smoothing(kind, strength), detection(every, adaptive), engine(model, backend, flip, weights),
    max_speed(on), record_start(path), record_stop, export(path).
    """

    result_ready = pyqtSignal(object)  # FrameResult
    stats = pyqtSignal(dict)
    source_opened = pyqtSignal(dict)
    state_changed = pyqtSignal(str)
    error = pyqtSignal(str)
    message = pyqtSignal(str)
    model_ready = pyqtSignal(dict)  # {"model", "backend", "flip_test", "weights", "label"}
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
    ) -> None:
        super().__init__()
        self._commands: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._in_flight = 0
        self._held: FrameResult | None = None
        self._spec = spec
        self._fallback = fallback  # tried once, with a note, if `spec` (remembered settings) fails
        self._detector_factory = detector_factory
        self._schedule = schedule
        self._flip = flip_test
        self._smoothing = (smoothing, strength)
        self._pipeline: PosePipeline | None = None
        self._build_error: str | None = None
        self._player = Player(lambda s: self.state_changed.emit(s.value), max_speed)
        self._seen_dropped = 0
        self._recorder = Recorder()
        self._recorder.style = style or DrawStyle()
        self._meter = StatsMeter()
        self._log = SessionLog()
        self._last_stats = 0.0

    # -- called from the UI thread -------------------------------------------------------------

    def post(self, name: str, *args: Any) -> None:
        """Queue a command for the worker loop (thread-safe)."""
        self._commands.put((name, args))

    def ack(self) -> None:
        """The UI took one result off the signal queue."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def stop(self) -> None:
        """Ask the loop to exit; a live source is closed at once so a blocked read returns."""
        self._stopping.set()
        self.post("noop")
        source = self._player.source
        if source is not None and source.is_live:
            source.close()

    @property
    def state(self) -> WorkerState:
        return self._player.state

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
            self.error.emit(f"worker stopped after an unexpected error: {_one_line(exc)}")
        finally:
            self._final_exports()
            self._cmd_record_stop()
            self._player.close()
            self._log.cleanup()
            self._player.set_state(WorkerState.STOPPED)
            self.finished.emit()

    def _final_exports(self) -> None:
        """Exports asked for as the window closed (`--output`) still run; other commands lapse."""
        while True:
            try:
                name, args = self._commands.get_nowait()
            except queue.Empty:
                return
            if name == "export":
                try:
                    self._cmd_export(*args)
                except (OutputError, OSError, ValueError) as exc:
                    self.error.emit(_one_line(exc))
                    logger.error("%s", _one_line(exc))

    def _handle_commands(self, timeout: float) -> None:
        batch: list[tuple[str, tuple[Any, ...]]] = []
        try:
            batch.append(self._commands.get(timeout=timeout) if timeout > 0 else self._commands.get_nowait())
            while True:
                batch.append(self._commands.get_nowait())
        except queue.Empty:
            pass
        for i, (name, args) in enumerate(batch):
            if name == "seek" and i + 1 < len(batch) and batch[i + 1][0] == "seek":
                continue  # scrubbing the timeline: only the newest position matters
            handler = getattr(self, f"_cmd_{name}", None)
            if handler is None:
                logger.error("unknown worker command %r", name)
                continue
            try:
                handler(*args)
            except BUILD_ERRORS as exc:
                self.error.emit(_one_line(exc))
            except Exception as exc:  # a bug in one command must not end the session
                logger.exception("worker command %s failed", name)
                self.error.emit(f"{name} failed: {_one_line(exc)}")

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
        pipeline = self._ensure_pipeline()
        if pipeline is None:
            return FrameResult(frame, timings={"read": read_ms})  # no model: still show the video
        try:
            return pipeline.process(frame, read_ms)
        except BUILD_ERRORS as exc:
            logger.debug("frame %d failed", frame.index, exc_info=True)
            self.error.emit(f"frame {frame.index}: {_one_line(exc)}")
        except Exception as exc:  # a fault inside a model must not end the session
            logger.exception("processing frame %d failed", frame.index)
            self.error.emit(f"frame {frame.index} failed: {_one_line(exc)}")
        self._player.pause()
        return FrameResult(frame, timings={"read": read_ms})

    def _ensure_pipeline(self) -> PosePipeline | None:
        if self._pipeline is not None or self._build_error is not None:
            return self._pipeline
        self.message.emit(f"loading {self._spec.model} ({self._spec.backend}) and the person detector…")
        try:
            kind, strength = self._smoothing
            self._pipeline = build_pipeline(
                self._spec, self._flip, self._detector_factory, self._schedule, kind, strength
            )
        except BUILD_ERRORS as exc:
            fallback, self._fallback = self._fallback, None
            if fallback is not None and fallback != self._spec:
                note = f"the remembered {self._spec.weights or self._spec.model} no longer loads"
                note += f" ({_one_line(exc)}); using the bundled weights"
                logger.warning("%s", note)
                self.message.emit(note)
                self._spec = fallback
                return self._ensure_pipeline()
            self._build_error = _one_line(exc)
            self.error.emit(f"pose model not loaded: {self._build_error}")
            return None
        self._emit_model()
        return self._pipeline

    def _write_outputs(self, result: FrameResult) -> None:
        if self._recorder.active:
            try:
                self._recorder.write(result, self._record_fps())
            except (OutputError, OSError, ValueError) as exc:
                self.error.emit(f"not recording: {_one_line(exc)}")
                self._cmd_record_stop()
        if self._pipeline is not None:
            try:
                self._log.write(result)
            except (OutputError, OSError) as exc:
                logger.warning("session log: %s", exc)

    def _record_fps(self) -> float:
        """A file's own rate; for a camera the rate inference keeps up with (frames are dropped)."""
        source = self._player.source
        fps = (source.fps if source is not None else None) or 30.0
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
        snap: dict[str, Any] = dict(self._meter.snapshot())
        source = self._player.source
        snap["dropped"] = source.dropped_frames if source is not None else 0
        snap["model"] = self._label() if self._pipeline is not None else "not loaded"
        if self._pipeline is None:
            snap["inference_fps"] = 0.0  # frames pass through unprocessed
        self.stats.emit(snap)

    def _emit_model(self) -> None:
        spec = self._spec
        info = {
            "model": spec.model,
            "backend": spec.backend,
            "flip_test": self._flip,
            "weights": spec.weights or "",
        }
        self.model_ready.emit({**info, "label": self._label()})
        self.message.emit(f"pose model ready: {self._label()}")

    def _label(self) -> str:
        engine = self._pipeline.engine if self._pipeline is not None else None
        return self._spec.label(engine)

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

    def _cmd_noop(self) -> None:
        pass

    def _cmd_open(self, spec: str | int) -> None:
        self.message.emit(f"opening {spec}…")
        source = self._player.open(spec)  # SourceError: reported, the old source carries on
        self._cmd_record_stop()  # a new size and rate: a new recording
        self._seen_dropped = 0
        self._meter.reset()
        self._log.start()
        self._reset_tracking()
        info = {"spec": str(spec), "name": source.name, "fps": source.fps, "frame_count": source.frame_count}
        self.source_opened.emit({**info, "is_live": source.is_live, "seekable": self._player.seekable})

    def _cmd_play(self) -> None:
        self._reset_tracking(self._player.play())

    def _cmd_pause(self) -> None:
        self._player.pause()

    def _cmd_toggle(self) -> None:
        if self._player.state is WorkerState.PLAYING:
            self._player.pause()
        else:
            self._cmd_play()

    def _cmd_seek(self, index: int) -> None:
        self._reset_tracking(self._player.seek(index))

    def _cmd_step(self, delta: int) -> None:
        self._reset_tracking(self._player.step(delta))

    def _cmd_style(self, style: DrawStyle) -> None:
        self._recorder.set_style(style)

    def _cmd_smoothing(self, kind: str, strength: float) -> None:
        self._smoothing = (kind, float(strength))
        if self._pipeline is not None and self._pipeline.tracker is not None:
            set_smoothing(self._pipeline.tracker, kind, float(strength))

    def _cmd_detection(self, every: int, adaptive: bool) -> None:
        self._schedule = replace(self._schedule, every=max(1, int(every)), adaptive=bool(adaptive))
        if self._pipeline is not None:
            set_schedule(self._pipeline, every, adaptive)

    def _cmd_max_speed(self, on: bool) -> None:
        self._player.max_speed = bool(on)
        self._player.next_due = time.perf_counter()

    def _cmd_engine(self, model: str, backend: str, flip_test: bool, weights: str | None) -> None:
        """Model, backend or weights changed: rebuild the engine only; flip is a plain switch."""
        spec = replace(self._spec, model=model, backend=backend, weights=weights or None)
        self._flip = bool(flip_test)
        self._fallback = None  # the user's own choice now: if it fails, that is said, not replaced
        if self._pipeline is None:
            self._spec, self._build_error = spec, None  # built (or retried) with the next frame
        elif spec != self._spec:
            self.message.emit(f"loading {spec.label()}…")
            try:
                engine = build_engine(spec, self._flip)
            except BUILD_ERRORS as exc:
                self.error.emit(f"could not switch to {spec.label()}: {_one_line(exc)}")
                self._emit_model()  # the window shows what still runs
                return
            self._pipeline.engine, self._spec = engine, spec
            self._emit_model()
        if self._pipeline is not None:
            self._pipeline.engine.flip_test = self._flip
        if self._player.state is WorkerState.PAUSED and self._player.last_index >= 0:
            self._cmd_seek(self._player.last_index)  # paused: show the change on this frame

    def _cmd_record_start(self, path: str) -> None:
        self._cmd_record_stop()
        self._recorder.start(path)  # the file opens with the next frame
        self.recording.emit(True, path)

    def _cmd_record_stop(self) -> None:
        if not self._recorder.active:
            return
        try:
            writer = self._recorder.stop()
        except OutputError as exc:  # the video could not be finished (a full disk): said, not raised
            self.recording.emit(False, "")
            self.error.emit(f"recording lost: {_one_line(exc)}")
            return
        self.recording.emit(False, str(writer.path) if writer is not None else "")
        if writer is not None:
            self.message.emit(f"saved {writer.frames_written} frames to {writer.path}")

    def _cmd_export(self, path: str) -> None:
        self.exported.emit(path, self._log.export(path))
