"""Architecture config of one SDPose variant, read from `configs/<variant>.yaml` (section `model`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sdpose_core.config import ConfigError, from_dict, load_yaml, resolve_config_path

__all__ = ["ModelConfig", "load_model_config", "load_variant_file", "VARIANT_NAMES", "VARIANT_SECTIONS"]

VARIANT_NAMES = ("sdpose_t", "sdpose_s_v1", "sdpose_s_v2", "sdpose_b")

# Top-level sections a variant file may hold; each is validated by the module that owns it.
VARIANT_SECTIONS = frozenset({"model", "train", "data", "evaluation"})


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of one SDPose variant (the authors' configs).

    Sizes are (height, width). `cycle_num` is the number of MCT cycles used in training;
    inference always runs one.
    """

    name: str
    backbone: Literal["stemnet", "hrnet_3stage"]
    patch_size: tuple[int, int]
    depth: int
    cycle_num: int
    dim: int = 192
    heads: int = 8
    ffn_dim: int = 576
    heatmap_hidden_dim: int = 384
    num_keypoints: int = 17
    image_size: tuple[int, int] = (256, 192)
    heatmap_size: tuple[int, int] = (64, 48)

    def __post_init__(self) -> None:
        hh, hw = self.heatmap_size
        ph, pw = self.patch_size
        if hh % ph or hw % pw:
            raise ValueError(f"patch_size {self.patch_size} must divide heatmap_size {self.heatmap_size}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")
        if self.depth < 1 or self.cycle_num < 1:
            raise ValueError("depth and cycle_num must be at least 1")

    @property
    def feature_channels(self) -> int:
        """Channels of the backbone feature map that feeds the token head."""
        return 256 if self.backbone == "stemnet" else 32

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch grid (rows, cols) over the 64x48 feature map."""
        return (self.heatmap_size[0] // self.patch_size[0], self.heatmap_size[1] // self.patch_size[1])

    @property
    def num_patches(self) -> int:
        gh, gw = self.grid_size
        return gh * gw


def load_variant_file(name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The sections of a variant or recipe file, with its `base:` recipes folded in.

    A recipe may start from another (`base: sdpose_t_distill_stage22`, a name in `configs/` or a
    path relative to the file) and write only what it changes: each of its sections' keys
    replaces the base's key of that name, so a training stage reads as its difference from the
    last. Bases may have bases; a loop is an error."""
    path = resolve_config_path(name_or_path)
    chain: list[Path] = []
    sections: dict[str, dict[str, Any]] = {}
    current: Path | None = path
    while current is not None:
        chain.append(current.resolve())
        if chain[-1] in chain[:-1]:
            loop = " -> ".join(p.name for p in chain)
            raise ConfigError(f"{path}: its base recipes go round in a loop ({loop})")
        data = load_yaml(current)
        base = data.pop("base", None)
        unknown = sorted(set(data) - VARIANT_SECTIONS)
        if unknown:
            raise ConfigError(
                f"{current}: unknown section(s) {', '.join(unknown)}; allowed: base, "
                f"{', '.join(sorted(VARIANT_SECTIONS))}"
            )
        for name, section in data.items():
            if section is not None and not isinstance(section, dict):
                raise ConfigError(f"{current}: section '{name}' must be a mapping of keys to values")
            sections[name] = {**(section or {}), **sections.get(name, {})}
        current = _base_path(current, base) if base is not None else None
    if "model" not in sections:
        raise ConfigError(f"{path}: no 'model' section")
    return path, sections


def _base_path(including: Path, base: Any) -> Path:
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{including}: 'base' must name a recipe, e.g. base: sdpose_t_distill_stage22")
    if base.endswith((".yaml", ".yml")):
        return resolve_config_path(including.parent / base)
    return resolve_config_path(base)


def load_model_config(name_or_path: str | Path) -> ModelConfig:
    """Read the `model` section of a variant file (``sdpose_t`` or a path to a YAML file)."""
    path, sections = load_variant_file(name_or_path)
    return from_dict(ModelConfig, sections["model"], where=f"{path.name}:model")
