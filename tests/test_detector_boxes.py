"""detector_boxes: human-labelled athletes get the detector's box beside their own, for training."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from sdpose_core.cli import run_cli
from sdpose_core.labels.detector_boxes import add_detector_boxes, best_overlap, main


def _pool(tmp_path: Path) -> tuple[dict, Path]:
    """Three athletes and one teacher-labelled person on four blank images."""
    root = tmp_path / "images"
    root.mkdir(parents=True)
    images, annotations = [], []
    for k in range(1, 5):
        cv2.imwrite(str(root / f"{k}.jpg"), np.full((120, 100, 3), 40 * k, np.uint8))
        images.append({"id": k, "file_name": f"{k}.jpg", "width": 100, "height": 120})
        source = "movenet" if k == 4 else ("lspet-human" if k < 3 else "lsp-human")
        person = {"id": k, "image_id": k, "bbox": [20, 10, 40, 80], "source": source, "keypoints": [1] * 51}
        annotations.append(person)
    return {"images": images, "annotations": annotations, "categories": []}, root


def test_best_overlap_takes_the_best_overlap_and_refuses_a_poor_one():
    boxes = np.array([[0, 0, 10, 10], [20, 10, 60, 90], [25, 5, 65, 100]], float)
    assert best_overlap(boxes, np.array([20, 10, 60, 90]), 0.3) == 1
    assert best_overlap(boxes[:1], np.array([20, 10, 60, 90]), 0.3) is None
    assert best_overlap(np.zeros((0, 4)), np.array([20, 10, 60, 90]), 0.3) is None


def test_athletes_get_the_detectors_box_and_a_miss_keeps_none(tmp_path):
    coco, root = _pool(tmp_path)
    seen = []

    def detect(frame):
        seen.append(int(frame[0, 0, 0]))
        if seen[-1] == 80:  # image 2: only a bystander
            return np.array([[70, 0, 99, 40]], float), np.array([0.8])
        return np.array([[70, 0, 99, 40], [22, 4, 58, 100]], float), np.array([0.8, 0.6])

    partial = tmp_path / "out.partial.jsonl"
    run = {"train_ann": "a.json", "det_conf": 0.1}
    counts = add_detector_boxes(coco, root, detect, partial=partial, run=run, progress=False)
    assert sorted(seen) == [40, 80, 120], "the teacher-labelled person's image is not read"
    first, second, lsp, teacher = coco["annotations"]
    assert first["detector_bbox"] == [22, 4, 36, 96] and first["detector_score"] == 0.6
    assert "detector_bbox" not in second, "missed: trained from its own box only"
    assert "detector_bbox" in lsp and "detector_bbox" not in teacher
    assert counts == {"lspet-human": 2, "lspet-human boxed": 1, "lsp-human": 1, "lsp-human boxed": 1}

    # Interrupted mid-line: the next run of the same input keeps the whole lines, detects the rest.
    text = partial.read_text()
    partial.write_text(text[: text.rindex("{") + 10])  # the last image's line torn
    coco2, _ = _pool(tmp_path / "again")
    seen.clear()
    add_detector_boxes(coco2, root, detect, partial=partial, run=run, progress=False)
    assert len(seen) == 1 and coco2["annotations"][0]["detector_bbox"] == [22, 4, 36, 96]
    assert all(json.loads(line) for line in partial.read_text().splitlines()), "no torn line left"
    # Another input or detector setting never reuses those boxes.
    seen.clear()
    add_detector_boxes(
        _pool(tmp_path / "other")[0], root, detect, partial=partial, run={**run, "det_conf": 0.3}
    )
    assert sorted(seen) == [40, 80, 120]


def test_the_command_writes_the_boxes_and_its_settings(tmp_path, monkeypatch, capsys):
    """The command's own run, its detector faked: the output keeps every field and adds the
    boxes and `info.detector_boxes`; the partial file is gone; the input is untouched."""
    import sdpose_core.labels.teachers as teachers

    class FakeYolo:
        def __init__(self, path, imgsz, conf, threads, role):
            assert (imgsz, conf, role) == (640, 0.1, "detector")

        def __call__(self, frame):
            box = np.array([[22, 4, 58, 100]], float)
            return box, np.array([0.7]), np.zeros((1, 17, 2)), np.zeros((1, 17))

    monkeypatch.setattr(teachers, "YoloPoseTeacher", FakeYolo)
    coco, root = _pool(tmp_path)
    ann, out = tmp_path / "ann.json", tmp_path / "out" / "det.json"
    ann.write_text(json.dumps(coco))
    before = ann.read_text()
    argv = ["--train-ann", str(ann), "--data-root", str(root), "--output", str(out), "--no-progress"]
    assert run_cli(main, [*argv, "--detector-model", str(ann)]) == 0
    printed = capsys.readouterr().out
    assert "lspet-human: 2 of 2 people boxed" in printed and "lsp-human: 1 of 1" in printed
    written = json.loads(out.read_text())
    assert [a.get("detector_bbox") for a in written["annotations"]] == [[22, 4, 36, 96]] * 3 + [None]
    assert written["info"]["detector_boxes"]["counts"]["lspet-human boxed"] == 2
    assert [a["keypoints"] for a in written["annotations"]] == [a["keypoints"] for a in coco["annotations"]]
    assert not list(out.parent.glob("*.partial.jsonl")) and ann.read_text() == before


def test_the_command_refuses_to_overwrite_its_input_and_names_missing_files(tmp_path, capsys):
    coco, root = _pool(tmp_path)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(coco))
    before = ann.read_text()
    assert run_cli(main, ["--train-ann", str(ann), "--data-root", str(root), "--output", str(ann)]) == 2
    assert "new file" in capsys.readouterr().err and ann.read_text() == before
    missing = ["--train-ann", str(tmp_path / "no.json"), "--data-root", str(root), "--output", "o.json"]
    assert run_cli(main, missing) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err
    args = ["--train-ann", str(ann), "--data-root", str(root), "--output", str(tmp_path / "o.json")]
    assert run_cli(main, [*args, "--sources", "lsp-human", "lspet-humn"]) == 2, "a mistyped source"
    assert "no people of ['lspet-humn']" in capsys.readouterr().err
