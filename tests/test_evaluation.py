"""COCO evaluation: pycocotools metric, rescoring, OKS-NMS, dataset prediction and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from sdpose_core.checkpoint import load_checkpoint
from sdpose_core.decode import flip_back
from sdpose_core.evaluation import (
    STAT_NAMES,
    coco_keypoint_eval,
    format_table,
    infer_heatmaps,
    oks_iou,
    oks_nms,
    pck_against_annotations,
    predict_dataset,
    rescore,
    torso_pck,
)
from sdpose_core.keypoints import OKS_SIGMAS
from sdpose_core.models import build_model
from tests.golden import golden_state_dict, load_fixture


@pytest.fixture(scope="module")
def coco_sample(shared_dir: Path) -> Path:
    return shared_dir / "data" / "coco_sample"


@pytest.fixture(scope="module")
def gt_annotations(coco_sample: Path) -> list[dict]:
    return json.loads((coco_sample / "test_coco.json").read_text())["annotations"]


def _gt_as_results(annotations: list[dict]) -> list[dict]:
    results = []
    for ann in annotations:
        if ann["num_keypoints"] == 0:  # nothing to predict; COCOeval ignores these people
            continue
        kpts = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        kpts[:, 2] = 1.0
        results.append(
            {"image_id": ann["image_id"], "category_id": 1, "keypoints": kpts.ravel().tolist(), "score": 1.0}
        )
    return results


# --- metric ---------------------------------------------------------------------------------


def test_gt_as_predictions_gives_perfect_ap(coco_sample: Path, gt_annotations: list[dict]) -> None:
    results = _gt_as_results(gt_annotations)
    stats = coco_keypoint_eval(coco_sample / "test_coco.json", results)
    assert list(stats) == list(STAT_NAMES)
    assert stats["AP"] == pytest.approx(1.0)
    assert stats["AP .5"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert "area" not in results[0]  # pycocotools got copies, the caller's dicts are untouched


def test_noisy_predictions_lower_ap(coco_sample: Path, gt_annotations: list[dict]) -> None:
    results = _gt_as_results(gt_annotations)
    rng = np.random.default_rng(0)
    for r in results:
        k = np.array(r["keypoints"]).reshape(17, 3)
        k[:, :2] += rng.normal(0, 15, size=(17, 2))
        r["keypoints"] = k.ravel().tolist()
    stats = coco_keypoint_eval(coco_sample / "test_coco.json", results)
    assert 0.0 <= stats["AP"] < 0.9


def test_eval_edge_cases(coco_sample: Path, tmp_path: Path) -> None:
    assert coco_keypoint_eval(coco_sample / "test_coco.json", []) == dict.fromkeys(STAT_NAMES, 0.0)
    with pytest.raises(FileNotFoundError):
        coco_keypoint_eval(tmp_path / "missing.json", [])
    bad = [{"image_id": 123, "category_id": 1, "keypoints": [0.0] * 51, "score": 1.0}]
    with pytest.raises(ValueError, match="not in"):
        coco_keypoint_eval(coco_sample / "test_coco.json", bad)


def test_torso_pck_counts_limb_joints_within_a_fifth_of_the_torso() -> None:
    gt = np.zeros((2, 17, 2))
    gt[:, 5] = (0.0, 0.0)  # left shoulder
    gt[:, 12] = (30.0, 40.0)  # right hip: torso 50 px, so 10 px is the limit
    gt[:, 6:12] = gt[:, 13:] = (20.0, 20.0)
    labelled = np.ones((2, 17), dtype=bool)
    labelled[:, :5] = False  # faces are not limb joints anyway
    pred = gt.copy()
    pred[0, 9] += (9.0, 0.0)  # inside 10 px
    pred[0, 10] += (11.0, 0.0)  # outside
    pred[1, 0] += 500.0  # a face joint: never counted
    assert torso_pck(pred, gt, labelled) == (23, 24, 2)
    no_hip = labelled.copy()
    no_hip[1, 12] = False  # no torso: the person is left out
    assert torso_pck(pred, gt, no_hip) == (11, 12, 1)


def test_pck_against_annotations_matches_people_to_results(gt_annotations: list[dict]) -> None:
    gt = {"annotations": gt_annotations}
    results = _gt_as_results(gt_annotations)
    stats = pck_against_annotations(results, gt)
    assert stats["PCK"] == pytest.approx(1.0) and stats["PCK people"] >= 8
    shifted = [dict(r, keypoints=(np.array(r["keypoints"]) + 1000.0).tolist()) for r in results]
    assert pck_against_annotations(shifted, gt)["PCK"] == 0.0
    assert pck_against_annotations(results[1:], gt)["PCK"] < 1.0  # one person has no result


def test_format_table() -> None:
    table = format_table(dict(zip(STAT_NAMES, np.linspace(0.1, 1.0, 10), strict=True)), name="sdpose_t")
    lines = table.splitlines()
    assert len(lines) == 3
    for stat in STAT_NAMES:
        assert f" {stat} " in lines[0]
    assert "sdpose_t" in lines[2] and "0.100" in lines[2] and "1.000" in lines[2]


# --- rescoring and NMS ----------------------------------------------------------------------


def test_rescore_formula() -> None:
    kpt = np.full((3, 17), 0.1)
    kpt[0, :4] = [0.9, 0.5, 0.3, 0.2]  # 0.2 is not above the threshold
    kpt[1, :] = 0.8
    box = np.array([0.5, 1.0, 0.7])
    got = rescore(box, kpt)
    np.testing.assert_allclose(got, [0.5 * (0.9 + 0.5 + 0.3) / 3, 0.8, 0.0])
    np.testing.assert_allclose(rescore(box, kpt[..., None], vis_thr=0.0), box * kpt.mean(axis=1))


def _loop_oks_iou(g, d, a_g, a_d, sigmas, vis_thr=None):
    """MMPose 0.29 ``oks_iou`` as written there (one detection at a time)."""
    variances = (sigmas * 2) ** 2
    ious = np.zeros(len(d), dtype=np.float32)
    for n in range(len(d)):
        dx, dy = d[n, 0::3] - g[0::3], d[n, 1::3] - g[1::3]
        e = (dx**2 + dy**2) / variances / ((a_g + a_d[n]) / 2 + np.spacing(1)) / 2
        if vis_thr is not None:
            e = e[list((g[2::3] > vis_thr) & (d[n, 2::3] > vis_thr))]
        ious[n] = np.sum(np.exp(-e)) / len(e) if len(e) != 0 else 0.0
    return ious


def test_oks_iou_matches_reference_loop() -> None:
    rng = np.random.default_rng(3)
    g = np.column_stack([rng.uniform(0, 200, (17, 2)), rng.uniform(0, 1, 17)]).ravel()
    d = g + np.concatenate([rng.normal(0, 8, (6, 17, 2)), rng.normal(0, 0.3, (6, 17, 1))], axis=-1).reshape(
        6, 51
    )
    d[5, 2::3] = 0.0  # no joint visible in both: OKS 0 under vis_thr
    areas = rng.uniform(1e3, 2e4, 6)
    for vis_thr in (None, 0.4):
        np.testing.assert_allclose(
            oks_iou(g, d, 5e3, areas, OKS_SIGMAS, vis_thr),
            _loop_oks_iou(g, d, 5e3, areas, OKS_SIGMAS, vis_thr),
            rtol=1e-6,
        )


def test_oks_nms_drops_duplicate_keeps_distinct(gt_annotations: list[dict]) -> None:
    people = [a for a in gt_annotations if a["image_id"] == 197388 and a["num_keypoints"] > 0]
    assert len(people) >= 3
    db = []
    for i, ann in enumerate(people):
        kpts = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        kpts[:, 2] = 0.9
        db.append({"keypoints": kpts, "score": 0.9 - 0.01 * i, "area": ann["bbox"][2] * ann["bbox"][3]})
    duplicate = db[1]["keypoints"].copy()
    duplicate[:, :2] += 1.5  # the same person, slightly shifted, lower score
    db.append({"keypoints": duplicate, "score": 0.5, "area": db[1]["area"]})
    keep = oks_nms(db, 0.9)
    assert sorted(keep.tolist()) == list(range(len(people)))
    assert keep.tolist() == list(range(len(people)))  # highest score first
    # With the duplicate scored higher, it survives and the original goes.
    db[-1]["score"] = 0.95
    assert sorted(oks_nms(db, 0.9).tolist()) == sorted({*range(len(people))} - {1} | {len(db) - 1})
    assert oks_nms([], 0.9).size == 0


# --- prediction over a dataset --------------------------------------------------------------


class _Crops(Dataset):
    """Stand-in for `CocoKeypointDataset(train=False)`: the same keys, random crops."""

    def __init__(
        self, image_ids: list[int], centers: np.ndarray, scales: np.ndarray, bbox_scores: list[float]
    ):
        self.image_ids, self.centers, self.scales, self.bbox_scores = image_ids, centers, scales, bbox_scores
        self.images = torch.randn(len(image_ids), 3, 256, 192, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> dict:
        return {
            "image": self.images[i],
            "center": self.centers[i].astype(np.float32),
            "scale": self.scales[i].astype(np.float32),
            "image_id": self.image_ids[i],
            "bbox_score": self.bbox_scores[i],
            "image_file": None,  # extra keys must not bother the collate
        }


_PEAKS = np.column_stack([5.0 + 2.0 * np.arange(17), 6.0 + 3.0 * np.arange(17)])  # (x, y) heatmap px


class _PeakModel(nn.Module):
    """Ignores its input; Gaussian peaks at `_PEAKS` (exact DARK targets), amplitude 0.8."""

    def __init__(self) -> None:
        super().__init__()
        ys, xs = np.mgrid[0:64, 0:48]
        maps = 0.8 * np.exp(
            -((xs - _PEAKS[:, 0, None, None]) ** 2 + (ys - _PEAKS[:, 1, None, None]) ** 2) / 8
        )
        self.register_buffer("maps", torch.from_numpy(maps.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maps.expand(x.shape[0], -1, -1, -1)


def _check_results(results: list[dict], image_ids: set[int]) -> None:
    for r in results:
        assert set(r) == {"image_id", "category_id", "keypoints", "score"}
        assert r["image_id"] in image_ids and r["category_id"] == 1
        assert len(r["keypoints"]) == 51 and all(isinstance(v, float) for v in r["keypoints"])
        assert np.isfinite(r["keypoints"]).all() and isinstance(r["score"], float)
    json.dumps(results)


def test_predict_dataset_coordinates_rescoring_and_nms() -> None:
    centers = np.array([[100.0, 120.0], [100.0, 120.0], [300.0, 200.0]])
    scales = np.array([[1.0, 4 / 3], [1.0, 4 / 3], [0.6, 0.8]])
    dataset = _Crops([7, 7, 9], centers, scales, [0.9, 0.6, 0.8])
    results = predict_dataset(_PeakModel(), dataset, batch_size=2, device="cpu", flip_test=False)
    # Image 7 has two identical poses: NMS keeps the one with the higher box score.
    assert [r["image_id"] for r in results] == [7, 9]
    _check_results(results, {7, 9})
    for r, c, s in zip(results, centers[[0, 2]], scales[[0, 2]], strict=True):
        kpts = np.array(r["keypoints"]).reshape(17, 3)
        size = s * 200
        expected = _PEAKS * size / np.array([48, 64]) + c - size / 2
        np.testing.assert_allclose(kpts[:, :2], expected, atol=1e-3 * size[0] / 48 * 2)
        np.testing.assert_allclose(kpts[:, 2], 0.8, atol=1e-6)
    assert results[0]["score"] == pytest.approx(0.9 * 0.8, rel=1e-6)
    assert results[1]["score"] == pytest.approx(0.8 * 0.8, rel=1e-6)


@pytest.fixture(scope="module")
def golden_model(shared_dir: Path) -> tuple[nn.Module, dict[str, np.ndarray]]:
    fixture = load_fixture(shared_dir, "sdpose_t")
    model = build_model("sdpose_t")
    load_checkpoint(model, {"state_dict": golden_state_dict(fixture)})
    return model.eval(), fixture


def test_infer_heatmaps_matches_golden_flip_test(golden_model) -> None:
    model, fixture = golden_model
    with torch.no_grad():
        x = torch.from_numpy(fixture["input"])
        single = infer_heatmaps(model, x, flip_test=False).numpy()
        flipped = infer_heatmaps(model, x, flip_test=True).numpy()
    np.testing.assert_allclose(single, fixture["heatmap"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(flipped, fixture["heatmap_flip_test"], atol=1e-4, rtol=1e-4)


def test_infer_heatmaps_later_cycles_match_golden(golden_model) -> None:
    """`--cycle k` scores the heatmaps the authors' model gives after its k-th MCT cycle."""
    model, fixture = golden_model
    x = torch.from_numpy(fixture["input"])
    with torch.no_grad():
        for cycle, expected in enumerate(fixture["heatmaps_all_cycles"]):
            got = infer_heatmaps(model, x, flip_test=False, cycle=cycle).numpy()
            np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4, err_msg=f"cycle {cycle}")
            # the mirrored pass reads the same cycle
            mirrored = flip_back(model.forward_cycles(x.flip(-1), cycle + 1).heatmaps[cycle]).numpy()
            flipped = infer_heatmaps(model, x, flip_test=True, cycle=cycle).numpy()
            np.testing.assert_allclose(flipped, (expected + mirrored) / 2, atol=1e-4, rtol=1e-4)
        with pytest.raises(ValueError, match="cycle must be 0 or more"):
            infer_heatmaps(model, x, cycle=-1)


@pytest.mark.parametrize("flip_test", [True, False])
def test_predict_dataset_real_model(golden_model, flip_test: bool) -> None:
    model, _ = golden_model
    model.train()  # predict_dataset switches to eval (one cycle) and restores the mode
    centers = np.array([[100.0, 120.0], [300.0, 200.0], [50.0, 60.0]])
    scales = np.array([[1.0, 4 / 3], [0.6, 0.8], [0.3, 0.4]])
    dataset = _Crops([1, 2, 2], centers, scales, [1.0, 0.5, 0.7])
    results = predict_dataset(model, dataset, batch_size=2, device="cpu", flip_test=flip_test)
    assert model.training
    model.eval()
    assert 1 <= len(results) <= 3 and {r["image_id"] for r in results} >= {1}
    _check_results(results, {1, 2})


# --- command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sdpose_core.checkpoint import save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "sdpose_t.pth", build_model("sdpose_t"))


def _cli(argv: list[str]) -> int:
    from sdpose_core.cli import run_cli
    from sdpose_core.evaluation.evaluate import main

    return run_cli(main, argv)


@pytest.mark.parametrize("det", [False, True], ids=["gt_boxes", "det_boxes"])
def test_cli_end_to_end(
    coco_sample: Path, random_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], det: bool
) -> None:
    output = tmp_path / "out" / "results.json"
    argv = ["--config", "sdpose_t", "--weights", str(random_checkpoint), "--data-root", str(coco_sample)]
    argv += ["--ann", str(coco_sample / "test_coco.json"), "--device", "cpu", "--workers", "0"]
    argv += ["--batch-size", "16", "--output", str(output)]
    if det:  # 18 of the 118 boxes score >= 0.5; no flip test, to keep the CPU run short
        argv += ["--det", str(coco_sample / "test_coco_det_AP_H_56.json"), "--det-thr", "0.5", "--no-flip"]
    assert _cli(argv) == 0
    table = capsys.readouterr().out
    assert all(f" {name} " in table for name in STAT_NAMES) and "sdpose_t" in table
    results = json.loads(output.read_text())
    assert results and all(len(r["keypoints"]) == 51 for r in results)
    summary = json.loads((tmp_path / "out" / "results.stats.json").read_text())
    assert list(summary["stats"]) == list(STAT_NAMES)
    assert all(0.0 <= v <= 1.0 or v == -1.0 for v in summary["stats"].values())
    assert summary["config"] == "sdpose_t" and summary["weights"] == str(random_checkpoint)
    assert summary["flip_test"] is not det
    assert summary["det"] == (str(coco_sample / "test_coco_det_AP_H_56.json") if det else None)
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_cli_cycle_scores_a_later_cycle(
    coco_sample: Path, random_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A later training cycle reads differently from the deployed first one, and the stats say
    which cycle they are."""
    argv = ["--weights", str(random_checkpoint), "--data-root", str(coco_sample), "--workers", "0"]
    argv += ["--ann", str(coco_sample / "test_coco.json"), "--device", "cpu", "--no-flip"]
    argv += ["--det", str(coco_sample / "test_coco_det_AP_H_56.json"), "--det-thr", "0.5"]
    keypoints = {}
    for cycle in (0, 2):
        output = tmp_path / f"cycle{cycle}.json"
        assert _cli(argv + ["--cycle", str(cycle), "--output", str(output)]) == 0
        assert json.loads((tmp_path / f"cycle{cycle}.stats.json").read_text())["cycle"] == cycle
        keypoints[cycle] = np.array([r["keypoints"] for r in json.loads(output.read_text())])
    capsys.readouterr()
    assert keypoints[0].shape == keypoints[2].shape
    assert not np.allclose(keypoints[0], keypoints[2])


def test_cli_warns_when_the_weights_never_trained_the_cycle(
    coco_sample: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Weights whose last recipe ran one cycle (like the bundle's last stages) are still scored
    at a later cycle, with a warning that the cycle was not trained with that recipe."""
    from sdpose_core.checkpoint import save_checkpoint

    torch.manual_seed(0)
    weights = save_checkpoint(
        tmp_path / "one_cycle.pth", build_model("sdpose_t"), recipe={"model": {"cycle_num": 1}}
    )
    argv = ["--weights", str(weights), "--data-root", str(coco_sample), "--workers", "0", "--no-flip"]
    argv += ["--ann", str(coco_sample / "test_coco.json"), "--device", "cpu"]
    argv += ["--det", str(coco_sample / "test_coco_det_AP_H_56.json"), "--det-thr", "0.5"]
    with caplog.at_level("WARNING"):
        assert _cli(argv + ["--cycle", "1"]) == 0
    assert "ran 1 MCT cycle(s): cycle 1 was not trained" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert _cli(argv) == 0
    assert "was not trained" not in caplog.text


def test_cli_user_errors(
    coco_sample: Path, random_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--weights", str(random_checkpoint), "--data-root", str(coco_sample), "--workers", "0"]
    ann = ["--ann", str(coco_sample / "test_coco.json")]
    cases = [
        (base + ["--ann", str(tmp_path / "missing.json")], "annotation file not found"),
        (base + ann + ["--det", str(tmp_path / "nodet.json")], "detection results file not found"),
        (
            ["--weights", str(tmp_path / "x.pth"), "--data-root", str(coco_sample)] + ann,
            "checkpoint not found",
        ),
        (base + ann + ["--config", "sdpose_b"], "sdpose_t checkpoint"),
        (base + ann + ["--cycle", "3"], "sdpose_t trains 3 MCT cycles, numbered 0 to 2"),
        (base + ann + ["--cycle", "-1"], "sdpose_t trains 3 MCT cycles"),
    ]
    if not torch.cuda.is_available():
        cases.append((base + ann + ["--device", "cuda"], "CUDA is not available"))
    for argv, message in cases:
        assert _cli(argv) == 2, message
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_cli_module_exit_code(tmp_path: Path, coco_sample: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "sdpose_core.evaluation.evaluate", "--weights", str(tmp_path / "w.pth")]
        + ["--data-root", str(coco_sample), "--ann", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: annotation file not found: {tmp_path / 'missing.json'}"
    ]
