"""ONNX export: one file, dynamic batch, ONNX Runtime equals torch within 1e-4."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sdpose_core.checkpoint import save_checkpoint
from sdpose_core.export import INPUT_NAME, OUTPUT_NAME, export_onnx, main
from sdpose_core.models import VARIANT_NAMES, build_model


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_onnx_matches_torch_at_batch_1_and_8(tmp_path, variant):
    torch.manual_seed(1)
    model = build_model(variant).eval()
    # Non-trivial norms and biases so that a wrong graph cannot hide behind the init values.
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad and p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    path = export_onnx(model, tmp_path / f"{variant}.onnx")
    proto = onnx.load(str(path))
    assert {p.key: p.value for p in proto.metadata_props}["sdpose_variant"] == variant
    assert not list(tmp_path.glob("*.data")), "weights must be inside the single .onnx file"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    for batch in (1, 8):
        x = torch.randn(batch, 3, 256, 192)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        assert got.shape == (batch, 17, 64, 48)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_export_command_with_weights_and_bad_weights(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "t.pth", build_model("sdpose_t"))
    assert main(["--model", "sdpose_t", "--weights", str(ckpt), "--output", str(tmp_path / "t.onnx")]) == 0
    assert (tmp_path / "t.onnx").stat().st_size > 10_000_000
    from sdpose_core.cli import run_cli

    code = run_cli(
        main, ["--model", "sdpose_s_v1", "--weights", str(ckpt), "--output", str(tmp_path / "x.onnx")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "sdpose_t checkpoint" in err
    assert not (tmp_path / "x.onnx").exists()
