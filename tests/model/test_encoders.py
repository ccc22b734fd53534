"""Encoders by name (random init): shapes, their own input normalisation, the network and its heads with each,
old UNet checkpoints, pretrained weights from a local file only (clear error when missing)."""
import pytest
import torch
import torchvision

from shoerecon.model import ModelConfig, ShoeReconNet
from shoerecon.model.backbones import backbone_path, load_backbone_state
from shoerecon.model.encoders import IMAGENET_MEAN, ResNetEncoder, UNetEncoder, build_encoder
from test_network import SMALL, icosphere


@pytest.mark.parametrize("name", ["unet", "resnet18", "resnet34"])
def test_every_encoder_drives_the_network(name):
    torch.manual_seed(0)
    cfg = ModelConfig(**SMALL, encoder=name, encoder_pretrained=False)
    net = ShoeReconNet(cfg, icosphere(1))
    image = torch.rand(2, 3, 64, 64)
    out = net(image)
    assert out.verts.shape == (2, 42, 3) and out.texture.shape == (2, 3, 16, 16) and out.flow.shape == (2, 16, 16, 2)
    _, features = net.encoder(image)
    assert features.shape == (2, SMALL["unet_width"], 64, 64)  # full resolution for the texture-flow head
    (out.offsets.square().sum() + out.flow.sum()).backward()
    grads = [p.grad for p in net.encoder.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0  # both heads train the encoder


def test_encoders_normalise_their_input():
    unet = UNetEncoder(3, 4, 2)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(unet(x)[1], super(UNetEncoder, unet).forward(x * 2 - 1)[1])  # [0, 1] -> [-1, 1]
    res = ResNetEncoder("resnet18", width=4, pretrained=False).eval()
    seen = {}
    res.stem[0].register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))  # returns None: output kept
    res(torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(1, 3, 32, 32))
    assert seen["x"].abs().max() < 1e-6  # the ImageNet mean colour is 0 after normalisation


def test_unet_checkpoints_of_the_old_layout_load():
    cfg = ModelConfig(**SMALL)
    net = ShoeReconNet(cfg, icosphere(0))
    old = {("unet." + k[len("encoder."):] if k.startswith("encoder.") else k): v for k, v in net.state_dict().items()}
    assert any(k.startswith("unet.") for k in old)
    fresh = ShoeReconNet(cfg, icosphere(0))
    fresh.load_state_dict(old)
    for k, v in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_pretrained_resnet_comes_from_a_local_file_only(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match=r"resnet18-f37072fd.pth.*never downloads.*model.encoder_weights"):
        build_encoder("resnet18", 4, 2, 32, "group", pretrained=True)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    enc = build_encoder("resnet18", 4, 2, 32, "group", pretrained=True, weights=str(path))
    assert torch.equal(enc.stages[3][1].conv2.weight, reference.layer4[1].conv2.weight)
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="other.pth is not a torchvision ResNet-18"):
        load_backbone_state("resnet18", tmp_path / "other.pth")
    assert backbone_path("resnet34").name == "resnet34-b627a593.pth"


def test_unknown_encoder_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unet, resnet18, resnet34"):
        ModelConfig(encoder="vit")
