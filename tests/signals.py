"""Ctrl-C in child processes, as a terminal delivers it."""

from __future__ import annotations

import signal


def ctrl_c_as_in_a_terminal() -> None:
    """`preexec_fn` for a child that a test stops with SIGINT. A shell starts background jobs
    (`cmd &`, nohup) with SIGINT ignored and children inherit that, so Python in them never
    raises KeyboardInterrupt and the Ctrl-C tests fail for the way the suite was started, not
    for the code. Python installs its own handler when SIGINT starts at the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
