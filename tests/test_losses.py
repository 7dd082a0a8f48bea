"""SDPose losses against an independent numpy reading of the authors' TokenDistilLoss, on golden outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sdpose_core.checkpoint import load_checkpoint
from sdpose_core.models import CycleOutputs, build_model
from sdpose_core.training.losses import LossWeights, SDPoseLoss, joints_mse_loss, token_distill_loss
from tests.golden import golden_state_dict, load_fixture

W = 5e-6


def _target(batch: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian (sigma 2) GT maps at random sub-pixel spots, weights mixing 0, 1 and 0.5."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:64, 0:48]
    centres = rng.uniform((2, 2), (46, 62), size=(batch, 17, 2))
    target = np.exp(-((xs - centres[..., 0, None, None]) ** 2 + (ys - centres[..., 1, None, None]) ** 2) / 8)
    weight = rng.choice([0.0, 1.0, 1.0, 0.5], size=(batch, 17, 1))
    weight[:, 0] = 0.0
    weight[:, 1] = 1.0
    return target.astype(np.float32), weight.astype(np.float32)


def _np_joints_mse(pred: np.ndarray, target: np.ndarray, weight: np.ndarray) -> float:
    """MMPose 0.29 JointsMSELoss, joint by joint, in float64."""
    pred, target, weight = (np.asarray(a, np.float64) for a in (pred, target, weight))
    k = pred.shape[1]
    total = 0.0
    for j in range(k):
        w = weight[:, j].reshape(-1, 1, 1)
        total += np.mean((pred[:, j] * w - target[:, j] * w) ** 2)
    return total / k


def _np_chain(tokens: list[np.ndarray], weight: float = W) -> float:
    tokens = [np.asarray(t, np.float64) for t in tokens]
    return weight * sum(np.mean((tokens[c] - tokens[c + 1]) ** 2) for c in range(len(tokens) - 1))


@pytest.fixture(scope="module")
def golden_t(shared_dir: Path) -> dict[str, np.ndarray]:
    return load_fixture(shared_dir, "sdpose_t")


@pytest.fixture(scope="module")
def golden_cycles(golden_t: dict[str, np.ndarray]) -> CycleOutputs:
    """All three cycles of the golden SDPose-T (vis tokens are not stored in the fixture)."""
    model = build_model("sdpose_t")
    load_checkpoint(model, {"state_dict": golden_state_dict(golden_t)})
    with torch.no_grad():
        return model.eval().forward_cycles(torch.from_numpy(golden_t["input"]))


def test_model_cycles_match_fixture(golden_t: dict[str, np.ndarray], golden_cycles: CycleOutputs) -> None:
    """The model tokens used below are the official ones (so the loss sees official inputs)."""
    assert len(golden_cycles.heatmaps) == 3
    for c in range(3):
        np.testing.assert_allclose(
            golden_cycles.heatmaps[c].numpy(), golden_t["heatmaps_all_cycles"][c], atol=1e-4, rtol=1e-4
        )
        np.testing.assert_allclose(
            golden_cycles.kpt_tokens[c].numpy(), golden_t["kpt_tokens_all_cycles"][c], atol=5e-4
        )


def test_sdpose_loss_matches_numpy_formula(
    golden_t: dict[str, np.ndarray], golden_cycles: CycleOutputs
) -> None:
    heatmaps = golden_t["heatmaps_all_cycles"]  # (3,1,17,64,48)
    kpt = golden_t["kpt_tokens_all_cycles"]  # (3,1,17,192)
    vis = [t.numpy() for t in golden_cycles.vis_tokens]
    target, weight = _target()
    outputs = CycleOutputs(
        heatmaps=[torch.from_numpy(h) for h in heatmaps],
        kpt_tokens=[torch.from_numpy(t) for t in kpt],
        vis_tokens=[torch.from_numpy(v) for v in vis],
    )
    losses = SDPoseLoss()(outputs, torch.from_numpy(target), torch.from_numpy(weight))

    expected_heatmap = sum(_np_joints_mse(h, target, weight) for h in heatmaps)
    expected_kpt = _np_chain(list(kpt))
    expected_vis = _np_chain(vis)
    assert set(losses) == {"heatmap_loss", "vis_dist_loss", "kpt_dist_loss", "loss"}
    assert losses["heatmap_loss"].item() == pytest.approx(expected_heatmap, rel=1e-5)
    assert losses["kpt_dist_loss"].item() == pytest.approx(expected_kpt, rel=1e-5)
    assert losses["vis_dist_loss"].item() == pytest.approx(expected_vis, rel=1e-5)
    assert expected_kpt > 0 and expected_vis > 0
    assert losses["loss"].item() == pytest.approx(expected_heatmap + expected_kpt + expected_vis, rel=1e-5)


def test_loss_weights_are_configurable(golden_cycles: CycleOutputs) -> None:
    target, weight = (torch.from_numpy(a) for a in _target())
    base = SDPoseLoss()(golden_cycles, target, weight)
    scaled = SDPoseLoss(LossWeights(heatmap=2.0, vis_dist=1e-3, kpt_dist=0.0))(golden_cycles, target, weight)
    assert scaled["heatmap_loss"].item() == pytest.approx(2 * base["heatmap_loss"].item(), rel=1e-6)
    assert scaled["vis_dist_loss"].item() == pytest.approx(200 * base["vis_dist_loss"].item(), rel=1e-5)
    assert scaled["kpt_dist_loss"].item() == 0.0


def test_zero_target_weight_removes_joint() -> None:
    target, weight = (torch.from_numpy(a) for a in _target(batch=2, seed=1))
    pred = torch.randn(2, 17, 64, 48, requires_grad=True)
    loss = joints_mse_loss(pred, target, weight)
    loss.backward()
    assert weight[:, 0].eq(0).all()
    assert pred.grad[:, 0].abs().max().item() == 0.0
    assert pred.grad[:, 1].abs().max().item() > 0.0
    changed = pred.detach().clone()
    changed[:, 0] += 100.0  # the ignored joint may be anything
    assert joints_mse_loss(changed, target, weight).item() == pytest.approx(loss.item(), rel=1e-6)
    flat = joints_mse_loss(pred, target, weight.reshape(2, 17))  # (B,K) weights accepted too
    assert flat.item() == pytest.approx(loss.item(), rel=1e-7)


def test_distillation_has_no_detach() -> None:
    student = torch.randn(2, 17, 192, requires_grad=True)
    teacher = torch.randn(2, 17, 192, requires_grad=True)
    loss = token_distill_loss(student, teacher)
    loss.backward()
    n = student.numel()
    assert teacher.grad is not None and teacher.grad.abs().max().item() > 0
    expected = 2 * W / n * (teacher - student).detach()
    torch.testing.assert_close(teacher.grad, expected)
    torch.testing.assert_close(student.grad, -expected)


def test_three_cycles_chain_two_pairs() -> None:
    """Cycle 1 teaches 0, cycle 2 teaches 1: no (0,2) pair, and gradients reach all three."""
    tokens = [torch.randn(1, 17, 192, requires_grad=True) for _ in range(3)]
    vis = [torch.randn(1, 256, 192, requires_grad=True) for _ in range(3)]
    heatmaps = [torch.randn(1, 17, 64, 48, requires_grad=True) for _ in range(3)]
    target, weight = (torch.from_numpy(a) for a in _target())
    losses = SDPoseLoss()(CycleOutputs(heatmaps, tokens, vis), target, weight)
    np_tokens = [t.detach().numpy() for t in tokens]
    assert losses["kpt_dist_loss"].item() == pytest.approx(_np_chain(np_tokens), rel=1e-5)
    all_pairs = W * sum(
        np.mean((np_tokens[i].astype(np.float64) - np_tokens[j]) ** 2)
        for i in range(3)
        for j in range(i + 1, 3)
    )
    assert losses["kpt_dist_loss"].item() != pytest.approx(all_pairs, rel=1e-3)
    losses["loss"].backward()
    for group in (tokens, vis, heatmaps):
        for tensor in group:
            assert tensor.grad is not None and tensor.grad.abs().max().item() > 0
    # Middle cycle: teacher of pair (0,1) and student of pair (1,2).
    n = tokens[1].numel()
    expected = 2 * W / n * ((tokens[1] - tokens[0]) + (tokens[1] - tokens[2])).detach()
    torch.testing.assert_close(tokens[1].grad, expected)


def test_single_cycle_has_no_distillation() -> None:
    target, weight = (torch.from_numpy(a) for a in _target())
    out = CycleOutputs([torch.zeros(1, 17, 64, 48)], [torch.zeros(1, 17, 192)], [torch.zeros(1, 256, 192)])
    losses = SDPoseLoss()(out, target, weight)
    assert losses["vis_dist_loss"].item() == 0.0 and losses["kpt_dist_loss"].item() == 0.0
    assert losses["heatmap_loss"].item() == pytest.approx(
        _np_joints_mse(np.zeros((1, 17, 64, 48)), *_target())
    )
