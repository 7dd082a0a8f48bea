"""Progress of long loops (labelling, compacting), readable where it is read.

On a terminal: tqdm's bar. Where stderr is a file (`nohup ... > log`, a cluster job's log) a bar
either vanishes (tqdm turns itself off) or fills the log with carriage returns; there the same
meter goes out as one log line every ``interval`` seconds and once at the end, so a log says how
far a run has got, how fast it goes and how long it still needs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["LOG_INTERVAL_S", "track"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOG_INTERVAL_S = 30.0  # seconds between two progress lines in a log file


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
    from tqdm import tqdm

    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if not enabled:
        yield from items
        return
    if sys.stderr.isatty():
        yield from tqdm(items, total=total, desc=desc or None, unit=unit, dynamic_ncols=True)
        return
    with open(os.devnull, "w") as sink:
        meter = tqdm(total=total, desc=desc or None, unit=unit, file=sink, mininterval=interval)
        last, logged = time.monotonic(), -1
        try:
            for item in items:
                yield item
                meter.update(1)
                now = time.monotonic()
                if now - last >= interval:
                    logger.info("%s", str(meter))
                    last, logged = now, meter.n
        finally:
            if meter.n != logged:  # where it ended or stopped, unless that was just said
                logger.info("%s", str(meter))
            meter.close()
