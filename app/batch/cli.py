"""`python main.py batch`: a whole archive of videos into keypoint files, on one machine or a Ray cluster.

    python main.py batch --inputs videos/ --output-dir poses/ [--format jsonl|coco|openpose]
        [--ray-address auto|HOST:PORT] [--workers N] [--threads-per-worker N] [--redo]
        [any pipeline flag of main.py: --model, --weights, --backend, --det-every, --smoothing, ...]

Every pipeline flag means what it means for `main.py --headless`, and is parsed by the same
parser, so a batch output equals the single run's. Mistakes end in one line and exit code 2; a
run in which any input failed exits 1 (the manifest says which and why).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from app.batch.cluster import check_reachable, ray_session
from app.batch.inputs import MANIFEST_NAME, BatchInput, find_inputs, name_outputs
from app.batch.manifest import Manifest, ManifestError, ManifestRow
from app.batch.models import check_detector, file_digest, prepare_pose_file, ship
from app.batch.outputs import remove_stale_temps
from app.batch.runner import BatchRun, RunTotals
from app.batch.task import PipelineSpec
from app.cli import _apply_flags, configure_logging
from app.cli import build_parser as build_pipeline_parser
from app.exporters import FORMATS
from app.exporters.base import prepare_dir
from app.pipeline import AppConfig
from sdpose_core.cli import ArgumentParser, positive_int, print_error
from sdpose_core.errors import EXPECTED_ERRORS

__all__ = ["main", "build_parser"]

# main.py flags that name one source or one output: a batch derives them from --inputs and --output-dir.
PER_SOURCE_FLAGS = ("source", "output", "save_video", "realtime", "exit_after_frames", "screenshot")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python main.py batch",
        description="Pose keypoints for many videos or image folders, one Ray task each, on this machine "
        "or a Ray cluster. Finished outputs are kept: a re-run does only what is missing.",
        epilog="Every pipeline flag of `python main.py` applies to each input (--model, --weights, "
        "--backend, --det-every, --det-size, --smoothing, --flip-test, --max-frames, --config, ...); "
        "see python main.py --help.",
        allow_abbrev=False,  # `--output` (a main.py flag) must not pass for --output-dir
    )
    parser.add_argument(
        "--inputs",
        nargs="+",
        required=True,
        metavar="PATH",
        help="folders (walked for videos and image folders), glob patterns, list files (.txt, one path "
        "a line) or files",
    )
    parser.add_argument(
        "--output-dir", required=True, metavar="OUT", help="outputs and manifest.json go here"
    )
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="output format (default jsonl)")
    parser.add_argument(
        "--ray-address",
        metavar="auto|HOST:PORT",
        help="join a running Ray cluster (`ray start --head` on one machine, `ray start --address` on "
        "the others); default: $RAY_ADDRESS, else a local Ray on this machine for this run",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="inputs processed at once (default: this machine's or the cluster's CPUs / threads per worker)",
    )
    parser.add_argument(
        "--threads-per-worker",
        type=positive_int,
        default=1,
        metavar="N",
        help="CPUs each video reserves in Ray and runs its models with (main.py's --threads; default 1)",
    )
    parser.add_argument(
        "--redo", action="store_true", help="process inputs whose output is already complete again"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (the summary stays)")
    return parser


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, argparse.Namespace]:
    """The batch's own flags, and the pipeline flags parsed by main.py's own parser."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    pipeline_parser = build_pipeline_parser()
    pipe, unknown = pipeline_parser.parse_known_args([*rest, "--headless", "--format", args.format])
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    defaults = pipeline_parser.parse_args([])
    taken = [f"--{n.replace('_', '-')}" for n in PER_SOURCE_FLAGS if getattr(pipe, n) != getattr(defaults, n)]
    if taken:
        parser.error(f"{', '.join(taken)} names one input or output: a batch takes --inputs and --output-dir")
    if pipe.threads is None:
        pipe.threads = args.threads_per_worker
    return args, pipe


def _file_id(path: str | None) -> str:
    if path is None:
        return "bundled"
    p = Path(path)
    return f"{p.name} sha1:{file_digest(p)[:12]}" if p.is_file() else str(p)


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"detection": {"every": 5}} -> {"detection.every": 5}: a changed setting is then named alone.
    Tuples become lists, as the manifest's JSON reads them back."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def settings_record(cfg: AppConfig, pipe: argparse.Namespace) -> dict[str, Any]:
    """What decides an output's content, kept in the manifest (threads and device do not)."""
    record = {k: v for k, v in _flat(asdict(cfg)).items() if k not in ("threads", "device")}
    record.update(
        format=pipe.format,
        smoothing=pipe.smoothing,
        max_frames=pipe.max_frames,
        weights=_file_id(pipe.weights),
        detector_model=_file_id(pipe.detector),
    )
    return record


# Settings that decide nothing while their group is off: `refine.*` only counts with refine on. A
# manifest written before a group existed lacks its keys, and reads as the group off: outputs made
# then are what this version makes with it off, and need no --redo.
SWITCHED_GROUPS = ("refine",)


def deciding_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` without the keys of `SWITCHED_GROUPS` that are switched off (or absent)."""
    inert = [group for group in SWITCHED_GROUPS if not settings.get(f"{group}.enabled", False)]
    return {k: v for k, v in settings.items() if not any(k.startswith(f"{g}.") for g in inert)}


def open_manifest(out_dir: Path, settings: dict[str, Any], inputs: list[BatchInput], redo: bool) -> Manifest:
    """This run's manifest: a row per input (complete outputs keep their earlier row), rows of
    other inputs from earlier runs kept as they were. Complete outputs made with other settings
    stop the run unless `redo`."""
    path = out_dir / MANIFEST_NAME
    old = Manifest.load(path)
    old_rows = old.rows if old else {}
    complete = {i for i in inputs if (out_dir / i.output).exists()}
    before, now = (deciding_settings(old.settings) if old else {}), deciding_settings(settings)
    if old and before != now and complete and not redo:
        changed = ", ".join(
            f"{k}: {old.settings.get(k)!r} -> {settings.get(k)!r}"
            for k in sorted(set(before) | set(now))
            if before.get(k) != now.get(k)
        )
        raise ManifestError(
            f"{out_dir} holds outputs made with other settings ({changed}): add --redo to replace them, "
            "or choose another --output-dir"
        )
    rows: dict[str, ManifestRow] = {}
    for item in inputs:
        key = str(item.source)
        previous = old_rows.get(key)
        if not redo and item in complete and previous and previous.state == "done":
            rows[key] = previous
        elif not redo and item in complete:
            rows[key] = ManifestRow(key, item.output, state="done")  # finished, but its record was lost
        else:
            rows[key] = ManifestRow(key, item.output)
    rows.update({k: v for k, v in old_rows.items() if k not in rows})
    return Manifest(path, settings, rows)


def _summary_line(manifest: Manifest, names: set[str], totals: RunTotals) -> str:
    rows = [r for r in manifest.rows.values() if r.input in names]
    done = sum(r.state == "done" for r in rows)
    line = f"done: {done} of {len(rows)} inputs complete, {sum(r.state == 'failed' for r in rows)} failed"
    if totals.videos:
        startup = sum(totals.startup_seconds) / max(len(totals.startup_seconds), 1)
        line += (
            f"; this run: {totals.videos} inputs, {totals.frames} frames, {totals.people} people in "
            f"{totals.seconds:.1f} s = {totals.frames_per_second:.1f} frames/s with {totals.workers} workers "
            f"(start-up {startup:.1f} s a task)"
        )
    return line


# Set by SIGTERM, which takes the Ctrl-C path (exit code 143). A flag rather than
# sdpose_core.cli's Terminated type: Ray's wait and get re-raise a plain KeyboardInterrupt.
_terminated = threading.Event()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (a scheduler, `kill`) raises KeyboardInterrupt, so tasks are
    cancelled and a local Ray shut down as on Ctrl-C. Entered after `ray.init`, whose own handler
    would abort the process and leave the manifest's running rows as they were."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> NoReturn:
        _terminated.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _process(
    todo: list[ManifestRow], out_dir: Path, manifest: Manifest, cfg: AppConfig, args, pipe
) -> RunTotals:
    """Check the models, connect to Ray, run the tasks; a local Ray is gone when this returns."""
    address = args.ray_address or os.environ.get("RAY_ADDRESS") or None  # Ray's own convention
    if address:
        check_reachable(address)
    pose_file = prepare_pose_file(cfg, pipe.weights)
    detector_file = check_detector(pipe.detector, cfg)
    threads = args.threads_per_worker
    workers = args.workers or max(1, (os.cpu_count() or 1) // threads)
    started = time.perf_counter()
    with ray_session(address, workers * threads) as where, _sigterm_as_interrupt():
        import ray

        if address and not args.workers:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        pose, detector = ship(pose_file), ship(detector_file) if detector_file else None
        spec = PipelineSpec(cfg, args.format, pose, detector, pipe.smoothing, pipe.max_frames)
        print(
            f"{where} up in {time.perf_counter() - started:.1f} s; {workers} workers x {threads} thread(s); "
            f"pose model {pose_file} sent to the workers through Ray's object store",
            file=sys.stderr,
        )
        summary = {"workers": workers, "threads_per_worker": threads, "ray": where}
        return BatchRun(todo, out_dir, spec, manifest, workers, threads, summary).run(not args.no_progress)


def run(argv: list[str] | None) -> int:
    args, pipe = parse_args(argv)
    cfg = _apply_flags(AppConfig.load(pipe.config), pipe)
    inputs = name_outputs(find_inputs(args.inputs, skip=Path(args.output_dir)), args.format)
    out_dir = prepare_dir(args.output_dir, "--output-dir").resolve()
    manifest = open_manifest(out_dir, settings_record(cfg, pipe), inputs, args.redo)
    finals = [out_dir / i.output for i in inputs]
    remove_stale_temps(finals)
    todo = [manifest.rows[str(i.source)] for i in inputs if manifest.rows[str(i.source)].state != "done"]
    print(
        f"batch: {len(inputs)} inputs, {len(inputs) - len(todo)} already complete, {len(todo)} to run",
        file=sys.stderr,
    )
    if not todo:
        manifest.save(manifest.counts())
        print(f"nothing to do (--redo runs them again); manifest: {manifest.path}", file=sys.stderr)
        return 0
    try:
        totals = _process(todo, out_dir, manifest, cfg, args, pipe)
    finally:
        remove_stale_temps(finals)  # tasks cancelled or killed leave their temporary outputs
    print(_summary_line(manifest, {str(i.source) for i in inputs}, totals), file=sys.stderr)
    for row in todo:
        if row.state == "failed":
            print(f"failed: {row.input}: {row.error}", file=sys.stderr)
    print(f"manifest: {manifest.path}", file=sys.stderr)
    return 1 if totals.failed else 0


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    _terminated.clear()
    try:
        return run(argv)
    except EXPECTED_ERRORS as exc:
        print_error(exc)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished outputs are kept; run the same command again to go on", file=sys.stderr)
        return 143 if _terminated.is_set() else 130
