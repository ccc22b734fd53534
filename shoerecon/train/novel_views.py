"""Renders from unseen viewpoints for the novel-view loss terms (``losses.adversarial``, ``losses.fid``).

The image losses only see the dataset's views. Renders from random azimuths have no paired target, so they
are judged as a distribution: :class:`NovelViews` renders each predicted mesh from ``losses.novel_views``
random azimuths (elevation, distance and fov of the shoe's first target camera), lazily on first use in a
step, next to the batch's real target views; the terms themselves live in ``shoerecon/losses``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Optional

import torch
from torch import Tensor


def random_azimuth_cameras(reference: Tensor, views: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Cameras (B, views, 4) at uniform random azimuths, other parameters from ``reference`` (B, 4) or (B, 10).

    Novel views are plain look-at cameras: a product camera's crop and shoe offset belong to its photo.

    >>> cams = random_azimuth_cameras(torch.tensor([[0.0, 10.0, 2.2, 30.0]]), 3, torch.Generator().manual_seed(0))
    >>> cams.shape, bool((cams[..., 1:] == torch.tensor([10.0, 2.2, 30.0])).all())
    (torch.Size([1, 3, 4]), True)
    """
    b = reference.shape[0]
    azimuth = torch.rand(b, views, generator=generator) * 360.0
    cams = reference[:, None, :4].expand(b, views, 4).clone()
    cams[..., 0] = azimuth.to(cams)
    return cams


def real_rgba(batch: Mapping) -> Tensor:
    """The batch's real target views as RGBA (B * V, 4, H, W): alpha = the target masks."""
    targets, masks = batch["targets"], batch["target_masks"]
    return torch.cat([targets, masks], dim=2).flatten(0, 1)


class NovelViews:
    """The step's renders from random azimuths (``fake``) and real views (``real``), computed on first use.

    Args:
        render: cameras (B, V, 4) -> RGBA renders (B, V, 4, H, W) of the step's predicted meshes.
        batch: the training batch ("target_cameras", "targets", "target_masks").
        views: random azimuths per shoe. generator: the step's CPU generator (azimuths, then the critic's
            gradient-penalty draws). accelerator: for the critic's cross-process reductions (or None).
        train_critic: whether the adversarial term updates its critic first (training steps).
    """
    def __init__(self, render: Callable[[Tensor], Tensor], batch: Mapping, views: int,
                 generator: Optional[torch.Generator] = None, accelerator: Any = None, train_critic: bool = True):
        self.render, self.batch, self.views = render, batch, views
        self.generator, self.accelerator, self.train_critic = generator, accelerator, train_critic

    @functools.cached_property
    def fake(self) -> Tensor:
        """(B * views, 4, H, W) float32 renders, outside mixed-precision autocast."""
        reference = self.batch["target_cameras"][:, 0]
        cams = random_azimuth_cameras(reference.cpu(), self.views, self.generator).to(reference.device)
        with torch.autocast(reference.device.type, enabled=False):
            return self.render(cams).flatten(0, 1).float()

    @functools.cached_property
    def real(self) -> Tensor:
        """(B * V, 4, H, W) float32 real target views (alpha = masks)."""
        return real_rgba(self.batch).float()


__all__ = ["NovelViews", "random_azimuth_cameras", "real_rgba"]
