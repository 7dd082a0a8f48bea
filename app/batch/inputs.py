"""Which inputs a batch run covers, and where each one's output goes.

`--inputs` takes folders, glob patterns, list files (`.txt`, one path per line) and single files;
a shell that expands an unquoted glob simply passes many files. Each video file is one input,
and so is each folder that holds images (one task per video or image folder). Output names
mirror the inputs' paths below their common folder, so `clips/a/run.mp4` and `clips/b/run.mp4`
do not overwrite each other.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from app.sources.files import natural_key
from sdpose_core.errors import UserError
from sdpose_core.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

__all__ = ["VIDEO_EXTENSIONS", "BatchInput", "InputError", "MANIFEST_NAME", "find_inputs", "name_outputs"]

LIST_SUFFIXES = (".txt", ".lst")
GLOB_CHARS = frozenset("*?[")
OUTPUT_SUFFIX = {"jsonl": ".jsonl", "coco": ".json", "openpose": ""}  # openpose: a folder per input
MANIFEST_NAME = "manifest.json"  # lives in the output folder beside the outputs


class InputError(UserError):
    """`--inputs` names nothing usable; the message is one line."""


@dataclass(frozen=True)
class BatchInput:
    """One unit of work: a video file or an image folder, and its output path below the output folder."""

    source: Path
    output: str  # relative to the output folder, e.g. "a/run.jsonl" or "a/run" (openpose)


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in folder.iterdir())


def _walk(folder: Path, skip: Path | None) -> list[Path]:
    """Videos and image folders below `folder` (hidden ones and the output folder left out)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(
            (d for d in dirs if not d.startswith(".") and (skip is None or (here / d).resolve() != skip)),
            key=lambda d: natural_key(Path(d)),
        )
        if _has_images(here):
            found.append(here)
        videos = [
            here / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in VIDEO_EXTENSIONS
        ]
        found.extend(sorted(videos, key=natural_key))
    return found


def _read_list(path: Path) -> list[Path]:
    """A list file: one video or image folder per line; blank lines and `#` comments skipped;
    relative paths are relative to the list file's folder."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        entry = (path.parent / Path(text).expanduser()).resolve()
        if not entry.exists():
            raise InputError(f"{path} line {number}: no such file or folder: {text}")
        found.append(entry)
    return found


def find_inputs(specs: list[str], skip: Path | None = None) -> dict[Path, Path]:
    """Resolve `--inputs` into absolute, de-duplicated paths in a stable (natural) order, each
    mapped to the folder its output name starts from: the walked folder for what a folder walk
    found (its tree is mirrored), else the input's own folder (its name alone).

    `skip`: a folder never to walk into (the output folder, when it sits inside an input folder)."""
    skip = skip.resolve() if skip is not None else None
    found: dict[Path, Path] = {}
    for spec in specs:
        path = Path(spec).expanduser()
        base: Path | None = None
        if path.is_dir():
            items = _walk(path, skip)
            base = path.resolve()
            if not items:
                videos = " ".join(sorted(VIDEO_EXTENSIONS))
                raise InputError(f"no videos ({videos}) or image folders in {path}")
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            items = _read_list(path)
            if not items:
                raise InputError(f"{path} lists no inputs (one video or image folder per line)")
        elif path.is_file():
            items = [path]
        elif GLOB_CHARS & set(spec):
            matches = glob.glob(os.path.expanduser(spec), recursive=True)
            items = sorted((Path(p) for p in matches), key=lambda p: [natural_key(Path(x)) for x in p.parts])
            if not items:
                raise InputError(f"{spec} matches nothing")
        else:
            raise InputError(f"no such file or folder: {spec}")
        for item in items:
            item = item.resolve()
            start = base if base is not None and item != base else item.parent
            found.setdefault(item, start)
    return found


def _name(path: Path, base: Path, ending: bool = False) -> str:
    rel = path.relative_to(base)
    return str(rel if ending or path.is_dir() else rel.with_suffix(""))


def name_outputs(sources: dict[Path, Path], fmt: str) -> list[BatchInput]:
    """Give each input (from `find_inputs`) an output path: its name below its start folder with
    the format's ending (`day1/run.mp4` -> `day1/run.jsonl`). Inputs that would share a name are
    named from their common folder instead (`a/run.jsonl`, `b/run.jsonl`), and keep their ending
    if that is still not enough (`run.mp4.jsonl`, `run.avi.jsonl`), as does one that would take
    the manifest's name."""
    suffix = OUTPUT_SUFFIX[fmt]
    names = {path: _name(path, base) for path, base in sources.items()}
    groups: dict[str, list[Path]] = {}
    for path, name in names.items():
        groups.setdefault(name, []).append(path)
    for clash in (paths for paths in groups.values() if len(paths) > 1):
        root = Path(os.path.commonpath([str(q) for p in clash for q in (p.parent, sources[p])]))
        renamed = {p: _name(p, root) for p in clash}
        unique = len(set(renamed.values())) == len(clash)
        names.update(renamed if unique else {p: _name(p, root, ending=True) for p in clash})
    named = []
    for path, name in names.items():
        if name + suffix == MANIFEST_NAME:
            name = _name(path, sources[path], ending=True) if path.is_file() else name + "_images"
        named.append(BatchInput(path, name + suffix))
    return named
