"""Allowed values of the app's settings, declared once on the dataclass fields.

`configs/app.yaml` and the command-line flags set the same settings, so both are checked against
the same bounds: `check_bounds` in the dataclasses' `__post_init__` (a bad config file is a
`ConfigError` naming the key) and `flag_type` as the argparse type (a bad flag is one line naming
the flag). Nothing out of range reaches a library that would fail later with a traceback (YOLO's
`conf=2`) or quietly find nobody (`--det-size 0`).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable
from typing import Any

__all__ = ["bounded", "check_bounds", "check_device", "device_flag", "flag_type"]

_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def bounded(default: float, lo: float | None = None, hi: float | None = None) -> Any:
    """A dataclass field whose value must lie in [lo, hi] (None: unbounded on that side)."""
    return dataclasses.field(default=default, metadata={"bounds": (lo, hi)})


def _out_of_range(value: float, lo: float | None, hi: float | None) -> str | None:
    if lo is not None and hi is not None and not lo <= value <= hi:
        return f"must be between {lo:g} and {hi:g}, got {value:g}"
    if lo is not None and value < lo:
        return f"must be at least {lo:g}, got {value:g}"
    if hi is not None and value > hi:
        return f"must be at most {hi:g}, got {value:g}"
    return None


def check_bounds(obj: Any) -> None:
    """Raise ValueError for the first `bounded` field of dataclass `obj` that is out of range."""
    for f in dataclasses.fields(obj):
        if "bounds" in f.metadata:
            problem = _out_of_range(getattr(obj, f.name), *f.metadata["bounds"])
            if problem:
                raise ValueError(f"{f.name} {problem}")


def flag_type(cls: type, name: str) -> Callable[[str], Any]:
    """An argparse type for the flag that sets `cls.name`: parsed as that field's type (int or
    float) and checked against its bounds."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    kind = int if isinstance(f.default, int) else float

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        problem = _out_of_range(value, *f.metadata["bounds"])
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def check_device(name: str) -> str:
    """`cpu`, `cuda` or `cuda:N`; anything else is a ValueError (torch and YOLO fail later on it)."""
    if not _DEVICE.fullmatch(name):
        raise ValueError(f"device {name!r} is not one of cpu, cuda, cuda:N")
    return name


def device_flag(text: str) -> str:
    """argparse type for `--device`."""
    try:
        return check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
