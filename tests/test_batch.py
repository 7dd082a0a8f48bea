"""`python main.py batch` on a real local Ray with 2 workers: outputs equal single `main.py` runs,
a killed worker's video is redone by Ray's retry, a corrupt file is reported while the rest
complete, and a second run does no work. Clips are cut with --max-frames to keep this short."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.batch.cli import main as batch_main
from app.batch.cluster import ray_session
from app.cli import main as single_main

REPO = Path(__file__).resolve().parents[1]
FRAMES = 10  # per clip in the parity runs
CLIPS = ("one-by-one-person-detection", "sports2d_demo", "vtest")


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    """The ONNX cache (SDPOSE_CACHE) of this module: starts empty, so exports can be counted."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def local_ray(model_cache):
    """A local Ray with 2 CPUs (2 workers x 1 thread), torn down with the module."""
    import ray

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDPOSE_CACHE", str(model_cache))  # before Ray starts: its workers inherit it
        with ray_session(None, 2):
            yield
        assert not ray.is_initialized()


@pytest.fixture(scope="module")
def videos(shared_dir) -> Path:
    return shared_dir / "data" / "video"


@pytest.fixture(scope="module")
def references(tmp_path_factory, videos, local_ray) -> dict[str, Path]:
    """Single-video `main.py --headless` runs of each clip with the batch's flags."""
    out = tmp_path_factory.mktemp("single")
    refs = {}
    for clip in CLIPS:
        refs[clip] = out / f"{clip}.jsonl"
        argv = ["--headless", "--no-progress", "--source", str(videos / f"{clip}.mp4")]
        assert single_main([*argv, "--max-frames", str(FRAMES), "--output", str(refs[clip])]) == 0
    return refs


def _batch(argv: list[str], capsys) -> tuple[int, str]:
    code = batch_main([*argv, "--no-progress"])
    return code, capsys.readouterr().err


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _rows(out: Path) -> dict[str, dict]:
    return {Path(row["input"]).stem: row for row in _manifest(out)["inputs"]}


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.rglob("*") if ".batch-tmp" in p.name]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, videos, references):
    out = tmp_path_factory.mktemp("batch") / "poses"
    argv = ["--inputs", str(videos), "--output-dir", str(out), "--max-frames", str(FRAMES), "--workers", "2"]
    code = batch_main([*argv, "--no-progress"])
    return out, argv, code


def test_outputs_equal_single_runs_and_the_model_is_exported_once(first_run, references, model_cache) -> None:
    out, _, code = first_run
    assert code == 0
    for clip, ref in references.items():
        assert (out / f"{clip}.jsonl").read_bytes() == ref.read_bytes(), f"{clip}: batch differs from main.py"
    rows = _rows(out)
    assert {clip: row["state"] for clip, row in rows.items()} == dict.fromkeys(CLIPS, "done")
    assert all(row["frames"] == FRAMES and row["attempts"] == 1 and not row["error"] for row in rows.values())
    assert sum(row["people"] for row in rows.values()) > 0, "sports2d's walkers are found"
    assert all(0 < row["startup_seconds"] < row["seconds"] for row in rows.values())
    assert len({row["worker"] for row in rows.values()}) == 2, "both workers took part"
    summary = _manifest(out)["summary"]
    assert summary["done"] == 3 and summary["failed"] == 0 and summary["run_frames"] == 3 * FRAMES
    exported = sorted(p.name for p in model_cache.glob("*.onnx"))
    assert len(exported) == 1, f"one ONNX export for the driver and both workers, got {exported}"
    shipped = list((model_cache / "batch").glob("*.onnx"))
    assert len(shipped) == 1, "workers load the copy that came through Ray's object store"
    assert not _leftovers(out)


def test_a_second_run_does_no_work(first_run, capsys) -> None:
    out, argv, _ = first_run
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")}
    rows_before = _rows(out)
    start = time.perf_counter()
    code, err = _batch(argv, capsys)
    assert code == 0 and "3 already complete, 0 to run" in err and "nothing to do" in err, err
    assert time.perf_counter() - start < 10, "no Ray, no models: nothing to start"
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")} == before
    assert _rows(out) == rows_before, "the manifest keeps each output's record"


def test_other_settings_need_redo(first_run, capsys) -> None:
    out, argv, _ = first_run
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    code, err = _batch([*argv, "--det-every", "3"], capsys)
    assert code == 2 and err.count("error:") == 1 and "detection.every: 5 -> 3" in err and "--redo" in err, (
        err
    )
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl")} == before


def _frames_folder(video: Path, folder: Path, count: int) -> Path:
    """A folder of JPEG frames, as image-sequence datasets come."""
    import cv2

    folder.mkdir()
    capture = cv2.VideoCapture(str(video))
    for i in range(count):
        ok, image = capture.read()
        assert ok
        cv2.imwrite(str(folder / f"frame{i + 1}.jpg"), image)
    capture.release()
    return folder


def test_a_corrupt_file_is_reported_and_the_rest_complete(tmp_path, videos, local_ray, capsys) -> None:
    broken = tmp_path / "holiday.mp4"
    broken.write_text("this is not a video")
    _frames_folder(videos / "vtest.mp4", tmp_path / "street", 3)
    listing = tmp_path / "clips.txt"
    listing.write_text(f"{videos / 'sports2d_demo.mp4'}\nholiday.mp4\nstreet\n")
    out = tmp_path / "poses"
    argv = ["--inputs", str(listing), "--output-dir", str(out), "--format", "openpose", "--max-frames", "4"]
    code, err = _batch(argv, capsys)
    assert code == 1, err
    failed = [line for line in err.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "holiday.mp4: cannot open video" in failed[0], err
    assert "Traceback" not in err
    rows = _rows(out)
    assert rows["holiday"]["state"] == "failed" and "cannot open video" in rows["holiday"]["error"]
    assert rows["sports2d_demo"]["state"] == "done" and rows["sports2d_demo"]["frames"] == 4
    names = sorted(p.name for p in (out / "sports2d_demo").iterdir())
    assert names == [f"sports2d_demo_{i:012d}_keypoints.json" for i in range(4)], "as main.py names them"
    assert rows["street"]["state"] == "done", "a folder of images is one input too"
    assert sorted(p.name for p in (out / "street").iterdir()) == [
        f"frame{i}_keypoints.json" for i in (1, 2, 3)
    ]
    assert not (out / "holiday").exists() and not _leftovers(out)
    code, err = _batch(argv, capsys)  # again: the finished inputs are kept, the broken one tried again
    assert code == 1 and "2 already complete, 1 to run" in err, err
    before = (out / "street").stat().st_mtime_ns
    code, err = _batch([*argv, "--redo"], capsys)
    assert code == 1 and "0 already complete, 3 to run" in err, err
    assert (out / "street").stat().st_mtime_ns != before, "--redo makes complete outputs again"
    assert sorted(p.name for p in (out / "street").iterdir()) == [
        f"frame{i}_keypoints.json" for i in (1, 2, 3)
    ]


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def test_a_killed_worker_is_retried_and_the_output_is_complete(tmp_path, videos, references, model_cache):
    """The CLI as a user runs it (its own local Ray); the test kills one of that run's workers."""
    out = tmp_path / "poses"
    frames = 90
    clips = [str(videos / f"{clip}.mp4") for clip in ("sports2d_demo", "vtest")]
    env = {**os.environ, "SDPOSE_CACHE": str(model_cache), "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "main.py", "batch", "--inputs", *clips, "--output-dir", str(out)]
    cmd += ["--max-frames", str(frames), "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    victim = None
    try:
        deadline = time.time() + 240
        while victim is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.3)
            try:
                row = _rows(out)["sports2d_demo"]
            except (OSError, ValueError, KeyError):
                continue
            assert row["state"] != "done", "the video finished before the test could kill its worker"
            if row["state"] == "running" and (row["frames"] or 0) >= 1:
                victim = int(row["worker"].rsplit(":", 1)[1])
        assert victim is not None, "the video was seen running"
        assert proc.pid in _ancestors(victim), "only a worker of this test's own Ray is killed"
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    rows = _rows(out)
    assert rows["sports2d_demo"]["attempts"] == 2 and not rows["sports2d_demo"]["worker"].endswith(
        f":{victim}"
    )
    assert all(row["state"] == "done" and row["frames"] == frames for row in rows.values())
    lines = (out / "sports2d_demo.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(frames))
    reference = references["sports2d_demo"].read_text().splitlines()
    assert lines[:FRAMES] == reference, "the retried video starts from scratch, as a single run does"
    assert not _leftovers(out), "the killed attempt's partial file is gone"
    workers = {int(row["worker"].rsplit(":", 1)[1]) for row in rows.values()} | {victim}
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "Ray left no worker running"
