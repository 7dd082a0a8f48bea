"""Where a streaming writer puts its bytes, so that an existing file is replaced only by a finished run.

A new output is written in place, frame by frame, as it always was: Ctrl-C or a crash keeps what
is done, under the name the user gave. An output that already exists is left alone while the run
writes a hidden file beside it (same suffix, so OpenCV picks the same container). When the run
ends, `StagedFile.finish` decides:

* finished: the new file replaces the old one;
* ended early (Ctrl-C, SIGTERM, a damaged source, a full disk) with frames written: the partial
  file takes the name and the old one is kept as `<stem>.bak<suffix>`, and the log says so;
* nothing written: the old file stays exactly as it was.

A run killed outright (SIGKILL, a power cut) cannot clean up and leaves its hidden file behind;
the next run writing the same output names such leftovers in a warning. It does not delete them:
another run may still be writing one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from pathlib import Path

from sdpose_core.jsonio import output_error

__all__ = ["StagedFile", "backup_name"]

logger = logging.getLogger(__name__)


def backup_name(target: Path) -> Path:
    """`poses.bak.jsonl`, or `poses.bak-2.jsonl` ... when that is taken: a backup never replaces a file."""
    for n in range(1, 10_000):
        tag = "bak" if n == 1 else f"bak-{n}"
        candidate = target.with_name(f"{target.stem}.{tag}{target.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free backup name beside {target}")  # pragma: no cover - 10,000 backups


def _partial_name(target: Path, tag: str) -> Path:
    """The hidden file beside `target` that a run replacing it writes first (`tag` may be a glob)."""
    return target.with_name(f".{target.stem}.partial-{tag}{target.suffix}")


class StagedFile:
    """The file a writer should open (`path`) for the output the user named (`target`)."""

    def __init__(self, target: Path, option: str) -> None:
        self.target = target
        self.option = option
        self.replacing = target.exists()
        self.path = _partial_name(target, uuid.uuid4().hex[:8]) if self.replacing else target
        leftovers = sorted(target.parent.glob(_partial_name(target, "*").name))
        if leftovers:
            logger.warning(
                "%d unfinished file(s) from a killed run lie beside %s (%s): "
                "delete them if no other run writes there",
                len(leftovers),
                target,
                ", ".join(p.name for p in leftovers),
            )

    def finish(self, frames: int, complete: bool, what: str = "") -> None:
        """Put the written file in place (see the module docstring) and log one line about it."""
        what = what or f"{frames} frames"
        if not self.replacing:
            logger.info("wrote %s to %s", what, self.target)
            return
        try:
            if frames == 0:
                self.path.unlink(missing_ok=True)
                logger.info("%s was left as it was (nothing written)", self.target)
            elif complete:
                os.replace(self.path, self.target)
                logger.info("wrote %s to %s (replacing the previous file)", what, self.target)
            else:
                backup = backup_name(self.target)
                os.replace(self.target, backup)
                os.replace(self.path, self.target)
                logger.warning(
                    "%s holds the %s of this unfinished run; the previous file is kept as %s",
                    self.target,
                    what,
                    backup.name,
                )
        except OSError as e:
            raise output_error(self.target, e, self.option) from None

    def discard(self) -> None:
        """Remove what was written (it is unusable); an existing target is untouched."""
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
