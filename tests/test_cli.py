"""`python main.py --headless`: outputs as users read them, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from pycocotools.coco import COCO

from app.cli import main
from tests.fakes import save_blob_checkpoint
from tests.signals import ctrl_c_as_in_a_terminal

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_blob_checkpoint(tmp_path_factory.mktemp("weights") / "blob_t.pth")


@pytest.fixture(scope="module")
def vtest(shared_dir):
    return str(shared_dir / "data" / "video" / "vtest.mp4")


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


def test_jsonl_and_video_outputs(tmp_path, capsys, weights, shared_dir):
    out, video = tmp_path / "poses.jsonl", tmp_path / "annotated.mp4"
    source = str(shared_dir / "data" / "video" / "sports2d_demo.mp4")
    argv = [
        "--headless",
        "--source",
        source,
        "--weights",
        str(weights),
        "--backend",
        "torch",
        "--max-frames",
        "12",
        "--output",
        str(out),
        "--save-video",
        str(video),
    ]
    code, err = _run(argv, capsys)
    assert code == 0, err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["frame"] for d in lines] == list(range(12))
    assert lines[1]["time"] == pytest.approx(1 / 30, abs=1e-3)
    people = [p for d in lines for p in d["people"]]
    assert people, "the detector finds the walkers in sports2d"
    person = people[0]
    assert set(person) >= {"track_id", "bbox", "score", "keypoints"}
    assert len(person["keypoints"]) == 17 and all(len(k) == 3 for k in person["keypoints"])
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 1768
    cap.release()
    summary = [line for line in err.splitlines() if line.startswith("done:")]
    assert summary and "12 frames" in summary[0] and "FPS" in summary[0] and "pose" in summary[0]
    # stderr here is no terminal, as in a log file or a cluster job: the meter is whole lines
    assert "\r" not in err, "no progress bar redrawn ten times a second into a log"
    assert any("12/12" in line and "frame/s" in line for line in err.splitlines()), err


def test_coco_and_openpose_formats(tmp_path, capsys, weights, shared_dir):
    source = str(shared_dir / "data" / "video" / "sports2d_demo.mp4")
    coco = tmp_path / "poses.json"
    base = ["--headless", "--source", source, "--weights", str(weights), "--max-frames", "4"]
    assert _run([*base, "--format", "coco", "--output", str(coco)], capsys)[0] == 0
    results = json.loads(coco.read_text())
    assert results and all(r["category_id"] == 1 and len(r["keypoints"]) == 51 for r in results)
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i, "width": 1768, "height": 994} for i in range(4)],
        "annotations": [],
        "categories": [{"id": 1, "name": "person"}],
    }
    gt.createIndex()
    assert len(gt.loadRes(str(coco)).getAnnIds()) == len(results)
    folder = tmp_path / "openpose"
    assert _run([*base, "--format", "openpose", "--output", str(folder)], capsys)[0] == 0
    files = sorted(p.name for p in folder.iterdir())
    assert files[0] == "sports2d_demo_000000000000_keypoints.json" and len(files) == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "/nonexistent/clip.mp4"], "no such file"),
        (["--source", "webcam"], "camera"),
        (["--det-every", "often"], "--det-every"),
        (["--weights", "/nonexistent/w.pth"], "weights file not found"),
        (["--model", "sdpose_xl"], "unknown config"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(argv, message, capsys, vtest, weights):
    code, err = _run(["--headless", "--source", vtest, "--weights", str(weights), *argv], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


def test_corrupt_video_and_unwritable_output(tmp_path, capsys, weights, vtest):
    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is not a video")
    code, err = _run(["--headless", "--source", str(fake), "--weights", str(weights)], capsys)
    assert code == 2 and err.count("error:") == 1
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = ["--headless", "--source", vtest, "--weights", str(weights), "--output", str(blocker / "p.jsonl")]
    code, err = _run(argv, capsys)
    assert code == 2 and "cannot write" in err


def test_wrong_variant_weights_name_the_right_one(tmp_path, capsys, vtest):
    b_weights = save_blob_checkpoint(tmp_path / "b.pth", variant="sdpose_b")
    code, err = _run(["--headless", "--source", vtest, "--weights", str(b_weights)], capsys)
    assert code == 2 and "--model sdpose_b" in err


def test_video_damaged_halfway_keeps_the_frames_before(tmp_path, capsys, weights, vtest):
    damaged = tmp_path / "damaged.mp4"
    data = Path(vtest).read_bytes()
    damaged.write_bytes(data[: len(data) * 2 // 5])
    out = tmp_path / "p.jsonl"
    code, err = _run(
        [
            "--headless",
            "--source",
            str(damaged),
            "--weights",
            str(weights),
            "--det-every",
            "50",
            "--output",
            str(out),
        ],
        capsys,
    )
    written = out.read_text().splitlines()
    assert len(written) > 50, "frames decoded before the damage are all written"
    if code != 0:  # OpenCV noticed the damage: the run says so in one line
        assert code == 1 and "error:" in err and f"{len(written)} frames" in err


def test_ctrl_c_keeps_finished_frames(tmp_path, weights, vtest):
    out = tmp_path / "p.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "--headless",
            "--source",
            vtest,
            "--weights",
            str(weights),
            "--output",
            str(out),
            "--no-progress",
            "--backend",
            "torch",
        ],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 10):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    lines = out.read_text().splitlines()
    assert proc.returncode == 130, err
    assert len(lines) >= 10 and all(json.loads(line)["frame"] == i for i, line in enumerate(lines))
    assert "interrupted after" in err and "Traceback" not in err


def test_existing_output_survives_a_weights_error(tmp_path, capsys, vtest):
    out = tmp_path / "poses.jsonl"
    out.write_text('{"frame": 0}\n')
    code, err = _run(
        ["--headless", "--source", vtest, "--weights", str(tmp_path / "missing.pth"), "--output", str(out)],
        capsys,
    )
    assert code == 2 and "weights file not found" in err
    assert out.read_text() == '{"frame": 0}\n', "a failed start must not empty the user's file"


def test_max_frames_must_be_positive(capsys, vtest):
    with pytest.raises(SystemExit):
        main(["--headless", "--source", vtest, "--max-frames", "0"])
    assert "positive whole number" in capsys.readouterr().err
