"""What every writer shares: the `Writer` protocol, `OutputError`, and safe file creation.

Output paths are checked when a writer opens (and, in the CLI, before the model loads), so a typo
in `--output` fails in the first second with one readable line instead of after an hour of
inference. `close(complete=False)` tells a writer the run ended early (Ctrl-C, an error), which
decides whether an existing file is replaced (`app.exporters.staging`).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from app.types import FrameResult
from sdpose_core.jsonio import (
    OutputError,
    atomic_write_text,
    check_output_dir,
    check_output_file,
    output_error,
)

__all__ = [
    "OutputError",
    "Writer",
    "WriterBase",
    "output_error",
    "prepare_file",
    "prepare_dir",
    "atomic_write_text",
]


@runtime_checkable
class Writer(Protocol):
    """A sink for per-frame results."""

    frames_written: int

    def write(self, result: FrameResult) -> None: ...

    def close(self, complete: bool = True) -> None: ...


class WriterBase:
    """Context-manager plumbing for writers (close on exit; an exception means the run ended early)."""

    frames_written = 0

    def write(self, result: FrameResult) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self, complete: bool = True) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(complete=exc_type is None)


def prepare_file(path: str | os.PathLike[str], option: str) -> Path:
    """Check that `path` can be a file and create its parent directories; raise OutputError if not."""
    p = check_output_file(path, option)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(path, e, option) from None
    return p


def prepare_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Create directory `path` once it is known that files can be created in it; OutputError if not."""
    p = check_output_dir(path, option)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(path, e, option) from None
    return p
