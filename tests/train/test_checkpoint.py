import random

import numpy as np
import pytest
import torch

from shoerecon.train import checkpoint as ck
from shoerecon.train.config import ExperimentConfig, config_to_dict


class TinyNet(torch.nn.Module):
    """Carries the template buffers a checkpoint reads (same names as ShoeReconNet)."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("template_verts", torch.rand(4, 3))
        self.register_buffer("faces", torch.tensor([[0, 1, 2], [0, 2, 3]]))
        self.register_buffer("uvs", torch.rand(4, 2))
        self.register_buffer("uv_faces", torch.tensor([[0, 1, 2], [0, 2, 3]]))


def make_state(net=None, step=3):
    net = net or TinyNet()
    return ck.build_checkpoint(net, config_to_dict(ExperimentConfig()), step=step, epoch=1)


def test_save_load_round_trip(tmp_path):
    net = TinyNet()
    ck.save_checkpoint(tmp_path / "c/last.pt", make_state(net))
    state = ck.load_checkpoint(tmp_path / "c/last.pt")
    assert state["step"] == 3 and state["epoch"] == 1
    for k, v in net.state_dict().items():
        assert torch.equal(state["model"][k], v)
    assert torch.equal(state["template"]["verts"], net.template_verts)
    assert torch.equal(state["template"]["uv_faces"], net.uv_faces)


def test_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ck.save_checkpoint(path, make_state(step=1))
    before = path.read_bytes()

    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        f.write(b"partial garbage")  # some bytes reach the disk, then the process "dies"
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(path, make_state(step=2))
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert ck.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left behind


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_model_is_never_written(tmp_path, bad):
    path = tmp_path / "last.pt"
    ck.save_checkpoint(path, make_state(step=1))
    net = TinyNet()
    with torch.no_grad():
        net.lin.weight[0, 0] = bad
    with pytest.raises(ck.NonFiniteCheckpointError, match="lin.weight"):
        ck.save_checkpoint(path, make_state(net, step=2))
    assert ck.load_checkpoint(path)["step"] == 1


def test_rng_state_round_trip():
    state = ck.capture_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(3))
    ck.restore_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_foreign_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        ck.load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt: not a readable checkpoint"):
        ck.load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a shoerecon checkpoint"):
        ck.load_checkpoint(tmp_path / "other.pt")


def test_load_for_inference_is_self_contained(tmp_path):
    from shoerecon.geometry.template import load_template
    from shoerecon.model import ModelConfig, ShoeReconNet

    mcfg = ModelConfig(unet_depth=2, unet_width=4, latent_dim=8, shape_hidden=8, texture_size=16, flow_hidden=4) \
        if hasattr(ModelConfig, "unet_depth") else ModelConfig()
    cfg = ExperimentConfig(model=mcfg)
    net = ShoeReconNet(cfg.model, load_template())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    state = ck.build_checkpoint(net, config_to_dict(cfg), step=5, epoch=0)
    ck.save_checkpoint(tmp_path / "m.pt", state)
    loaded, cfg2 = ck.load_for_inference(tmp_path / "m.pt", "cpu")
    assert config_to_dict(cfg2) == config_to_dict(cfg) and cfg2.model == cfg.model and not loaded.training
    x = torch.rand(1, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        a, b = net(x), loaded(x)
    assert torch.allclose(a.verts, b.verts) and torch.allclose(a.texture, b.texture)
