"""Crop geometry: MMPose box/affine conventions, vectorisation, round trips, normalisation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sdpose_core.geometry import (
    HEATMAP_SIZE,
    INPUT_SIZE,
    apply_affine,
    box_xywh_to_xyxy,
    box_xyxy_to_xywh,
    boxes_to_center_scale,
    get_affine_matrices,
    get_affine_matrix,
    heatmap_to_image_coords,
    normalize_crops,
    warp_crops,
)

RNG = np.random.default_rng(0)
CENTERS = RNG.uniform(50, 1500, size=(6, 2))
SCALES = RNG.uniform(0.3, 4.0, size=(6, 1)) * np.array([[0.75, 1.0]])
ROTS = np.array([0.0, 30.0, -45.0, 90.0, 12.5, -170.0])


def test_box_conversions_round_trip() -> None:
    boxes = np.array([[10.0, 20.0, 110.0, 220.0], [0.0, 0.0, 5.0, 3.0]])
    xywh = box_xyxy_to_xywh(boxes)
    np.testing.assert_array_equal(xywh, [[10, 20, 100, 200], [0, 0, 5, 3]])
    np.testing.assert_array_equal(box_xywh_to_xyxy(xywh), boxes)


@pytest.mark.parametrize("box", [[100.0, 100.0, 500.0, 200.0], [100.0, 100.0, 150.0, 400.0]])
def test_center_scale_aspect_and_padding(box: list[float]) -> None:
    center, scale = boxes_to_center_scale(np.array([box]))
    x1, y1, x2, y2 = box
    np.testing.assert_allclose(center, [[(x1 + x2) / 2, (y1 + y2) / 2]])
    assert scale[0, 0] / scale[0, 1] == pytest.approx(0.75)
    w, h = x2 - x1, y2 - y1
    # The longer (relative to 3:4) side is kept and padded by 1.25; the other is enlarged.
    expected = [w, w / 0.75] if w > 0.75 * h else [h * 0.75, h]
    np.testing.assert_allclose(scale[0] * 200.0, np.array(expected) * 1.25)


def test_affine_matches_textbook_similarity() -> None:
    """No rotation: crop = (p - c) * out_w / (scale_w * 200) + crop_centre."""
    center, scale = np.array([320.0, 240.0]), np.array([1.5, 2.0])
    matrix = get_affine_matrix(center, scale, 0.0, INPUT_SIZE)
    zoom = 192 / 300.0
    expected = np.array([[zoom, 0, 96 - zoom * 320], [0, zoom, 128 - zoom * 240]])
    np.testing.assert_allclose(matrix, expected, atol=1e-9)
    assert matrix.dtype == np.float64 and matrix.shape == (2, 3)


@pytest.mark.parametrize("inv", [False, True])
def test_vectorised_matrices_equal_single(inv: bool) -> None:
    batch = get_affine_matrices(CENTERS, SCALES, ROTS, INPUT_SIZE, inv=inv)
    assert batch.shape == (6, 2, 3)
    for i in range(6):
        single = get_affine_matrix(CENTERS[i], SCALES[i], ROTS[i], INPUT_SIZE, inv=inv)
        np.testing.assert_allclose(batch[i], single, rtol=1e-9, atol=1e-9)
    no_rot = get_affine_matrices(CENTERS, SCALES, None, HEATMAP_SIZE, inv=inv)
    single = get_affine_matrix(CENTERS[2], SCALES[2], 0.0, HEATMAP_SIZE, inv=inv)
    np.testing.assert_allclose(no_rot[2], single, rtol=1e-9, atol=1e-9)
    assert get_affine_matrices(np.zeros((0, 2)), np.zeros((0, 2)), None, INPUT_SIZE).shape == (0, 2, 3)


def test_forward_then_inverse_round_trip() -> None:
    forward = get_affine_matrices(CENTERS, SCALES, ROTS, INPUT_SIZE)
    backward = get_affine_matrices(CENTERS, SCALES, ROTS, INPUT_SIZE, inv=True)
    points = RNG.uniform(0, 2000, size=(6, 17, 2))
    in_crop = apply_affine(points, forward)
    np.testing.assert_allclose(apply_affine(in_crop, backward), points, atol=1e-4)
    # The box centre lands in the crop centre whatever the rotation (up to the float32
    # rounding of the triangle points that MMPose also does).
    crop_centres = apply_affine(CENTERS[:, None], forward)[:, 0]
    np.testing.assert_allclose(crop_centres, np.tile([96.0, 128.0], (6, 1)), rtol=0, atol=1e-3)
    # Single-matrix form agrees with the batched form.
    np.testing.assert_allclose(apply_affine(points[1], forward[1]), in_crop[1])


def test_heatmap_centre_maps_to_box_centre() -> None:
    boxes = np.array([[10.0, 20.0, 110.0, 220.0], [300.0, 40.0, 700.0, 90.0]])
    centers, scales = boxes_to_center_scale(boxes)
    coords = np.tile(np.array([24.0, 32.0]), (2, 17, 1))
    image = heatmap_to_image_coords(coords, centers, scales)
    np.testing.assert_allclose(image, np.repeat(centers[:, None], 17, axis=1), atol=1e-9)
    # Heatmap origin is the crop's top-left corner.
    corner = heatmap_to_image_coords(np.zeros((2, 1, 2)), centers, scales)
    np.testing.assert_allclose(corner[:, 0], centers - scales * 100.0)


def test_heatmap_to_image_agrees_with_inverse_affine() -> None:
    """transform_preds is the inverse crop affine at heatmap resolution (no rotation)."""
    inverse = get_affine_matrices(CENTERS, SCALES, None, HEATMAP_SIZE, inv=True)
    coords = RNG.uniform(0, 48, size=(6, 17, 2))
    expected = apply_affine(coords, inverse)
    np.testing.assert_allclose(heatmap_to_image_coords(coords, CENTERS, SCALES), expected, rtol=0, atol=1e-3)


def test_warp_crops_matches_cv2() -> None:
    image = RNG.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    boxes = np.array([[100.0, 50.0, 300.0, 450.0], [400.0, 100.0, 600.0, 200.0]])
    centers, scales = boxes_to_center_scale(boxes)
    matrices = get_affine_matrices(centers, scales, None, INPUT_SIZE)
    crops = warp_crops(image, matrices)
    assert crops.shape == (2, 256, 192, 3) and crops.dtype == np.uint8
    for i in range(2):
        expected = cv2.warpAffine(image, matrices[i], (192, 256), flags=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(crops[i], expected)
    assert warp_crops(image, np.zeros((0, 2, 3))).shape == (0, 256, 192, 3)


def test_normalize_crops_values() -> None:
    crops = np.zeros((2, 256, 192, 3), dtype=np.uint8)
    crops[1, 10, 20] = (0, 128, 255)  # BGR
    out = normalize_crops(crops)
    assert out.shape == (2, 3, 256, 192) and out.dtype == np.float32
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    rgb = np.array([255, 128, 0]) / 255.0
    np.testing.assert_allclose(out[1, :, 10, 20], (rgb - mean) / std, atol=1e-6)
    np.testing.assert_allclose(out[0, :, 0, 0], -mean / std, atol=1e-6)
    assert normalize_crops(np.zeros((0, 256, 192, 3), np.uint8)).shape == (0, 3, 256, 192)
