"""The GPU benchmark scripts must work when a session finally has the GPU: check them on the CPU."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sdpose_core.data import CocoKeypointDataset

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_throughput_benchmark_reports_crops_per_second(tmp_path: Path) -> None:
    bench = _load("bench_throughput")
    out = tmp_path / "rows.json"
    code = bench.main(
        [
            "--device",
            "cpu",
            "--variants",
            "sdpose_t",
            "--batches",
            "2",
            "--modes",
            "eager",
            "cudagraph",
            "--precisions",
            "fp32",
            "--seconds",
            "0.2",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    # cudagraph needs CUDA: on a CPU only the eager row is measured, and it is a real rate.
    assert [(r["mode"], r["batch"]) for r in rows] == [("eager", 2)]
    assert rows[0]["crops_per_s"] > 0


def test_train_benchmark_stand_in_data_is_a_valid_training_set(tmp_path: Path) -> None:
    bench = _load("bench_train")
    ann = bench.write_stand_in_dataset(tmp_path, frames=3)
    data = CocoKeypointDataset(ann, tmp_path, train=True)
    assert len(data) == 6  # two people per frame
    sample = data[0]
    assert sample["image"].shape == (3, 256, 192)
    assert float(sample["target_weight"].sum()) > 0  # keypoints land inside the crop
    assert np.isfinite(sample["target"].numpy()).all()


def test_accuracy_benchmark_samples_training_people_per_source_folder(
    tmp_path: Path, shared_dir: Path
) -> None:
    bench = _load("bench_accuracy")
    coco = json.loads((shared_dir / "data" / "coco_sample" / "test_coco.json").read_text())
    root = tmp_path / "merged" / "images"
    root.mkdir(parents=True)
    for index, image in enumerate(coco["images"]):
        source = tmp_path / ("a" if index % 2 == 0 else "b")
        source.mkdir(exist_ok=True)
        (source / image["file_name"]).write_bytes(
            (shared_dir / "data" / "coco_sample" / image["file_name"]).read_bytes()
        )
        image["file_name"] = f"../../{source.name}/{image['file_name']}"  # as `pseudo_label --merge`
    ann = tmp_path / "merged" / "annotations.json"
    ann.write_text(json.dumps(coco))
    sample = bench.load_training_sample(ann, root, per_source=3)
    assert sorted(sample) == ["a", "b"]
    for images in sample.values():
        people = [person for image in images for person in image.people]
        assert len(people) == 3 and all(image.path.is_file() for image in images)


def test_accuracy_benchmark_maps_every_held_out_layout_onto_coco(shared_dir: Path) -> None:
    """Seven human-labelled sets, 41 people; MPII's unnamed list order lands on COCO's joints."""
    bench = _load("bench_accuracy")
    sets = bench.load_datasets()
    counts = {name: sum(len(image.people) for image in images) for name, images in sets.items()}
    assert counts == {
        "coco_sample": 12,
        "crowdpose": 4,
        "humanart": 4,
        "aic": 9,
        "mhp": 4,
        "jhmdb": 3,
        "mpii": 5,
    }
    raw = json.loads((shared_dir / "data" / "mpii" / "test_mpii.json").read_text())[0]
    person = next(image for image in sets["mpii"] if image.path.name == raw["image"]).people[0]
    coco_from_mpii = {5: 13, 6: 12, 9: 15, 10: 10, 15: 5, 16: 0}  # shoulders, wrists, ankles
    for coco_index, mpii_index in coco_from_mpii.items():
        np.testing.assert_allclose(person.keypoints[coco_index], raw["joints"][mpii_index])
    assert not person.labelled[:5].any()  # MPII has no face joints
    x1, y1, x2, y2 = person.box
    joints = np.asarray(raw["joints"])
    assert x1 < joints[:, 0].min() and joints[:, 0].max() < x2 and y1 < joints[:, 1].min()


def test_accuracy_benchmark_lists_people_worst_first(shared_dir: Path) -> None:
    """--per-person: every held-out person once, with the ones the model gets most wrong on top."""
    bench = _load("bench_accuracy")
    sets = bench.load_datasets()
    truth = bench.evaluate(bench.ground_truth_predictor(), sets)
    wrong_image = sets["mpii"][0]

    def shifted(frame, boxes, people):  # one image's people 40 px off, the rest exact
        offset = 40.0 if people is wrong_image.people else 0.0
        return [p.keypoints + offset for p in people]

    rows = {"ours": bench.evaluate(shifted, sets), "teacher": truth}
    assert sum(len(rows["teacher"][name]["per_person"]) for name in sets) == 41
    assert all(v == 1.0 for name in sets for _, v in truth[name]["per_person"])
    lines = bench.format_per_person(rows, "ours", "teacher").splitlines()
    assert len(lines) == 42 and lines[0].startswith("set")
    assert lines[1].startswith("mpii") and wrong_image.path.name in lines[1] and "-0." in lines[1]
    assert lines[-1].endswith("+0.000")


def test_accuracy_benchmark_scores_each_joint(shared_dir: Path) -> None:
    """--per-joint: a model that gets only the wrists wrong shows it there and nowhere else."""
    bench = _load("bench_accuracy")
    sets = bench.load_datasets()
    truth = bench.evaluate(bench.ground_truth_predictor(), sets)

    def wrong_wrists(frame, boxes, people):
        preds = [p.keypoints.copy() for p in people]
        for pred in preds:
            pred[[9, 10]] += 25.0
        return preds

    rows = {"ours": bench.evaluate(wrong_wrists, sets), "teacher": truth}
    per_joint = rows["ours"]["all"]["per_joint"]
    assert list(per_joint) == list(bench.KEYPOINT_NAMES)
    labelled = sum(p.labelled for images in sets.values() for image in images for p in image.people)
    assert [n for _, n in per_joint.values()] == labelled.tolist()
    assert per_joint["nose"] == (1.0, 15) and per_joint["left_hip"][0] == 1.0
    assert per_joint["left_wrist"][0] < 0.6 and per_joint["right_wrist"][0] < 0.6
    lines = bench.format_per_joint(rows, "ours", "teacher").splitlines()
    assert len(lines) == 18 and lines[10].startswith("left_wrist") and "-0." in lines[10]


def test_accuracy_benchmark_scores_the_lspet_validation_set() -> None:
    """The LSPET table: 500 held-out athletes, the whole image as the box, and the labels
    themselves score 1.0 on the people whose torso is labelled."""
    bench = _load("bench_accuracy")
    images = bench.load_lspet_validation()
    assert len(images) == 500 and {image.path.stem for image in images} >= {"im08501", "im09000"}
    first = images[0]
    assert first.people[0].box[:2].tolist() == [0.0, 0.0]
    result = bench.evaluate_torso_pck(bench.ground_truth_predictor(), images)
    assert result["pck"] == 1.0 and 300 < result["people"] < 500
    missed = bench.evaluate_torso_pck(lambda image, boxes, people: [None] * len(people), images)
    assert missed["pck"] == 0.0 and missed["joints"] == result["joints"]
    # By turn: upside-down athletes are a group of their own (where upright-trained models fail)
    turns = result["by_turn"]
    assert all(group["pck"] == 1.0 for group in turns.values())
    assert turns["upright"]["people"] > turns["upside down"]["people"] > 30
    assert sum(group["people"] for group in turns.values()) <= result["people"]
    # By how many input pixels the tolerance spans: every boxed person with a torso in one group
    sizes = result["by_tolerance"]
    assert all(group["pck"] == 1.0 for group in sizes.values())
    assert sum(group["people"] for group in sizes.values()) == result["people"]
    assert sizes["under 4 px"]["people"] > 30  # small athletes in whole-image boxes

    def upright_only(image, boxes, people):
        angles = bench.torso_angles(
            np.stack([p.keypoints for p in people]), np.stack([p.labelled for p in people])
        )
        return [p.keypoints if a < 60 else None for p, a in zip(people, angles, strict=True)]

    scored = bench.evaluate_torso_pck(upright_only, images)
    assert scored["by_turn"]["upright"]["pck"] == 1.0 and scored["by_turn"]["upside down"]["pck"] == 0.0
    table = bench.format_lspet({"ours": scored})
    assert "upside down n=" in table.splitlines()[0]


def test_accuracy_benchmark_boxes_lspet_people_around_their_joints_on_request() -> None:
    """``--lspet-box joints``: each box holds every labelled joint with a margin and stays inside
    the image, and is much smaller than the whole image (what a detector would give)."""
    bench = _load("bench_accuracy")
    whole = bench.load_lspet_validation()
    tight = bench.load_lspet_validation(box="joints")
    assert [i.path for i in tight] == [i.path for i in whole]
    ratios = []
    for image_whole, image in zip(whole, tight, strict=True):
        (person,), (frame,) = image.people, image_whole.people
        xy = person.keypoints[person.labelled]
        x1, y1, x2, y2 = person.box
        assert (
            (xy[:, 0] >= x1).all()
            and (xy[:, 0] <= x2).all()
            and (xy[:, 1] >= y1).all()
            and (xy[:, 1] <= y2).all()
        )
        assert x1 >= 0 and y1 >= 0 and x2 <= frame.box[2] and y2 <= frame.box[3]
        ratios.append((x2 - x1) * (y2 - y1) / ((frame.box[2] - frame.box[0]) * (frame.box[3] - frame.box[1])))
    assert np.median(ratios) < 0.5

    # The same athlete boxed tighter is read bigger: the tolerance spans more input pixels
    def tolerances(images):
        people = [image.people[0] for image in images]
        gts, labelled = np.stack([p.keypoints for p in people]), np.stack([p.labelled for p in people])
        return bench.tolerance_in_input(gts, labelled, [p.box for p in people])

    loose, close = tolerances(whole), tolerances(tight)
    counted = ~np.isnan(loose)
    assert counted.sum() > 300 and (close[counted] >= loose[counted] - 1e-9).mean() > 0.95
    assert np.median(close[counted]) > 1.5 * np.median(loose[counted])


def test_accuracy_benchmark_boxes_lspet_people_with_a_detector_on_request() -> None:
    """``--lspet-box detector``: each athlete gets the detector box that overlaps them, not a
    bystander's; one the detector misses has no box and scores none of their joints."""
    bench = _load("bench_accuracy")
    tight = bench.load_lspet_validation(box="joints")
    by_path = {image.path: image.people[0].box for image in tight}
    calls = []

    class FakeDetector:
        """A bystander's box in the corner of every image, the athlete's own box in every other."""

        def __call__(self, frame):
            calls.append(frame.shape)
            path = paths[len(calls) - 1]
            bystander = np.array([[0.0, 0.0, 8.0, 8.0]], np.float32)
            own = by_path[path][None].astype(np.float32) + 2.0
            boxes = np.concatenate([bystander, own]) if len(calls) % 2 else bystander
            return SimpleNamespace(boxes=boxes, scores=np.ones(len(boxes), np.float32))

    paths = [image.path for image in tight]
    found = bench.load_lspet_validation(box="detector", detector=FakeDetector())
    assert len(calls) == len(found) == 500
    boxed = [image.people[0].box for image in found]
    for i, box in enumerate(boxed):
        if i % 2 == 0:
            np.testing.assert_allclose(box, by_path[paths[i]] + 2.0, atol=1e-4)
        else:
            assert box is None
    result = bench.evaluate_torso_pck(bench.ground_truth_predictor(), found)
    whole = bench.evaluate_torso_pck(bench.ground_truth_predictor(), tight)
    assert result["joints"] == whole["joints"] and 0.4 < result["pck"] < 0.6  # half the athletes missed


def test_side_by_side_benchmark_counts_each_of_their_people_once() -> None:
    """A box of ours counts for at most one of Ultralytics' people, and only at IoU >= 0.5."""
    bench = _load("bench_vs_ultralytics")
    theirs = [np.array([[0, 0, 10, 20], [100, 0, 110, 20]], np.float32), np.zeros((0, 4), np.float32)]
    ours = [np.array([[1, 0, 11, 20], [2, 1, 11, 21], [300, 0, 310, 20]], np.float32), theirs[0]]
    assert bench.shared_people(ours, theirs) == 1  # two of ours on one person; the far box matches none
    assert bench.shared_people(theirs, theirs) == 2


def test_video_agreement_benchmark_scores_matched_people_only(tmp_path: Path) -> None:
    """Keypoints equal to the labels agree fully, shifted ones less, and a box no label overlaps
    is counted as seen but not scored."""
    bench = _load("bench_video_agreement")
    rng = np.random.default_rng(0)
    xy = np.column_stack([rng.uniform(100, 200, 17), rng.uniform(100, 400, 17)])
    label_kpts = np.column_stack([xy, np.full(17, 0.9)])
    labels = tmp_path / "labels.json"
    box = [100.0, 100.0, 100.0, 300.0]
    labels.write_text(
        json.dumps({"detections": [{"frame": 0, "bbox": box, "keypoints": label_kpts.ravel().tolist()}]})
    )

    def run(name: str, shift: float, score: float) -> Path:
        ours = np.column_stack([xy + shift, np.full(17, score)])
        people = [
            {"bbox": box, "keypoints": ours.tolist()},
            {"bbox": [600.0, 100.0, 50.0, 100.0], "keypoints": ours.tolist()},  # no label there
        ]
        path = tmp_path / name
        path.write_text(json.dumps({"frame": 0, "people": people}) + "\n")
        return path

    args = argparse.Namespace(iou=0.5, min_score=0.5, draw_threshold=0.3)
    same = bench.score_run(run("same.jsonl", 0.0, 0.9), bench.load_labels(labels), args)
    shifted = bench.score_run(run("shifted.jsonl", 15.0, 0.2), bench.load_labels(labels), args)
    assert same["matched"] == 1 and same["people"] == 2
    assert same["all"] == 1.0 and same["legs drawn"] == 1.0
    assert 0.0 < shifted["all"] < 0.9 and shifted["legs drawn"] == 0.0


def _tracked_yolo_run(shared_dir: Path, path: Path, times: list[float]):
    """sports2d_demo's YOLO11n-pose people at `times`, tracked without smoothing into a JSON Lines
    file at `path` (as `main.py --smoothing none --output` writes it); returns what the default
    tracker (Kalman) draws for the same frames, and the labels."""
    from app.exporters.jsonl import JsonlWriter
    from app.tracker import Tracker, TrackerConfig
    from app.types import Frame, FrameResult

    labels = _load("bench_video_agreement").load_labels(
        shared_dir / "data" / "pseudo_labels" / "sports2d_demo.yolo11n-pose.json"
    )
    config = TrackerConfig.load()
    raw_tracker, smooth_tracker = Tracker(config, smoothing="none"), Tracker(config)
    writer = JsonlWriter(path)
    drawn = []
    for i, t in enumerate(times):
        dets = labels.get(i, [])
        xywh = np.array([d["bbox"] for d in dets], np.float32).reshape(-1, 4)
        kpts = np.array([d["keypoints"] for d in dets], np.float32).reshape(-1, 17, 3)
        frame = FrameResult(
            frame=Frame(i, t, np.zeros((4, 4, 3), np.uint8), "sports2d_demo"),
            boxes=np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
            box_scores=np.array([d["score"] for d in dets], np.float32),
            keypoints=kpts[..., :2].copy(),
            kpt_scores=kpts[..., 2].copy(),
        )
        writer.write(raw_tracker.update(frame))
        drawn.append(smooth_tracker.update(frame))
    writer.close()
    return drawn, labels


def _replay_error(bench, path: Path, drawn) -> np.ndarray:
    """Per joint: distance between the replay of `path` with the default filter and `drawn`."""
    from app.tracker import TrackerConfig

    config = TrackerConfig.load()
    replayed = bench.smoothed(bench.read_run(path), config.smoothing, config.fallback_dt)
    errors = []
    for ours, theirs in zip(replayed, drawn, strict=True):
        xy = np.array([p["keypoints"] for p in ours["people"]]).reshape(-1, 17, 3)[..., :2]
        errors.append(np.linalg.norm(xy - theirs.keypoints, axis=-1).ravel())
    return np.concatenate(errors)


def test_smoothing_benchmark_replays_the_trackers_smoother(tmp_path: Path, shared_dir: Path, capsys) -> None:
    """The replay of a `--smoothing none` run gives what the tracker itself draws with the default
    filter, so its figures are the app's: exactly where the file keeps the frame times (25 FPS),
    to within a pixel for 99 % of joints at 30 FPS (times kept to the millisecond) and where the
    clock sticks (the tracker's time rule). The table shows the filter steadier than raw; YOLO's
    own keypoints agree fully with themselves."""
    bench = _load("bench_smoothing")
    exact = tmp_path / "25fps.jsonl"
    drawn, labels = _tracked_yolo_run(shared_dir, exact, [i * 0.04 for i in range(60)])
    assert _replay_error(bench, exact, drawn).max() < 0.05  # the file keeps 0.01 px
    for name, times in (
        ("30fps", [i / 30 for i in range(60)]),
        ("stuck", [(i // 2) / 15 for i in range(60)]),
    ):
        path = tmp_path / f"{name}.jsonl"
        error = _replay_error(bench, path, _tracked_yolo_run(shared_dir, path, times)[0])
        # A millisecond can still decide whether a joint was unseen longer than the timeout.
        typical, worst = error.mean(), np.percentile(error, 99)
        assert typical < 0.1 and worst < 1.0, f"{name}: {typical:.3f} / {worst:.3f} px"

    args = argparse.Namespace(iou=0.5, min_score=0.5, draw_threshold=0.3)
    assert bench.score_frames(bench.read_run(exact), labels, args)["all"] == pytest.approx(1.0)
    labels_path = shared_dir / "data" / "pseudo_labels" / "sports2d_demo.yolo11n-pose.json"
    capsys.readouterr()
    assert (
        bench.main([str(exact), "--labels", str(labels_path), "--setting", "none", "--setting", "kalman"])
        == 0
    )
    rows = {line.split("|")[0].strip(): line.split("|") for line in capsys.readouterr().out.splitlines()}
    raw_shake, shake = float(rows["none"][1]), float(rows["kalman"][1])
    assert shake < 0.8 * raw_shake, (shake, raw_shake)
    assert float(rows["none"][2]) == pytest.approx(1.0, abs=1e-3)  # raw YOLO against YOLO
    assert 0.9 < float(rows["kalman"][2]) < 1.0  # smoothed: close, not equal


@pytest.mark.parametrize(
    "setting",
    ["kalmann", "kalman:x", "kalman:1.5", "kalman:0.5:kalman_accel_std=nan", "kalman:0.5:oneeuro_beta=3"],
)
def test_smoothing_benchmark_refuses_bad_settings_in_one_line(
    tmp_path: Path, shared_dir: Path, capsys, setting
) -> None:
    bench = _load("bench_smoothing")
    run = tmp_path / "run.jsonl"
    run.write_text(json.dumps({"frame": 0, "time": 0.0, "people": []}) + "\n")
    capsys.readouterr()
    assert bench.main([str(run), "--setting", setting]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_smoothing_benchmark_refuses_runs_it_cannot_replay(tmp_path: Path, capsys) -> None:
    """A file that is not a main.py output, an empty one, and one written without the tracker
    (track id -1: every person would share one filter) each end in one line and exit code 2."""
    bench = _load("bench_smoothing")
    untracked = {"frame": 0, "time": 0.0, "people": [{"track_id": -1, "bbox": [0, 0, 1, 1], "keypoints": []}]}
    for name, text in (
        ("labels.jsonl", '{"detections": []}\n'),
        ("empty.jsonl", ""),
        ("untracked.jsonl", json.dumps(untracked)),
    ):
        path = tmp_path / name
        path.write_text(text)
        capsys.readouterr()
        assert bench.main([str(path)]) == 2, name
        assert capsys.readouterr().err.startswith("error: "), name
