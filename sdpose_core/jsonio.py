"""Output files: checked before any work starts, and written whole.

Every command names its outputs up front, so `check_outputs` can refuse, in the first second and
before anything is opened, an output that is one of the inputs or another output (after links and
relative paths are resolved) and a place that cannot be written. Files written in one go go
through `atomic_path`: a temp name in the same folder, renamed over the target only when the
write succeeded, so readers, crashes and full disks never leave half a file (JSON, checkpoints,
ONNX graphs, text).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sdpose_core.errors import OutputError

__all__ = [
    "OutputError",
    "atomic_path",
    "atomic_write_text",
    "check_output_dir",
    "check_output_file",
    "check_outputs",
    "os_reason",
    "output_error",
    "write_json_atomic",
]

PathLike = str | os.PathLike[str]

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a parent path is a file, not a directory",
    errno.EEXIST: "a parent path is a file, not a directory",
    errno.ENOENT: "the parent directory does not exist",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system",
    errno.ENAMETOOLONG: "file name too long",
}


def os_reason(err: OSError) -> str:
    """Plain words for a failed write ("no space left on device"), for one-line messages."""
    return _REASONS.get(err.errno or 0) or (err.strerror or str(err)).lower()


def output_error(path: PathLike, err: OSError | str, option: str | None = None) -> OutputError:
    """`cannot write <path>: <reason> (choose another <option>)`, one line."""
    reason = os_reason(err) if isinstance(err, OSError) else err
    hint = f" (choose another {option})" if option else ""
    return OutputError(f"cannot write {os.fspath(path)}: {reason}{hint}")


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists (where a new file or folder would be created)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _probe_writable(folder: Path, path: PathLike, option: str | None) -> None:
    """Create and delete an empty file in `folder`: the only check that also holds for root,
    read-only mounts and /proc-like file systems. Leaves nothing behind."""
    if not folder.is_dir():
        raise output_error(path, "a parent path is a file, not a directory", option)
    probe = folder / f".sdpose-write-test-{uuid.uuid4().hex[:8]}"
    try:
        probe.open("x").close()
        probe.unlink()
    except OSError as e:
        raise output_error(path, e, option) from None


def check_output_file(path: PathLike, option: str | None = None) -> Path:
    """Raise `OutputError` unless `path` can become a file (missing folders may be created later).

    Nothing is created or truncated: an existing file is left exactly as it is."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise output_error(path, "it is a directory, expected a file", option)
    _probe_writable(_nearest_existing(p.parent), path, option)
    return p


def check_output_dir(path: PathLike, option: str | None = None) -> Path:
    """Raise `OutputError` unless files can be created in folder `path` (created later if missing)."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise output_error(path, "it is a file, expected a directory", option)
    _probe_writable(_nearest_existing(p), path, option)
    return p


def _same_file(a: Path, b: Path) -> bool:
    """One file under two names: the same resolved path (links, `..`, relative) or a hard link."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def check_outputs(
    outputs: Mapping[str, PathLike | None],
    inputs: Mapping[str, PathLike | None] | None = None,
    folders: tuple[str, ...] = (),
) -> dict[str, Path]:
    """Check every output of a run before anything is opened or loaded.

    `outputs` and `inputs` map a flag (`--output`) to its path (None: not given). An output that is
    an input, or another output, is refused: writing it would destroy data the run needs or has
    just written. Each output must be writable (`folders` name the flags that take a folder).
    Returns the outputs that were given, by flag."""
    inputs = inputs or {}
    taken = [(flag, Path(p).expanduser()) for flag, p in inputs.items() if p]
    checked: dict[str, Path] = {}
    for flag, raw in outputs.items():
        if not raw:
            continue
        path = Path(raw).expanduser()
        for other_flag, other in taken:
            if _same_file(path, other):
                role = "an input" if other_flag in inputs else "another output"
                raise output_error(raw, f"it is the same file as {other_flag} ({role})", flag)
        checked[flag] = check_output_dir(path, flag) if flag in folders else check_output_file(path, flag)
        taken.append((flag, path))
    return checked


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path` to write; it replaces `path` only if the block succeeds.

    The temp name keeps the suffix, for writers that pick a format by it (torch, ONNX, OpenCV). On
    any failure (a full disk, Ctrl-C) the temp file is removed and `path` is untouched; an
    `OSError` names `path`, not the temp file. Missing folders are created."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def atomic_write_text(path: PathLike, text: str, fsync: bool = False) -> None:
    """Write `text` whole: readers see the old file or the new one, never half.

    The temp file is created with open(..., "x"), so it gets the user's umask (not mkstemp's 0600)."""
    with atomic_path(path) as tmp, open(tmp, "x", encoding="utf-8") as f:
        f.write(text)
        if fsync:
            f.flush()
            os.fsync(f.fileno())


def write_json_atomic(path: PathLike, data: Any, compact: bool = False) -> Path:
    """Write `data` as JSON to `path` atomically (creating the folder); raises OSError."""
    atomic_write_text(path, json.dumps(data, separators=(",", ":") if compact else None))
    return Path(path)
