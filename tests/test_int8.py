"""int8 SDPose: close to fp32 on real people, quantized once, clear about what it needs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest

from app.builders import EngineSpec, backend_choice
from app.engine import EngineError, PoseEngine
from sdpose_core import quantize
from sdpose_core.calibration import calibration_crops
from sdpose_core.quantize import QuantizeConfig, int8_nodes

SMALL = QuantizeConfig(crops=32)  # enough people to calibrate; the app uses 256


@pytest.fixture(scope="module")
def engines(app_cache):
    """fp32 and int8 engines of the bundled weights (the int8 one quantized into `app_cache`)."""
    fp32 = PoseEngine("sdpose_t", backend="onnx", threads=1)
    int8 = PoseEngine("sdpose_t", backend="onnx", threads=1, precision="int8", int8=SMALL)
    return fp32, int8


@pytest.fixture(scope="module")
def real_people(shared_dir):
    """Frames of the two demo videos with the teacher's person boxes on them (xyxy)."""
    out = []
    for video, frames in (("vtest", (40, 200)), ("sports2d_demo", (0, 60))):
        labels = json.loads((shared_dir / f"data/pseudo_labels/{video}.yolo11n-pose.json").read_text())
        detections = labels["detections"] if isinstance(labels, dict) else labels
        cap = cv2.VideoCapture(str(shared_dir / f"data/video/{video}.mp4"))
        for index in frames:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
            xywh = np.array([d["bbox"] for d in detections if d["frame"] == index], np.float32)
            assert ok and len(xywh)
            out.append((frame, np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)))
        cap.release()
    return out


def test_int8_keypoints_stay_within_a_few_pixels_of_fp32_on_real_people(engines, real_people):
    fp32, int8 = engines
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    distances, score_gaps, heights = [], [], []
    for frame, boxes in real_people:
        k32, s32 = fp32.estimate(frame, boxes)
        k8, s8 = int8.estimate(frame, boxes)
        distances.append(np.linalg.norm(k32 - k8, axis=-1))
        score_gaps.append(np.abs(s32 - s8))
        heights.append(np.repeat((boxes[:, 3] - boxes[:, 1])[:, None], 17, axis=1))
    d, heights = np.concatenate(distances).ravel(), np.concatenate(heights).ravel()
    assert len(d) >= 17 * 10
    # Half the joints move by under 1 % of the person's height, nine in ten by under 4 % (measured
    # on an AVX2-only CPU: 0.16 % / 0.44 % with 7-bit weights, 0.38 % / 0.95 % with saturating 8-bit).
    relative = d / heights
    assert np.median(relative) < 0.01 and np.percentile(relative, 90) < 0.04
    assert np.median(np.concatenate(score_gaps)) < 0.05


def test_only_backbone_convolutions_and_transformer_linears_run_in_int8(app_cache, engines):
    fp32_file = next(p for p in app_cache.glob("*.onnx") if ".int8-" not in p.name)
    names = set(int8_nodes(onnx.load(str(fp32_file))))
    nodes = {n.name: n for n in onnx.load(str(fp32_file)).graph.node}
    kinds = sorted(nodes[name].op_type for name in names)
    assert kinds.count("Conv") == 15 and kinds.count("MatMul") == 6 * 4  # 6 layers: qkv, out, 2 ffn
    scopes = " ".join(str(quantize._scopes(nodes[name])) for name in names)
    assert "patch_to_embedding" not in scopes and "mlp_head" not in scopes


def test_the_int8_model_is_quantized_once_and_runs_as_given(app_cache, engines, monkeypatch):
    files = sorted(app_cache.glob("*.int8-*.onnx"))
    assert len(files) == 1 and quantize.is_int8(files[0])

    def no_second_time(*args, **kwargs):
        raise AssertionError("quantized again")

    monkeypatch.setattr(quantize, "quantize_onnx", no_second_time)
    again = PoseEngine("sdpose_t", backend="onnx", threads=1, precision="int8", int8=SMALL)
    assert again.backend.path == files[0]
    as_weights = PoseEngine("sdpose_t", files[0], backend="onnx", threads=1)
    assert as_weights.precision == "int8"  # a quantized file runs as int8 without --precision
    assert EngineSpec("sdpose_t", "onnx", "cpu", None).label(as_weights) == "sdpose_t · onnx · int8 · cpu"


def test_int8_on_a_cpu_without_vnni_says_it_gains_little(app_cache, engines, monkeypatch, caplog):
    from app import engine as engine_module
    from app.engine import OnnxBackend
    from sdpose_core.hardware import cpu_has_int8_dot

    assert cpu_has_int8_dot("flags : fpu sse avx2 avx512f avx512_vnni\n") is True
    assert cpu_has_int8_dot("flags\t\t: fpu avx2 avx_vnni\n") is True
    assert cpu_has_int8_dot("flags : fpu sse avx2 fma\n") is False, "AVX2 alone has no int8 dot product"
    assert cpu_has_int8_dot("Processor : ARMv8\n") is None, "no flags line: unknown"
    int8_file = next(iter(app_cache.glob("*.int8-*.onnx")))
    fp32_file = next(p for p in app_cache.glob("*.onnx") if ".int8-" not in p.name)
    for has_vnni, path, warned in (
        (False, int8_file, True),
        (True, int8_file, False),
        (False, fp32_file, False),
    ):
        monkeypatch.setattr(engine_module, "cpu_has_int8_dot", lambda has=has_vnni: has)
        caplog.clear()
        OnnxBackend(path, "cpu", threads=1)
        assert any("no VNNI" in r.getMessage() for r in caplog.records) is warned, (has_vnni, path.name)


def _largest_int8_weight(path) -> int:
    """The largest |value| among the int8 weight initializers of a quantized file."""
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = [
        numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8
    ]
    assert weights, "no int8 weights"
    return max(int(np.abs(w.astype(np.int32)).max()) for w in weights if w.size > 1)


def test_int8_weights_are_7_bit_where_8_bit_ones_would_saturate(app_cache, engines, monkeypatch, caplog):
    """Without VNNI, ONNX Runtime's int8 kernels add pairs of products in 16 bits and saturate
    with full-range weights: half of SDPose-T's heatmap peaks moved on an AVX2-only CPU."""
    for has_vnni, bits in ((False, 7), (True, 8), (None, 8)):
        monkeypatch.setattr(quantize, "cpu_has_int8_dot", lambda has=has_vnni: has)
        assert QuantizeConfig().weight_bits == bits, has_vnni
        assert QuantizeConfig(reduce_range="always").weight_bits == 7
        assert QuantizeConfig(reduce_range="never").weight_bits == 8
    assert QuantizeConfig(reduce_range="always").identity() != QuantizeConfig(reduce_range="never").identity()
    monkeypatch.undo()
    # The app's own file, quantized for this machine's CPU, says which it is and is so.
    cached = next(iter(app_cache.glob("*.int8-*.onnx")))
    meta = {p.key: p.value for p in onnx.load(str(cached), load_external_data=False).metadata_props}
    assert meta[quantize.WEIGHT_BITS_KEY] == str(QuantizeConfig().weight_bits)
    assert _largest_int8_weight(cached) == (127 if meta[quantize.WEIGHT_BITS_KEY] == "8" else 64)
    fp32_file = next(p for p in app_cache.glob("*.onnx") if ".int8-" not in p.name)
    other = "never" if meta[quantize.WEIGHT_BITS_KEY] == "7" else "always"
    path = quantize.quantize_onnx(
        fp32_file, app_cache / "other.onnx", QuantizeConfig(crops=2, reduce_range=other)
    )
    assert _largest_int8_weight(path) == (127 if other == "never" else 64)
    # Run without VNNI, an 8-bit file is named as the cause of moved keypoints; a 7-bit one is not.
    from app import engine as engine_module

    monkeypatch.setattr(engine_module, "cpu_has_int8_dot", lambda: False)
    for file, bits in ((cached, meta[quantize.WEIGHT_BITS_KEY]), (path, "8" if other == "never" else "7")):
        caplog.clear()
        engine_module.OnnxBackend(file, "cpu", threads=1)
        assert any("8-bit weights saturate" in r.getMessage() for r in caplog.records) is (bits == "8")
    with pytest.raises(ValueError, match="reduce_range"):
        QuantizeConfig(reduce_range="yes")


def test_int8_needs_the_onnx_backend_and_its_calibration_people(tmp_path, monkeypatch):
    with pytest.raises(EngineError, match="int8 runs on the onnx backend"):
        PoseEngine("sdpose_t", backend="torch", precision="int8")
    monkeypatch.setenv("SDPOSE_CACHE", str(tmp_path))
    missing = QuantizeConfig(calibration=(str(tmp_path / "no_pool"),))
    with pytest.raises(EngineError, match="int8 calibration folder not found") as err:
        PoseEngine("sdpose_t", backend="onnx", precision="int8", int8=missing)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.glob("*.int8-*.onnx")), "nothing half-written is left in the cache"


def test_quantizing_leaves_nothing_in_the_working_folder(tmp_path, monkeypatch):
    """SDPose-B's HRNet graph made ONNX Runtime's shape inference fail, and on failure it wrote
    sym_shape_infer_temp.onnx and a 50 MB .data file into whatever folder the user ran from."""
    from sdpose_core.export import export_onnx
    from sdpose_core.models import build_model

    (tmp_path / "model").mkdir()
    fp32 = export_onnx(build_model("sdpose_b").eval(), tmp_path / "model" / "b.onnx")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    output = quantize.quantize_onnx(fp32, tmp_path / "model" / "b.int8.onnx", QuantizeConfig(crops=2))
    assert quantize.is_int8(output)
    assert not list(work.iterdir())


def test_calibration_uses_real_people_from_each_pool():
    crops = calibration_crops(QuantizeConfig().folders(), 6)
    assert crops.shape == (6, 3, 256, 192) and crops.dtype == np.float32
    # Real photographs: every crop has texture, none is the zero border of a box off the image.
    assert (crops.reshape(6, -1).std(axis=1) > 0.3).all()


def test_the_window_offers_int8_as_a_backend():
    assert backend_choice("onnx", "int8") == "onnx-int8" and backend_choice("torch", "bf16") == "torch"
    assert EngineSpec("sdpose_t", "onnx-int8", "cpu", None).engine_args() == ("onnx", "int8")
    assert EngineSpec("sdpose_t", "onnx", "cpu", None, precision="int8").engine_args() == ("onnx", "fp32")
    bf16 = EngineSpec("sdpose_t", "torch", "cpu", None, precision="bf16")
    assert bf16.label() == "sdpose_t · torch · bf16 · cpu"
