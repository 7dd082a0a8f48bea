"""The `python -m sdpose_core.*` tools tried as a careful user would: `train`, `pseudo_label`,
`evaluate`, `export` and `pack_weights` with bad flags, outputs that cannot be written or would
destroy an input, broken input files, a full disk and SIGTERM.

Each case asserts the exit code, one `error:` line saying what is wrong, no traceback, and that
the files that existed before are byte for byte as they were; outputs are checked before the
work that would take hours, not after it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdpose_core import checkpoint as checkpoint_module
from sdpose_core import export
from sdpose_core.cli import run_cli
from sdpose_core.evaluation import evaluate
from sdpose_core.keypoints import KEYPOINT_NAMES
from sdpose_core.labels import pseudo_label
from sdpose_core.training import pack_weights, train
from tests import test_bad_input_app as app_cases
from tests.fakes import save_blob_checkpoint
from tests.test_bad_input_app import Precious, _existing, _fill_disk_after

read_only_dir = app_cases.read_only_dir  # the same fixture


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_blob_checkpoint(tmp_path_factory.mktemp("weights") / "blob_t.pth")


@pytest.fixture(scope="module")
def coco(shared_dir) -> tuple[Path, Path]:
    root = shared_dir / "data" / "coco_sample"
    return root, root / "test_coco.json"


def _tool(main, argv: list[str], capsys) -> tuple[int, str]:
    """Run a tool as `python -m` does; an argparse mistake exits from inside, after our one line."""
    try:
        code = run_cli(main, argv)
    except SystemExit as exc:
        code = int(exc.code)
    return code, capsys.readouterr().err


def _assert_one_error(code: int, err: str, gist: str) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and gist in lines[0], err


@pytest.fixture
def not_called(monkeypatch):
    """`not_called(module, name)`: the test fails if that (slow) step runs: the mistake must come first."""

    def forbid(module, name: str) -> None:
        def called(*args, **kwargs):
            raise AssertionError(f"{name} ran before the mistake was reported")

        monkeypatch.setattr(module, name, called)

    return forbid


# ---------------------------------------------------------------- every tool: its output, checked first


def _train_args(coco, work, *extra) -> list[str]:
    root, ann = coco
    return ["--config", "sdpose_t_smoke", "--data-root", str(root), "--train-ann", str(ann)] + [
        "--work-dir",
        str(work),
        "--no-progress",
        *extra,
    ]


def _eval_args(weights, root, ann, *extra) -> list[str]:
    return ["--weights", str(weights), "--data-root", str(root), "--ann", str(ann), "--workers", "0", *extra]


TOOLS = {  # name: (module, the slow step that must not start, takes a folder)
    "train": (train, "Trainer", True),
    "pseudo_label": (pseudo_label, "PseudoLabeler", True),
    "evaluate": (evaluate, "predict_dataset", False),
    "export": (export, "export_onnx", False),
    "pack_weights": (pack_weights, "pack_weights", False),
}


def _tool_argv(tool: str, output: Path, coco, weights, tmp_path) -> list[str]:
    return {
        "train": lambda: _train_args(coco, output),
        "pseudo_label": lambda: ["--inputs", str(tmp_path), "--output-dir", str(output)],
        "evaluate": lambda: _eval_args(weights, *coco, "--output", str(output)),
        "export": lambda: ["--weights", str(weights), "--output", str(output)],
        "pack_weights": lambda: ["--src", str(weights), "--dst", str(output)],
    }[tool]()


@pytest.mark.parametrize("where", ["a-file-in-the-way", "read-only"])
@pytest.mark.parametrize("tool", list(TOOLS))
def test_every_tool_checks_its_output_before_the_work(
    tool, where, coco, weights, tmp_path, read_only_dir, capsys, not_called
):
    module, slow_step, folder = TOOLS[tool]
    not_called(module, slow_step)
    blocker = _existing(tmp_path / "notes.txt", "mine")
    keep = Precious(blocker)
    if where == "read-only":
        output, gist = read_only_dir / "out", "permission denied"
    elif folder:  # a work dir / output dir that is an existing file
        output, gist = blocker, "is a file, expected a directory"
    else:
        output, gist = blocker / "out.json", "not a directory"
    _assert_one_error(*_tool(module.main, _tool_argv(tool, output, coco, weights, tmp_path), capsys), gist)
    assert keep.intact()


# ---------------------------------------------------------------- train


@pytest.mark.parametrize("flag", ["--batch-size", "--epochs", "--max-steps-per-epoch"])
def test_train_zero_counts_are_mistakes(flag, coco, tmp_path, capsys, not_called):
    not_called(train, "Trainer")
    code, err = _tool(train.main, _train_args(coco, tmp_path / "run", flag, "0"), capsys)
    _assert_one_error(code, err, f"{flag}: expected a positive whole number")


def test_train_disk_full_while_saving_a_checkpoint(coco, tmp_path, capsys, monkeypatch):
    work = tmp_path / "run"
    _fill_disk_after(monkeypatch, checkpoint_module, 0)
    argv = _train_args(coco, work, "--epochs", "1", "--max-steps-per-epoch", "1", "--batch-size", "2")
    code, err = _tool(train.main, argv, capsys)
    _assert_one_error(code, err, f"cannot write {work / 'latest.pth'}: no space left on device")
    assert not list(work.glob("*.pth")) and not list(work.glob(".*")), "no half checkpoint, no temp file"


# ---------------------------------------------------------------- pseudo_label


@pytest.mark.parametrize(
    ("text", "gist"),
    [
        ('{"images": [', "is not valid JSON (Expecting value, line 1)"),
        ("[1, 2, 3]", "is not a COCO keypoint file"),
        ('{"images": [{"id": 1}], "annotations": []}', "is not a COCO keypoint file"),
    ],
    ids=["broken-json", "a-list", "image-without-file-name"],
)
def test_pseudo_label_malformed_merge_file(text, gist, tmp_path, capsys):
    broken = _existing(tmp_path / "labels.json", text)
    out = tmp_path / "merged"
    code, err = _tool(pseudo_label.main, ["--merge", str(broken), "--output-dir", str(out)], capsys)
    _assert_one_error(code, err, gist)
    assert not (out / "annotations.json").exists()


def test_pseudo_label_with_no_readable_input_fails(tmp_path, capsys, not_called):
    not_called(pseudo_label, "PseudoLabeler")
    inputs = tmp_path / "frames"
    inputs.mkdir()
    _existing(inputs / "a.jpg", "not a picture")
    _existing(inputs / "b.mp4", "not a video")
    out = tmp_path / "labels"
    code, err = _tool(pseudo_label.main, ["--inputs", str(inputs), "--output-dir", str(out)], capsys)
    _assert_one_error(code, err, "none of the 2 input files could be read")
    assert not (out / "annotations.json").exists(), "no empty label file that looks like a result"


def test_pseudo_label_with_an_empty_folder_fails(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["--inputs", str(tmp_path / "empty"), "--output-dir", str(tmp_path / "labels")]
    _assert_one_error(*_tool(pseudo_label.main, argv, capsys), "nothing to label")


# ---------------------------------------------------------------- evaluate


def test_evaluate_image_missing_from_the_folder(coco, weights, tmp_path, capsys, not_called):
    not_called(evaluate, "build_model")
    root, ann = coco
    images = tmp_path / "images"
    shutil.copytree(root, images)
    (images / "000000196141.jpg").unlink()
    code, err = _tool(evaluate.main, _eval_args(weights, images, ann), capsys)
    _assert_one_error(code, err, "missing, e.g.")
    assert "000000196141.jpg" in err


def test_evaluate_output_over_the_annotations_is_refused(coco, weights, tmp_path, capsys, not_called):
    not_called(evaluate, "predict_dataset")
    ann = tmp_path / "ann.json"
    shutil.copy(coco[1], ann)
    keep = Precious(ann)
    code, err = _tool(evaluate.main, _eval_args(weights, coco[0], ann, "--output", str(ann)), capsys)
    _assert_one_error(code, err, "same file as --ann")
    assert keep.intact()


def test_evaluate_batch_size_zero(coco, weights, capsys):
    code, err = _tool(evaluate.main, _eval_args(weights, *coco, "--batch-size", "0"), capsys)
    _assert_one_error(code, err, "--batch-size: expected a positive whole number")


# ---------------------------------------------------------------- export and pack_weights


def test_export_over_its_own_weights_is_refused(weights, capsys, not_called):
    not_called(export, "export_onnx")
    keep = Precious(weights)
    code, err = _tool(export.main, ["--weights", str(weights), "--output", str(weights)], capsys)
    _assert_one_error(code, err, "same file as --weights")
    assert keep.intact()


def test_pack_weights_over_its_source_is_refused(weights, capsys):
    keep = Precious(weights)
    code, err = _tool(pack_weights.main, ["--src", str(weights), "--dst", str(weights), "--half"], capsys)
    _assert_one_error(code, err, "same file as --src")
    assert keep.intact()


def test_pack_weights_disk_full_keeps_the_earlier_file(weights, tmp_path, capsys, monkeypatch):
    dst = _existing(tmp_path / "small.pth", "an earlier pack")
    keep = Precious(dst, weights)
    _fill_disk_after(monkeypatch, checkpoint_module, 0)
    code, err = _tool(pack_weights.main, ["--src", str(weights), "--dst", str(dst), "--half"], capsys)
    _assert_one_error(code, err, f"cannot write {dst}: no space left on device")
    assert keep.intact() and [p.name for p in tmp_path.iterdir()] == ["small.pth"], "no temp file left"


def test_sigterm_stops_a_tool_like_ctrl_c(weights, tmp_path, capsys, monkeypatch):
    def pack(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not stop the tool")

    monkeypatch.setattr(pack_weights, "pack_weights", pack)
    previous = signal.signal(signal.SIGTERM, lambda *_: pytest.fail("SIGTERM was not handled by the tool"))
    try:
        code, err = _tool(
            pack_weights.main, ["--src", str(weights), "--dst", str(tmp_path / "w.pth")], capsys
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143 and err.strip() == "interrupted", err
    assert not (tmp_path / "w.pth").exists()


def test_ctrl_c_while_a_tool_still_imports_is_one_line():
    """`python -m sdpose_core...` spends seconds importing torch before `run_cli` catches Ctrl-C;
    an interrupt then still ends in `interrupted` and 130, while a program that merely imports
    sdpose_core keeps Python's own report (the hook is for the commands, not for libraries)."""
    as_command = "import sys; sys.argv[0] = '-m'; import sdpose_core; raise KeyboardInterrupt"
    proc = subprocess.run([sys.executable, "-c", as_command], capture_output=True, text=True)
    assert proc.returncode in (130, -signal.SIGINT) and proc.stderr == "interrupted\n", proc.stderr
    bug = "import sys; sys.argv[0] = '-m'; import sdpose_core; raise ValueError('a real bug')"
    proc = subprocess.run([sys.executable, "-c", bug], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "a real bug" in proc.stderr
    as_library = "import sdpose_core; raise KeyboardInterrupt"
    proc = subprocess.run([sys.executable, "-c", as_library], capture_output=True, text=True)
    assert "Traceback" in proc.stderr, "importing sdpose_core must not change a program's hook"


def test_merge_reads_the_files_it_checked(tmp_path, capsys):
    """The shape check lets real label files through: a merge of one file still works."""
    images = tmp_path / "run1" / "images"
    images.mkdir(parents=True)
    data = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 4, "height": 4}],
        "annotations": [{"id": 1, "image_id": 7, "keypoints": [0] * 51, "num_keypoints": 0}],
        "categories": [{"id": 1, "name": "person", "keypoints": list(KEYPOINT_NAMES)}],
    }
    (tmp_path / "run1" / "annotations.json").write_text(json.dumps(data))
    argv = ["--merge", str(tmp_path / "run1" / "annotations.json"), "--output-dir", str(tmp_path / "out")]
    code, err = _tool(pseudo_label.main, argv, capsys)
    assert code == 0, err
    assert len(json.loads((tmp_path / "out" / "annotations.json").read_text())["images"]) == 1
