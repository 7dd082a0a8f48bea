"""What every command shares (`python main.py`, `python -m sdpose_core...`): expected mistakes
(`sdpose_core.errors`) end in one line and a non-zero exit, never a traceback; SIGTERM takes the
Ctrl-C path, so whatever a run keeps on Ctrl-C it also keeps when a scheduler or `kill` stops it."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from sdpose_core.errors import EXPECTED_ERRORS, UserError

__all__ = [
    "ArgumentParser",
    "Terminated",
    "describe_error",
    "interrupt_exit_code",
    "positive_int",
    "print_error",
    "read_json",
    "run_cli",
    "sigterm_as_interrupt",
]

MAX_MESSAGE = 400  # characters: a message longer than this is cut (a library's dump, not advice)


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered where Ctrl-C would be so that the same clean-up runs; exit code 143."""


def describe_error(exc: BaseException) -> str:
    """The error as one line: library messages (YAML, ONNX Runtime) often span several."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror.lower()}"
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def print_error(exc: BaseException | str) -> None:
    """`error: <one line>` on stderr."""
    text = exc if isinstance(exc, str) else describe_error(exc)
    print(f"error: {text}", file=sys.stderr)


def interrupt_exit_code(exc: KeyboardInterrupt) -> int:
    """The shell's convention: 128 + the signal's number (SIGINT 130, SIGTERM 143)."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` (a KeyboardInterrupt) in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> NoReturn:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (`error: argument --det-conf: ...`), not the usage."""

    def error(self, message: str) -> NoReturn:
        print_error(f"{message} (see {self.prog} --help)")
        raise SystemExit(2)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (`--batch-size 0` is a mistake, not a no-op)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def read_json(path: str | Path, what: str) -> Any:
    """A JSON file's content, or `UserError` naming the file and the spot where it is broken."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not a JSON text file") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {(exc.strerror or str(exc)).lower()}") from None


def run_cli(
    main: Callable[[list[str] | None], int],
    argv: list[str] | None = None,
    errors: tuple[type[BaseException], ...] = EXPECTED_ERRORS,
) -> int:
    """Run `main`: `errors` become `error: ...` and exit 2, Ctrl-C and SIGTERM exit 130 and 143."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with sigterm_as_interrupt():
        try:
            return main(argv)
        except errors as exc:
            print_error(exc)
            return 2
        except KeyboardInterrupt as exc:
            print("interrupted", file=sys.stderr)
            return interrupt_exit_code(exc)
