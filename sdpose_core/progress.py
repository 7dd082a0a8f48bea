"""Progress of long runs (labelling, compacting, videos, batches), readable where it is read.

On a terminal: tqdm's bar. Where stderr is a file (`nohup ... > log`, a cluster job's log) a bar
either vanishes (tqdm turns itself off) or fills the log with carriage returns, about ten redraws
a second; there the same meter goes out as one line every ``interval`` seconds and once at the
end, so a log says how far a run has got, how fast it goes and how long it still needs.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["LOG_INTERVAL_S", "LineMeter", "meter", "track"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOG_INTERVAL_S = 30.0  # seconds between two progress lines in a log file


class LineMeter:
    """tqdm's meter said as whole lines, every ``interval`` seconds and once where it ends: the
    bar for a stderr that is a file. Takes the calls the app makes on a bar (`update`,
    `set_postfix`, `set_postfix_str`, `write`, `close`)."""

    def __init__(
        self,
        total: int | None,
        *,
        desc: str = "",
        unit: str = "it",
        interval: float = LOG_INTERVAL_S,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        from tqdm import tqdm

        self._sink = open(os.devnull, "w")  # closed by close()
        self._bar = tqdm(total=total, desc=desc or None, unit=unit, file=self._sink, mininterval=interval)
        self._emit = emit or _stderr_line
        self._interval = interval
        self._last = time.monotonic()
        self._said = 0  # the count the last line said

    def update(self, n: int = 1) -> None:
        self._bar.update(n)
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._say()
            self._last = now

    def set_postfix(self, refresh: bool = False, **values: object) -> None:
        self._bar.set_postfix(refresh=False, **values)

    def set_postfix_str(self, text: str = "", refresh: bool = False) -> None:
        self._bar.set_postfix_str(text, refresh=False)

    def write(self, text: str) -> None:
        self._emit(text)

    def close(self) -> None:
        if self._bar.n != self._said:  # where it ended or stopped, unless that was just said
            self._say()
        self._bar.close()
        self._sink.close()

    def _say(self) -> None:
        self._emit(str(self._bar))
        self._said = self._bar.n


def meter(
    total: int | None = None,
    *,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    interval: float = LOG_INTERVAL_S,
    emit: Callable[[str], None] | None = None,
) -> tqdm | LineMeter:
    """A progress meter: tqdm's bar on a terminal, `LineMeter` lines (to stderr, or `emit`) where
    stderr is a file, and a silent tqdm when not `enabled` (`--no-progress`)."""
    from tqdm import tqdm

    if not enabled:
        return tqdm(total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc or None, unit=unit, dynamic_ncols=True, file=sys.stderr)
    return LineMeter(total, desc=desc, unit=unit, interval=interval, emit=emit)


def track(
    items: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    interval: float = LOG_INTERVAL_S,
) -> Iterator[T]:
    """Yield ``items`` while showing progress: a tqdm bar on a terminal, log lines otherwise."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    log_line = functools.partial(logger.info, "%s")  # the labelling tools' progress goes to their log
    bar = meter(total, desc=desc, unit=unit, enabled=enabled, interval=interval, emit=log_line)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
