"""Decoding matches MMPose 0.29 (golden fixture) and recovers known sub-pixel peaks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from sdpose_core.decode import (
    dark_refine,
    decode_heatmaps,
    flip_back,
    gaussian_blur_heatmaps,
    get_max_preds,
)
from sdpose_core.geometry import boxes_to_center_scale
from sdpose_core.keypoints import FLIP_INDEX, KEYPOINT_NAMES


@pytest.fixture(scope="module")
def fixture(shared_dir: Path) -> dict[str, np.ndarray]:
    with np.load(shared_dir / "golden" / "decode_fixture.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("mode", ["unbiased", "default"])
def test_decode_matches_golden(fixture: dict[str, np.ndarray], mode: str) -> None:
    preds, maxvals = decode_heatmaps(fixture["heatmaps"], fixture["center"], fixture["scale"], mode)
    assert preds.shape == (1, 17, 2) and preds.dtype == np.float32
    assert maxvals.shape == (1, 17, 1) and maxvals.dtype == np.float32
    np.testing.assert_allclose(preds, fixture[f"preds_{mode}"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(maxvals, fixture[f"maxvals_{mode}"], rtol=0, atol=1e-6)


def test_unbiased_recovers_fixture_centres(fixture: dict[str, np.ndarray]) -> None:
    coords, _ = get_max_preds(fixture["heatmaps"])
    refined = dark_refine(coords, fixture["heatmaps"])
    # Joint 0 sits at the border, where DARK is skipped by design.
    np.testing.assert_allclose(refined[0, 1:], fixture["gauss_centers_xy"][1:], atol=2e-3)
    np.testing.assert_array_equal(refined[0, 0], coords[0, 0])


def test_input_heatmaps_not_modified(fixture: dict[str, np.ndarray]) -> None:
    heatmaps = fixture["heatmaps"].copy()
    decode_heatmaps(heatmaps, fixture["center"], fixture["scale"])
    np.testing.assert_array_equal(heatmaps, fixture["heatmaps"])


def test_batched_blur_equals_per_map_blur() -> None:
    heatmaps = np.random.default_rng(1).standard_normal((3, 5, 64, 48)).astype(np.float32) + 2.0
    batched = gaussian_blur_heatmaps(heatmaps, 11)
    for n in range(3):
        for k in range(5):
            padded = np.pad(heatmaps[n, k], 5)
            single = cv2.GaussianBlur(padded, (11, 11), 0)[5:-5, 5:-5]
            single = single * (heatmaps[n, k].max() / single.max())
            np.testing.assert_allclose(batched[n, k], single, rtol=0, atol=1e-6)


def test_max_preds_nonpositive_gives_minus_one() -> None:
    heatmaps = np.zeros((2, 3, 8, 6), dtype=np.float32)
    heatmaps[0, 0, 5, 4] = 0.7
    heatmaps[1, 1] = -1.0
    coords, maxvals = get_max_preds(heatmaps)
    np.testing.assert_array_equal(coords[0, 0], [4, 5])
    np.testing.assert_array_equal(coords[0, 1], [-1, -1])
    np.testing.assert_array_equal(coords[1, 1], [-1, -1])
    assert maxvals[0, 0, 0] == pytest.approx(0.7)


def test_flip_back_swaps_mirrors_and_shifts() -> None:
    left, right = KEYPOINT_NAMES.index("left_wrist"), KEYPOINT_NAMES.index("right_wrist")
    h, w, col, row = 64, 48, 10, 20
    flipped = np.zeros((1, 17, h, w), dtype=np.float32)
    flipped[0, left, row, col] = 1.0
    flipped[0, left, :, w - 1] = 0.5  # lands in column 0 after mirroring
    back = flip_back(flipped)
    assert back.shape == flipped.shape
    assert back[0, left].max() == 0.0
    # Mirrored column is w-1-col, then shifted right by one.
    assert back[0, right, row, w - col] == 1.0
    np.testing.assert_array_equal(back[0, right, :, 0], 0.5)
    np.testing.assert_array_equal(back[0, right, :, 1], 0.5)
    # Without the shift, mirroring alone.
    plain = flip_back(flipped, shift=False)
    assert plain[0, right, row, w - 1 - col] == 1.0
    assert flipped[0, left, row, col] == 1.0  # input untouched


def test_flip_back_torch_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    heatmaps = np.random.default_rng(2).standard_normal((2, 17, 64, 48)).astype(np.float32)
    result = flip_back(torch.from_numpy(heatmaps.copy()))
    assert isinstance(result, torch.Tensor)
    np.testing.assert_array_equal(result.numpy(), flip_back(heatmaps))


def test_flip_index_is_involution() -> None:
    np.testing.assert_array_equal(FLIP_INDEX[FLIP_INDEX], np.arange(17))


def test_decode_empty() -> None:
    empty = np.zeros((0, 2))
    preds, maxvals = decode_heatmaps(np.zeros((0, 17, 64, 48), np.float32), empty, empty)
    assert preds.shape == (0, 17, 2) and maxvals.shape == (0, 17, 1)
    assert preds.dtype == np.float32 and maxvals.dtype == np.float32
    assert flip_back(np.zeros((0, 17, 64, 48))).shape == (0, 17, 64, 48)


def test_unbiased_subpixel_end_to_end() -> None:
    """A sigma-2 Gaussian at a known sub-pixel heatmap point decodes to its image position."""
    boxes = np.array([[100.0, 50.0, 220.0, 350.0], [400.0, 300.0, 700.0, 420.0]])
    centers, scales = boxes_to_center_scale(boxes)
    points = np.array([[[20.3, 30.7], [10.45, 12.2]], [[33.8, 40.15], [7.6, 50.9]]])
    ys, xs = np.mgrid[0:64, 0:48]
    heatmaps = np.exp(
        -((xs - points[..., 0, None, None]) ** 2 + (ys - points[..., 1, None, None]) ** 2) / (2 * 2.0**2)
    ).astype(np.float32)
    preds, maxvals = decode_heatmaps(heatmaps, centers, scales, "unbiased")
    size_px = scales * 200.0
    expected = points * size_px[:, None] / np.array([48.0, 64.0]) + (centers - size_px / 2)[:, None]
    px_per_cell = (size_px / np.array([48.0, 64.0]))[:, None]
    assert np.all(np.abs(preds - expected) <= 0.05 * px_per_cell)
    assert np.all(maxvals > 0.8)
