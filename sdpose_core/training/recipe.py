"""A training recipe: the `model`, `train`, `data` and `evaluation` sections of one YAML file.

`configs/sdpose_t.yaml` and friends hold the paper's 300-epoch recipes (from the authors' configs);
smaller recipes (CPU smoke test, distillation of the bundled weights) live beside them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdpose_core.config import ConfigError, from_dict
from sdpose_core.data import DataConfig
from sdpose_core.models.config import ModelConfig, load_variant_file

__all__ = ["TrainConfig", "EvalConfig", "Recipe", "load_recipe", "portable_recipe_path"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; defaults are the official recipe (Adam 1e-3, warm-up 500 iterations
    from 0.001x, x0.1 at epochs 200 and 260, 300 epochs, validation every 10)."""

    epochs: int = 300
    batch_size: int = 64  # per GPU (T and S-V1: 64, S-V2: 24, B: 32)
    lr: float = 1e-3
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    lr_steps: tuple[int, ...] = (200, 260)
    lr_gamma: float = 0.1
    val_interval: int = 10
    workers: int = 4
    amp: bool = True  # bf16 autocast on CUDA; on CPU only when --amp is given
    seed: int = 0
    heatmap_weight: float = 1.0
    vis_dist_weight: float = 5e-6
    kpt_dist_weight: float = 5e-6
    log_interval: int = 50
    max_steps_per_epoch: int | None = None  # shorter "epochs" for small budgets (checkpoints, validation)
    # An exponential moving average of the weights (0: off). When on, validation, best.pth and
    # the weights a checkpoint hands to users are the average; the raw weights travel beside them
    # for --resume. It smooths the step-to-step noise of a high learning rate without lowering it.
    ema_decay: float = 0.0
    # Minutes between mid-epoch checkpoints (latest.pth, resumable at that step with --resume);
    # 0: at epoch ends only. A CPU epoch can take an hour, and a crash should not cost it.
    checkpoint_minutes: float = 10.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.val_interval < 1:
            raise ValueError("epochs, batch_size and val_interval must be at least 1")
        if self.lr <= 0:
            raise ValueError("lr must be positive")
        if self.checkpoint_minutes < 0:
            raise ValueError(
                f"checkpoint_minutes must be >= 0 (0: at epoch ends only), got {self.checkpoint_minutes}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0 turns it off), got {self.ema_decay}")

    def lr_at(self, epoch: int, iteration: int) -> float:
        """Learning rate for a global iteration in a 0-based epoch: linear warm-up, then steps."""
        lr = self.lr * self.lr_gamma ** sum(epoch >= step for step in self.lr_steps)
        if iteration < self.warmup_iters:
            lr *= 1 - (1 - iteration / self.warmup_iters) * (1 - self.warmup_ratio)
        return lr


@dataclass(frozen=True)
class EvalConfig:
    """Validation settings (the authors' protocol: MMPose 0.29's TopDownCocoDataset)."""

    flip_test: bool = True
    batch_size: int = 32
    det_score_thr: float = 0.0
    vis_thr: float = 0.2
    oks_thr: float = 0.9
    # Which validation figure picks best.pth: COCO "AP", or "PCK" (PCK@0.2 of the limb joints,
    # torso-normalised: for sets without face labels, such as LSPET).
    best_metric: str = "AP"

    def __post_init__(self) -> None:
        if self.best_metric not in ("AP", "PCK"):
            raise ValueError(f"best_metric must be AP or PCK, got {self.best_metric!r}")


def portable_recipe_path(path: str | Path) -> str:
    """How a checkpoint names its recipe file: from the last `configs` folder on
    (`configs/sdpose_t.yaml`), else the file name. Shipped weights carry it, and the trainer's
    home folder is no business of theirs."""
    parts = Path(path).parts
    folders = [i for i, part in enumerate(parts[:-1]) if part == "configs"]
    return Path(*parts[folders[-1] :]).as_posix() if folders else Path(path).name


@dataclass(frozen=True)
class Recipe:
    path: Path
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)

    def compressed(self, epochs: int) -> Recipe:
        """The same schedule squeezed into fewer ``epochs`` (never stretched: ``epochs`` at or
        above the recipe's returns it unchanged).

        Learning-rate steps and the sigma schedule's first epochs scale by ``epochs /
        train.epochs``; entries the recipe never reaches (at or past its last epoch) are left
        out. Each learning-rate step keeps an epoch of its own (at least 1, after the one
        before) and at least one epoch after it, as every step the recipe reaches has: a step
        at 7 of 8 epochs lands at 3 of 4, not on the end, where it would never take effect. A
        step with no epoch left is dropped rather than stacked, so the rate never falls by
        gamma squared at once. Sigma entries that land on the same epoch keep the later
        sigma."""
        if epochs >= self.train.epochs:
            return self
        if epochs < 1:
            raise ValueError("a recipe needs at least one epoch")
        ratio = epochs / self.train.epochs

        lr_steps: list[int] = []
        for step in sorted(s for s in self.train.lr_steps if s < self.train.epochs):
            first_free = lr_steps[-1] + 1 if lr_steps else 1  # its own epoch, after the last
            if first_free <= epochs - 1:  # and one epoch after it
                lr_steps.append(min(max(round(step * ratio), first_free), epochs - 1))
        sigma_schedule: dict[int, float] = {}
        for start, sigma in self.data.sigma_schedule:
            if start < self.train.epochs:
                sigma_schedule[min(epochs - 1, round(start * ratio))] = float(sigma)
        return dataclasses.replace(
            self,
            train=dataclasses.replace(self.train, epochs=epochs, lr_steps=tuple(lr_steps)),
            data=dataclasses.replace(self.data, sigma_schedule=tuple(sorted(sigma_schedule.items()))),
        )

    def to_yaml(self) -> str:
        """The recipe as a YAML file that `load_recipe` reads back to an equal recipe."""
        import yaml

        def plain(value: Any) -> Any:
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        sections = {name: plain(section) for name, section in self.to_dict().items() if name != "path"}
        return yaml.safe_dump(sections, sort_keys=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": portable_recipe_path(self.path),
            **{
                name: dataclasses.asdict(getattr(self, name))
                for name in ("model", "train", "data", "evaluation")
            },
        }


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Read every section of a variant/recipe file (and its bases), validating each against its
    dataclass."""
    path, data = load_variant_file(name_or_path)
    model = from_dict(ModelConfig, data["model"], f"{path.name}:model")
    train = from_dict(TrainConfig, data.get("train") or {}, f"{path.name}:train")
    data_section = data.get("data") or {}
    data_cfg = from_dict(DataConfig, data_section, f"{path.name}:data")
    evaluation = from_dict(EvalConfig, data.get("evaluation") or {}, f"{path.name}:evaluation")
    # The crop and heatmap sizes are the model's: a recipe writes them once, in `model:` as
    # (h, w); the data pipeline works in (w, h). A `data:` section may repeat them, but only equal.
    sizes = {name: tuple(getattr(model, name)[::-1]) for name in ("image_size", "heatmap_size")}
    for name, size in sizes.items():
        if name in data_section and tuple(getattr(data_cfg, name)) != size:
            raise ConfigError(
                f"{path.name}: data.{name} {list(getattr(data_cfg, name))} is (w, h) and must equal the "
                f"model's {name} {list(getattr(model, name))} (h, w) reversed; leave it out to derive it"
            )
    data_cfg = dataclasses.replace(data_cfg, **sizes)
    return Recipe(path, model, train, data_cfg, evaluation)
