"""The trainer: the loss falls on real images, resume is exact, NaN stops cleanly, bad input is one line."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch

from sdpose_core.checkpoint import OUR_FORMAT, load_checkpoint, read_checkpoint_file
from sdpose_core.cli import run_cli
from sdpose_core.config import ConfigError
from sdpose_core.models import build_model
from sdpose_core.training.recipe import load_recipe
from sdpose_core.training.train import main
from sdpose_core.training.trainer import Trainer, TrainingDiverged, TrainPaths


@pytest.fixture(scope="module")
def coco(shared_dir):
    root = shared_dir / "data" / "coco_sample"
    return root, root / "test_coco.json"


def _args(coco, work, *extra):
    root, ann = coco
    return [
        "--config",
        "sdpose_t_smoke",
        "--data-root",
        str(root),
        "--train-ann",
        str(ann),
        "--work-dir",
        str(work),
        "--no-progress",
        *extra,
    ]


def test_loss_falls_and_evaluation_runs(tmp_path, coco):
    work = tmp_path / "run"
    assert main(_args(coco, work, "--val-ann", str(coco[1]), "--epochs", "6")) == 0
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, 7))
    first, last = records[0]["loss"], records[-1]["loss"]
    assert last < 0.3 * first, f"loss should fall clearly: {first:.4f} -> {last:.4f}"
    assert records[-1]["images_per_s"] > 0
    assert set(records[-1]["val"]) >= {"AP", "AP .5", "AR", "PCK", "PCK people"}
    assert 0.0 <= records[-1]["val"]["PCK"] <= 1.0
    assert (work / "curves.png").stat().st_size > 1000
    for name in ("latest.pth", "best.pth"):
        checkpoint = read_checkpoint_file(work / name)
        assert checkpoint["format"] == OUR_FORMAT
        assert load_checkpoint(build_model("sdpose_t"), checkpoint).variant == "sdpose_t"


def test_best_checkpoint_follows_the_recipes_metric(tmp_path, coco, monkeypatch):
    """evaluation.best_metric: PCK picks best.pth by PCK, whatever AP says."""
    root, ann = coco
    recipe = load_recipe("sdpose_t_smoke")
    recipe = dataclasses.replace(
        recipe,
        train=dataclasses.replace(recipe.train, epochs=3, val_interval=1),
        evaluation=dataclasses.replace(recipe.evaluation, best_metric="PCK"),
    )
    trainer = Trainer(recipe, TrainPaths(root, ann, tmp_path, val_ann=ann), show_progress=False)
    figures = iter([{"AP": 0.9, "PCK": 0.2}, {"AP": 0.1, "PCK": 0.5}, {"AP": 0.95, "PCK": 0.4}])
    monkeypatch.setattr(trainer, "validate", lambda: next(figures))
    trainer.fit()
    assert read_checkpoint_file(tmp_path / "best.pth")["epoch"] == 2
    with pytest.raises(ValueError, match="best_metric"):
        dataclasses.replace(recipe.evaluation, best_metric="OKS")


def test_resume_reaches_the_same_weights(tmp_path, coco):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ("--max-steps-per-epoch", "2")
    assert main(_args(coco, straight, "--epochs", "2", *common)) == 0
    assert main(_args(coco, split, "--epochs", "1", *common)) == 0
    assert main(_args(coco, split, "--epochs", "2", "--resume", *common)) == 0
    a = read_checkpoint_file(straight / "latest.pth")
    b = read_checkpoint_file(split / "latest.pth")
    assert a["iteration"] == b["iteration"] == 4
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), f"{key} differs after resume"


def _ema_trainer(root, ann, work, epochs=2, resume=False, validate=False):
    recipe = load_recipe("sdpose_t_smoke")
    train = dataclasses.replace(recipe.train, epochs=epochs, ema_decay=0.5, val_interval=2)
    paths = TrainPaths(root, ann, work, val_ann=ann if validate else None)
    return Trainer(
        dataclasses.replace(recipe, train=train),
        paths,
        resume=resume,
        max_steps_per_epoch=2,
        show_progress=False,
    )


def test_weight_average_is_what_checkpoints_hand_out(tmp_path, coco):
    """train.ema_decay: best/latest.pth's weights (what pack_weights and the app load) are the
    average of the steps, the raw weights ride beside them, and --resume continues both exactly."""
    root, ann = coco
    trainer = _ema_trainer(root, ann, tmp_path / "straight", validate=True)
    snapshots: list[dict[str, torch.Tensor]] = []
    step = trainer.optimizer.step

    def step_and_remember(*args, **kwargs):
        result = step(*args, **kwargs)
        snapshots.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        return result

    trainer.optimizer.step = step_and_remember
    trainer.fit()
    saved = read_checkpoint_file(tmp_path / "straight" / "latest.pth")
    assert saved["ema_updates"] == len(snapshots) == 4
    assert saved["recipe"]["path"] == "configs/sdpose_t_smoke.yaml"  # not our disk's layout
    expected = dict(snapshots[0])  # the first step is copied, then each is mixed in at 1 - decay
    for snapshot in snapshots[1:]:
        expected = {
            k: (0.5 * expected[k] + 0.5 * v) if v.is_floating_point() else v for k, v in snapshot.items()
        }
    moved = 0
    for key, value in saved["state_dict"].items():
        if value.is_floating_point():
            assert torch.allclose(value, expected[key], atol=1e-6), f"{key} is not the average"
            assert torch.equal(saved["train_state_dict"][key], snapshots[-1][key])
            moved += not torch.equal(value, snapshots[-1][key])
    assert moved > 0, "the average must differ from the last step's weights"
    assert "train_state_dict" not in load_checkpoint(build_model("sdpose_t"), saved).meta
    record = json.loads((tmp_path / "straight" / "log.jsonl").read_text().splitlines()[-1])
    assert set(record["val_train_weights"]) == {"AP", "PCK"}, "the raw weights are scored beside the average"

    split = tmp_path / "split"
    _ema_trainer(root, ann, split, epochs=1).fit()
    _ema_trainer(root, ann, split, resume=True).fit()
    resumed = read_checkpoint_file(split / "latest.pth")
    assert resumed["ema_updates"] == 4
    for name in ("state_dict", "train_state_dict"):
        for key, value in saved[name].items():
            assert torch.equal(value, resumed[name][key]), f"{name}/{key} differs after resume"


def test_a_run_stopped_mid_epoch_resumes_at_its_last_checkpointed_step(tmp_path, coco, caplog):
    """train.checkpoint_minutes: latest.pth is also written inside an epoch, and --resume goes on
    from that step with the very batches an unbroken run would have had: same weights, same
    average. A CPU epoch can take an hour; a crash or Ctrl-C costs minutes, not the epoch."""
    root, ann = coco

    def trainer(work, resume=False, minutes=1e-9):
        recipe = load_recipe("sdpose_t_smoke")
        train = dataclasses.replace(recipe.train, epochs=2, ema_decay=0.5, checkpoint_minutes=minutes)
        return Trainer(
            dataclasses.replace(recipe, train=train),
            TrainPaths(root, ann, work),
            resume=resume,
            max_steps_per_epoch=3,
            show_progress=False,
        )

    trainer(tmp_path / "straight", minutes=0).fit()
    stopped = trainer(tmp_path / "split")
    step, calls = stopped.train_step, []

    def stop_at_the_fifth_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # epoch 2, step 2: steps 1-4 done, step 1 of epoch 2 checkpointed
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    stopped.train_step = stop_at_the_fifth_step
    with pytest.raises(KeyboardInterrupt):
        stopped.fit()
    mid = read_checkpoint_file(tmp_path / "split" / "latest.pth")
    assert (mid["epoch"], mid["step_in_epoch"], mid["iteration"]) == (1, 1, 4)
    with caplog.at_level(logging.INFO, logger="sdpose_core.training.trainer"):
        trainer(tmp_path / "split", resume=True).fit()
    assert "step 1 of epoch 2" in caplog.text
    a = read_checkpoint_file(tmp_path / "straight" / "latest.pth")
    b = read_checkpoint_file(tmp_path / "split" / "latest.pth")
    assert a["iteration"] == b["iteration"] == 6 and a["ema_updates"] == b["ema_updates"] == 6
    assert b["step_in_epoch"] == 0, "an epoch's end clears the mid-epoch mark"
    for name in ("state_dict", "train_state_dict"):
        for key, value in a[name].items():
            assert torch.equal(value, b[name][key]), f"{name}/{key} differs after a mid-epoch resume"
    records = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and records[1]["resumed_at_step"] == 1
    with pytest.raises(ValueError, match="checkpoint_minutes"):
        dataclasses.replace(load_recipe("sdpose_t_smoke").train, checkpoint_minutes=-1)


def test_compiled_training_matches_eager_and_saves_plain_keys(tmp_path, coco, monkeypatch):
    """--compile trains the same weights as eager steps (the aot_eager backend stands in for
    inductor, whose C++ build takes minutes), and its checkpoints load like any other."""
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module: compile_(module, backend="aot_eager"))
    common = ("--epochs", "1", "--max-steps-per-epoch", "2")
    assert main(_args(coco, tmp_path / "eager", *common)) == 0
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    assert main(_args(coco, tmp_path / "compiled", *common, "--compile")) == 0
    assert counters["stats"]["unique_graphs"] > 0, "--compile must run the steps through dynamo"
    eager = read_checkpoint_file(tmp_path / "eager" / "latest.pth")["state_dict"]
    compiled = read_checkpoint_file(tmp_path / "compiled" / "latest.pth")
    assert set(compiled["state_dict"]) == set(eager)
    recipe = load_recipe("sdpose_t_smoke")
    torch.manual_seed(recipe.train.seed)  # the trainer's initial weights
    start = build_model(recipe.model).state_dict()
    keys = [k for k, v in start.items() if v.is_floating_point()]

    def update(state):
        return torch.cat([(state[k].float() - start[k]).flatten() for k in keys])

    # Adam's first steps move each weight by about +-lr whatever the gradient's size, so
    # rounding in near-zero gradients flips a few signs: compare the updates as a whole.
    eager_update, compiled_update = update(eager), update(compiled["state_dict"])
    assert eager_update.abs().max() > 0, "the eager steps must have trained the weights"
    assert torch.nn.functional.cosine_similarity(eager_update, compiled_update, dim=0) > 0.99
    logs = [json.loads((tmp_path / run / "log.jsonl").read_text()) for run in ("eager", "compiled")]
    assert logs[1]["loss"] == pytest.approx(logs[0]["loss"], rel=1e-4)
    assert load_checkpoint(build_model(recipe.model), compiled).variant == "sdpose_t"


def test_channels_last_training_trains_the_same_weights(tmp_path, coco, monkeypatch):
    """Eager CPU training runs in channels-last (about 1.6x the crops/s); the layout changes the
    arithmetic's order only: same losses, same updates, checkpoints that load anywhere."""
    import sdpose_core.training.trainer as trainer_module

    common = ("--epochs", "1", "--max-steps-per-epoch", "2")
    assert main(_args(coco, tmp_path / "nhwc", *common)) == 0
    monkeypatch.setattr(trainer_module, "prefers_channels_last", lambda device_type: False)
    assert main(_args(coco, tmp_path / "nchw", *common)) == 0
    recipe = load_recipe("sdpose_t_smoke")
    torch.manual_seed(recipe.train.seed)
    start = build_model(recipe.model).state_dict()
    keys = [k for k, v in start.items() if v.is_floating_point()]
    states = [read_checkpoint_file(tmp_path / run / "latest.pth")["state_dict"] for run in ("nhwc", "nchw")]
    nhwc, nchw = (torch.cat([(state[k].float() - start[k]).flatten() for k in keys]) for state in states)
    assert nchw.abs().max() > 0
    assert torch.nn.functional.cosine_similarity(nhwc, nchw, dim=0) > 0.99
    logs = [json.loads((tmp_path / run / "log.jsonl").read_text()) for run in ("nhwc", "nchw")]
    assert logs[0]["loss"] == pytest.approx(logs[1]["loss"], rel=1e-4)
    model = build_model(recipe.model)
    load_checkpoint(model, tmp_path / "nhwc" / "latest.pth")
    assert model.state_dict()[keys[0]].is_contiguous(), "a loaded model keeps the default layout"


def test_compile_failure_is_one_line(tmp_path, coco, monkeypatch, capsys):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler found")

    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module: compile_(module, backend=broken_backend))
    torch._dynamo.reset()
    argv = _args(coco, tmp_path / "run", "--epochs", "1", "--max-steps-per-epoch", "1", "--compile")
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --compile failed") and "\n" not in err and "without --compile" in err, err


def test_a_run_without_progress_bar_logs_its_steps(tmp_path, coco, caplog):
    """--no-progress (background runs): a line every log_interval steps, with the speed."""
    root, ann = coco
    recipe = load_recipe("sdpose_t_smoke")
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, log_interval=2))
    trainer = Trainer(recipe, TrainPaths(root, ann, tmp_path), max_steps_per_epoch=3, show_progress=False)
    with caplog.at_level(logging.INFO, logger="sdpose_core.training.trainer"):
        trainer.train_epoch()
    lines = [r.getMessage() for r in caplog.records if " step " in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == ["epoch 1 step 2/3"], lines
    assert all("images/s" in line and "loss" in line for line in lines)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, coco, monkeypatch):
    root, ann = coco
    recipe = load_recipe("sdpose_t_smoke")
    trainer = Trainer(recipe, TrainPaths(root, ann, tmp_path), max_steps_per_epoch=2, show_progress=False)
    trainer.train_epoch()
    trainer.epoch = 1
    trainer._save(trainer.latest, {"epoch": 1})
    good = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    real = trainer.criterion

    def poisoned(outputs, target, weight):
        losses = real(outputs, target, weight)
        losses["loss"] = losses["loss"] * float("nan")
        return losses

    trainer.criterion = poisoned
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 1 \(iteration 3\).*latest\.pth"):
        trainer.train_epoch()
    kept = read_checkpoint_file(trainer.latest)["state_dict"]
    assert all(torch.equal(kept[k], good[k]) for k in good), "the last good checkpoint is untouched"


def test_bad_input_gives_one_line(tmp_path, coco, capsys):
    root, ann = coco
    cases = [
        (_args(coco, tmp_path / "a", "--device", "cuda"), "CUDA is not available")
        if not torch.cuda.is_available()
        else None,
        (
            [
                "--config",
                "sdpose_t_smoke",
                "--data-root",
                str(root),
                "--train-ann",
                str(tmp_path / "none.json"),
                "--work-dir",
                str(tmp_path / "b"),
            ],
            "file not found",
        ),
        (_args((tmp_path, ann), tmp_path / "c"), "image"),
    ]
    empty = tmp_path / "empty.json"
    empty.write_text(
        json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]})
    )
    cases.append((_args((root, empty), tmp_path / "d"), "no people"))
    cases.append((_args(coco, tmp_path / "e", "--resume"), "no checkpoint"))
    for argv, message in filter(None, cases):
        assert run_cli(main, argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err and message in err, err


def test_same_command_runs_under_torchrun(tmp_path, coco):
    """Two CPU processes (gloo): DDP trains, only rank 0 writes the log and checkpoints."""
    import subprocess
    import sys
    from pathlib import Path

    work = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "sdpose_core.training.train",
        *_args(coco, work, "--epochs", "1", "--max-steps-per-epoch", "1", "--batch-size", "2"),
    ]
    done = subprocess.run(
        cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len((work / "log.jsonl").read_text().splitlines()) == 1
    assert load_checkpoint(build_model("sdpose_t"), work / "latest.pth").variant == "sdpose_t"


def test_image_missing_mid_run_is_one_line(tmp_path, coco, capsys):
    """The first image exists (checked at start), a later one vanished: a loader worker fails."""
    import shutil

    root, ann = coco
    images = tmp_path / "images"
    shutil.copytree(root, images)
    data = json.loads(ann.read_text())
    doomed = images / data["images"][-1]["file_name"]
    doomed.unlink()
    argv = _args((images, ann), tmp_path / "w", "--epochs", "1", "--workers", "1")
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and doomed.name in err[0], err


def test_compressed_recipe_keeps_the_schedule_shape_and_round_trips_through_yaml(tmp_path):
    gpu = load_recipe("sdpose_t_distill_gpu")
    assert gpu.train.epochs == 60 and gpu.train.lr_steps == (42, 54)
    short = gpu.compressed(20)
    assert short.train.epochs == 20 and short.train.lr_steps == (14, 18)
    assert gpu.compressed(60) is gpu and gpu.compressed(500) is gpu, "never stretched"
    stage1 = load_recipe("sdpose_t_distill_stage1")  # sigma 8 -> 4 -> 2 at epochs 0 / 3 / 7 of 8
    tiny = stage1.compressed(3)
    assert [start for start, _ in tiny.data.sigma_schedule] == [0, 1, 2]
    assert tiny.data.sigma_at(2) == 2.0 and tiny.data.sigma_at(0) == stage1.data.sigma_at(0)
    path = tmp_path / "recipe.yaml"
    path.write_text(short.to_yaml())
    back = load_recipe(path)
    assert (back.model, back.train, back.data, back.evaluation) == (
        short.model,
        short.train,
        short.data,
        short.evaluation,
    )


def test_a_recipe_built_on_a_base_changes_only_what_it_writes(tmp_path):
    """`base:` lets a training stage read as its difference from the last one."""
    stage22, stage23 = load_recipe("sdpose_t_distill_stage22"), load_recipe("sdpose_t_distill_stage23")
    assert stage23.model == stage22.model and stage23.evaluation == stage22.evaluation
    assert (stage23.data.rot_factor, stage23.data.half_body_prob) == (30.0, 0.15)
    assert stage23.data.source_repeats == stage22.data.source_repeats  # not written: stage 22's
    assert dataclasses.replace(stage23.data, rot_factor=45.0, half_body_prob=0.3) == stage22.data
    assert dataclasses.replace(stage23.train, epochs=5, lr_steps=(4,), seed=22) == stage22.train
    # A base beside the file, by relative path, through two levels.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.yaml").write_text("base: sdpose_t_smoke\ntrain:\n  lr: 0.5\n")
    (tmp_path / "mine" / "b.yaml").write_text("base: a.yaml\ntrain:\n  epochs: 3\n")
    smoke, b = load_recipe("sdpose_t_smoke"), load_recipe(tmp_path / "mine" / "b.yaml")
    assert b.train == dataclasses.replace(smoke.train, lr=0.5, epochs=3) and b.data == smoke.data


def test_a_base_loop_or_a_missing_base_is_one_readable_error(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\ntrain:\n  lr: 0.5\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nmodel:\n  name: sdpose_t\n")
    with pytest.raises(ConfigError, match=r"loop \(a.yaml -> b.yaml -> a.yaml\)"):
        load_recipe(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: sdpose_t_stage99\ntrain:\n  lr: 0.5\n")
    with pytest.raises(ConfigError, match="unknown config 'sdpose_t_stage99'; known: .*sdpose_t_smoke"):
        load_recipe(tmp_path / "c.yaml")


def test_compressing_never_stacks_steps_or_invents_them():
    gpu = load_recipe("sdpose_t_distill_gpu")  # lr steps at epochs 42 and 54 of 60
    assert gpu.compressed(5).train.lr_steps == (4,), "no room for the second step: dropped"
    assert gpu.compressed(2).train.lr_steps == (1,) and gpu.compressed(1).train.lr_steps == ()
    late = dataclasses.replace(gpu, train=dataclasses.replace(gpu.train, epochs=8, lr_steps=(7,)))
    assert late.compressed(4).train.lr_steps == (3,), "a step before the end stays before the end"
    assert late.compressed(2).train.lr_steps == (1,)
    paper = load_recipe("sdpose_t")  # steps at 200 and 260, cut to 20 epochs: never reached
    paper = dataclasses.replace(paper, train=dataclasses.replace(paper.train, epochs=20))
    assert paper.compressed(10).train.lr_steps == ()
    stage1 = load_recipe("sdpose_t_distill_stage1")  # sigma 8 / 4 / 2 from epochs 0 / 3 / 7
    assert stage1.compressed(2).data.sigma_schedule == ((0, 8.0), (1, 2.0)), "later sigma wins"
    assert stage1.compressed(1).data.sigma_schedule == ((0, 2.0),)


def _budget_trainer(tmp_path, coco, **train_changes):
    """A smoke-recipe trainer on a fake clock: each training epoch takes 10 s, a validation 5 s
    (scored, so the test needs no evaluation), and one worker process loads the data."""
    root, ann = coco
    recipe = load_recipe("sdpose_t_smoke")  # 10 epochs, lr step at 8
    recipe = dataclasses.replace(
        recipe,
        train=dataclasses.replace(recipe.train, workers=1, **train_changes),
        data=dataclasses.replace(recipe.data, sigma_schedule=((0, 4.0), (8, 2.0))),
    )
    trainer = Trainer(recipe, TrainPaths(root, ann, tmp_path), max_steps_per_epoch=1, show_progress=False)
    clock = [0.0]
    trainer._clock = lambda: clock[0]
    real_epoch = trainer.train_epoch

    def ten_second_epoch():
        clock[0] += 10.0
        return real_epoch()

    def five_second_validation():
        clock[0] += 5.0
        return {"AP": 0.1 * trainer.epoch}

    trainer.train_epoch = ten_second_epoch
    trainer.validate = five_second_validation
    return trainer


@pytest.mark.parametrize(
    ("budget", "epochs", "lr_steps"), [(65.0, 6, (5,)), (25.0, 2, (8,)), (500.0, 10, (8,))]
)
def test_time_budget_compresses_the_schedule_to_fit(tmp_path, coco, budget, epochs, lr_steps):
    """After two 10 s epochs, the rest of the budget decides how many more fit. The
    learning-rate step and the sigma schedule move with them, the loader is rebuilt (its
    persistent worker holds the old schedule), and recipe.yaml records what ran. A budget
    already spent stops the run."""
    trainer = _budget_trainer(tmp_path, coco)
    first_loader = trainer.loader
    trainer.fit(time_budget_s=budget)
    assert trainer.epoch == epochs
    ran = load_recipe(tmp_path / "recipe.yaml")
    assert ran.train.lr_steps == lr_steps
    assert ran.train.epochs == (epochs if budget != 25.0 else 10), "a stopped run keeps its recipe"
    assert ran.train.max_steps_per_epoch == 1, "the --max-steps-per-epoch override is recorded"
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, epochs + 1))
    if epochs == 6:  # epoch 6 (index 5) ran at a tenth of the rate, on sigma 2 from epoch 5
        assert records[-1]["lr"] == pytest.approx(trainer.recipe.train.lr * trainer.recipe.train.lr_gamma)
        assert ran.data.sigma_schedule == ((0, 4.0), (5, 2.0))
        assert trainer.loader is not first_loader and trainer.loader.dataset.cfg.sigma_at(5) == 2.0
    else:
        assert trainer.loader is first_loader


def test_time_budget_counts_validations_and_validates_before_stopping(tmp_path, coco):
    trainer = _budget_trainer(tmp_path, coco, val_interval=2)
    trainer.val_set = object()  # "has a validation set"; validate() is the fake above
    trainer.fit(time_budget_s=80.0)
    # Epochs 1-2 took 25 s with one validation: per epoch 10 + 5 / 2, and 5 s kept for the
    # last validation, so (80 - 25 - 5) // 12.5 = 4 more epochs fit, the last one validated.
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r["epoch"] for r in records if "val" in r] == [2, 4, 6]
    stopped = _budget_trainer(tmp_path / "stopped", coco, val_interval=4)
    stopped.val_set = object()
    stopped.fit(time_budget_s=21.0)  # no time for a third epoch: epoch 2 validates, then stop
    records = [json.loads(line) for line in (tmp_path / "stopped" / "log.jsonl").read_text().splitlines()]
    assert [(r["epoch"], "val" in r) for r in records] == [(1, False), (2, True)]


def test_cpu_bf16_support_is_read_from_the_cpu_flags():
    from sdpose_core.hardware import cpu_has_native_bf16

    assert cpu_has_native_bf16("processor : 0\nflags : fpu sse avx512f avx512_bf16\n") is True
    assert cpu_has_native_bf16("flags\t\t: fpu sse avx512f amx_bf16 amx_tile\n") is True
    assert cpu_has_native_bf16("flags : fpu sse avx2 avx512f\n") is False, "AVX-512 alone is not bf16"
    assert cpu_has_native_bf16("Processor : ARMv8\n") is None, "no flags line: unknown"


def test_every_recipe_in_configs_loads_and_the_distill_stages_share_weights():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("sdpose_*.yaml"))
    recipes = {path.stem: load_recipe(path) for path in configs}
    assert {"sdpose_t", "sdpose_s_v1", "sdpose_s_v2", "sdpose_b", "sdpose_t_distill_stage2"} <= set(recipes)
    # Stage 1 (one MCT cycle) trains exactly the parameters stage 2 (three cycles) starts from.
    stage1 = build_model(recipes["sdpose_t_distill_stage1"].model)
    stage2 = build_model(recipes["sdpose_t_distill_stage2"].model)
    assert stage1.cfg.cycle_num == 1 and stage2.cfg.cycle_num == 3
    load_checkpoint(stage2, {"state_dict": stage1.state_dict()})
    # Stages 3 and 4 (4 is the bundled weights' last) go back to one cycle; their weights load
    # strictly into the 3-cycle SDPose-T that PoseEngine builds, and they end on the paper's
    # sigma-2 targets.
    stage3 = build_model(recipes["sdpose_t_distill_stage3"].model)
    load_checkpoint(stage3, {"state_dict": stage2.state_dict()})
    stage4 = build_model(recipes["sdpose_t_distill_stage4"].model)
    load_checkpoint(stage4, {"state_dict": stage3.state_dict()})
    load_checkpoint(build_model(recipes["sdpose_t"].model), {"state_dict": stage4.state_dict()})
    # Stages 5, 7 and 8 (8 is the bundled weights' last) continue with the same parameters.
    previous = stage4
    for n in (5, 7, 8):
        stage = build_model(recipes[f"sdpose_t_distill_stage{n}"].model)
        load_checkpoint(stage, {"state_dict": previous.state_dict()})
        previous = stage
    for n in (2, 3, 4, 5, 7, 8):
        assert recipes[f"sdpose_t_distill_stage{n}"].data.sigma_at(10**6) == 2.0
    assert all(recipes[f"sdpose_t_distill_stage{n}"].data.photometric_prob > 0 for n in (3, 4, 5, 7, 8))
    # The GPU stage continues from stage 8 with the same single-cycle parameters and, like it,
    # lists LSP's human-labelled people more than once a pass.
    gpu = build_model(recipes["sdpose_t_distill_gpu"].model)
    load_checkpoint(gpu, {"state_dict": previous.state_dict()})
    assert recipes["sdpose_t_distill_gpu"].data.sigma_at(10**6) == 2.0
    for name in ("sdpose_t_distill_stage8", "sdpose_t_distill_gpu"):
        assert recipes[name].data.source_repeats.get("lsp-human", 1) > 1
    assert all(recipes[name].data.photometric_prob == 0 for name in ("sdpose_t", "sdpose_b"))  # paper
