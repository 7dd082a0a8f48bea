"""Environment variables set for one block and put back afterwards.

Some libraries read their settings only from the environment (Ray's start-up, OpenVINO's model
converter); setting them for the one call that needs them keeps the rest of the process as the
user started it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["environ_for_block"]


@contextlib.contextmanager
def environ_for_block(values: dict[str, str], restore: tuple[str, ...] = ()) -> Iterator[None]:
    """Set `values` for the block (child processes inherit them), then put these and the
    `restore` ones (which the library inside may set itself) back as they were."""
    before = {key: os.environ.get(key) for key in (*values, *restore)}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
