"""Rebuild the bundled weights' training set in one command.

    python -m sdpose_core.labels.training_set --shared ../shared --data data --jobs 2

Runs the labelling commands of `docs/training.md` (the first pool with detector boxes, pool2
with human boxes and joints, four orientations and flip), one `pseudo_label` process per source
on `--jobs` cores, longest first; then merges them in the documented order (which fixes the
image ids, so the training order is the bundle's), cuts the cut-outs the trainer reads
(`data/compact3`), gives the human-labelled athletes the detector's box as well
(`data/compact3/annotations_det.json`, `detector_boxes`) and writes the LSPET validation
athletes (`data/lspet_val.json`). About 70 minutes on a 2-core CPU.

A finished source leaves `complete.json` (its command, minutes, people and joints) in its
folder; a second run skips those and relabels the rest, so an interrupted build resumes where it
stopped. Each source's output goes to `DATA/logs/NAME.log`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from sdpose_core.errors import UserError
from sdpose_core.jsonio import write_json_atomic

__all__ = ["LabelJob", "label_jobs", "label_counts", "run_jobs", "MERGE_ORDER", "VALIDATION_ATHLETES"]

VALIDATION_ATHLETES = "im08501..im09000"  # LSPET people never trained on (issue 17)
HELD_OUT_COCO = "000000000785"  # a coco_sample image, also among pool2's COCO scenes
MERGE_ORDER = (
    "lsp",
    "pool",
    "vtest",
    "sports2d",
    "onebyone",
    "lspet",
    "stanford40",
    "people_art",
    "fall",
    "coco128",
)
TEACHER = ("--teacher", "movenet", "--flip-tta", "--min-kpts", "6", "--threads", "1")
FIRST_POOL = (*TEACHER, "--min-box-score", "0.5")  # upright people: one orientation
POOL2 = (*TEACHER, "--orientations", "0,90,180,270")
DONE_FILE = "complete.json"
DETECTOR_BOXED = "annotations_det.json"  # the cut-outs' file with the detector's box for each athlete


@dataclass(frozen=True)
class LabelJob:
    """One source's `pseudo_label` run: its folder name under DATA and its arguments."""

    name: str
    args: tuple[str, ...]

    def command(self, data: Path) -> list[str]:
        out = ("--output-dir", str(data / self.name), "--overwrite", "--no-progress")
        return [sys.executable, "-m", "sdpose_core.labels.pseudo_label", *self.args, *out]


def label_jobs(shared: Path) -> list[LabelJob]:
    """The sources of the bundled weights, longest first (LSPET's faces and turned passes take
    about 35 minutes of one core; the short videos a minute or two)."""
    s, p = shared / "data", shared / "data" / "pool2"
    accept = ("--orientation-accept", "0.5")  # skip the turned passes when upright is confident
    return [
        LabelJob(
            "lspet", (*POOL2, "--lspet", str(p / "lspet"), "--lsp-faces", "--exclude", VALIDATION_ATHLETES)
        ),
        LabelJob("stanford40", (*POOL2, "--boxes", str(p / "stanford40" / "annotations.json"), *accept)),
        LabelJob("people_art", (*POOL2, "--boxes", str(p / "people_art" / "annotations.json"), *accept)),
        LabelJob(
            "vtest",
            (*FIRST_POOL, "--inputs", str(s / "video" / "vtest.mp4"), "--every", "3", "--det-size", "1280")
            + ("--min-box-height", "48"),
        ),
        LabelJob("fall", (*POOL2, "--boxes", str(p / "fall" / "annotations.json"), *accept)),
        LabelJob(
            "pool",
            (
                *FIRST_POOL,
                "--inputs",
                str(s / "pool" / "ccp" / "photos"),
                str(s / "pool" / "pose2sim_single"),
            ),
        ),
        LabelJob("lsp", (*POOL2, "--lsp", str(s / "pool" / "lsp"), "--lsp-faces", *accept)),
        LabelJob(
            "sports2d",
            (
                *FIRST_POOL,
                "--inputs",
                str(s / "video" / "sports2d_demo.mp4"),
                "--every",
                "2",
                "--det-size",
                "960",
            ),
        ),
        LabelJob(
            "onebyone",
            (*FIRST_POOL, "--inputs", str(s / "video" / "one-by-one-person-detection.mp4"), "--every", "4"),
        ),
        LabelJob(
            "coco128",
            (*POOL2, "--boxes", str(p / "coco128" / "annotations.json"), "--exclude", HELD_OUT_COCO, *accept),
        ),
    ]


def is_complete(job: LabelJob, data: Path) -> bool:
    """Whether an earlier build finished this source with the same command."""
    done = data / job.name / DONE_FILE
    try:
        return json.loads(done.read_text(encoding="utf-8")).get("args") == list(job.args)
    except (OSError, ValueError, AttributeError):
        return False


def label_counts(annotations: Path) -> dict[str, int]:
    """People and labelled joints in a source's COCO keypoint file, read from the file itself
    (not from the labeller's printout); empty when the command wrote none."""
    try:
        people = json.loads(annotations.read_text(encoding="utf-8"))["annotations"]
        return {"people": len(people), "joints": sum(int(a.get("num_keypoints", 0)) for a in people)}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def run_jobs(
    commands: Sequence[tuple[str, list[str]]],
    data: Path,
    jobs: int,
    done_args: Mapping[str, Sequence[str]] | None = None,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Run `(name, argv)` commands `jobs` at a time, each with one thread and its output in
    DATA/logs/NAME.log; after each success of a name in `done_args`, DATA/NAME/complete.json
    records those arguments (what `is_complete` compares) and the people and joints of
    DATA/NAME/annotations.json, written atomically. Returns the names that failed (a failure does
    not stop the others). Interrupted (Ctrl-C, SIGTERM), it stops the running commands and starts
    no more; finished ones keep their record."""
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running: set[subprocess.Popen] = set()
    stop = threading.Event()

    def run(name: str, argv: list[str]) -> bool:
        if stop.is_set():
            return False
        try:
            return labelled(name, argv)
        except BaseException:
            stop.set()  # before this thread takes the next command
            raise

    def labelled(name: str, argv: list[str]) -> bool:
        (data / name / DONE_FILE).unlink(missing_ok=True)  # done only once this run succeeds
        start = time.monotonic()
        log = logs / f"{name}.log"
        with log.open("w", encoding="utf-8") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
            running.add(proc)
            try:
                rc = proc.wait()
            finally:
                running.discard(proc)
        minutes = (time.monotonic() - start) / 60
        if rc != 0:
            say(f"{name}: failed (exit {rc}) after {minutes:.1f} min; see {log}")
            return False
        kept = ""
        if done_args is not None and name in done_args:
            counts = label_counts(data / name / "annotations.json")
            done = {"args": list(done_args[name]), "minutes": round(minutes, 1), **counts}
            write_json_atomic(data / name / DONE_FILE, done)
            kept = f" ({counts['people']:,} people, {counts['joints']:,} joints)" if counts else ""
        say(f"{name}: done in {minutes:.1f} min{kept}")
        return True

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = [pool.submit(run, *command) for command in commands]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in finished:
            if future.exception() is not None:
                raise future.exception()
        ok = [future.result() for future in futures]
    except BaseException:
        stop.set()
        for proc in list(running):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [name for (name, _), good in zip(commands, ok, strict=True) if not good]


def _module(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", name, *args]


def main(argv: list[str] | None = None) -> int:
    from sdpose_core.cli import ArgumentParser

    parser = ArgumentParser(
        prog="python -m sdpose_core.labels.training_set", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--shared", default="../shared", help="the shared folder (data/pool2 inside)")
    parser.add_argument("--data", default="data", help="where the labels, cut-outs and logs go")
    parser.add_argument("--jobs", type=int, default=2, help="labelling processes at once (one per core)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    shared, data = Path(args.shared), Path(args.data)
    if not (shared / "data" / "pool2" / "lspet" / "joints.npy").is_file():
        raise UserError(f"{shared}/data/pool2 not found: pass --shared, the folder that holds data/pool2")
    jobs = label_jobs(shared)
    merged, compact = data / "merged2", data / "compact3"
    finish = [
        (
            "merge",
            _module("sdpose_core.labels.pseudo_label", "--merge")
            + [str(data / n / "annotations.json") for n in MERGE_ORDER]
            + ["--output-dir", str(merged), "--overwrite"],
        ),
        (
            "compact",
            _module("sdpose_core.labels.compact_dataset", "--train-ann", str(merged / "annotations.json"))
            + ["--data-root", str(merged / "images"), "--output-dir", str(compact), "--max-height", "256"]
            + ["--margin", "4", "--quality", "80", "--overwrite", "--no-progress"],
        ),
        (
            "detector_boxes",
            _module("sdpose_core.labels.detector_boxes", "--train-ann", str(compact / "annotations.json"))
            + ["--data-root", str(compact / "images"), "--output", str(compact / DETECTOR_BOXED)]
            + ["--threads", str(args.jobs), "--no-progress"],
        ),
        (
            "validation",
            _module("sdpose_core.labels.lsp", "--lspet", str(shared / "data" / "pool2" / "lspet"))
            + ["--only", VALIDATION_ATHLETES, "--output", str(data / "lspet_val.json")],
        ),
    ]
    todo = [job for job in jobs if not is_complete(job, data)]
    if args.dry_run:
        for job in todo:
            print(shlex.join(job.command(data)))
        for _, command in finish:
            print(shlex.join(command))
        return 0
    skipped = len(jobs) - len(todo)
    print(
        f"labelling {len(todo)} sources on {args.jobs} cores"
        + (f" ({skipped} done before)" if skipped else "")
    )
    failed = run_jobs(
        [(job.name, job.command(data)) for job in todo],
        data,
        args.jobs,
        done_args={job.name: job.args for job in todo},
    )
    if failed:
        raise UserError(f"{', '.join(failed)} failed; fix and run again (finished sources are kept)")
    (merged / "images").mkdir(parents=True, exist_ok=True)  # the merged file's paths are relative to it
    for name, command in finish:
        if run_jobs([(name, command)], data, 1):
            raise UserError(f"{name} failed; see {data / 'logs' / (name + '.log')}")
    print(
        f"training set ready: {compact / 'annotations.json'} (with the detector's athlete boxes: "
        f"{compact / DETECTOR_BOXED}), validation {data / 'lspet_val.json'}"
    )
    return 0


if __name__ == "__main__":
    from sdpose_core.cli import run_cli

    sys.exit(run_cli(main))
