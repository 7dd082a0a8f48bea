"""What the window and its worker say to each other, as typed records.

The window posts commands (`PoseWorker.post(Seek(120))`); the worker takes them off a queue
between frames and handles each with one `match`. The worker answers by signals that carry a
`FrameResult`, a `WorkerState`, or one of the records below: nothing crosses the thread
boundary as a string to be dispatched on or a dict whose keys are read in another file.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.draw import DrawStyle
from app.gui.playback import WorkerState

__all__ = [
    "Command",
    "Export",
    "ModelInfo",
    "Open",
    "Pause",
    "Play",
    "RecordStart",
    "RecordStop",
    "Seek",
    "SetDetection",
    "SetEngine",
    "SetMaxSpeed",
    "SetSmoothing",
    "SetStyle",
    "SourceInfo",
    "Step",
    "Toggle",
    "Wake",
    "WorkerState",
    "WorkerStats",
    "one_line",
]


# -- commands: window -> worker ----------------------------------------------------------------


@dataclass(frozen=True)
class Open:
    """Open a source (a path, URL or camera index); on failure the old one carries on."""

    source: str | int


@dataclass(frozen=True)
class Play:
    pass


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Toggle:
    """Play if paused (or ended), else pause."""


@dataclass(frozen=True)
class Seek:
    index: int


@dataclass(frozen=True)
class Step:
    delta: int


@dataclass(frozen=True)
class SetStyle:
    """How recordings are drawn (the view draws its own copy)."""

    style: DrawStyle


@dataclass(frozen=True)
class SetSmoothing:
    kind: str
    strength: float


@dataclass(frozen=True)
class SetDetection:
    every: int
    adaptive: bool


@dataclass(frozen=True)
class SetEngine:
    """Model, backend, flip test, weights (None: the bundled ones) and crop refinement."""

    model: str
    backend: str
    flip_test: bool
    weights: str | None
    refine: bool


@dataclass(frozen=True)
class SetMaxSpeed:
    on: bool


@dataclass(frozen=True)
class RecordStart:
    path: str


@dataclass(frozen=True)
class RecordStop:
    pass


@dataclass(frozen=True)
class Export:
    """Write the session's keypoints as JSON Lines (also run when the window closes)."""

    path: str


@dataclass(frozen=True)
class Wake:
    """Does nothing: wakes a loop waiting for commands (used by `PoseWorker.stop`)."""


Command = (
    Open
    | Play
    | Pause
    | Toggle
    | Seek
    | Step
    | SetStyle
    | SetSmoothing
    | SetDetection
    | SetEngine
    | SetMaxSpeed
    | RecordStart
    | RecordStop
    | Export
    | Wake
)


# -- records: worker -> window -----------------------------------------------------------------


def one_line(exc: BaseException) -> str:
    """An exception as the one line an `error` signal carries."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass(frozen=True)
class SourceInfo:
    """A source the worker opened (`source_opened`)."""

    spec: str  # what was asked for: a path, URL or camera index as text
    name: str
    fps: float | None
    frame_count: int | None
    is_live: bool
    seekable: bool


@dataclass(frozen=True)
class ModelInfo:
    """The pose model that runs now (`model_ready`); after a failed switch, the old one."""

    model: str
    backend: str
    flip_test: bool
    weights: str  # "" for the bundled weights
    label: str  # e.g. "sdpose_t · onnx · cpu"
    refine: bool


@dataclass(frozen=True)
class WorkerStats:
    """Throughput and latency of the session (`stats`, about twice a second)."""

    capture_fps: float
    inference_fps: float
    detect_ms: float
    pose_ms: float
    track_ms: float
    people: float
    frame: float
    dropped: int
    model: str
    display_fps: float | None = None  # filled in by the window, which draws
