"""training_set: the bundled weights' labels, cut-outs and validation file in one resumable command."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from sdpose_core.cli import run_cli
from sdpose_core.labels.training_set import (
    MERGE_ORDER,
    VALIDATION_ATHLETES,
    LabelJob,
    is_complete,
    label_jobs,
    main,
    run_jobs,
)


def _paths(job: LabelJob) -> list[str]:
    return [a for a in job.args if a.startswith("..") or a.startswith("/")]


def test_every_source_exists_and_held_out_people_stay_out(shared_dir):
    jobs = {job.name: job for job in label_jobs(shared_dir)}
    assert sorted(jobs) == sorted(MERGE_ORDER), "every labelled source is merged, once"
    for job in jobs.values():
        for path in _paths(job):
            assert Path(path).exists(), f"{job.name}: {path} is missing from shared/"
    lspet = jobs["lspet"].args
    assert lspet[lspet.index("--exclude") + 1] == VALIDATION_ATHLETES, "validation athletes never trained on"
    assert "000000000785" in jobs["coco128"].args, "the held-out coco_sample image is not trained on"
    assert all("--orientations" in jobs[n].args for n in ("lspet", "stanford40", "people_art", "fall"))


def test_jobs_run_side_by_side_record_success_and_report_failure(tmp_path):
    people = {"annotations": [{"num_keypoints": 12}, {"num_keypoints": 9}, {"num_keypoints": 17}]}
    (tmp_path / "good").mkdir()
    write = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"
    ok = [sys.executable, "-c", write, str(tmp_path / "good" / "annotations.json"), json.dumps(people)]
    bad = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    said: list[str] = []
    failed = run_jobs(
        [("good", ok), ("broken", bad), ("also_good", [sys.executable, "-c", "pass"])],
        tmp_path,
        jobs=2,
        done_args={name: [name] for name in ("good", "broken", "also_good")},
        say=said.append,
    )
    assert failed == ["broken"], "one failure does not stop the others"
    assert (tmp_path / "logs" / "broken.log").read_text().strip() == "boom"
    assert any("broken: failed (exit 3)" in line for line in said)
    assert any(line.startswith("good: done") and "(3 people, 38 joints)" in line for line in said), said
    done = json.loads((tmp_path / "good" / "complete.json").read_text())
    assert done["args"] == ["good"] and "minutes" in done and (done["people"], done["joints"]) == (3, 38)
    assert is_complete(LabelJob("also_good", ("also_good",)), tmp_path), "a command that wrote no file"
    assert not (tmp_path / "broken" / "complete.json").exists()
    assert is_complete(LabelJob("good", ("good",)), tmp_path)
    assert not is_complete(LabelJob("good", ("other", "args")), tmp_path), "a changed command relabels"


def test_a_second_run_skips_finished_sources(tmp_path, shared_dir, capsys):
    data = tmp_path / "data"
    lspet = next(job for job in label_jobs(shared_dir) if job.name == "lspet")
    (data / "lspet").mkdir(parents=True)
    (data / "lspet" / "complete.json").write_text(json.dumps({"args": list(lspet.args)}))
    argv = ["--shared", str(shared_dir), "--data", str(data), "--dry-run"]
    assert run_cli(main, argv) == 0
    printed = capsys.readouterr().out
    assert "--output-dir " + str(data / "lspet") not in printed
    assert "--output-dir " + str(data / "stanford40") in printed
    assert "compact_dataset" in printed and "--margin 4" in printed
    assert "detector_boxes" in printed and str(data / "compact3" / "annotations_det.json") in printed


def test_without_the_shared_pool_it_says_where_to_point(tmp_path, capsys):
    assert run_cli(main, ["--shared", str(tmp_path), "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "pass --shared" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists(), "nothing written"


def test_an_interrupt_stops_the_running_labellers(tmp_path):
    """Ctrl-C or SIGTERM reaches the build, not its children: it stops them, starts no more."""
    quick = [sys.executable, "-c", "print('quick')"]
    slow = [sys.executable, "-c", "import time; time.sleep(60)"]

    def interrupt(line: str) -> None:
        if line.startswith("quick: done"):
            raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_jobs([("slow", slow), ("quick", quick), ("later", quick)], tmp_path, jobs=2, say=interrupt)
    assert time.monotonic() - start < 30, "the 60-second labeller was stopped"
    assert not (tmp_path / "logs" / "later.log").exists(), "nothing new starts after the interrupt"
    assert not (tmp_path / "slow" / "complete.json").exists()
