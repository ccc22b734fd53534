"""LPIPS: random backbone for tests, real-weight loading from a local file, never a download."""
import pytest
import torch
import torchvision

import shoerecon.losses.perceptual as perceptual
from shoerecon.losses import build_lpips, default_alexnet_path, perceptual_loss


@pytest.fixture
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def features_only(alexnet):
    """The convolutional part of a torchvision AlexNet state dict (all LPIPS reads; keeps the file small)."""
    return {k: v for k, v in alexnet.state_dict().items() if k.startswith("features.")}


def test_random_backbone_runs_and_is_differentiable(no_downloads):
    model = build_lpips(pretrained=False)
    assert not any(p.requires_grad for p in model.parameters())
    x = torch.rand(2, 3, 3, 32, 32, requires_grad=True)
    y = torch.rand(2, 3, 3, 32, 32)
    loss = perceptual_loss(model, x, y)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert perceptual_loss(model, y, y).item() == pytest.approx(0.0, abs=1e-6)


def test_missing_default_weights_error_names_the_hub_path(monkeypatch, tmp_path, no_downloads):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert default_alexnet_path() == expected
    with pytest.raises(FileNotFoundError) as err:
        build_lpips(pretrained=True)
    assert str(expected) in str(err.value)


def test_missing_configured_path_error_names_it(tmp_path, no_downloads):
    path = tmp_path / "weights" / "my_alexnet.pth"
    with pytest.raises(FileNotFoundError, match=str(path)):
        build_lpips(pretrained=str(path))


def test_real_loading_reads_the_local_files(tmp_path, no_downloads):
    alexnet = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet.pth"
    torch.save(features_only(alexnet), path)
    model = build_lpips(pretrained=str(path))
    torch.testing.assert_close(model.net.slice1[0].weight, alexnet.features[0].weight)
    torch.testing.assert_close(getattr(model.net.slice5, "10").bias, alexnet.features[10].bias)
    linear = torch.load(perceptual._lpips_linear_path(), map_location="cpu")
    torch.testing.assert_close(model.lin0.model[1].weight, linear["lin0.model.1.weight"])
    assert not model.training


def test_wrong_file_is_a_clear_error(tmp_path, no_downloads):
    path = tmp_path / "not_alexnet.pth"
    torch.save({"something": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a torchvision AlexNet"):
        build_lpips(pretrained=str(path))


def test_wrong_linear_file_is_a_clear_error(tmp_path, no_downloads):
    alex = tmp_path / "alexnet.pth"
    torch.save(features_only(torchvision.models.alexnet(weights=None)), alex)
    bad = tmp_path / "lin.pth"
    torch.save({"lin0.model.1.bias": torch.zeros(1)}, bad)
    with pytest.raises(RuntimeError, match="linear-layer"):
        build_lpips(pretrained=str(alex), linear_path=str(bad))
