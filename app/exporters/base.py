"""What every writer shares: the `Writer` protocol, `OutputError`, and safe file creation.

Output paths are checked when a writer opens, so a typo in `--output` fails in the first second
with one readable line instead of after an hour of inference.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from app.types import FrameResult

__all__ = [
    "OutputError",
    "Writer",
    "WriterBase",
    "output_error",
    "prepare_file",
    "prepare_dir",
    "atomic_write_text",
]

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a parent path is a file, not a directory",
    errno.EEXIST: "a parent path is a file, not a directory",
    errno.ENOENT: "the parent directory does not exist",
    errno.ENOSPC: "no space left on device",
    errno.ENAMETOOLONG: "file name too long",
}


class OutputError(RuntimeError):
    """An output path cannot be written; the message is one line that says what to do."""


@runtime_checkable
class Writer(Protocol):
    """A sink for per-frame results."""

    def write(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...


class WriterBase:
    """Context-manager plumbing for writers (close on exit, also on Ctrl-C)."""

    def write(self, result: FrameResult) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def output_error(path: str | os.PathLike[str], err: OSError | str, option: str) -> OutputError:
    """Build the one-line error: `cannot write <path>: <reason> (choose another <option>)`."""
    if isinstance(err, OSError):
        reason = _REASONS.get(err.errno or 0) or (err.strerror or str(err)).lower()
    else:
        reason = err
    return OutputError(f"cannot write {os.fspath(path)}: {reason} (choose another {option})")


def prepare_file(path: str | os.PathLike[str], option: str) -> Path:
    """Check that `path` can be a file and create its parent directories; raise OutputError if not."""
    p = Path(path)
    if p.is_dir():
        raise output_error(path, "it is a directory, expected a file", option)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise output_error(path, "a parent path is a file, not a directory", option) from None
    except OSError as e:
        raise output_error(path, e, option) from None
    return p


def prepare_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Create directory `path` and prove files can be created in it; raise OutputError if not."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise output_error(path, "it is a file, expected a directory", option)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.open("x").close()
        probe.unlink()
    except FileExistsError:
        raise output_error(path, "a parent path is a file, not a directory", option) from None
    except OSError as e:
        raise output_error(path, e, option) from None
    return p


def atomic_write_text(path: Path, text: str, fsync: bool = False) -> None:
    """Write `text` to a temp file beside `path`, then rename over it: readers see old or new, never half.

    The temp file is created with open(..., "x") so it gets the user's umask (not mkstemp's 0600).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
