"""Long runs (labelling, compacting, videos, batches) say how far they have got in a log file, not only on a
terminal."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from sdpose_core.progress import meter, track

ROOT = Path(__file__).resolve().parents[1]


def test_track_yields_everything_and_logs_the_meter_when_stderr_is_a_file(caplog):
    caplog.set_level(logging.INFO, logger="sdpose_core.progress")
    assert list(track(iter(range(5)), total=5, desc="faces", unit="image", interval=0.0)) == list(range(5))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5, lines  # one per item (interval 0); the last one is not repeated
    assert lines[0].startswith("faces:") and "1/5" in lines[0], lines
    assert "100%" in lines[-1] and "5/5" in lines[-1] and "image/s" in lines[-1], lines
    caplog.clear()
    assert list(track([1, 2], enabled=False, interval=0.0)) == [1, 2]
    assert not caplog.records  # --no-progress: quiet


def test_a_stopped_loop_logs_where_it_stopped(caplog):
    caplog.set_level(logging.INFO, logger="sdpose_core.progress")
    for item in track(range(10), desc="cut", interval=3600.0):  # len() gives the total
        if item == 3:
            break
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "3/10" in lines[0], lines


def test_a_meter_in_a_log_file_says_whole_lines_with_its_postfix(capsys):
    bar = meter(3, unit="frame", interval=3600.0)  # pytest's stderr is no terminal, as a log file
    for _ in range(3):
        bar.update(1)
        bar.set_postfix(people=2)
    bar.write("failed: a.mp4")
    bar.close()
    bar.close()  # closing twice says nothing more
    err = capsys.readouterr().err
    assert "\r" not in err, err  # no bar redrawn over itself
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0] == "failed: a.mp4", lines
    assert all(part in lines[1] for part in ("100%", "3/3", "frame/s", "people=2")), lines
    quiet = meter(3, enabled=False)  # --no-progress
    quiet.update(3)
    quiet.close()
    assert capsys.readouterr().err == ""


def test_compact_dataset_writes_progress_lines_into_its_log(tmp_path, shared_dir):
    root = shared_dir / "data" / "coco_sample"
    log = tmp_path / "compact.log"
    args = ["--train-ann", str(root / "test_coco.json"), "--data-root", str(root)]
    args += ["--output-dir", str(tmp_path / "c"), "--workers", "1"]
    with open(log, "w") as err:
        command = [sys.executable, "-m", "sdpose_core.labels.compact_dataset", *args]
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, timeout=300)
    assert done.returncode == 0, log.read_text()
    text = log.read_text()
    assert "\r" not in text, text  # no bar redrawn over itself
    assert any(line.startswith("cut: 100%") and "4/4" in line for line in text.splitlines()), text
