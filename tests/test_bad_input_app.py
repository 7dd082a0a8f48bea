"""`python main.py` tried as a careful user would: bad flags, bad files, outputs that would destroy
data, full disks and signals, headless and in the window.

Every case asserts what the user sees (the exit code, one `error:` line saying what is wrong, no
traceback) and what they would lose otherwise: the files that existed before the run are byte for
byte as they were, and whatever a run keeps (JSONL lines, the video) is readable.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PyQt6.QtCore import QTimer

import app.cli
from app.cli import main
from app.exporters import jsonl as jsonl_module
from app.gui import MainWindow
from app.gui.settings import SETTINGS_ENV, SettingsStore
from app.pipeline import AppConfig, PosePipeline
from tests.fakes import save_blob_checkpoint
from tests.test_exporters import _unwritable_dir
from tests.test_gui import FakeDetector

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_blob_checkpoint(tmp_path_factory.mktemp("weights") / "blob_t.pth")


@pytest.fixture(scope="module")
def vtest(shared_dir) -> str:
    return str(shared_dir / "data" / "video" / "vtest.mp4")


@pytest.fixture
def clip(tmp_path) -> Path:
    """A small video of the user's own (12 frames, 160x120), which no run may overwrite."""
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(12):
        writer.write(np.full((120, 160, 3), 20 * i, np.uint8))
    writer.release()
    return path


class Precious:
    """Files that exist before a run; `intact()` says whether every one is byte for byte as it was."""

    def __init__(self, *paths: Path) -> None:
        self.before = {p: p.read_bytes() for p in paths}

    def intact(self) -> bool:
        return all(p.is_file() and p.read_bytes() == data for p, data in self.before.items())


def _existing(path: Path, text: str = '{"frame": 0, "from": "an earlier run"}\n') -> Path:
    path.write_text(text)
    return path


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except KeyboardInterrupt:  # must not escape: it would also stop pytest
        pytest.fail("Ctrl-C escaped the app as a traceback")
    return code, capsys.readouterr().err


def _assert_one_error(code: int, err: str, expected_code: int, gist: str) -> str:
    """Exit code, no traceback, exactly one `error:` line, and it names the problem."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert "Traceback" not in err, err
    assert code == expected_code, err
    assert len(errors) == 1 and gist in errors[0], err
    assert errors[0] == lines[-1], "the error is the last word, and whole on its line"
    if code == 2:  # a mistake found before the run: that one line is all there is
        assert lines == errors, err
    return errors[0]


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if the model is loaded: these mistakes must be reported before it."""

    def load(*args, **kwargs):
        raise AssertionError("the model was loaded before the mistake was reported")

    monkeypatch.setattr(app.cli, "pipeline_from_config", load)


def _onnx(path: Path, inputs: list[tuple[str, list]], op: str, output: list) -> Path:
    """A valid ONNX graph that is not SDPose: `op` over `inputs`, float32."""
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in inputs]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, output)
    graph = helper.make_graph([helper.make_node(op, [n for n, _ in inputs], ["y"])], "other", ins, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _headless(source, weights, *extra) -> list[str]:
    return ["--headless", "--source", str(source), "--weights", str(weights), "--no-progress", *extra]


def _lines(path: Path) -> list[dict]:
    """Every line of a JSONL output, parsed: a half-written line fails here."""
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- 1. outputs that would destroy a file


def _same_file_cases(clip: Path, weights: Path, tmp_path: Path) -> dict[str, tuple[list[str], Path, str]]:
    """Flags whose output is a file the run reads or writes, by case: (flags, the file that must
    survive, what the error names). Relative paths are relative to `tmp_path / "sub"`."""
    link, twin = tmp_path / "link.mp4", tmp_path / "twin.mp4"
    link.symlink_to(clip)
    os.link(clip, twin)
    both = _existing(tmp_path / "result.mp4", "an earlier result")
    config = _existing(tmp_path / "app.yaml", "model: sdpose_t\n")
    source, other = "same file as --source", "same file as --output"
    return {
        "output-is-the-source": (["--output", str(clip)], clip, source),
        "video-is-the-source": (["--save-video", str(clip)], clip, source),
        "through-a-symlink": (["--save-video", str(link)], clip, source),
        "through-a-relative-path": (["--output", "../sub/../clip.mp4"], clip, source),
        "through-a-hard-link": (["--output", str(twin)], clip, source),
        "both-outputs-one-path": (["--output", str(both), "--save-video", str(both)], both, other),
        "over-the-weights": (["--output", str(weights)], weights, "same file as --weights"),
        "over-the-config": (
            ["--config", str(config), "--output", str(config)],
            config,
            "same file as --config",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "output-is-the-source",
        "video-is-the-source",
        "through-a-symlink",
        "through-a-relative-path",
        "through-a-hard-link",
        "both-outputs-one-path",
        "over-the-weights",
        "over-the-config",
    ],
)
def test_output_that_would_destroy_a_file_is_refused(
    case, clip, weights, tmp_path, capsys, monkeypatch, no_model
):
    flags, precious, gist = _same_file_cases(clip, weights, tmp_path)[case]
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    keep = Precious(precious)
    code, err = _run(_headless(clip, weights, *flags), capsys)
    _assert_one_error(code, err, 2, gist)
    assert keep.intact()


# ---------------------------------------------------------------- 2. outputs that cannot be written


def test_output_under_a_file_is_reported_before_the_model(clip, weights, tmp_path, capsys, no_model):
    blocker = _existing(tmp_path / "notes.txt", "mine")
    keep = Precious(blocker)
    code, err = _run(_headless(clip, weights, "--output", str(blocker / "poses.jsonl")), capsys)
    _assert_one_error(code, err, 2, "not a directory")
    assert keep.intact()


@pytest.fixture
def read_only_dir(tmp_path) -> Iterator[Path]:
    """A folder this process cannot create files in (for root: /sys)."""
    folder = _unwritable_dir(tmp_path)
    yield folder
    if folder.is_relative_to(tmp_path):
        folder.chmod(0o700)


def test_output_in_a_read_only_folder_is_reported_before_the_model(
    clip, weights, read_only_dir, capsys, no_model
):
    code, err = _run(_headless(clip, weights, "--save-video", str(read_only_dir / "out.mp4")), capsys)
    _assert_one_error(code, err, 2, "permission denied")


def test_output_that_is_a_folder_is_reported(clip, weights, tmp_path, capsys, no_model):
    code, err = _run(_headless(clip, weights, "--output", str(tmp_path)), capsys)
    _assert_one_error(code, err, 2, "is a directory")


def test_openpose_output_that_is_a_file_is_reported(clip, weights, tmp_path, capsys, no_model):
    existing = _existing(tmp_path / "poses")
    keep = Precious(existing)
    code, err = _run(_headless(clip, weights, "--format", "openpose", "--output", str(existing)), capsys)
    _assert_one_error(code, err, 2, "is a file")
    assert keep.intact()


def test_video_extension_opencv_cannot_write_is_reported_before_the_model(
    clip, weights, tmp_path, capsys, no_model
):
    code, err = _run(_headless(clip, weights, "--save-video", str(tmp_path / "out.webm")), capsys)
    _assert_one_error(code, err, 2, "unsupported video extension")


# ---------------------------------------------------------------- 3. sources, reported before the model


def test_missing_source_is_reported_before_the_model(weights, tmp_path, capsys, no_model):
    existing = _existing(tmp_path / "poses.jsonl")
    keep = Precious(existing)
    code, err = _run(_headless(tmp_path / "gone.mp4", weights, "--output", str(existing)), capsys)
    _assert_one_error(code, err, 2, "no such file")
    assert keep.intact()


def test_text_file_as_source_is_reported_before_the_model(weights, tmp_path, capsys, no_model):
    fake = _existing(tmp_path / "holiday.mp4", "not a video")
    existing = _existing(tmp_path / "poses.jsonl")
    keep = Precious(fake, existing)
    code, err = _run(_headless(fake, weights, "--output", str(existing)), capsys)
    _assert_one_error(code, err, 2, "cannot open video")
    assert keep.intact()


# ---------------------------------------------------------------- 4. flags and config values


@pytest.mark.parametrize(
    ("flags", "gist"),
    [
        (["--det-conf", "2"], "--det-conf: must be between 0 and 1"),
        (["--det-conf", "-0.1"], "--det-conf: must be between 0 and 1"),
        (["--det-conf", "high"], "--det-conf: expected a number"),
        (["--det-size", "0"], "--det-size: must be between 32 and 4096"),
        (["--det-size", "-640"], "--det-size: must be between 32 and 4096"),
        (["--det-size", "large"], "--det-size: expected a whole number"),
        (["--threads", "-1"], "--threads: must be between 0 and 1024"),
        (["--threads", "two"], "--threads: expected a whole number"),
        (["--device", "tpu9"], "--device: device 'tpu9' is not one of cpu, cuda"),
        (["--exit-after-frames", "0"], "--exit-after-frames: expected a positive whole number"),
        (["--det-every", "often"], "--det-every takes a positive integer"),
        (["--precision", "bf16"], "bf16 runs on the torch backend"),  # app.yaml's backend is onnx
        (["--backend", "torch", "--precision", "int8"], "int8 runs on the onnx backend"),
    ],
)
def test_bad_flag_values_are_one_line(flags, gist, clip, weights, tmp_path, capsys, no_model):
    existing = _existing(tmp_path / "poses.jsonl")
    keep = Precious(existing)
    try:
        code, err = _run(_headless(clip, weights, "--output", str(existing), *flags), capsys)
    except SystemExit as exc:  # argparse's own exit, after our one line
        code, err = int(exc.code), capsys.readouterr().err
    _assert_one_error(code, err, 2, gist)
    assert keep.intact()


@pytest.mark.parametrize("flags", [["--precision", "bf16"], ["--backend", "torch", "--precision", "int8"]])
def test_window_refuses_a_backend_and_precision_pair_like_the_cli(flags, clip, weights, capsys, monkeypatch):
    """The window used to run such a pair as something else (ONNX fp32, torch fp32) while the
    command line refused it: one rule now, checked before the window opens."""

    def window(*args, **kwargs):
        raise AssertionError("the window opened with a pair the command line refuses")

    monkeypatch.setattr(app.cli, "run_gui", window)
    code, err = _run(["--source", str(clip), "--weights", str(weights), *flags], capsys)
    _assert_one_error(code, err, 2, "runs on the")


@pytest.mark.parametrize(
    ("yaml_text", "gist"),
    [
        ("model: sdpose_t\ndetector:\n  conf: [0.3\n", "is not valid YAML"),
        ("detector:\n  conf: 5\n", "conf must be between 0 and 1"),
        ("detector:\n  imgsz: 0\n", "imgsz must be between 32 and 4096"),
        ("detection:\n  every: 0\n", "every must be at least 1"),
        ("device: tpu\n", "device 'tpu' is not one of"),
        ("threads: many\n", "expected an integer"),
        ("precision: bf16\n", "bf16 runs on the torch backend"),
        ("backend: tensorrt\n", "unknown backend 'tensorrt'"),
    ],
)
def test_bad_config_files_are_one_line(yaml_text, gist, clip, weights, tmp_path, capsys, no_model):
    config = tmp_path / "app.yaml"
    config.write_text(yaml_text)
    existing = _existing(tmp_path / "poses.jsonl")
    keep = Precious(config, existing)
    code, err = _run(_headless(clip, weights, "--config", str(config), "--output", str(existing)), capsys)
    _assert_one_error(code, err, 2, gist)
    assert keep.intact()


# ---------------------------------------------------------------- 5. weights and detector


@pytest.mark.parametrize(
    ("inputs", "op", "output", "gist"),
    [
        ([("x", [1, 3, 64, 64])], "Identity", [1, 3, 64, 64], "does not take (1, 3, 256, 192) crops"),
        ([("x", ["n", 3, 256, 192])], "Identity", ["n", 3, 256, 192], "returns (1, 3, 256, 192)"),
        ([("a", ["n", 3, 256, 192]), ("b", ["n", 3, 256, 192])], "Add", ["n", 3, 256, 192], "takes 2 inputs"),
    ],
    ids=["input-shape", "output-shape", "two-inputs"],
)
def test_valid_onnx_of_the_wrong_shape_is_one_line(inputs, op, output, gist, vtest, tmp_path, capsys):
    other = _onnx(tmp_path / "other.onnx", inputs, op, output)
    existing = _existing(tmp_path / "poses.jsonl")
    keep = Precious(existing)
    code, err = _run(_headless(vtest, other, "--output", str(existing), "--max-frames", "2"), capsys)
    line = _assert_one_error(code, err, 2, gist)
    assert "not an SDPose pose model" in line
    assert keep.intact(), "a failed start must not empty the user's file"


def test_corrupt_weights_are_one_line(vtest, tmp_path, capsys):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04 not really a checkpoint" * 50)
    existing = _existing(tmp_path / "poses.jsonl")
    keep = Precious(existing)
    code, err = _run(_headless(vtest, broken, "--output", str(existing)), capsys)
    _assert_one_error(code, err, 2, "truncated or corrupt")
    assert keep.intact()


def test_pose_weights_passed_as_the_detector_are_one_line(vtest, weights, tmp_path, capsys):
    existing = _existing(tmp_path / "poses.jsonl")
    keep = Precious(existing, weights)
    argv = _headless(
        vtest, weights, "--backend", "torch", "--detector", str(weights), "--output", str(existing)
    )
    code, err = _run(argv, capsys)
    line = _assert_one_error(code, err, 2, "cannot load detector")
    assert "pass it with --weights" in line
    assert keep.intact()


# ---------------------------------------------------------------- 6. Ctrl-C and SIGTERM


def test_ctrl_c_while_the_model_loads_is_one_line_and_keeps_the_output(
    clip, weights, tmp_path, capsys, monkeypatch
):
    def load(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(app.cli, "pipeline_from_config", load)
    existing = _existing(tmp_path / "poses.jsonl")
    keep = Precious(existing)
    code, err = _run(_headless(clip, weights, "--output", str(existing)), capsys)
    assert code == 130 and err.strip() == "interrupted", err
    assert keep.intact()


def test_sigterm_while_the_model_loads_is_handled_like_ctrl_c(clip, weights, tmp_path, capsys, monkeypatch):
    def load(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, delivered while "loading"
        time.sleep(5)
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr(app.cli, "pipeline_from_config", load)
    existing = _existing(tmp_path / "video.mp4", "an earlier video")
    keep = Precious(existing)

    def unhandled(signum, frame):  # instead of pytest being killed, should the app not handle it
        raise AssertionError("SIGTERM was not handled by the app")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        code, err = _run(_headless(clip, weights, "--save-video", str(existing)), capsys)
        assert signal.getsignal(signal.SIGTERM) is unhandled, "the run puts the previous handler back"
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143 and err.strip() == "interrupted", err
    assert keep.intact()


def _stop_at_frame(monkeypatch, index: int, exc: type[BaseException]) -> None:
    """The pipeline raises `exc` when it reaches frame `index` (as Ctrl-C there would)."""
    process = PosePipeline.process

    def stopping(self, frame):
        if frame.index == index:
            raise exc
        return process(self, frame)

    monkeypatch.setattr(PosePipeline, "process", stopping)


def test_ctrl_c_mid_run_keeps_the_frames_and_the_earlier_file_as_a_backup(
    vtest, weights, tmp_path, capsys, monkeypatch
):
    out = _existing(tmp_path / "poses.jsonl")
    before = out.read_text()
    _stop_at_frame(monkeypatch, 4, KeyboardInterrupt)
    code, err = _run(_headless(vtest, weights, "--backend", "torch", "--output", str(out)), capsys)
    assert code == 130 and "interrupted after 4 frames" in err and "Traceback" not in err, err
    assert [r["frame"] for r in _lines(out)] == [0, 1, 2, 3], "every finished frame is kept"
    assert (tmp_path / "poses.bak.jsonl").read_text() == before, "the earlier file is kept, not lost"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poses.bak.jsonl", "poses.jsonl"]


def test_a_finished_run_replaces_an_earlier_file_without_leftovers(vtest, weights, tmp_path, capsys):
    out = _existing(tmp_path / "poses.jsonl")
    code, err = _run(
        _headless(vtest, weights, "--backend", "torch", "--max-frames", "3", "--output", str(out)), capsys
    )
    assert code == 0 and "done: 3 frames" in err, err
    assert [r["frame"] for r in _lines(out)] == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["poses.jsonl"], "no backup, no temp file"


def test_a_killed_runs_leftover_is_named_and_kept(vtest, weights, tmp_path, capsys, caplog):
    out = _existing(tmp_path / "poses.jsonl")
    leftover = tmp_path / ".poses.partial-0badf00d.jsonl"  # what SIGKILL mid-run leaves behind
    leftover.write_text('{"frame": 0}\n')
    code, err = _run(
        _headless(vtest, weights, "--backend", "torch", "--max-frames", "2", "--output", str(out)), capsys
    )
    warning = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert code == 0 and "unfinished file(s) from a killed run" in warning and leftover.name in warning, err
    assert leftover.read_text() == '{"frame": 0}\n', "another run may own it: warned about, not deleted"
    assert [r["frame"] for r in _lines(out)] == [0, 1]


def test_sigterm_mid_run_finishes_a_playable_video(vtest, weights, tmp_path):
    video, out = tmp_path / "annotated.mp4", tmp_path / "poses.jsonl"
    argv = _headless(vtest, weights, "--backend", "torch", "--det-every", "5")
    proc = subprocess.Popen(
        [sys.executable, "main.py", *argv, "--save-video", str(video), "--output", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300  # a loaded machine (a training run beside the suite) is slow to start
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 6):
        time.sleep(0.2)
    if not out.exists() or len(out.read_text().splitlines()) < 6:
        proc.kill()
        pytest.fail("the run wrote no 6 frames within 300 s, so SIGTERM would only test start-up")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "interrupted after" in err and "Traceback" not in err, err
    frames = len(_lines(out))
    cap = cv2.VideoCapture(str(video))
    assert cap.isOpened(), "the video was finalised, so it plays"
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == frames >= 6
    assert cap.read()[0]
    cap.release()


# ---------------------------------------------------------------- 7. full disks


class DiskFillsUp:
    """A file on a disk that fills up: after `fit` writes, half of the next one lands, then ENOSPC."""

    def __init__(self, file, fit: int) -> None:
        self._file, self._fit = file, fit

    def write(self, data) -> int:
        if self._fit <= 0:
            self._file.write(bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._fit -= 1
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()


def _fill_disk_after(monkeypatch, module, writes: int) -> None:
    monkeypatch.setattr(module, "open", lambda *a, **k: DiskFillsUp(open(*a, **k), writes), raising=False)


def test_disk_full_while_writing_jsonl_keeps_only_whole_lines(vtest, weights, tmp_path, capsys, monkeypatch):
    out = tmp_path / "poses.jsonl"
    _fill_disk_after(monkeypatch, jsonl_module, 3)
    code, err = _run(
        _headless(vtest, weights, "--backend", "torch", "--max-frames", "8", "--output", str(out)), capsys
    )
    line = _assert_one_error(code, err, 1, "no space left on device")
    assert "the 3 frames before it were kept" in line
    assert [r["frame"] for r in _lines(out)] == [0, 1, 2], "no half line at the end"
    assert "done:" not in err


def test_disk_full_while_replacing_a_jsonl_keeps_the_earlier_file(
    vtest, weights, tmp_path, capsys, monkeypatch
):
    out = _existing(tmp_path / "poses.jsonl")
    before = out.read_text()
    _fill_disk_after(monkeypatch, jsonl_module, 2)
    code, err = _run(_headless(vtest, weights, "--backend", "torch", "--output", str(out)), capsys)
    _assert_one_error(code, err, 1, "no space left on device")
    assert len(_lines(out)) == 2 and (tmp_path / "poses.bak.jsonl").read_text() == before


class VideoCutShort:
    """cv2.VideoWriter on a disk that fills before the index is written: OpenCV says nothing, and
    the file ends half-way, as an mp4 without its moov atom that no player opens."""

    real = cv2.VideoWriter
    fourcc = staticmethod(cv2.VideoWriter.fourcc)

    def __init__(self, path, *args) -> None:
        self.path, self._writer = path, self.real(path, *args)

    def isOpened(self) -> bool:  # OpenCV's name
        return self._writer.isOpened()

    def write(self, image) -> None:
        self._writer.write(image)

    def release(self) -> None:
        self._writer.release()
        os.truncate(self.path, os.path.getsize(self.path) // 2)


def test_video_that_could_not_be_finished_is_an_error_not_exit_0(
    vtest, weights, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(cv2, "VideoWriter", VideoCutShort)
    video, out = tmp_path / "annotated.mp4", tmp_path / "poses.jsonl"
    earlier = _existing(tmp_path / "earlier.mp4", "an earlier video")
    keep = Precious(earlier)
    argv = _headless(vtest, weights, "--backend", "torch", "--max-frames", "4")
    code, err = _run([*argv, "--save-video", str(video), "--output", str(out)], capsys)
    line = _assert_one_error(code, err, 1, "could not be finished")
    assert "was removed" in line and f"kept in {out}" in line
    assert not video.exists(), "an unplayable video is not left behind as if it were fine"
    assert len(_lines(out)) == 4 and keep.intact()
    code, err = _run([*argv, "--save-video", str(earlier)], capsys)
    _assert_one_error(code, err, 1, "could not be finished")
    assert keep.intact(), "the earlier video is untouched when the new one fails"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier.mp4", "poses.jsonl"]


def _user_namespaces() -> bool:
    unshare = shutil.which("unshare")
    return bool(unshare) and subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(
    not _user_namespaces(), reason="needs unshare -rm (a private mount namespace) for a tmpfs"
)
def test_a_real_full_disk_ends_in_one_line_and_whole_lines(vtest, weights, tmp_path):
    """A 192 KiB tmpfs, mounted in a private namespace: the disk really fills."""
    disk, copy = tmp_path / "disk", tmp_path / "copy"
    disk.mkdir()
    copy.mkdir()
    argv = _headless(vtest, weights, "--backend", "torch", "--max-frames", "60")
    argv += ["--output", f"{disk}/poses.jsonl", "--save-video", f"{disk}/annotated.mp4"]
    script = 'mount -t tmpfs -o size=192k tmpfs "$0" || exit 99; "$@"; rc=$?; cp -a "$0/." "$COPY/"; exit $rc'
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, str(disk), sys.executable, "main.py", *argv],
        cwd=REPO,
        env={**os.environ, "COPY": str(copy)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode == 99:
        pytest.skip("tmpfs cannot be mounted here")
    _assert_one_error(proc.returncode, proc.stderr, 1, "no space left on device")
    assert all(isinstance(r["frame"], int) for r in _lines(copy / "poses.jsonl"))
    video = copy / "annotated.mp4"
    if video.exists():  # kept only if it plays
        cap = cv2.VideoCapture(str(video))
        assert cap.isOpened() and cap.read()[0]
        cap.release()


# ---------------------------------------------------------------- 8. the window


@pytest.fixture
def settings_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "settings.ini"
    monkeypatch.setenv(SETTINGS_ENV, str(path))  # never the user's own settings
    return path


def test_window_with_wrong_shape_onnx_ends_instead_of_hanging(
    vtest, tmp_path, capsys, caplog, qapp, settings_file
):
    other = _onnx(tmp_path / "other.onnx", [("x", [1, 3, 64, 64])], "Identity", [1, 3, 64, 64])
    start = time.monotonic()
    QTimer.singleShot(90_000, lambda: [w.close() for w in qapp.topLevelWidgets()])  # a hang fails, not stalls
    code = main(["--source", vtest, "--weights", str(other), "--exit-after-frames", "3"])
    err = capsys.readouterr().err
    assert code == 1 and time.monotonic() - start < 80
    assert "Traceback" not in err and "Traceback" not in caplog.text
    assert "not an SDPose pose model" in caplog.text


def test_window_refuses_a_recording_over_the_source(clip, weights, capsys, settings_file, no_model):
    keep = Precious(clip)
    code, err = _run(["--source", str(clip), "--weights", str(weights), "--save-video", str(clip)], capsys)
    _assert_one_error(code, err, 2, "same file as --source")
    assert keep.intact()


def _window(qtbot, *argv: str) -> MainWindow:
    args = app.cli.build_parser().parse_args(["--backend", "torch", "--source", "", *argv])
    window = MainWindow(args, AppConfig.load(), SettingsStore(), detector_factory=FakeDetector, dialogs=False)
    qtbot.addWidget(window)
    return window


def test_a_one_off_weights_flag_is_not_remembered(qtbot, weights, settings_file):
    window = _window(qtbot, "--weights", str(weights), "--model", "sdpose_t")
    assert window.settings.weights == str(weights), "the flag wins for this session"
    window.close()
    stored = SettingsStore().load()
    assert stored.weights == "", "the next plain launch uses the bundled weights, not this file"


def test_remembered_weights_that_no_longer_load_fall_back_to_the_bundled_ones(
    qtbot, vtest, tmp_path, settings_file, caplog
):
    store = SettingsStore()
    store.qsettings.setValue("weights", str(tmp_path / "moved_away.pth"))  # chosen in an earlier session
    store.qsettings.sync()
    window = _window(qtbot)
    window.open_source(vtest)
    qtbot.waitUntil(lambda: window.worker._pipeline is not None, timeout=120_000)
    qtbot.waitUntil(lambda: window.settings.weights == "", timeout=10_000)
    assert "no longer loads" in caplog.text and "using the bundled weights" in caplog.text
    assert window.controls.weights.text() == "bundled"
    assert not window.errors, "a plain launch is not stranded"
    window.close()
    assert SettingsStore().load().weights == ""
