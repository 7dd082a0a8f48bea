"""`OUT/manifest.json`: every input of the batch with its state, frames, people, seconds and error.

It is rewritten atomically whenever a video starts, finishes or fails, so it is always a complete,
valid file that says where the run stands, also after a crash. It records the settings the
outputs were made with, so a re-run with other settings does not mix them silently. One input
per line keeps it readable by eye and by `grep`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from app.exporters.base import atomic_write_text
from sdpose_core.errors import UserError

__all__ = ["STATES", "ManifestError", "ManifestRow", "Manifest"]

STATES = ("pending", "running", "done", "failed")


class ManifestError(UserError):
    """The manifest in the output folder cannot be read; one line."""


@dataclass
class ManifestRow:
    """One input's record (what a worker reports, and what the user reads)."""

    input: str  # the video or image folder (absolute path)
    output: str  # relative to the output folder
    state: str = "pending"  # pending, running, done or failed
    frames: int | None = None
    people: int | None = None  # person detections summed over frames
    tracks: int | None = None  # distinct track ids
    seconds: float | None = None  # from the task's submission to its answer (start-up, retries included)
    startup_seconds: float | None = None  # of that, until frame 1 was written (worker, imports, models)
    attempts: int = 0  # Ray starts of this input in this run (more than 1: a worker died)
    worker: str = ""  # host:pid of the latest attempt
    error: str = ""  # one line, for a failed input

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestRow:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Manifest:
    """The rows by input path, the settings they were made with, and atomic saving."""

    def __init__(self, path: Path, settings: dict[str, Any], rows: dict[str, ManifestRow]) -> None:
        self.path = path
        self.settings = settings
        self.rows = rows

    @classmethod
    def load(cls, path: Path) -> Manifest | None:
        """The manifest a previous run left, or None if there is none."""
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = [ManifestRow.from_dict(row) for row in data["inputs"]]
            settings = dict(data["settings"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ManifestError(
                f"cannot read {path} ({type(exc).__name__}: {exc}): move it away or use another --output-dir"
            ) from None
        return cls(path, settings, {row.input: row for row in rows})

    def save(self, summary: dict[str, Any]) -> None:
        """Rewrite the file atomically (readers see the old or the new file, never half)."""
        rows = ",\n".join("    " + json.dumps(asdict(r), ensure_ascii=False) for r in self.rows.values())
        text = (
            "{\n"
            f'  "settings": {json.dumps(self.settings, ensure_ascii=False)},\n'
            f'  "summary": {json.dumps(summary, ensure_ascii=False)},\n'
            f'  "inputs": [\n{rows}\n  ]\n'
            "}\n"
        )
        atomic_write_text(self.path, text)

    def counts(self) -> dict[str, int]:
        """How many inputs are in each state."""
        counts = dict.fromkeys(STATES, 0)
        for row in self.rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts
