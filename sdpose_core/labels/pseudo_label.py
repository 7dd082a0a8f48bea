"""Pseudo-labelling: turn unlabelled images and videos into a COCO keypoint file with a teacher.

    python -m sdpose_core.labels.pseudo_label --inputs clips/ photo.jpg --output-dir labels/ --flip-tta

A person detector (YOLO11n-pose, boxes only) feeds MoveNet Thunder top-down (Apache-2.0, the
default), or YOLO11n-pose labels on its own (``--teacher yolo``; its weights are AGPL-3.0).
Only confident joints are kept (v=2); the others are written as 0,0,0, so training sees
"unlabelled", never a guess. The frames used are copied to ``DIR/images/`` (JPEG, quality 95)
and ``DIR/annotations.json`` records the teacher and its settings in ``info``. LSP's human
labels (``--lsp``) can go in the same file, and `merge_annotation_files` mixes finished files.
The json is rewritten atomically every ``FLUSH_EVERY`` frames, so an interrupted run leaves a
valid file for what it has done.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import cv2

from sdpose_core.cli import run_cli
from sdpose_core.errors import UserError
from sdpose_core.labels.coco_labels import CocoKeypointWriter, add_lsp_people, merge_annotation_files
from sdpose_core.labels.inputs import _expected_frames, collect_inputs, exclusion, iter_frames, read_box_file
from sdpose_core.labels.labeler import _DEFAULT_MODELS, LabelSettings, PseudoLabeler, _face_fill
from sdpose_core.labels.lsp import LSP, LSPET
from sdpose_core.labels.teachers import DEFAULT_FLIP_AGREE
from sdpose_core.progress import track

__all__ = ["pseudo_label", "SourceCount", "parse_orientations", "main"]

logger = logging.getLogger(__name__)


@dataclass
class SourceCount:
    """What survived of one source: people offered (boxes, or human-labelled people), people
    kept with enough confident joints, and their labelled joints."""

    offered: int = 0
    people: int = 0
    joints: int = 0
    teacher_joints: int = 0  # of those joints, filled by the teacher into a human label

    def line(self, name: str) -> str:
        kept = f"{self.people:,} of {self.offered:,} people" if self.offered else f"{self.people:,} people"
        share = f" ({100 * self.people / self.offered:.0f} %)" if self.offered else ""
        per = f", {self.joints / self.people:.1f} per person" if self.people else ""
        filled = f" ({self.teacher_joints:,} from the teacher)" if self.teacher_joints else ""
        return f"  {name}: {kept}{share}, {self.joints:,} joints{filled}{per}"


def _count_since(writer: CocoKeypointWriter, first: int, offered: int) -> SourceCount:
    added = writer.annotations[first:]
    return SourceCount(
        offered=offered,
        people=len(added),
        joints=sum(a["num_keypoints"] for a in added),
        teacher_joints=sum(len(a.get("teacher_joints", ())) for a in added),
    )


def pseudo_label(
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    settings: LabelSettings | None = None,
    teacher_model: str | os.PathLike | None = None,
    detector_model: str | os.PathLike | None = None,
    every: int = 1,
    max_frames_per_video: int | None = None,
    lsp_dir: str | os.PathLike | None = None,
    keep_empty: bool = False,
    threads: int | None = None,
    progress: bool = True,
    lsp_faces: bool = False,
    lspet_dir: str | os.PathLike | None = None,
    box_files: Sequence[str | os.PathLike] = (),
    exclude: Sequence[str] = (),
) -> dict:
    """Label ``inputs`` with the detector, the people of ``box_files`` in their given boxes, and
    add LSP's / LSPET's human labels (``lsp_dir``, ``lspet_dir``); returns a summary dict with
    a `SourceCount` per source.

    Frames with no kept person are not copied unless ``keep_empty``. With ``lsp_faces`` the
    MoveNet teacher fills LSP's and LSPET's empty face slots (`coco_labels.FaceFill`). Images
    whose stem an ``exclude`` pattern names are skipped everywhere (see `exclusion`).
    """
    settings = settings or LabelSettings()
    excluded = exclusion(exclude) if exclude else None
    paths = [p for p in collect_inputs(inputs) if excluded is None or not excluded(p.stem)]
    boxed = {str(f): read_box_file(f, excluded) for f in box_files}
    human_sets = [(d, s) for d, s in ((lsp_dir, LSP), (lspet_dir, LSPET)) if d is not None]
    if not paths and not box_files and not human_sets:
        raise UserError("nothing to label: give --inputs, --boxes, --lsp and/or --lspet")
    if lsp_faces and (not human_sets or settings.teacher != "movenet"):
        raise UserError("--lsp-faces needs --lsp or --lspet DIR and the movenet teacher")
    if box_files and settings.teacher != "movenet":
        raise UserError("person boxes from a file (--boxes) need the movenet teacher")
    needs_teacher = bool(paths or box_files)
    labeler = PseudoLabeler(settings, teacher_model, detector_model, threads) if needs_teacher else None
    info = {
        "description": "SDPose pseudo-labels (sdpose_core.labels.pseudo_label)",
        "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(labeler.info() if labeler else {"teacher": None, "detector": None}),
        "settings": asdict(settings),
        "inputs": [str(p) for p in inputs],
        "boxes": [str(f) for f in box_files],
        "exclude": list(exclude),
        "every": every,
        "max_frames_per_video": max_frames_per_video,
        "keep_empty": keep_empty,
        "lsp": str(lsp_dir) if lsp_dir is not None else None,
        "lspet": str(lspet_dir) if lspet_dir is not None else None,
        "visibility": "v=2: teacher score >= min_kpt_score (inside the image); v=0 with x=y=0: dropped. "
        "lsp-human: v=2 visible, v=1 occluded, v=0 face slots; lspet-human: v=2 visible, v=0 "
        "invisible and face slots",
    }
    if box_files and labeler is not None:
        info["detector"] = {"name": "none: human person boxes from --boxes", "files": info["boxes"]}
        if not paths:
            info["detector"]["note"] = "no --inputs, so the detector did not run"
    faces = _face_fill(labeler, settings, teacher_model, threads, info) if lsp_faces else None
    writer = CocoKeypointWriter(output_dir, info)
    counts: dict[str, SourceCount] = {}
    frames_seen = 0
    bar = partial(track, unit="image", enabled=progress)

    def add(image, name: str, people: list[dict]) -> None:
        if people or keep_empty:
            image_id = writer.add_image(image, name)
            for person in people:
                writer.add_person(
                    image_id,
                    person["box"],
                    person["box_score"],
                    person["keypoints"],
                    settings.teacher,
                    person["kpt_scores"],
                    orientation=person["orientation"] if len(settings.orientations) > 1 else None,
                )
        writer.step()

    try:
        for folder, lsp_set in human_sets:
            first = len(writer.annotations)
            n, filled = add_lsp_people(
                writer, folder, faces=faces, lsp_set=lsp_set, exclude=excluded, progress=progress
            )
            counts[lsp_set.name] = _count_since(writer, first, n)
            if faces is not None:
                writer.info["lsp_faces"][f"people_filled_{lsp_set.name}"] = filled
                writer.info["lsp_faces"]["people_filled"] = (
                    writer.info["lsp_faces"].get("people_filled", 0) + filled
                )
        for file, images in boxed.items():
            first = len(writer.annotations)
            for item in bar(images, desc=Path(file).parent.resolve().name):
                frames_seen += 1
                image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
                if image is None:
                    logger.warning("cannot read image %s, skipped", item.path)
                    continue
                add(image, item.name, labeler.label_boxes(image, item.boxes))
            name = Path(file).parent.resolve().name
            counts[name] = _count_since(writer, first, sum(len(i.boxes) for i in images))
        if paths:
            first = len(writer.annotations)
            total = _expected_frames(paths, every, max_frames_per_video)
            frames = iter_frames(paths, every, max_frames_per_video)
            for frame in bar(frames, total=total, desc="inputs", unit="frame"):
                frames_seen += 1
                add(frame.image, frame.name, labeler(frame.image))
            counts["inputs (detector boxes)"] = _count_since(writer, first, 0)
    finally:
        writer.info["frames_seen"] = frames_seen
        writer.info["per_source"] = {k: asdict(v) for k, v in counts.items()}
        writer.flush()
    return {
        "annotations_file": str(writer.path),
        "frames_seen": frames_seen,
        "images": len(writer.images),
        "annotations": len(writer.annotations),
        "sources": dict(writer.sources),
        "per_source": counts,
    }


def _parser() -> argparse.ArgumentParser:
    from sdpose_core.cli import ArgumentParser

    parser = ArgumentParser(
        prog="python -m sdpose_core.labels.pseudo_label",
        description="Write a COCO keypoint file from unlabelled images/videos with a teacher pose model.",
    )
    parser.add_argument("--inputs", nargs="+", default=[], metavar="PATH", help="images, folders, videos")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="gets annotations.json + images/")
    parser.add_argument("--teacher", choices=sorted(_DEFAULT_MODELS), default="movenet")
    parser.add_argument("--teacher-model", metavar="PATH", help="teacher ONNX (default: shared/data/models)")
    parser.add_argument("--detector-model", metavar="PATH", help="yolo11n-pose.onnx for the boxes")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="video frame step")
    parser.add_argument("--max-frames-per-video", type=int, default=None, metavar="N")
    parser.add_argument("--min-kpt-score", type=float, default=0.3)
    parser.add_argument("--min-kpts", type=int, default=6, help="confident joints a person needs")
    parser.add_argument("--min-box-score", type=float, default=0.5)
    parser.add_argument("--min-box-height", type=float, default=32.0, help="skip smaller people (px)")
    parser.add_argument("--flip-tta", action="store_true", help="keep joints the mirrored pass agrees on")
    parser.add_argument("--flip-agree", type=float, default=DEFAULT_FLIP_AGREE, help="fraction of box size")
    parser.add_argument("--det-size", type=int, default=640, help="YOLO input size (960-1280: small people)")
    parser.add_argument(
        "--boxes",
        nargs="+",
        default=[],
        metavar="JSON",
        help="COCO box files (images + annotations[].bbox): the teacher reads these person boxes, "
        "no detector; file names relative to images/ beside each file",
    )
    parser.add_argument("--lsp", metavar="DIR", help="add LSP human labels (folder with joints.mat)")
    parser.add_argument("--lspet", metavar="DIR", help="add LSPET human labels (folder with joints.npy)")
    parser.add_argument(
        "--lsp-faces",
        action="store_true",
        help="fill LSP's / LSPET's unlabelled nose, eyes, ears from the MoveNet teacher where it "
        "agrees on the body",
    )
    parser.add_argument(
        "--orientations",
        default="0",
        metavar="DEG,...",
        help="orientation TTA: also read each person turned by these angles (e.g. 0,90,180,270) and "
        "keep the one the teacher is most sure of (default 0: one orientation)",
    )
    parser.add_argument(
        "--orientation-accept",
        type=float,
        default=None,
        metavar="SCORE",
        help="with --orientations: keep the first angle whose mean joint score reaches SCORE "
        "without trying the others (faster on mostly upright people; 0.5 is a safe value)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="skip images by stem: FIRST..LAST ranges (im08501..im09000) or shell patterns; "
        "keeps validation and held-out images out of training labels",
    )
    parser.add_argument("--keep-empty", action="store_true", help="also copy frames with nobody kept")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing annotations.json")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs, batch jobs)")
    parser.add_argument(
        "--merge", nargs="+", metavar="JSON", help="instead of labelling, merge these COCO keypoint files"
    )
    return parser


def parse_orientations(text: str) -> tuple[float, ...]:
    """``"0,90,180,270"`` -> (0.0, 90.0, 180.0, 270.0); distinct angles in [0, 360)."""
    try:
        angles = tuple(float(part) % 360.0 for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(
            f"--orientations: expected angles in degrees like 0,90,180,270, got {text!r}"
        ) from None
    if not angles or len(set(angles)) != len(angles):
        raise UserError(f"--orientations: expected distinct angles like 0,90,180,270, got {text!r}")
    return angles


def main(argv: list[str] | None = None) -> int:
    from sdpose_core.cli import read_json
    from sdpose_core.jsonio import check_outputs

    args = _parser().parse_args(argv)
    out_dir = Path(args.output_dir)
    target = out_dir / "annotations.json"
    check_outputs({"--output-dir": out_dir}, folders=("--output-dir",))  # before any model loads
    if target.exists() and not args.overwrite:
        raise UserError(f"{target} exists; pass --overwrite or choose another --output-dir")
    if args.merge:
        if args.inputs or args.lsp or args.lspet or args.boxes:
            raise UserError("--merge cannot be combined with --inputs, --boxes, --lsp or --lspet")
        for file in args.merge:  # every file's shape, before anything is written
            data = read_json(file, "--merge file")
            images = data.get("images") if isinstance(data, dict) else None
            annotations = data.get("annotations", []) if isinstance(data, dict) else None
            if not (
                isinstance(images, list)
                and isinstance(annotations, list)
                and all(isinstance(i, dict) and {"id", "file_name"} <= i.keys() for i in images)
                and all(isinstance(a, dict) and "image_id" in a for a in annotations)
            ):
                raise UserError(
                    f"--merge file {file} is not a COCO keypoint file (images with id and file_name)"
                )
        merged = merge_annotation_files(args.merge, target)
        print(
            f"merged {len(args.merge)} files: {len(merged['annotations'])} people on "
            f"{len(merged['images'])} images -> {target}"
        )
        return 0
    if args.orientation_accept is not None and not 0.0 < args.orientation_accept <= 1.0:
        raise UserError(f"--orientation-accept must be in (0, 1], got {args.orientation_accept}")
    if args.every < 1 or (args.max_frames_per_video is not None and args.max_frames_per_video < 1):
        raise UserError("--every and --max-frames-per-video must be >= 1")
    excluded = exclusion(args.exclude) if args.exclude else None
    paths = [p for p in collect_inputs(args.inputs) if excluded is None or not excluded(p.stem)]
    if paths and next(iter_frames(paths, args.every, 1), None) is None:  # stops at the first readable one
        raise UserError(
            f"none of the {len(paths)} input files could be read (damaged, or not images/videos?)"
        )
    settings = LabelSettings(
        teacher=args.teacher,
        min_kpt_score=args.min_kpt_score,
        min_kpts=args.min_kpts,
        min_box_score=args.min_box_score,
        min_box_height=args.min_box_height,
        flip_tta=args.flip_tta,
        flip_agree=args.flip_agree,
        det_size=args.det_size,
        orientations=parse_orientations(args.orientations),
        orientation_accept=args.orientation_accept,
    )
    summary = pseudo_label(
        args.inputs,
        out_dir,
        settings,
        teacher_model=args.teacher_model,
        detector_model=args.detector_model,
        every=args.every,
        max_frames_per_video=args.max_frames_per_video,
        lsp_dir=args.lsp,
        lspet_dir=args.lspet,
        box_files=args.boxes,
        exclude=args.exclude,
        lsp_faces=args.lsp_faces,
        keep_empty=args.keep_empty,
        threads=args.threads,
        progress=not args.no_progress,
    )
    sources = ", ".join(f"{k}: {v}" for k, v in sorted(summary["sources"].items())) or "none"
    print(
        f"wrote {summary['annotations']} people ({sources}) on {summary['images']} images "
        f"from {summary['frames_seen']} frames -> {summary['annotations_file']}"
    )
    for name, count in summary["per_source"].items():
        print(count.line(name))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
