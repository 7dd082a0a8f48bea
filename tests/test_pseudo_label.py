"""Pseudo-labelling: the ONNX teachers on real images, the LSP reader, and the CLI's COCO file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from sdpose_core.cli import run_cli
from sdpose_core.geometry import box_iou
from sdpose_core.keypoints import FLIP_INDEX, KEYPOINT_NAMES, OKS_SIGMAS
from sdpose_core.labels.lsp import read_lsp, read_lsp_joints
from sdpose_core.labels.pseudo_label import main, merge_annotation_files
from sdpose_core.labels.teachers import MoveNetTeacher, YoloPoseTeacher, flip_agreement

MOVENET = "data/models/movenet/movenet-thunder.onnx"
YOLO = "data/models/yolo11n-pose/yolo11n-pose.onnx"


@pytest.fixture(scope="module")
def coco_sample(shared_dir: Path) -> tuple[dict[int, np.ndarray], list[dict]]:
    """The 4 coco_sample images by id, and the 12 annotations that carry keypoints."""
    root = shared_dir / "data" / "coco_sample"
    data = json.loads((root / "test_coco.json").read_text())
    images = {im["id"]: cv2.imread(str(root / im["file_name"])) for im in data["images"]}
    return images, [a for a in data["annotations"] if a["num_keypoints"] > 0]


def _xyxy(bbox: list[float]) -> np.ndarray:
    x, y, w, h = bbox
    return np.array([[x, y, x + w, y + h]])


def _oks(pred: np.ndarray, gt: list[float], area: float) -> float:
    """COCO OKS over the labelled joints of one person."""
    gt = np.asarray(gt, dtype=np.float64).reshape(17, 3)
    labelled = gt[:, 2] > 0
    d2 = ((pred - gt[:, :2]) ** 2).sum(axis=1)
    e = d2 / (2 * OKS_SIGMAS) ** 2 / (area + np.spacing(1)) / 2
    return float(np.exp(-e)[labelled].mean())


def test_movenet_top_down_oks_on_gt_boxes(shared_dir, coco_sample):
    images, annotations = coco_sample
    teacher = MoveNetTeacher(shared_dir / MOVENET, threads=2)
    scores = []
    for ann in annotations:
        keypoints, kpt_scores = teacher(images[ann["image_id"]], _xyxy(ann["bbox"]))
        assert keypoints.shape == (1, 17, 2) and kpt_scores.shape == (1, 17)
        scores.append(_oks(keypoints[0], ann["keypoints"], ann["area"]))
    assert len(scores) == 12
    assert np.mean(scores) >= 0.8  # measured 0.852 (one occluded skier gets the wrong person)


def test_yolo_finds_labelled_people(shared_dir, coco_sample):
    images, annotations = coco_sample
    teacher = YoloPoseTeacher(shared_dir / YOLO, imgsz=640, threads=2)
    detections = {image_id: teacher(image) for image_id, image in images.items()}
    found = 0
    for ann in annotations:
        boxes, box_scores, keypoints, kpt_scores = detections[ann["image_id"]]
        assert keypoints.shape == (len(boxes), 17, 2) and kpt_scores.shape == (len(boxes), 17)
        if len(boxes) and box_iou(_xyxy(ann["bbox"]), boxes).max() >= 0.5:
            found += 1
    assert found >= 10


def test_flip_agreement_drops_disagreeing_joints():
    a = np.zeros((1, 17, 2))
    b = np.zeros((1, 17, 2))
    b[0, 3] = (15.0, 0.0)  # 15 px apart with a 100 px box: disagree at 0.1
    b[0, 4] = (4.0, 0.0)  # 4 px apart: agree
    sa, sb = np.full((1, 17), 0.8), np.full((1, 17), 0.6)
    kpts, scores = flip_agreement(a, sa, b, sb, np.array([100.0]), max_dist=0.1)
    assert scores[0, 3] == 0.0
    assert scores[0, 4] == pytest.approx(0.7) and kpts[0, 4, 0] == pytest.approx(2.0)
    assert np.count_nonzero(scores) == 16


def test_movenet_flip_tta_keeps_confident_joints(shared_dir, coco_sample):
    images, annotations = coco_sample
    ann = annotations[0]
    plain = MoveNetTeacher(shared_dir / MOVENET, threads=2)
    tta = MoveNetTeacher(shared_dir / MOVENET, threads=2, flip_tta=True)
    k0, _ = plain(images[ann["image_id"]], _xyxy(ann["bbox"]))
    k1, s1 = tta(images[ann["image_id"]], _xyxy(ann["bbox"]))
    assert (s1 > 0.3).sum() >= 10  # a clear person: the mirrored pass agrees on most joints
    assert np.abs(k0 - k1).max() < 0.1 * np.sqrt(ann["bbox"][2] * ann["bbox"][3])
    assert sorted(FLIP_INDEX[FLIP_INDEX]) == list(range(17))


def test_read_lsp(shared_dir):
    lsp_dir = shared_dir / "data" / "pool" / "lsp"
    people = read_lsp(lsp_dir)
    assert len(people) == 1000
    path, keypoints = people[0]
    assert path.name == "im0001.jpg" and keypoints.shape == (17, 3)
    assert (keypoints[5:, 2] == 2).all()  # image 1: all flags 0 = all visible
    assert (keypoints[:5] == 0).all()  # LSP has no face points
    _, raw = read_lsp_joints(lsp_dir)
    np.testing.assert_allclose(keypoints[16, :2], raw[0, 0, :2])  # LSP right ankle -> COCO 16
    np.testing.assert_allclose(keypoints[9, :2], raw[0, 11, :2])  # LSP left wrist -> COCO 9
    flags = np.stack([k[5:, 2] for _, k in people])
    assert set(np.unique(flags)) == {1.0, 2.0} and (flags == 1).mean() < 0.15


def test_cli_writes_coco_file(shared_dir, tmp_path, capsys):
    from pycocotools.coco import COCO

    coco_dir = shared_dir / "data" / "coco_sample"
    video = shared_dir / "data" / "video" / "sports2d_demo.mp4"
    out = tmp_path / "labels"
    argv = [
        "--inputs",
        str(coco_dir / "000000000785.jpg"),
        str(coco_dir / "000000196141.jpg"),
        str(video),
        "--output-dir",
        str(out),
        "--every",
        "10",
        "--max-frames-per-video",
        "2",
        "--min-kpt-score",
        "0.35",
        "--threads",
        "2",
    ]
    assert run_cli(main, argv) == 0
    assert "people" in capsys.readouterr().out
    coco = COCO(str(out / "annotations.json"))
    data = coco.dataset
    names = {im["file_name"] for im in data["images"]}
    assert "coco_sample_000000000785.jpg" in names
    assert names & {"sports2d_demo_000000.jpg", "sports2d_demo_000010.jpg"}
    assert all((out / "images" / name).is_file() for name in names)
    assert len(data["annotations"]) >= 3
    for ann in data["annotations"]:
        kpts = np.asarray(ann["keypoints"]).reshape(17, 3)
        assert set(np.unique(kpts[:, 2])) <= {0, 2}
        assert (kpts[kpts[:, 2] == 0, :2] == 0).all()
        assert ann["num_keypoints"] == (kpts[:, 2] == 2).sum() >= 6
        assert ann["source"] == "movenet" and ann["category_id"] == 1 and ann["iscrowd"] == 0
    cat = data["categories"][0]
    assert cat["keypoints"] == list(KEYPOINT_NAMES) and [16, 14] in cat["skeleton"]
    info = data["info"]
    assert info["teacher"]["name"] == "movenet" and len(info["teacher"]["sha256"]) == 64
    assert info["teacher"]["min_kpt_score"] == 0.35 and info["teacher"]["min_kpts"] == 6
    assert info["detector"]["min_box_score"] == 0.5 and info["detector"]["imgsz"] == 640
    assert len(info["inputs"]) == 3 and info["every"] == 10

    # Human labels in their own file, then mixed with the teacher's.
    lsp_out = tmp_path / "lsp"
    from sdpose_core.labels.coco_labels import CocoKeypointWriter, add_lsp_people

    writer = CocoKeypointWriter(lsp_out, {"description": "lsp"})
    assert add_lsp_people(writer, shared_dir / "data" / "pool" / "lsp", limit=3) == (3, 0)
    writer.flush()
    merged = merge_annotation_files(
        [out / "annotations.json", lsp_out / "annotations.json"], tmp_path / "m.json"
    )
    assert len(merged["annotations"]) == len(data["annotations"]) + 3
    assert [a["id"] for a in merged["annotations"]] == list(range(1, len(merged["annotations"]) + 1))
    assert merged["annotations"][-1]["source"] == "lsp-human"
    last = merged["images"][-1]
    assert (tmp_path / "images" / last["file_name"]).resolve().is_file()
    COCO(str(tmp_path / "m.json"))


def test_missing_teacher_model_is_one_line_error(shared_dir, tmp_path, capsys):
    image = shared_dir / "data" / "coco_sample" / "000000000785.jpg"
    missing = tmp_path / "nope.onnx"
    argv = ["--inputs", str(image), "--output-dir", str(tmp_path / "o"), "--teacher-model", str(missing)]
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "teacher model not found" in err and str(missing) in err


def test_writer_flushes_a_valid_file_while_running(tmp_path):
    from sdpose_core.labels.coco_labels import CocoKeypointWriter

    writer = CocoKeypointWriter(tmp_path, {"description": "t"}, flush_every=2)
    image_id = writer.add_image(np.zeros((40, 30, 3), np.uint8), "a.png")
    writer.add_person(image_id, np.array([1.0, 2.0, 21.0, 38.0]), 0.9, np.zeros((17, 3)), "movenet")
    writer.step()
    assert not writer.path.exists()
    writer.add_image(np.zeros((40, 30, 3), np.uint8), "a.jpg")  # same name: made unique
    writer.step()
    data = json.loads(writer.path.read_text())
    assert [im["file_name"] for im in data["images"]] == ["a.jpg", "a_2.jpg"]
    assert data["annotations"][0]["bbox"] == [1.0, 2.0, 20.0, 36.0]
    assert not list(tmp_path.glob(".*.tmp"))


def test_body_agreement_scores_the_body_only():
    from sdpose_core.labels.coco_labels import body_agreement

    human = np.zeros((17, 3))
    human[5:] = (100.0, 200.0, 2.0)
    human[5:, 0] += np.arange(12) * 10
    same = human[:, :2].copy()
    same[:5] = (999.0, 999.0)  # faces are not compared: LSP has none
    assert body_agreement(human, same, area=100 * 200) == pytest.approx(1.0)
    shifted = same + (0.0, 30.0)
    assert 0.0 < body_agreement(human, shifted, area=100 * 200) < 0.8
    assert body_agreement(np.zeros((17, 3)), same, area=1.0) == 0.0  # nothing labelled


def _lsp_writer_with_faces(shared_dir, tmp_path, teacher, limit=4):
    from sdpose_core.labels.coco_labels import CocoKeypointWriter, FaceFill, add_lsp_people

    writer = CocoKeypointWriter(tmp_path, {"description": "lsp"})
    lsp_dir = shared_dir / "data" / "pool" / "lsp"
    counts = add_lsp_people(writer, lsp_dir, limit=limit, faces=FaceFill(teacher))
    return counts, writer.annotations


def test_lsp_faces_come_from_a_teacher_that_agrees_on_the_body(shared_dir, tmp_path):
    """A teacher that sees the labelled body gets its confident faces in; one that does not, none."""
    _, joints = read_lsp_joints(shared_dir / "data" / "pool" / "lsp")
    humans = [read_lsp(shared_dir / "data" / "pool" / "lsp")[i][1] for i in range(4)]
    calls = iter(range(4))

    def agreeing(image, boxes):
        i = next(calls)
        xy = humans[i][:, :2].copy()
        xy[:5] = joints[i, 13, :2]  # every face joint at the head top
        scores = np.full(17, 0.9)
        scores[3] = 0.1  # left ear unsure: stays unlabelled
        return xy[None], scores[None]

    (people, filled), anns = _lsp_writer_with_faces(shared_dir, tmp_path / "a", agreeing)
    assert (people, filled) == (4, 4)
    for i, ann in enumerate(anns):
        kpts = np.asarray(ann["keypoints"]).reshape(17, 3)
        assert ann["teacher_joints"] == [0, 1, 2, 4] and ann["source"] == "lsp-human"
        np.testing.assert_allclose(kpts[0, :2], joints[i, 13, :2], atol=0.01)
        assert kpts[0, 2] == 2 and kpts[3, 2] == 0
        assert ann["num_keypoints"] == int((humans[i][:, 2] > 0).sum()) + 4

    def elsewhere(image, boxes):  # a teacher looking at someone else: bodies 40 % of the box away
        box = np.asarray(boxes)[0]
        xy = np.tile(box[:2] + 0.4 * (box[2:] - box[:2]), (17, 1))
        return xy[None], np.full((1, 17), 0.9)

    (people, filled), anns = _lsp_writer_with_faces(shared_dir, tmp_path / "b", elsewhere)
    assert (people, filled) == (4, 0)
    assert all("teacher_joints" not in a and a["keypoints"][:15] == [0] * 15 for a in anns)


def test_lsp_faces_from_movenet_sit_on_the_head(shared_dir, tmp_path):
    """The real teacher on LSP photos: faces filled, each above the shoulders near the head top."""
    teacher = MoveNetTeacher(shared_dir / MOVENET, flip_tta=True)
    (people, filled), anns = _lsp_writer_with_faces(shared_dir, tmp_path, teacher, limit=6)
    _, joints = read_lsp_joints(shared_dir / "data" / "pool" / "lsp")
    assert people == 6 and filled >= 4
    for ann, raw in zip(anns, joints[:6], strict=True):
        kpts = np.asarray(ann["keypoints"]).reshape(17, 3)
        head_top, neck = raw[13, :2], raw[12, :2]
        head = np.linalg.norm(head_top - neck)
        for j in ann.get("teacher_joints", []):
            assert np.linalg.norm(kpts[j, :2] - 0.5 * (head_top + neck)) < head, (ann["image_id"], j)


def test_lsp_faces_needs_lsp_and_movenet(shared_dir, tmp_path, capsys):
    image = shared_dir / "data" / "coco_sample" / "000000000785.jpg"
    for argv in (
        ["--inputs", str(image), "--lsp-faces"],
        ["--lsp", str(shared_dir / "data" / "pool" / "lsp"), "--lsp-faces", "--teacher", "yolo"],
    ):
        assert run_cli(main, [*argv, "--output-dir", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0
        assert "--lsp-faces needs --lsp or --lspet DIR and the movenet teacher" in err


def test_cli_lsp_faces_records_the_teacher(shared_dir, tmp_path, capsys, caplog):
    import shutil

    lsp = tmp_path / "lsp"
    (lsp / "images").mkdir(parents=True)
    shutil.copy(shared_dir / "data" / "pool" / "lsp" / "joints.mat", lsp)
    for name in ("im0001.jpg", "im0002.jpg", "im0003.jpg"):
        shutil.copy(shared_dir / "data" / "pool" / "lsp" / "images" / name, lsp / "images")
    argv = ["--lsp", str(lsp), "--lsp-faces", "--flip-tta", "--output-dir", str(tmp_path / "o")]
    caplog.set_level(logging.INFO, logger="sdpose_core.progress")
    assert run_cli(main, argv) == 0
    assert "wrote 3 people (lsp-human: 3)" in capsys.readouterr().out
    meter = [r for r in caplog.records if r.name == "sdpose_core.progress" and "3/3" in r.getMessage()]
    assert meter, "progress lines in a log by default"
    caplog.clear()
    assert run_cli(main, [*argv[:-1], str(tmp_path / "quiet"), "--no-progress"]) == 0
    assert not [r for r in caplog.records if r.name == "sdpose_core.progress"], "--no-progress: none"
    data = json.loads((tmp_path / "o" / "annotations.json").read_text())
    faces = data["info"]["lsp_faces"]
    assert faces["teacher"]["name"] == "movenet" and faces["teacher"]["flip_tta"] is True
    assert len(faces["teacher"]["sha256"]) == 64 and faces["min_body_oks"] == 0.8
    with_faces = [a for a in data["annotations"] if a.get("teacher_joints")]
    assert faces["people_filled"] == len(with_faces) >= 2
