"""`python main.py batch` without Ray: which inputs it finds, what it names their outputs, the
manifest it keeps, and the one-line errors for bad input (none of these start Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.batch.cli import main, open_manifest
from app.batch.inputs import InputError, find_inputs, name_outputs
from app.batch.manifest import Manifest, ManifestRow
from app.batch.outputs import TEMP_MARK, commit, remove_stale_temps, temp_path


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A small archive as users keep them: videos in nested folders, a folder of frames, clutter."""
    root = tmp_path / "archive"
    _touch(root / "day1" / "run.mp4")
    _touch(root / "day1" / "run.avi")
    _touch(root / "day2" / "run.mp4")
    _touch(root / "day2" / "clip10.mov")
    _touch(root / "day2" / "clip9.mov")
    _touch(root / "frames" / "0001.jpg")
    _touch(root / "frames" / "0002.jpg")
    _touch(root / "notes.txt")
    _touch(root / ".hidden" / "secret.mp4")
    return root


def test_a_folder_gives_every_video_and_image_folder_with_distinct_outputs(archive: Path) -> None:
    found = find_inputs([str(archive)])
    rel = [str(p.relative_to(archive)) for p in found]
    assert rel == [
        "day1/run.avi",
        "day1/run.mp4",
        "day2/clip9.mov",
        "day2/clip10.mov",
        "day2/run.mp4",
        "frames",
    ]
    outputs = [i.output for i in name_outputs(found, "jsonl")]
    assert outputs == [
        "day1/run.avi.jsonl",  # run.avi and run.mp4 would share day1/run.jsonl: both keep their ending
        "day1/run.mp4.jsonl",
        "day2/clip9.jsonl",
        "day2/clip10.jsonl",
        "day2/run.jsonl",
        "frames.jsonl",
    ]
    assert [i.output for i in name_outputs(found, "openpose")][-1] == "frames"


def test_list_files_globs_and_plain_files(archive: Path, tmp_path: Path) -> None:
    listing = _touch(tmp_path / "todo.txt", "# my clips\narchive/day2/run.mp4\n\narchive/frames\n")
    listed = find_inputs([str(listing)])
    assert list(listed) == [archive / "day2" / "run.mp4", archive / "frames"]
    assert [i.output for i in name_outputs(listed, "coco")] == ["run.json", "frames.json"], "named alone"
    globbed = find_inputs([str(archive / "**" / "*.mov"), str(archive / "day2" / "clip9.mov")])
    assert list(globbed) == [archive / "day2" / "clip9.mov", archive / "day2" / "clip10.mov"], "sorted, once"
    two_runs = find_inputs([str(archive / "day*" / "run.mp4")])
    assert [i.output for i in name_outputs(two_runs, "jsonl")] == ["day1/run.jsonl", "day2/run.jsonl"]
    broken = _touch(tmp_path / "bad.txt", "archive/day2/run.mp4\narchive/nope.mp4\n")
    with pytest.raises(InputError, match=r"bad.txt line 2: no such file or folder: archive/nope.mp4"):
        find_inputs([str(broken)])


def test_an_input_named_like_the_manifest_keeps_its_ending(tmp_path: Path) -> None:
    found = find_inputs([str(_touch(tmp_path / "manifest.mp4"))])
    assert name_outputs(found, "coco")[0].output == "manifest.mp4.json"
    assert name_outputs(found, "jsonl")[0].output == "manifest.jsonl"


def test_temporary_outputs_are_renamed_whole_and_leftovers_removed(tmp_path: Path) -> None:
    final = tmp_path / "out" / "clip.jsonl"
    final.parent.mkdir()
    temp = temp_path(final)
    temp.write_text("complete\n")
    assert not final.exists() and TEMP_MARK in temp.name
    commit(temp, final)
    assert final.read_text() == "complete\n" and not temp.exists()
    folder = tmp_path / "out" / "clip"  # OpenPose: a folder replaces an older folder
    _touch(folder / "old_keypoints.json")
    new = temp_path(folder)
    _touch(new / "new_keypoints.json")
    commit(new, folder)
    assert [p.name for p in folder.iterdir()] == ["new_keypoints.json"]
    dead = temp_path(final)
    dead.write_text("half")
    _touch(tmp_path / "out" / "user_notes.txt")
    assert remove_stale_temps([final, folder]) == 1
    assert sorted(p.name for p in final.parent.iterdir()) == ["clip", "clip.jsonl", "user_notes.txt"]


def test_manifest_round_trip_is_one_row_per_line(tmp_path: Path) -> None:
    rows = {"/v/a.mp4": ManifestRow("/v/a.mp4", "a.jsonl", "done", frames=10, people=12, seconds=1.5)}
    Manifest(tmp_path / "manifest.json", {"format": "jsonl"}, rows).save({"done": 1})
    text = (tmp_path / "manifest.json").read_text()
    assert json.loads(text)["inputs"][0]["frames"] == 10
    assert any(line.strip().startswith('{"input": "/v/a.mp4"') for line in text.splitlines())
    loaded = Manifest.load(tmp_path / "manifest.json")
    assert loaded is not None and loaded.rows == rows and loaded.settings == {"format": "jsonl"}


def test_settings_of_a_switched_off_group_need_no_redo(tmp_path: Path) -> None:
    """A manifest from before `refine:` existed, or with it off and other numbers: the outputs are
    what refine-off makes, so they are kept; switching refine on needs --redo."""
    from app.batch.inputs import BatchInput
    from app.batch.manifest import ManifestError

    (tmp_path / "a.jsonl").write_text("{}\n")
    inputs = [BatchInput(Path("/v/a.mp4"), "a.jsonl")]
    rows = {"/v/a.mp4": ManifestRow("/v/a.mp4", "a.jsonl", "done", frames=3)}
    Manifest(tmp_path / "manifest.json", {"format": "jsonl"}, rows).save({"done": 1})
    off = {"format": "jsonl", "refine.enabled": False, "refine.pad": 0.3}
    assert open_manifest(tmp_path, off, inputs, redo=False).rows["/v/a.mp4"].state == "done"
    Manifest(tmp_path / "manifest.json", {**off, "refine.pad": 0.2}, rows).save({"done": 1})
    assert open_manifest(tmp_path, off, inputs, redo=False).rows["/v/a.mp4"].frames == 3
    with pytest.raises(ManifestError, match=r"refine.enabled: False -> True, refine.pad: 0.2 -> 0.3.*--redo"):
        open_manifest(tmp_path, {**off, "refine.enabled": True}, inputs, redo=False)


BAD_INPUT = {  # the line a user reads -> what they typed after `python main.py batch`
    "no such file or folder: /nonexistent/videos": ["--inputs", "/nonexistent/videos"],
    "/nonexistent/*.mp4 matches nothing": ["--inputs", "/nonexistent/*.mp4"],
    "--output names one input or output": ["--inputs", "CLIP", "--output", "x.jsonl"],
    "unrecognized arguments: --wrokers": ["--inputs", "CLIP", "--wrokers", "2"],
    "--det-every": ["--inputs", "CLIP", "--det-every", "often"],
    "weights file not found": ["--inputs", "CLIP", "--weights", "/nonexistent/w.pth"],
    "cannot reach the Ray cluster at 127.0.0.1:1": ["--inputs", "CLIP", "--ray-address", "127.0.0.1:1"],
    "--ray-address takes auto or HOST:PORT": ["--inputs", "CLIP", "--ray-address", "my-cluster"],
}


@pytest.mark.parametrize("message", BAD_INPUT)
def test_bad_input_is_one_line_and_exit_2(message, tmp_path, capsys, shared_dir) -> None:
    clip = str(shared_dir / "data" / "video" / "vtest.mp4")
    argv = [clip if arg == "CLIP" else arg for arg in BAD_INPUT[message]]
    try:
        code = main([*argv, "--output-dir", str(tmp_path / "out")])
    except SystemExit as exc:  # the flags' own errors
        code = exc.code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err and "usage:" not in err
