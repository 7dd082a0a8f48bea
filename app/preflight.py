"""What a run checks before the model loads, so that a mistake costs a second and no file is opened.

The model takes seconds to load and prints a long note about the bundled weights; a missing
source or an unwritable output should be reported before that, and no output may be opened (or
emptied) before every check has passed. `check_paths` resolves every output the flags name and
refuses one that is an input (the source video, the weights, the config) or another output, or
that cannot be written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.exporters.video import video_fourcc
from app.sources import is_live_spec
from sdpose_core.jsonio import check_outputs

__all__ = ["check_paths"]


def check_paths(args: argparse.Namespace) -> None:
    """Raise `OutputError` (one line) for an output that would destroy a file or cannot be written."""
    model_file = args.model if args.model and Path(args.model).suffix in (".yaml", ".yml") else None
    inputs = {
        "--source": None if is_live_spec(args.source) else args.source,
        "--weights": args.weights,
        "--detector": args.detector,
        "--config": args.config,
        "--model": model_file,
    }
    outputs = {"--output": args.output, "--save-video": args.save_video, "--screenshot": args.screenshot}
    if args.save_video:
        video_fourcc(args.save_video)
    folders = ("--output",) if args.format == "openpose" else ()
    check_outputs(outputs, inputs, folders)
