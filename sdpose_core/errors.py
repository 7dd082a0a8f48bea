"""The mistakes a user can make and fix: a missing file, a bad flag, a config that does not
parse, weights that do not fit, an output that cannot be written.

Each one derives from `SDPoseError` and carries a message of one line that says what to do, so
every entry point (`main.py`, `main.py batch`, the `python -m sdpose_core...` commands, the
window) catches that one name, prints `error: <message>` and exits with 2 (see `cli.run_cli`).
Anything else is a bug and keeps its traceback.

The app's own errors (`app.sources.SourceError`, `app.detector.DetectorError`,
`app.engine.EngineError`, the batch command's input/manifest/cluster errors) derive from these.
"""

from __future__ import annotations

__all__ = [
    "SDPoseError",
    "UserError",
    "ConfigError",
    "CheckpointError",
    "OutputError",
    "DataError",
    "EXPECTED_ERRORS",
]


class SDPoseError(Exception):
    """Base of every expected, one-line mistake."""


class UserError(SDPoseError, RuntimeError):
    """An expected mistake (bad path, bad flag): printed as one line, exit code 2."""


class ConfigError(SDPoseError, ValueError):
    """A configuration file or value is wrong; the message says which and why."""


class CheckpointError(SDPoseError, RuntimeError):
    """A checkpoint cannot be loaded; the message is one line meant for the user."""


class OutputError(SDPoseError, RuntimeError):
    """An output cannot be written; the message is one line that says what to do."""


class DataError(SDPoseError, RuntimeError):
    """A data file or folder is missing or malformed; the one-line message names it."""


# What a command reports as `error: <one line>`. OSError is the system's own (a full disk, a
# read-only folder, a file that vanished): its message is one line already.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (SDPoseError, OSError)
