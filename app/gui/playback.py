"""Which frame comes next, and when: the open source, play / pause / seek / step, and pacing.

Free of Qt and of the model, so the transport logic can be read (and tested) on its own. Files
play at their own frame rate, or as fast as inference allows in "max speed"; when inference is
slower than the file, playback slows down rather than bursting to catch up. Cameras and streams
set their own pace (their reader keeps only the newest frame).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from app.sources import DEFAULT_FPS, Source, SourceError, VideoFileSource, open_source
from app.types import Frame

__all__ = ["Player", "WorkerState", "IDLE_POLL_S"]

IDLE_POLL_S = 0.05  # how often an idle loop looks for work


class WorkerState(enum.Enum):
    IDLE = "idle"  # no source
    OPENING = "opening"
    PLAYING = "playing"
    PAUSED = "paused"
    ENDED = "ended"  # the file ended or the camera stopped
    STOPPED = "stopped"  # the worker loop has exited


class Player:
    """Transport over one source; `on_state` hears every state change."""

    def __init__(self, on_state: Callable[[WorkerState], None], max_speed: bool = False) -> None:
        self._on_state = on_state
        self.source: Source | None = None
        self.state = WorkerState.IDLE
        self.max_speed = max_speed
        self.one_shot = False  # show one frame even though paused (after a seek or step)
        self.next_due = 0.0
        self.last_index = -1

    @property
    def seekable(self) -> bool:
        return isinstance(self.source, VideoFileSource)

    def set_state(self, state: WorkerState) -> None:
        if state is not self.state:
            self.state = state
            self._on_state(state)

    def open(self, spec: str | int) -> Source:
        """Open `spec` and start playing it; on failure the previous source carries on."""
        before = self.state
        self.set_state(WorkerState.OPENING)
        try:
            source = open_source(spec)
        except SourceError:
            self.set_state(before)
            raise
        self.close()
        self.source, self.last_index, self.one_shot = source, -1, False
        self.play()
        return source

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None

    def play(self) -> bool:
        """Play; an ended file starts over. Returns True if that meant a seek to frame 0."""
        if self.source is None or self.source.closed:
            return False
        rewound = self.state is WorkerState.ENDED and self.seek(0)
        self.next_due = time.perf_counter()
        self.set_state(WorkerState.PLAYING)
        return rewound

    def pause(self) -> None:
        if self.state is WorkerState.PLAYING:
            self.set_state(WorkerState.PAUSED)

    def seek(self, index: int) -> bool:
        """Next frame shown is `index` (files only); True if the caller must reset its tracker."""
        if not isinstance(self.source, VideoFileSource):
            return False
        self.source.seek(int(index))
        self.one_shot = True
        self.next_due = time.perf_counter()
        if self.state is WorkerState.ENDED:
            self.set_state(WorkerState.PAUSED)
        return True

    def step(self, delta: int) -> bool:
        """Pause and show the frame `delta` away; True when that took a seek (going back)."""
        if not isinstance(self.source, VideoFileSource):
            return False
        self.set_state(WorkerState.PAUSED)
        if delta < 0:
            return self.seek(max(0, self.last_index + int(delta)))
        self.one_shot = True
        return False

    def wait_time(self) -> float:
        """Seconds the loop may sleep (waiting for commands) before the next frame is due."""
        if self.one_shot:
            return 0.0
        if self.state is WorkerState.PLAYING:
            if self.source is None or self.source.is_live or self.max_speed:
                return 0.0
            return max(0.0, self.next_due - time.perf_counter())
        return IDLE_POLL_S

    def frame_due(self) -> bool:
        if self.source is None:
            return False
        return self.one_shot or (self.state is WorkerState.PLAYING and self.wait_time() <= 0.0)

    def next_frame(self) -> Frame | None:
        """The next frame, or None when the source has ended (`source.error` says if badly)."""
        assert self.source is not None
        one_shot, self.one_shot = self.one_shot, False
        try:
            frame = next(self.source)
        except StopIteration:
            return None
        if self.state is WorkerState.PLAYING and not one_shot:
            now = time.perf_counter()
            # Behind (slow inference): the next frame is due now, with no burst to catch up.
            self.next_due = max(self.next_due + 1.0 / (self.source.fps or DEFAULT_FPS), now)
        self.last_index = frame.index
        return frame
