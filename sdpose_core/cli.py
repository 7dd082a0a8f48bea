"""Small helpers shared by the `python -m sdpose_core.*` commands: one-line errors, exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from sdpose_core.checkpoint import CheckpointError
from sdpose_core.config import ConfigError

__all__ = ["UserError", "run_cli", "EXPECTED_ERRORS"]


class UserError(RuntimeError):
    """An expected mistake (bad path, bad flag): printed as one line, exit code 2."""


EXPECTED_ERRORS = (UserError, ConfigError, CheckpointError, FileNotFoundError, PermissionError)


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run `main`, turning expected errors into `error: ...` on stderr and a non-zero exit."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return main(argv)
    except EXPECTED_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
