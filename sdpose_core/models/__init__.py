"""SDPose models: `build_model("sdpose_t")` or `build_model("path/to/config.yaml")`."""

from __future__ import annotations

from pathlib import Path

from sdpose_core.models.config import VARIANT_NAMES, ModelConfig, load_model_config
from sdpose_core.models.sdpose import SDPose
from sdpose_core.models.token_head import CycleOutputs

__all__ = ["build_model", "SDPose", "ModelConfig", "CycleOutputs", "load_model_config", "VARIANT_NAMES"]


def build_model(name_or_config: str | Path | ModelConfig) -> SDPose:
    """Build a variant from its name (``sdpose_t``, ``sdpose_s_v1``, ``sdpose_s_v2``,
    ``sdpose_b``), a YAML config path, or a `ModelConfig`. Weights are freshly initialised."""
    cfg = name_or_config if isinstance(name_or_config, ModelConfig) else load_model_config(name_or_config)
    return SDPose(cfg)
