"""A Ray actor where running tasks post their progress, so the driver can show it.

Ray reports a task only when it ends; a long video would show nothing for minutes. Tasks tell
this board when an attempt starts (host and PID: the manifest names the worker, and a user can
find its process) and, about twice a second, how many frames it has done. The driver reads one
snapshot per poll for the progress bar (running videos, frames/s over the cluster).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProgressBoard"]


class ProgressBoard:
    """Running attempts by input: worker ("host:pid"), attempt number and frames done so far."""

    def __init__(self) -> None:
        self._running: dict[str, dict[str, Any]] = {}
        self._attempts: dict[str, int] = {}

    def started(self, key: str, worker: str) -> int:
        """An attempt began (a retry replaces the dead one's entry); returns its number, from 1."""
        attempt = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempt
        self._running[key] = {"worker": worker, "attempt": attempt, "frames": 0}
        return attempt

    def frames(self, key: str, count: int) -> None:
        if key in self._running:
            self._running[key]["frames"] = count

    def finished(self, key: str) -> None:
        self._running.pop(key, None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {key: dict(entry) for key, entry in self._running.items()}
