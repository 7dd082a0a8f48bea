"""Overlapped stages for the headless runner: frames decoded ahead, outputs written behind.

On a 2-core machine the pose model cannot use both cores all the time (the tracker, decoding
and writing run between its calls on one core). Decoding the next frame (OpenCV releases the
GIL while it decodes) and writing finished results (JSON, drawing, video encoding) on their own
threads keeps both cores busy while the main thread detects and poses.

Order and safety are unchanged: one reader thread yields frames in source order, one writer
thread writes results in the order they were handed over, and `WriteBehind.close` waits until
every handed-over result is written, so Ctrl-C (or SIGTERM) in the main thread still keeps every
finished frame. A failure on either thread is raised in the main thread at the next hand-over.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from app.types import FrameResult

__all__ = ["ReadAhead", "WriteBehind"]

T = TypeVar("T")

_END = object()  # end of the stream
POLL_S = 0.1  # a blocked thread rechecks whether it should stop this often


class _Failed:
    """An exception raised on a helper thread, carried to the main thread."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """Iterate `items` on a thread, at most `depth` ahead of the consumer; `close()` stops it.

    The thread only calls `next()` on the iterator, so a source must be closed after this is
    (the runner closes it after the loop)."""

    def __init__(self, items: Iterable[T], depth: int = 2) -> None:
        self._items = iter(items)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failed(exc))

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._stop.is_set():
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._stop.set()
            raise StopIteration
        if isinstance(item, _Failed):
            self._stop.set()
            raise item.error
        return item

    def close(self) -> None:
        """Stop reading ahead and wait for the thread (it finishes the frame it is decoding)."""
        self._stop.set()
        self._thread.join()


class WriteBehind:
    """Hand results to `write` on a thread, in order; `close()` waits until all are written.

    `write(result)` runs on the writer thread and returns nothing; an exception it raises stops
    the writing and is raised by the next `put` (or by `close`). `written` counts the results
    written."""

    def __init__(self, write: Callable[[FrameResult], None], depth: int = 8) -> None:
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (result := self._queue.get()) is not _END:
            if self._error is not None:
                continue  # after a failure, drain without writing
            try:
                self._write(result)
            except BaseException as exc:  # raised in the main thread
                self._error = exc
                continue
            self.written += 1

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, result: FrameResult) -> None:
        """Queue `result` to be written (waits while `depth` results are pending)."""
        self._raise_error()
        self._queue.put(result)

    def close(self) -> None:
        """Write everything handed over, stop the thread, then raise a write error if any."""
        self._queue.put(_END)
        self._thread.join()
        self._raise_error()
