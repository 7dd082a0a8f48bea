"""The four SDPose variants: official checkpoint layout, golden outputs, inference semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdpose_core.checkpoint import load_checkpoint
from sdpose_core.config import ConfigError
from sdpose_core.decode import flip_back
from sdpose_core.models import VARIANT_NAMES, build_model
from sdpose_core.models.token_head import sine_position_table
from tests.golden import GOLDEN_VARIANTS, golden_state_dict, load_fixture

HEATMAP_TOL = {"atol": 1e-4, "rtol": 1e-4}  # shared/golden/README.md, fp32 on CPU
TOKEN_ATOL = 5e-4

# The authors' README (github.com/MartyrPenink/SDPose): trainable and all parameters.
PARAMS = {
    "sdpose_t": (4_398_528, 4_447_680),
    "sdpose_s_v1": (6_620_736, 6_669_888),
    "sdpose_s_v2": (6_227_520, 6_374_976),
    "sdpose_b": (13_145_984, 13_195_136),
}


def _official_layout(shared_dir, variant: str) -> list[tuple[str, tuple[int, ...]]]:
    rows = (shared_dir / "spec" / "sdpose_state_dict" / f"{variant}.txt").read_text().splitlines()
    layout = []
    for row in rows:
        if row.startswith("#"):
            continue
        key, shape, _dtype = row.split("\t")
        layout.append((key, () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))))
    return layout


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_state_dict_is_the_official_layout(shared_dir, variant):
    model = build_model(variant)
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == _official_layout(shared_dir, variant)
    assert model.parameter_counts() == PARAMS[variant]


def test_build_model_accepts_a_config_path_and_rejects_bad_configs(tmp_path):
    path = tmp_path / "custom.yaml"
    path.write_text(
        "model:\n  name: custom\n  backbone: stemnet\n  patch_size: [4, 3]\n  depth: 2\n  cycle_num: 2\n"
    )
    model = build_model(path)
    assert len(model.tokens.transformer_layer1.layers) == 2
    (tmp_path / "typo.yaml").write_text(path.read_text() + "  heeds: 8\n")
    with pytest.raises(ConfigError, match="unknown key.*heeds"):
        build_model(tmp_path / "typo.yaml")
    (tmp_path / "bad.yaml").write_text(path.read_text().replace("[4, 3]", "[5, 3]"))
    with pytest.raises(ConfigError, match="must divide"):
        build_model(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="unknown config"):
        build_model("sdpose_xl")


def test_sine_table_matches_official_values(shared_dir):
    fixture = load_fixture(shared_dir, "sdpose_t")
    np.testing.assert_allclose(sine_position_table(16, 16).numpy(), fixture["pos_embedding"], atol=2e-7)


@pytest.fixture(scope="module", params=GOLDEN_VARIANTS)
def golden(request, shared_dir):
    """A variant loaded through `load_checkpoint` from an mmcv-style checkpoint of golden weights."""
    fixture = load_fixture(shared_dir, request.param)
    model = build_model(request.param).eval()
    info = load_checkpoint(model, {"meta": {"epoch": 300}, "state_dict": golden_state_dict(fixture)})
    assert info.variant == request.param and info.source == "mmcv"
    return model, fixture


def test_golden_backbone_features(golden):
    model, fixture = golden
    with torch.no_grad():
        feature = model.forward_features(torch.from_numpy(fixture["input"]))
    assert tuple(feature.shape) == tuple(fixture["backbone_feat_shape"])
    np.testing.assert_allclose(
        feature[0].mean((1, 2)).numpy(), fixture["backbone_feat_chanmean"], atol=TOKEN_ATOL
    )
    np.testing.assert_allclose(feature[0, :8, :4, :4].numpy(), fixture["backbone_feat_crop"], atol=TOKEN_ATOL)


def test_golden_inference_heatmap_and_flip_test(golden):
    model, fixture = golden
    x = torch.from_numpy(fixture["input"])
    with torch.no_grad():
        heatmap = model(x).numpy()
        flipped = model(torch.flip(x, dims=[3])).numpy()
    np.testing.assert_allclose(heatmap, fixture["heatmap"], **HEATMAP_TOL)
    flip_test = (heatmap + flip_back(flipped)) / 2
    np.testing.assert_allclose(flip_test, fixture["heatmap_flip_test"], **HEATMAP_TOL)


def test_golden_every_cycle_in_training_mode(golden):
    model, fixture = golden
    x = torch.from_numpy(fixture["input"])
    # Training mode with frozen BN statistics: the fixtures were made with running stats.
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    try:
        with torch.no_grad():
            outputs = model(x)
    finally:
        model.eval()
    cycles = int(fixture["cycle_num"])
    assert len(outputs.heatmaps) == len(outputs.kpt_tokens) == len(outputs.vis_tokens) == cycles
    for c in range(cycles):
        np.testing.assert_allclose(
            outputs.heatmaps[c].numpy(), fixture["heatmaps_all_cycles"][c], **HEATMAP_TOL
        )
        np.testing.assert_allclose(
            outputs.kpt_tokens[c].numpy(), fixture["kpt_tokens_all_cycles"][c], atol=TOKEN_ATOL
        )
    assert outputs.vis_tokens[0].shape == (1, 256, 192)


def test_eval_runs_exactly_one_cycle(monkeypatch):
    model = build_model("sdpose_t").eval()
    calls = []
    layer = model.tokens.transformer_layer1
    original = layer.forward
    monkeypatch.setattr(layer, "forward", lambda *a: calls.append(1) or original(*a))
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 256, 192))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 17, 64, 48)
    assert len(calls) == 1
    model.train()
    calls.clear()
    model(torch.zeros(2, 3, 256, 192))
    assert len(calls) == 3


def test_s_v2_from_spec_runs_768_tokens():
    model = build_model("sdpose_s_v2").eval()
    with torch.no_grad():
        cycles = model.forward_cycles(torch.randn(1, 3, 256, 192))
    assert cycles.vis_tokens[0].shape == (1, 768, 192)
    assert cycles.heatmaps[0].shape == (1, 17, 64, 48)


def test_batch_items_are_independent():
    """Batching crops must not mix people: each row equals its own batch-1 result."""
    model = build_model("sdpose_t").eval()
    x = torch.randn(3, 3, 256, 192)
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
