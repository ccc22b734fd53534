"""Input-view augmentation (v2): random scale/shift and colour jitter of the input photo only.

v1's predictions jumped when the input shoe was slightly smaller or shifted: the network had only ever seen
inputs centred and scaled by ``prepare_input``. Kornia's RandomAffine (scale 0.8-1.2, shift up to 10 %) and
ColorJitter on the input view teach it invariance; the target views and their cameras stay untouched, since
they supervise the 3D shape, which does not change when the photo is reframed.

The input mask is warped with the very same affine parameters, so image and mask stay aligned. Regions
uncovered by the warp are filled with the background colour (white) in the image and 0 in the mask. Colour
jitter changes the shoe only: the result is composited back over the white background with the mask.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from shoerecon.data.batch import TrainBatch


@dataclass
class AugmentConfig:
    """Input-view augmentation.

    Attributes:
        enabled: off = identity (v1 behaviour).
        scale: range of the random isotropic scale.
        translate: largest shift, a fraction of the image width/height, in each direction.
        degrees: largest in-plane rotation (0: the input view is upright by convention).
        brightness, contrast, saturation, hue: ColorJitter strengths (kornia semantics; hue in [0, 0.5]).
        p: probability of applying each of the two transforms to a sample.
        background: fill colour of uncovered regions and of the composited background.
    """

    enabled: bool = False
    scale: tuple[float, float] = (0.8, 1.2)
    translate: float = 0.1
    degrees: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    p: float = 1.0
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)


class InputAugment(nn.Module):
    """Random affine + colour jitter of the input view and its mask, active in training mode only.

    forward(image (B,3,H,W), mask (B,1,H,W) or None, generator=None) -> (image, mask), same shapes.
    With a ``torch.Generator`` the draw is reproducible and leaves the global RNG untouched.

    >>> aug = InputAugment(AugmentConfig(enabled=True)).train()
    >>> img, mask = torch.ones(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    >>> out, out_mask = aug(img, mask, generator=torch.Generator().manual_seed(0))
    >>> out.shape, bool(torch.allclose(out, img))  # an all-background image stays white
    (torch.Size([2, 3, 32, 32]), True)
    """

    def __init__(self, cfg: AugmentConfig | None = None):
        super().__init__()
        import kornia.augmentation as K

        self.cfg = cfg = cfg or AugmentConfig()
        if not (0 < cfg.scale[0] <= cfg.scale[1]):
            raise ValueError(f"augment.scale must be 0 < lo <= hi, got {cfg.scale}")
        if not (0 <= cfg.translate < 1):
            raise ValueError(f"augment.translate must be in [0, 1), got {cfg.translate}")
        if not (0 <= cfg.p <= 1):
            raise ValueError(f"augment.p must be in [0, 1], got {cfg.p}")
        self.affine = K.RandomAffine(
            degrees=cfg.degrees, translate=(cfg.translate, cfg.translate), scale=tuple(cfg.scale), p=cfg.p
        )
        self.jitter = K.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, p=cfg.p)

    def forward(
        self, image: Tensor, mask: Optional[Tensor] = None, generator: Optional[torch.Generator] = None
    ) -> tuple[Tensor, Optional[Tensor]]:
        if not (self.cfg.enabled and self.training):
            return image, mask
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"InputAugment expects image (B, 3, H, W), got {tuple(image.shape)}")
        if mask is not None and (mask.shape[:2] != (image.shape[0], 1) or mask.shape[2:] != image.shape[2:]):
            raise ValueError(f"InputAugment: mask {tuple(mask.shape)} does not match image {tuple(image.shape)}")
        if generator is None:
            return self._apply(image, mask)
        # Kornia samples from the global CPU RNG: run it on a fork seeded from the caller's generator.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._apply(image, mask)

    def _apply(self, image: Tensor, mask: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
        bg = image.new_tensor(self.cfg.background).view(1, 3, 1, 1)
        jittered = self.jitter(image)
        if mask is not None:  # jitter the shoe, not the background
            jittered = bg + mask * (jittered - bg)
        # Warp (image - background) with zero padding: uncovered pixels come out exactly as the background.
        warped = self.affine(jittered - bg) + bg
        warped_mask = None if mask is None else self.affine(mask, params=self.affine._params)
        return warped.clamp(0, 1), warped_mask


def pixel_to_grid_affine(matrix: Tensor, height: int, width: int) -> Tensor:
    """Kornia's (B, 3, 3) pixel-space warp (pixel centres at integer coordinates) as a grid-space one.

    Grid coordinates are grid_sample's with align_corners=False: x = (2 * col + 1) / W - 1.
    Returns (B, 3, 3): ``N @ matrix @ N^-1`` with N the pixel -> grid map.
    """
    n = matrix.new_tensor([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]])
    return n @ matrix @ torch.linalg.inv(n)


def augment_input_batch(batch: TrainBatch, augment: InputAugment,
                        generator: Optional[torch.Generator] = None) -> TrainBatch:
    """A copy of a batch (``TrainBatch``, or a dict with the same keys) with "input" and "input_mask"
    augmented; every target entry untouched.

    A batch "input_transform" (B, 2, 3) (the input camera's image grid -> the input's grid) is composed with
    the affine draw, so points projected by the input camera still land where the augmented input shows them.
    """
    image, mask = augment(batch["input"], batch.get("input_mask"), generator=generator)
    out = copy.copy(batch)
    out["input"] = image
    if mask is not None:
        out["input_mask"] = mask
    transform = batch.get("input_transform")
    if transform is not None and image is not batch["input"]:
        warp = pixel_to_grid_affine(augment.affine.transform_matrix.to(transform), *image.shape[-2:])
        last_row = transform.new_tensor([0.0, 0.0, 1.0]).expand(transform.shape[0], 1, 3)
        out["input_transform"] = (warp @ torch.cat([transform, last_row], dim=1))[:, :2]
    return out


__all__ = ["AugmentConfig", "InputAugment", "augment_input_batch", "pixel_to_grid_affine"]
