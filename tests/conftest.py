"""Shared fixtures. Qt tests run offscreen; `../shared` sits beside the checkout (and in CI)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("YOLO_OFFLINE", "1")
# Ultralytics writes a settings file on first import: keep it out of the home folder.
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "sdpose-tests-yolo"))

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The `shared/` folder beside the repository (golden fixtures and test data)."""
    assert SHARED_DIR.is_dir(), f"expected the shared folder at {SHARED_DIR}"
    return SHARED_DIR


def _temporary_app_cache(tmp_path_factory, name: str) -> Iterator[Path]:
    """A new empty folder as the app cache (`SDPOSE_CACHE`) while the generator is suspended."""
    path = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SDPOSE_CACHE", str(path))
        yield path


@pytest.fixture(scope="session", autouse=True)
def private_app_cache(tmp_path_factory) -> Iterator[Path]:
    """The suite never writes into the user's own cache (`~/.cache/sdpose-app`): every test's
    weights would be exported there and stay. Exports go to one temporary cache per session."""
    yield from _temporary_app_cache(tmp_path_factory, "app-cache")


@pytest.fixture(scope="module")
def app_cache(tmp_path_factory) -> Iterator[Path]:
    """A fresh app cache (`SDPOSE_CACHE`) for one test module: its exports are made there."""
    yield from _temporary_app_cache(tmp_path_factory, "cache")
