"""Model files never run code: a crafted pickle is refused (its payload does not run), old checkpoints still
load, and `shoerecon export-model` writes a safetensors release that predicts exactly like its checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import tiny_checkpoint

from shoerecon.cli import main as cli
from shoerecon.train import checkpoint as ck
from shoerecon.train.model_file import is_model_file, load_model_file


class Payload:
    """Unpickling this runs ``exec``: it writes a marker file (what an attacker's checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def evil_checkpoint(tmp_path, marker):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "config": {}, "payload": Payload(marker)}, path)
    return path


def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker.txt"
    path = evil_checkpoint(tmp_path, marker)
    with pytest.raises(ck.UnsafeCheckpointError, match="refused to load.*exec"):
        ck.load_checkpoint(path)
    with pytest.raises(ck.UnsafeCheckpointError):
        ck.load_for_inference(path)
    assert not marker.exists()
    # control: the payload is live, so the assertion above can fail
    torch.load(path, weights_only=False)
    assert marker.read_text() == "pwned"


def test_predict_and_eval_refuse_a_malicious_checkpoint(tmp_path, capsys):
    marker = tmp_path / "marker.txt"
    path = evil_checkpoint(tmp_path, marker)
    Image.new("RGB", (32, 32), "white").save(tmp_path / "photo.png")
    with pytest.raises(SystemExit, match="shoerecon predict: .*refused to load"):
        cli(["predict", str(tmp_path / "photo.png"), "--checkpoint", str(path), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="shoerecon eval: .*refused to load"):
        cli(["eval", "--checkpoint", str(path), "--data", str(tmp_path)])
    assert not marker.exists()
    assert not (tmp_path / "o").exists()


def test_version_1_checkpoint_still_loads_and_restores_numpy_rng(tmp_path):
    """Version 1 stored the numpy RNG state as a pickled ndarray; the allow-list reads it without code."""
    np.random.seed(123)
    v1_rng = {"python": __import__("random").getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    expected = np.random.rand(3)
    state = {"version": 1, "step": 5, "epoch": 0, "model": {"w": torch.ones(2)}, "config": {"train": {}},
             "rng": [v1_rng], "template": {}, "extra": {}}
    torch.save(state, tmp_path / "v1.pt")
    loaded = ck.load_checkpoint(tmp_path / "v1.pt")
    assert loaded["step"] == 5 and isinstance(loaded["rng"][0]["numpy"], tuple)
    np.random.seed(0)
    ck.restore_rng_state(loaded["rng"][0])
    np.testing.assert_array_equal(np.random.rand(3), expected)


def test_new_checkpoints_need_no_allow_list(tmp_path):
    np.random.seed(7)
    rng = ck.capture_rng_state()
    expected = np.random.rand(4)
    state = {"version": ck.CHECKPOINT_VERSION, "model": {"w": torch.ones(1)}, "config": {}, "rng": [rng]}
    ck.save_checkpoint(tmp_path / "c.pt", state)
    loaded = torch.load(tmp_path / "c.pt", weights_only=True)  # plain weights_only, no extra globals
    ck.restore_rng_state(loaded["rng"][0])
    np.testing.assert_array_equal(np.random.rand(4), expected)


def test_convert_trusted_rewrites_an_old_file(tmp_path):
    v1 = {"version": 1, "model": {"w": torch.ones(2)}, "config": {},
          "rng": [{"python": __import__("random").getstate(), "numpy": np.random.get_state(),
                   "torch": torch.get_rng_state()}]}
    torch.save(v1, tmp_path / "v1.pt")
    assert ck.main(["--convert-trusted", str(tmp_path / "v1.pt"), str(tmp_path / "new.pt")]) == 0
    new = torch.load(tmp_path / "new.pt", weights_only=True)  # no allow-list needed any more
    assert new["version"] == ck.CHECKPOINT_VERSION and torch.equal(new["model"]["w"], torch.ones(2))


def test_export_model_is_smaller_and_predicts_the_same(tmp_path, capsys):
    # widths where the weights, not the template mesh, dominate the file (as in any real model)
    net = tiny_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt",
                          model={"unet_width": 16, "latent_dim": 64, "shape_hidden": 64})
    out = tmp_path / "model.safetensors"
    assert cli(["export-model", str(tmp_path / "run"), "--out", str(out)]) == 0
    assert "smaller" in capsys.readouterr().out
    ckpt_size, model_size = (tmp_path / "run/checkpoints/last.pt").stat().st_size, out.stat().st_size
    assert ckpt_size > 2.5 * model_size  # Adam's two moments are not in the release
    assert is_model_file(out) and not is_model_file(tmp_path / "run/checkpoints/last.pt")
    model, cfg = ck.load_for_inference(out)
    assert cfg.model.latent_dim == 64 and load_model_file(out)["step"] == 1
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, b = net(x), model(x)
    torch.testing.assert_close(a.verts, b.verts, rtol=0, atol=0)
    torch.testing.assert_close(a.texture, b.texture, rtol=0, atol=0)
    half = tmp_path / "half.safetensors"
    assert cli(["export-model", str(tmp_path / "run/checkpoints/last.pt"), "--out", str(half), "--half"]) == 0
    assert half.stat().st_size < 0.6 * model_size
    with torch.no_grad():
        torch.testing.assert_close(ck.load_for_inference(half)[0](x).verts, a.verts, atol=2e-3, rtol=0)


def test_foreign_safetensors_and_missing_run_are_clear(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a shoerecon model"):
        load_model_file(tmp_path / "other.safetensors")
    with pytest.raises(SystemExit, match="without checkpoints/last.pt"):
        cli(["export-model", str(tmp_path), "--out", str(tmp_path / "m.safetensors")])
