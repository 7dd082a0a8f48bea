"""Outputs appear whole or not at all: each attempt writes under a temporary name beside the final
one and renames it when the video is complete.

A finished output is therefore exactly "the final name exists", which is how a re-run knows what
to skip. A worker killed mid-video leaves only a temporary name, which the next attempt ignores
and the end of the run (or the next run) removes. Only names carrying `TEMP_MARK` are ever
removed, and only inside the output folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

__all__ = ["TEMP_MARK", "temp_path", "commit", "discard", "remove_stale_temps"]

TEMP_MARK = ".batch-tmp"


def temp_path(final: Path) -> Path:
    """A name beside `final`, unique to this attempt, hidden and marked as temporary."""
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}{TEMP_MARK}")


def discard(path: Path) -> None:
    """Remove a temporary file or folder if it is there."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def commit(temp: Path, final: Path) -> None:
    """Rename the complete output to its final name, replacing an older one (`--redo`).

    A file is replaced in one atomic rename. A folder (OpenPose) cannot be renamed over a
    non-empty one, so the old folder is first moved aside under a temporary name."""
    if temp.is_dir() and final.exists():
        old = temp_path(final)
        os.rename(final, old)
        os.rename(temp, final)
        discard(old)
    else:
        os.replace(temp, final)


def remove_stale_temps(finals: Iterable[Path]) -> int:
    """Remove what dead attempts left beside these final outputs (names with `TEMP_MARK` only;
    temporaries always sit beside their final name, so no folder is walked); returns how many."""
    stale = {
        p
        for folder in {f.parent for f in finals}
        if folder.is_dir()
        for p in folder.glob(f".*{TEMP_MARK}*")
        if TEMP_MARK in p.name
    }
    for path in stale:
        discard(path)
    return len(stale)
