"""Image encoders by name (``model.encoder``): each maps an image in [0, 1] to a bottleneck (for the latent code
and the shape decoder) and full-resolution features (for the texture-flow and variance heads), and owns its
input normalisation.

* ``unet``: the UNet of ``model/unet.py`` on ``2 x - 1`` (no pretrained weights).
* ``resnet18`` / ``resnet34``: torchvision's ResNet trunk on ImageNet-normalised input; features are a small
  FPN-style top-down sum of 1x1 projections of the four stages, upsampled to the input size. Pretrained
  weights come from a local file (``model.encoder_weights``, else the torch hub cache; see
  ``model/backbones.py``) and are never downloaded; ``model.encoder_pretrained: false`` is random init.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from shoerecon.model.backbones import load_backbone_state
from shoerecon.model.unet import ConvBlock, UNet

ENCODERS = ("unet", "resnet18", "resnet34")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class UNetEncoder(UNet):
    """UNet on images in [0, 1] (scaled to [-1, 1] here). -> (bottleneck, features (B, base_width, H, W))."""

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        return super().forward(image * 2 - 1)


class ResNetEncoder(nn.Module):
    """torchvision ResNet-18/34 trunk + a top-down feature sum to full resolution.

    Args:
        name: "resnet18" | "resnet34". width: channels of the full-resolution features. norm: of the fusion
            block (the trunk keeps its BatchNorm). pretrained: load ImageNet weights from ``weights`` (or the
            torch hub cache; an error naming the file when missing); False: random init.

    >>> enc = ResNetEncoder("resnet18", width=8, pretrained=False)
    >>> bottleneck, features = enc(torch.rand(2, 3, 64, 64))
    >>> tuple(bottleneck.shape), tuple(features.shape)
    ((2, 512, 2, 2), (2, 8, 64, 64))
    """
    def __init__(self, name: str = "resnet18", width: int = 16, norm: str = "group", pretrained: bool = True,
                 weights: Optional[str] = None):
        super().__init__()
        if name not in ("resnet18", "resnet34"):
            raise ValueError(f"ResNetEncoder: unknown architecture {name!r}; valid: resnet18, resnet34")
        trunk = getattr(torchvision.models, name)(weights=None)
        if pretrained:
            trunk.load_state_dict(load_backbone_state(name, weights, config_key="model.encoder_weights"))
        self.stem = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool)
        self.stages = nn.ModuleList([trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4])
        channels = (64, 128, 256, 512)
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.fuse = ConvBlock(width, width, norm)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.width = width

    @property
    def bottleneck_channels(self) -> int:
        return 512

    @property
    def feature_channels(self) -> int:
        return self.width

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """image (B, 3, H, W) in [0, 1] -> (bottleneck (B, 512, ~H/32, ~W/32), features (B, width, H, W))."""
        h = self.stem((image - self.mean.to(image.dtype)) / self.std.to(image.dtype))
        levels = []
        for stage in self.stages:
            h = stage(h)
            levels.append(h)
        top = self.lateral[-1](levels[-1])
        for level, lateral in zip(reversed(levels[:-1]), reversed(self.lateral[:-1])):
            top = lateral(level) + F.interpolate(top, size=level.shape[-2:], mode="bilinear", align_corners=False)
        features = F.interpolate(top, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return levels[-1], self.fuse(features)


def build_encoder(name: str, width: int, depth: int, max_width: int, norm: str, pretrained: bool = True,
                  weights: Optional[str] = None) -> nn.Module:
    """The encoder ``name`` (see ENCODERS); ``pretrained`` / ``weights`` apply to the ResNets only."""
    if name == "unet":
        return UNetEncoder(3, width, depth, max_width, norm)
    if name in ("resnet18", "resnet34"):
        return ResNetEncoder(name, width, norm, pretrained, weights)
    raise ValueError(f"unknown model.encoder {name!r}; valid: {', '.join(ENCODERS)}")


__all__ = ["ENCODERS", "UNetEncoder", "ResNetEncoder", "build_encoder"]
