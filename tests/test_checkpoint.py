"""`load_checkpoint`: every layout the authors or we write loads; every bad file gives one clear line."""

from __future__ import annotations

import pytest
import torch

from sdpose_core.checkpoint import (
    OUR_FORMAT,
    CheckpointError,
    identify_variant,
    load_checkpoint,
    save_checkpoint,
)
from sdpose_core.models import build_model


@pytest.fixture(scope="module")
def s_v1_state():
    torch.manual_seed(0)
    return build_model("sdpose_s_v1").state_dict()


def _same_weights(model, state):
    return all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_mmcv_file_with_ddp_prefix_loads(tmp_path, s_v1_state):
    path = tmp_path / "sdpose_s_v1.pth"
    wrapped = {f"module.{k}": v for k, v in s_v1_state.items()}
    torch.save(
        {"meta": {"epoch": 300, "mmpose_version": "0.29.0"}, "state_dict": wrapped, "optimizer": {}}, path
    )
    model = build_model("sdpose_s_v1")
    info = load_checkpoint(model, path)
    assert info.variant == "sdpose_s_v1" and info.source == "mmcv" and info.meta["epoch"] == 300
    assert _same_weights(model, s_v1_state)


def test_bare_state_dict_loads(s_v1_state):
    model = build_model("sdpose_s_v1")
    assert load_checkpoint(model, dict(s_v1_state)).source == "state_dict"
    assert _same_weights(model, s_v1_state)


def test_wrong_variant_names_the_real_one(tmp_path, s_v1_state):
    path = tmp_path / "downloaded_s_v2.pth"
    torch.save({"state_dict": s_v1_state}, path)
    model = build_model("sdpose_s_v2")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, path)
    message = str(err.value)
    assert "\n" not in message
    assert "sdpose_s_v1 checkpoint" in message and "pos_embedding 1x256x192" in message
    assert "--model sdpose_s_v1" in message
    assert _same_weights(model, before), "a refused checkpoint must not change the model"


def test_identify_variant_tells_all_four_apart():
    for name in ("sdpose_t", "sdpose_s_v1", "sdpose_s_v2", "sdpose_b"):
        with torch.device("meta"):
            state = build_model(name).state_dict()
        assert identify_variant(state) == name


def test_truncated_file_is_reported(tmp_path, s_v1_state):
    path = tmp_path / "partial.pth"
    torch.save({"state_dict": s_v1_state}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(build_model("sdpose_s_v1"), path)


def test_not_a_checkpoint_and_missing_file(tmp_path):
    junk = tmp_path / "notes.pth"
    junk.write_text("hello")
    with pytest.raises(CheckpointError, match="truncated or corrupt|not a readable"):
        load_checkpoint(build_model("sdpose_t"), junk)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(build_model("sdpose_t"), tmp_path / "absent.pth")


def test_missing_keys_are_listed_and_nothing_loads(s_v1_state):
    partial = {k: v for k, v in s_v1_state.items() if "mlp_head" not in k}
    model = build_model("sdpose_s_v1")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(
        CheckpointError, match=r"8 missing key\(s\), e\.g\. keypoint_head\.tokenpose\.mlp_head"
    ):
        load_checkpoint(model, partial)
    assert _same_weights(model, before)


def test_our_format_round_trips_atomically(tmp_path):
    model = build_model("sdpose_t")
    path = save_checkpoint(tmp_path / "ckpt" / "latest.pth", model, epoch=7, best_ap=0.5)
    assert [p.name for p in path.parent.iterdir()] == ["latest.pth"], "no temp files left behind"
    fresh = build_model("sdpose_t")
    info = load_checkpoint(fresh, path)
    assert info.source == OUR_FORMAT and info.meta["epoch"] == 7 and info.meta["variant"] == "sdpose_t"
    assert _same_weights(fresh, model.state_dict())


class _RunsCode:
    """A pickled object that would run a command when loaded."""

    def __reduce__(self):
        import os

        return (os.system, ("echo loaded > /dev/null",))


def test_numpy_meta_loads_but_code_in_a_file_is_refused(tmp_path, s_v1_state, monkeypatch):
    import numpy as np

    safe = tmp_path / "mmcv_with_numpy_meta.pth"
    torch.save({"meta": {"hook_msgs": {"best_score": np.float64(0.72)}}, "state_dict": s_v1_state}, safe)
    info = load_checkpoint(build_model("sdpose_s_v1"), safe)
    assert float(info.meta["hook_msgs"]["best_score"]) == pytest.approx(0.72)

    evil = tmp_path / "evil.pth"
    torch.save({"meta": _RunsCode(), "state_dict": s_v1_state}, evil)
    ran = []
    monkeypatch.setattr("posix.system", lambda cmd: ran.append(cmd) or 0)  # what the pickle names
    with pytest.raises(CheckpointError, match="could run code.*SDPOSE_TRUST_CHECKPOINTS=1"):
        load_checkpoint(build_model("sdpose_s_v1"), evil)
    assert ran == []
    monkeypatch.setenv("SDPOSE_TRUST_CHECKPOINTS", "1")
    load_checkpoint(build_model("sdpose_s_v1"), evil)  # the user vouched for it
    assert ran, "with the opt-in the file is fully unpickled"


def test_packed_weights_name_their_recipe_without_the_trainers_home_folder(tmp_path):
    """Shipped weights say which recipe made them (configs/...), not where it lay on our disk."""
    from sdpose_core.checkpoint import read_checkpoint_file
    from sdpose_core.training.pack_weights import pack_weights

    recipe = {"path": "/home/trainer/sdpose-app/configs/sdpose_t_distill.yaml", "train": {"epochs": 5}}
    src = save_checkpoint(tmp_path / "best.pth", build_model("sdpose_t"), recipe=recipe)
    packed = read_checkpoint_file(pack_weights(src, tmp_path / "small.pth"))
    assert packed["recipe"] == {"path": "configs/sdpose_t_distill.yaml", "train": {"epochs": 5}}


def test_pack_weights_halves_the_file_and_keeps_what_the_weights_are(tmp_path):
    from sdpose_core.checkpoint import read_checkpoint_file
    from sdpose_core.training.pack_weights import pack_weights

    model = build_model("sdpose_t")
    src = save_checkpoint(tmp_path / "latest.pth", model, epoch=3, optimizer={"state": {}})
    dst = pack_weights(src, tmp_path / "small.pth", half=True, note="a test model")
    packed = read_checkpoint_file(dst)
    assert packed["note"] == "a test model" and packed["epoch"] == 3 and "optimizer" not in packed
    assert packed["state_dict"]["keypoint_head.tokenpose.mlp_head.3.weight"].dtype == torch.float16
    assert dst.stat().st_size < 0.6 * src.stat().st_size
    fresh = build_model("sdpose_t")
    assert load_checkpoint(fresh, dst).variant == "sdpose_t"
    for key, value in model.state_dict().items():
        assert torch.allclose(fresh.state_dict()[key].float(), value.float(), atol=1e-3, rtol=1e-3), key


def test_pack_weights_raw_takes_the_optimisers_weights_not_their_average(tmp_path):
    """--raw ships the weights the trainer's log scores as "raw", with their own validation score;
    without it the average ships, and a checkpoint with no raw weights says so instead of silently
    packing the average."""
    from sdpose_core.checkpoint import TRAIN_WEIGHTS_KEY, read_checkpoint_file
    from sdpose_core.errors import UserError
    from sdpose_core.training.pack_weights import pack_weights

    torch.manual_seed(0)
    average, raw = build_model("sdpose_t"), build_model("sdpose_t")
    metrics = {"epoch": 23, "val": {"PCK": 0.41, "AP": 0.65}, "val_train_weights": {"PCK": 0.42, "AP": 0.66}}
    src = save_checkpoint(
        tmp_path / "latest.pth", average, metrics=metrics, **{TRAIN_WEIGHTS_KEY: raw.state_dict()}
    )
    key = "keypoint_head.tokenpose.mlp_head.3.weight"
    assert not torch.equal(average.state_dict()[key], raw.state_dict()[key])
    packed_raw = read_checkpoint_file(pack_weights(src, tmp_path / "raw.pth", half=False, raw=True))
    packed_avg = read_checkpoint_file(pack_weights(src, tmp_path / "avg.pth", half=False))
    assert torch.equal(packed_raw["state_dict"][key], raw.state_dict()[key])
    assert packed_raw["weights"] == "raw"
    assert torch.equal(packed_avg["state_dict"][key], average.state_dict()[key])
    assert packed_avg["weights"] == "weight average" and packed_avg["metrics"] == metrics
    # the packed file's validation score is the one of the weights it holds
    assert packed_raw["metrics"]["val"] == {"PCK": 0.42, "AP": 0.66}
    assert packed_raw["metrics"]["val_average"] == {"PCK": 0.41, "AP": 0.65}
    repacked = read_checkpoint_file(pack_weights(tmp_path / "raw.pth", tmp_path / "again.pth"))
    assert repacked["weights"] == "raw"  # packing a packed file keeps what it is

    plain = save_checkpoint(tmp_path / "plain.pth", average)
    with pytest.raises(UserError, match="no raw weights"):
        pack_weights(plain, tmp_path / "x.pth", raw=True)
