"""SDPose core. At the top, what the app imports: `geometry`, `keypoints`, `decode`, `checkpoint`,
`export` and `quantize` (ONNX, int8), `config`, `errors`, `cli` (what every command shares).
Sub-packages: `models/`, `data/` (training samples), `labels/`, `training/`, `evaluation/`.

This package never imports `app/`.
"""

import sys
from collections.abc import Callable
from types import TracebackType

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]


def _quiet_interrupt_hook(previous: ExceptHook = sys.excepthook) -> ExceptHook:
    """Ctrl-C before a command's `run_cli` is reached (it spends seconds importing torch) ends in
    `interrupted` and exit code 130, as it does later, instead of a traceback of import frames."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
            return
        previous(kind, exc, tb)

    return hook


# `python -m sdpose_core...` imports this package while sys.argv[0] is still "-m"; a program or
# notebook that imports sdpose_core keeps its own hook.
if sys.argv[:1] == ["-m"]:
    sys.excepthook = _quiet_interrupt_hook()
