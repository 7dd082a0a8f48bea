"""compact_dataset: one small JPEG per person that trains like the full frames it came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sdpose_core.cli import run_cli
from sdpose_core.data import CocoKeypointDataset, DataConfig
from sdpose_core.geometry import normalize_crops
from sdpose_core.labels.compact_dataset import CompactSettings, compact_dataset, main


@pytest.fixture(scope="module")
def coco(shared_dir: Path) -> tuple[Path, Path]:
    root = shared_dir / "data" / "coco_sample"
    return root, root / "test_coco.json"


def _black(image: torch.Tensor) -> torch.Tensor:
    """(3,H,W) normalised crop -> (H,W) mask of its black (zero-border) pixels."""
    black = torch.from_numpy(normalize_crops(np.zeros((1, 1, 1, 3), np.uint8))[0, :, 0, 0])
    return ((image - black[:, None, None]).abs() < 1e-4).all(0)


def _pair(coco, out: Path, train: bool, settings: CompactSettings):
    root, ann = coco
    summary = compact_dataset(ann, root, out, settings, workers=1, progress=False)
    full = CocoKeypointDataset(ann, root, train=train, seed=3, cfg=DataConfig(photometric_prob=0.0))
    small = CocoKeypointDataset(out / "annotations.json", out / "images", train=train, seed=3, cfg=full.cfg)
    return summary, full, small


def test_full_size_cut_outs_give_the_same_samples(tmp_path, coco):
    """No downscaling: the same people in the same order, the same crop geometry and targets
    (augmentation included), and the pixels differ only by one JPEG pass."""
    summary, full, small = _pair(coco, tmp_path / "c", True, CompactSettings(max_height=4000, quality=95))
    assert summary["people"] == len(full.records) == len(small.records) == 12
    for index in range(len(full)):
        a, b = full[index], small[index]
        np.testing.assert_allclose(b["joints"].numpy(), a["joints"].numpy(), atol=0.02)
        np.testing.assert_allclose(b["target"].numpy(), a["target"].numpy(), atol=2e-3)
        # The cut-out holds the padded box x 1.5; the augmented crop may reach past it (black).
        inside = ~_black(a["image"]) & ~_black(b["image"])
        diff = (a["image"] - b["image"]).abs().mean(0)[inside]
        # One grey level is 0.017 here; the cut-out's edge mixes in a little black.
        assert diff.median() < 0.06, f"person {index}: crops differ by {diff.median():.3f} (median)"
        assert diff.mean() < 0.15, f"person {index}: crops differ by {diff.mean():.3f} (mean)"


def test_downscaled_cut_outs_keep_joints_and_boxes_aligned(tmp_path, coco):
    root, ann = coco
    summary, full, small = _pair(coco, tmp_path / "c", False, CompactSettings(max_height=96, quality=90))
    assert all(record.scale[1] * 200 <= 96.5 for record in small.records), "padded box <= max_height"
    errors = []
    for index in range(len(full)):
        a, b = full[index], small[index]
        errors.append(np.abs(b["joints"].numpy()[:, :2] - a["joints"].numpy()[:, :2]).max())
        assert (a["image"] - b["image"]).abs().mean() < 0.35
    # The same crop of the same person, joints within a few hundredths of a crop pixel; a box
    # that touches the image's edge is clipped half a cut-out pixel differently (the last three
    # people here, downscaled up to 4.6 times).
    assert np.median(errors) < 0.05 and max(errors) < 1.5, errors
    originals = sum(p.stat().st_size for p in root.glob("*.jpg"))
    assert summary["mib"] * 2**20 < originals / 3, "the cut-outs should be far smaller than the frames"
    data = json.loads((tmp_path / "c" / "annotations.json").read_text())
    assert data["info"]["compact_settings"]["max_height"] == 96
    assert len(data["images"]) == len(data["annotations"]) == 12
    assert all(image["height"] <= 96 * 1.5 + 2 for image in data["images"])


def test_cli_summary_and_one_line_errors(tmp_path, coco, capsys):
    root, ann = coco
    out = tmp_path / "c"
    args = ["--train-ann", str(ann), "--data-root", str(root), "--output-dir", str(out), "--no-progress"]
    assert run_cli(main, args) == 0
    assert "12 people from 4 images" in capsys.readouterr().out
    assert run_cli(main, ["--train-ann", str(tmp_path / "nope.json"), *args[2:]]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.json" in err[0], err
    assert run_cli(main, [*args, "--margin", "0.5"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "margin" in err[0], err
    # A second run does not silently replace the first one's cut-outs...
    assert run_cli(main, args) != 0
    assert "--overwrite" in capsys.readouterr().err
    assert run_cli(main, [*args, "--overwrite"]) == 0
    capsys.readouterr()
    # ...and never deletes the source images, even when told to overwrite.
    sources = tmp_path / "src"
    (sources / "images").mkdir(parents=True)
    for image in root.glob("*.jpg"):
        (sources / "images" / image.name).write_bytes(image.read_bytes())
    mistaken = ["--train-ann", str(ann), "--data-root", str(sources / "images"), "--output-dir", str(sources)]
    assert run_cli(main, [*mistaken, "--overwrite", "--no-progress"]) != 0
    assert "source images" in capsys.readouterr().err
    assert len(list((sources / "images").glob("*.jpg"))) == 4
    # An image that disappears after the file was checked is one line too.
    (sources / "images" / "000000196141.jpg").unlink()
    out2 = ["--output-dir", str(tmp_path / "c2"), "--no-progress"]
    assert run_cli(main, ["--train-ann", str(ann), "--data-root", str(sources / "images"), *out2]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "000000196141.jpg" in err[0], err


def test_a_detector_box_in_the_source_pixels_is_not_carried_into_the_cut_outs(tmp_path, coco):
    """`detector_boxes` writes boxes in its input's pixels; a cut-out moves the person, so such a
    box would crop the wrong place: compacting drops it (the detector runs on the cut-outs)."""
    root, ann = coco
    data = json.loads(ann.read_text())
    for person in data["annotations"]:
        person["detector_bbox"], person["detector_score"] = person["bbox"], 0.9
    boxed = tmp_path / "boxed.json"
    boxed.write_text(json.dumps(data))
    compact_dataset(boxed, root, tmp_path / "c", CompactSettings(max_height=96), workers=1, progress=False)
    people = json.loads((tmp_path / "c" / "annotations.json").read_text())["annotations"]
    assert len(people) == 12 and not any("detector_bbox" in p or "detector_score" in p for p in people)
