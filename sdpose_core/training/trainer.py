"""The training loop, apart from the command that starts it (`train.main`), so tests and benchmarks
drive a run's model, data, schedule, time budget, checkpoints and validation without the command line."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sdpose_core.checkpoint import TRAIN_WEIGHTS_KEY, load_checkpoint, read_checkpoint_file, save_checkpoint
from sdpose_core.data import CocoKeypointDataset, DataError, build_loader, set_loader_epoch
from sdpose_core.errors import UserError
from sdpose_core.evaluation import coco_keypoint_eval, format_table, pck_against_annotations, predict_dataset
from sdpose_core.hardware import cpu_has_native_bf16, prefers_channels_last
from sdpose_core.jsonio import atomic_write_text
from sdpose_core.models import build_model
from sdpose_core.training.curves import plot_log
from sdpose_core.training.losses import LossWeights, SDPoseLoss
from sdpose_core.training.recipe import Recipe, portable_recipe_path

__all__ = ["TrainingDiverged", "TrainPaths", "Trainer"]

logger = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite; the message names the step and the last good checkpoint."""


@dataclass(frozen=True)
class TrainPaths:
    """Where the data is and where results go."""

    data_root: Path
    train_ann: Path
    work_dir: Path
    val_ann: Path | None = None
    val_root: Path | None = None  # defaults to data_root
    val_det: Path | None = None  # person detections for validation (else GT boxes)


def _distributed() -> tuple[bool, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world > 1, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def _check_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was requested but CUDA is not available here; use --device cpu")
    return torch.device(name)


class Trainer:
    """One training run: model, data, optimiser, schedule, logging, checkpoints, validation."""

    def __init__(
        self,
        recipe: Recipe,
        paths: TrainPaths,
        device: str = "cpu",
        resume: bool = False,
        init_weights: str | None = None,
        max_steps_per_epoch: int | None = None,
        show_progress: bool = True,
        cpu_amp: bool = False,
        compile_model: bool = False,
    ) -> None:
        if max_steps_per_epoch:  # an override belongs in the recipe that recipe.yaml records
            recipe = replace(recipe, train=replace(recipe.train, max_steps_per_epoch=max_steps_per_epoch))
        self.recipe, self.paths, self.cfg = recipe, paths, recipe.train
        self.distributed, self.rank, local_rank = _distributed()
        if self.distributed:
            # Rank 0 validates alone while the others wait at a barrier: allow a long validation.
            dist.init_process_group(
                "nccl" if device.startswith("cuda") else "gloo", timeout=timedelta(hours=2)
            )
            if device.startswith("cuda"):
                device = f"cuda:{local_rank}"
                torch.cuda.set_device(local_rank)
        self.device = _check_device(device)
        self.is_main = self.rank == 0
        # A bar only on a terminal: in a log file it redraws; there the step lines say the same.
        self.show_progress = show_progress and self.is_main and sys.stderr.isatty()
        self.use_amp = self.cfg.amp and (self.device.type == "cuda" or cpu_amp)
        if self.use_amp and self.device.type == "cpu" and cpu_has_native_bf16() is False and self.is_main:
            logger.warning(
                "--cpu-amp: this CPU has no native bfloat16 (avx512_bf16 or amx_bf16), so bf16 "
                "autocast is emulated and slower than fp32; leave --cpu-amp off here"
            )

        torch.manual_seed(self.cfg.seed)  # identical initial weights on every rank
        self.model = build_model(recipe.model).to(self.device)
        if init_weights:
            load_checkpoint(self.model, init_weights)
            logger.info("initialised from %s", init_weights)
        # Eager CPU training in channels-last: about 1.6x the crops/s (hardware.prefers_channels_last).
        eager_nhwc = prefers_channels_last(self.device.type) and not compile_model
        self.memory_format = torch.channels_last if eager_nhwc else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.net: torch.nn.Module = self.model
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if compile_model:
            # Training steps only: validation and checkpoints use the eager `self.model`, whose
            # parameters the compiled module shares, so saved keys carry no `_orig_mod.` prefix.
            self.net = torch.compile(self.net)
        self.criterion = SDPoseLoss(
            LossWeights(self.cfg.heatmap_weight, self.cfg.vis_dist_weight, self.cfg.kpt_dist_weight)
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)
        # The weight average (train.ema_decay) follows every optimiser step; buffers (BatchNorm
        # statistics) are averaged too, so the averaged model stands on its own.
        self.ema: AveragedModel | None = None
        if self.cfg.ema_decay > 0:
            self.ema = AveragedModel(
                self.model, multi_avg_fn=get_ema_multi_avg_fn(self.cfg.ema_decay), use_buffers=True
            )

        try:
            self.train_set = CocoKeypointDataset(
                paths.train_ann, paths.data_root, train=True, cfg=recipe.data, seed=self.cfg.seed
            )
            self.val_set = None
            if paths.val_ann is not None and self.is_main:
                self.val_set = CocoKeypointDataset(
                    paths.val_ann,
                    paths.val_root or paths.data_root,
                    train=False,
                    det_file=paths.val_det,
                    det_score_thr=recipe.evaluation.det_score_thr,
                    cfg=recipe.data,
                )
        except DataError as exc:
            raise UserError(str(exc)) from None
        self.loader = self._build_loader()
        self._clock = time.perf_counter  # the time budget's clock (tests replace it)
        self.epoch = 0  # epochs completed
        self.iteration = 0  # optimiser steps taken
        self.step_in_epoch = 0  # steps of `epoch` already taken (a run resumed part-way through it)
        self.best_ap = -1.0  # the best validation figure so far (evaluation.best_metric: AP or PCK)
        paths.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = paths.work_dir / "log.jsonl"
        if resume:
            self._resume()

    def _build_loader(self):
        return build_loader(
            self.train_set,
            self.cfg.batch_size,
            shuffle=True,
            workers=self.cfg.workers,
            distributed=self.distributed,
            drop_last=len(self.train_set) >= 2 * self.cfg.batch_size,
            seed=self.cfg.seed,
        )

    # -- checkpoints -------------------------------------------------------------------------
    @property
    def latest(self) -> Path:
        return self.paths.work_dir / "latest.pth"

    @property
    def best(self) -> Path:
        return self.paths.work_dir / "best.pth"

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights validation scores and checkpoints hand out: the average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def _save(self, path: Path, metrics: dict[str, Any]) -> None:
        extra: dict[str, Any] = {}
        if self.ema is not None:
            extra = {TRAIN_WEIGHTS_KEY: self.model.state_dict(), "ema_updates": int(self.ema.n_averaged)}
        save_checkpoint(
            path,
            self.eval_model,
            **extra,
            epoch=self.epoch,
            iteration=self.iteration,
            step_in_epoch=self.step_in_epoch,
            best_ap=self.best_ap,
            optimizer=self.optimizer.state_dict(),
            recipe=self.recipe.to_dict(),
            metrics=metrics,
        )

    def _resume(self) -> None:
        if not self.latest.is_file():
            raise UserError(f"--resume: no checkpoint at {self.latest}; start without --resume")
        checkpoint = read_checkpoint_file(self.latest)
        load_checkpoint(self.model, checkpoint)  # the average, where the run kept one
        if "optimizer" not in checkpoint:
            raise UserError(f"{self.latest} has no optimiser state, so it cannot be resumed")
        if self.ema is not None:  # continue the average (a run without one starts it here)
            self.ema.module.load_state_dict(self.model.state_dict())
            self.ema.n_averaged.fill_(int(checkpoint.get("ema_updates", 0)))
        if TRAIN_WEIGHTS_KEY in checkpoint:  # the optimiser continues from the raw weights
            load_checkpoint(self.model, {"state_dict": checkpoint[TRAIN_WEIGHTS_KEY]})
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.epoch, self.iteration = int(checkpoint["epoch"]), int(checkpoint["iteration"])
        self.best_ap = float(checkpoint.get("best_ap", -1.0))
        self.step_in_epoch = int(checkpoint.get("step_in_epoch", 0))
        at = f", step {self.step_in_epoch} of epoch {self.epoch + 1}" if self.step_in_epoch else ""
        logger.info(
            "resumed from %s at epoch %d (iteration %d%s)", self.latest, self.epoch, self.iteration, at
        )

    # -- the loop ----------------------------------------------------------------------------
    def _autocast(self):
        if not self.use_amp:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _all_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank, so all ranks stop together."""
        finite = torch.isfinite(loss.detach()).to(torch.float32)
        if self.distributed:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite.item())

    def train_step(
        self, images: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, step_in_epoch: int = 0
    ) -> dict[str, torch.Tensor]:
        """One optimiser step on a batch already on the device: forward (all MCT cycles),
        losses, a finite check on every rank, backward, Adam. Returns the losses."""
        images = images.contiguous(memory_format=self.memory_format)
        with self._autocast():
            outputs = self.net(images)
        losses = self.criterion(outputs, target, weight)
        loss = losses["loss"]
        if not self._all_finite(loss):
            raise TrainingDiverged(
                f"loss became {loss.item()} at epoch {self.epoch + 1}, step {step_in_epoch + 1} (iteration "
                f"{self.iteration + 1}); training stopped, the last good checkpoint is {self.latest}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.iteration += 1
        return losses

    def train_epoch(self) -> dict[str, float]:
        from tqdm import tqdm

        self.net.train()
        first = self.step_in_epoch  # > 0 when resumed part-way through this epoch
        set_loader_epoch(self.loader, self.epoch, start_batch=first)
        totals: dict[str, float] = {}
        seen, steps, start = 0, first, time.perf_counter()
        last_save = self._clock()
        cap = self.cfg.max_steps_per_epoch
        epoch_steps = len(self.loader) + first  # the loader now holds the batches after `first`
        total_steps = epoch_steps if cap is None else min(epoch_steps, cap)
        bar = tqdm(
            initial=first,
            total=total_steps,
            desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}",
            disable=not self.show_progress,
            unit="batch",
            dynamic_ncols=True,
            file=sys.stderr,
        )
        for batch in self.loader:
            if steps == total_steps:
                break
            lr = self.cfg.lr_at(self.epoch, self.iteration)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            images = batch["image"].to(self.device, non_blocking=True)
            target = batch["target"].to(self.device, non_blocking=True)
            weight = batch["target_weight"].to(self.device, non_blocking=True)
            losses = self.train_step(images, target, weight, steps)
            loss = losses["loss"]
            steps += 1
            seen += images.shape[0]
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + float(value.detach())
            bar.update(1)
            if steps % max(1, min(self.cfg.log_interval, 10)) == 0:
                bar.set_postfix(loss=f"{loss.item():.5f}", lr=f"{lr:.1e}", refresh=False)
            if bar.disable and self.is_main and steps % max(1, self.cfg.log_interval) == 0:
                rate = seen / max(time.perf_counter() - start, 1e-9)  # no bar: show it is alive
                msg = "epoch %d step %d/%d: loss %.5f, lr %.1e, %.1f images/s"
                logger.info(msg, self.epoch + 1, steps, total_steps, loss.item(), lr, rate)
            minutes = self.cfg.checkpoint_minutes
            if minutes and steps < total_steps and self._clock() - last_save >= 60.0 * minutes:
                self._save_mid_epoch(steps)
                last_save = self._clock()
        bar.close()
        elapsed = time.perf_counter() - start
        world = dist.get_world_size() if self.distributed else 1
        taken = steps - first
        self.step_in_epoch = 0
        metrics = {name: total / max(taken, 1) for name, total in totals.items()}
        metrics.update(lr=lr if taken else 0.0, images_per_s=seen * world / max(elapsed, 1e-9), steps=steps)
        if first:
            metrics["resumed_at_step"] = first  # the losses above average the steps after it
        return metrics

    def _save_mid_epoch(self, steps: int) -> None:
        """latest.pth at `steps` into the current epoch, so --resume continues from this step."""
        self.step_in_epoch = steps
        if self.is_main:
            self._save(
                self.latest, {"epoch": self.epoch, "iteration": self.iteration, "step_in_epoch": steps}
            )
            logger.info("checkpoint at epoch %d step %d: %s", self.epoch + 1, steps, self.latest)

    def validate(self, model: torch.nn.Module | None = None) -> dict[str, float]:
        """Score `model` (default: `eval_model`, the average where there is one) on the
        validation set: COCO keypoint AP and friends plus PCK@0.2 against the annotations."""
        ev = self.recipe.evaluation
        results = predict_dataset(
            model if model is not None else self.eval_model,
            self.val_set,
            ev.batch_size,
            self.device,
            ev.flip_test,
            vis_thr=ev.vis_thr,
            oks_thr=ev.oks_thr,
        )
        stats = coco_keypoint_eval(self.paths.val_ann, results)
        gt = json.loads(Path(self.paths.val_ann).read_text(encoding="utf-8"))
        return {**stats, **pck_against_annotations(results, gt)}

    def fit(self, time_budget_s: float | None = None) -> dict[str, Any]:
        """Train to `cfg.epochs`, validating every `val_interval` epochs and at the end.

        `time_budget_s` (a leased GPU, a night on a laptop): after the run's second epoch, the
        one that shows the steady pace, the recipe is compressed (`Recipe.compressed`) to the
        epochs that fit the rest of the budget, counting the validations still due and
        keeping time for the last one, so the learning-rate steps and the sigma schedule still
        happen. If an epoch would still overrun, the run stops early and validates once more.
        The recipe that ran is written to WORK_DIR/recipe.yaml either way."""
        last: dict[str, Any] = {}
        start = self._clock()
        pace: list[float] = []  # seconds per epoch: training, checkpoint and log, no validation
        val_seconds, overhead = 0.0, 0.0  # the last validation's, the last checkpoint and log's
        if self.is_main:
            self._write_recipe()
        while self.epoch < self.cfg.epochs:
            epoch_start = self._clock()
            metrics = self.train_epoch()
            self.epoch += 1
            pace.append(self._clock() - epoch_start + overhead)
            stop = time_budget_s is not None and self._over_budget(time_budget_s, start, pace, val_seconds)
            due = stop or self.epoch % self.cfg.val_interval == 0 or self.epoch == self.cfg.epochs
            end_start = self._clock()
            last, spent = self._end_epoch(metrics, validate=due)
            val_seconds = spent or val_seconds
            overhead = self._clock() - end_start - spent
            if stop:
                break
        if self.distributed:
            dist.destroy_process_group()
        return last

    def _end_epoch(self, metrics: dict[str, float], validate: bool) -> tuple[dict[str, Any], float]:
        """Validate (if `validate` and there is a validation set), checkpoint, log and plot the
        epoch just trained; returns its record and the seconds validation took."""
        record: dict[str, Any] = {"epoch": self.epoch, "iteration": self.iteration, **metrics}
        spent = 0.0
        if self.is_main:
            if self.val_set is not None and validate:
                val_start = self._clock()
                stats = self.validate()
                record["val"] = stats
                logger.info("epoch %d\n%s", self.epoch, format_table(stats, self.recipe.model.name))
                if self.ema is not None:  # what the average adds, measured every time
                    raw = self.validate(self.model)
                    record["val_train_weights"] = {k: raw[k] for k in ("AP", "PCK") if k in raw}
                    logger.info(
                        "epoch %d: weight average AP %.4f PCK %.4f, raw weights AP %.4f PCK %.4f",
                        self.epoch,
                        stats.get("AP", math.nan),
                        stats.get("PCK", math.nan),
                        raw.get("AP", math.nan),
                        raw.get("PCK", math.nan),
                    )
                spent = self._clock() - val_start  # both scorings, where there are two
                chosen = stats[self.recipe.evaluation.best_metric]
                if chosen > self.best_ap:
                    self.best_ap = chosen
                    record["best"] = True
                    self._save(self.best, record)
            self._save(self.latest, record)
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            plot_log(self.log_path, self.paths.work_dir / "curves.png")
            logger.info(
                "epoch %d: loss %.6f, %.1f images/s",
                self.epoch,
                metrics.get("loss", math.nan),
                metrics["images_per_s"],
            )
        if self.distributed:
            dist.barrier()  # the other ranks wait for rank 0's validation and checkpoint
        return record, spent

    def _over_budget(self, budget_s: float, start: float, pace: list[float], val_seconds: float) -> bool:
        """Called after each epoch's training, before its validation. Fits the recipe to the
        time left (once, after the second epoch of this run); True when the next epoch, with
        its share of validation and the last validation, would overrun (this epoch then
        validates and the run stops)."""
        elapsed = self._clock() - start
        per_epoch = pace[-1] + (val_seconds / self.cfg.val_interval if self.val_set is not None else 0.0)
        # The last validation, and this epoch's own if one is due now (not yet in `elapsed`).
        due_now = self.epoch % self.cfg.val_interval == 0
        reserve = val_seconds * (2 if due_now else 1) if self.val_set is not None else 0.0
        left = int((budget_s - elapsed - reserve) // per_epoch) if per_epoch > 0 else self.cfg.epochs
        if self.distributed:  # every rank must take the same decision
            shared = torch.tensor([left], dtype=torch.float64, device=self.device)
            dist.broadcast(shared, 0)
            left = int(shared.item())
        if len(pace) == 2 and left >= 1:  # the first epoch also paid for start-up and warm-up
            fitted = self.recipe.compressed(self.epoch + left)
            if fitted is not self.recipe:
                logger.info(
                    "time budget: %d epochs of %.1f s fit; the recipe's %d epochs are compressed "
                    "to %d (lr steps %s, sigma schedule %s)",
                    self.epoch + left,
                    per_epoch,
                    self.cfg.epochs,
                    fitted.train.epochs,
                    list(fitted.train.lr_steps),
                    [list(entry) for entry in fitted.data.sigma_schedule],
                )
                self._use_recipe(fitted)
        if left < 1 and self.epoch < self.cfg.epochs:
            logger.warning(
                "time budget: stopping after epoch %d of %d, before the schedule's end",
                self.epoch,
                self.cfg.epochs,
            )
            return True
        return False

    def _use_recipe(self, recipe: Recipe) -> None:
        """Switch to a compressed recipe mid-run. The loader is rebuilt, because persistent
        workers hold their own copy of the data settings (the sigma schedule)."""
        self.recipe, self.cfg = recipe, recipe.train
        self.train_set.cfg = recipe.data
        if self.cfg.workers > 0:
            self.loader = self._build_loader()
        if self.is_main:
            self._write_recipe()

    def _write_recipe(self) -> None:
        header = f"# the recipe this run trained with (from {portable_recipe_path(self.recipe.path)})\n"
        atomic_write_text(self.paths.work_dir / "recipe.yaml", header + self.recipe.to_yaml())
