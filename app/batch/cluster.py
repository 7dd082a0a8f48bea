"""Connecting to Ray: a private local Ray for one machine, or an existing cluster.

A local Ray lives in a temporary folder (sockets, logs) that goes with it, and is shut down when
the block ends, also on errors and Ctrl-C, so no Ray process outlives the command. It gets a
random authentication token in its environment rather than one written to ~/.ray, no dashboard,
and no usage reporting (nothing tries to reach the internet). A cluster is joined and left, never
stopped. Workers import the app from this checkout's path, so on a cluster every machine needs
the checkout (and its virtualenv) at the same path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.environ import environ_for_block
from sdpose_core.errors import UserError

__all__ = ["ClusterError", "ray_session", "check_reachable", "REPO"]

REPO = Path(__file__).resolve().parents[2]
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20  # model files and results only; videos never pass through it


class ClusterError(UserError):
    """Ray cannot be started or reached; one line."""


_TOKEN = secrets.token_hex(16)  # one per process: Ray's driver caches the first token it reads


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _local_auth() -> dict[str, str]:
    """Token auth for a local Ray, its token in the environment instead of ~/.ray/auth_token (Ray's
    default would write that file); a user's own RAY_AUTH_* settings win."""
    if any(key.startswith("RAY_AUTH_") for key in os.environ):
        return {}
    return {"RAY_AUTH_TOKEN": _TOKEN}


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on: Ray itself would retry for minutes."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        if address != "auto":
            raise ClusterError(
                f"--ray-address takes auto or HOST:PORT (as `ray start --head` prints), not {address!r}"
            )
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({reason.lower()}): "
            "is `ray start --head` running there?"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None, cpus: int) -> Iterator[str]:
    """Ray for the duration of the block; yields a description such as "local Ray (2 CPUs)".

    `address` None starts a local Ray with `cpus` CPUs (so at most cpus / threads tasks run at
    once); "auto" or "HOST:PORT" joins a running cluster. If this process is already connected
    (a test fixture, a notebook), that connection is used and left open."""
    import ray

    if ray.is_initialized():
        yield f"Ray already connected ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
        return
    common = {
        "logging_level": logging.WARNING,
        "log_to_driver": False,  # worker logs stay in Ray's log files; the terminal shows the bar
        "job_config": ray.job_config.JobConfig(code_search_path=[str(REPO)]),
    }
    with environ_for_block({"RAY_USAGE_STATS_ENABLED": "0"}):
        if address:
            check_reachable(address)
            try:
                ray.init(address=address, **common)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                first = " ".join(str(exc).split())[:200]
                raise ClusterError(f"cannot join the Ray cluster at {address}: {first}") from None
            try:
                yield f"Ray cluster at {address} ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
            finally:
                ray.shutdown()
            return
        temp = tempfile.mkdtemp(prefix="sdpose-ray-")
        try:
            with environ_for_block(_local_auth(), restore=("RAY_AUTH_MODE",)):
                with _quiet("ray._private.authentication.authentication_token_setup"):  # "token auth is on"
                    ray.init(
                        num_cpus=cpus,
                        include_dashboard=False,
                        object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                        _temp_dir=temp,
                        **common,
                    )
                try:
                    yield f"local Ray ({cpus} CPUs)"
                finally:
                    ray.shutdown()
        finally:
            shutil.rmtree(temp, ignore_errors=True)
