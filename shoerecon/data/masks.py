"""Foreground masks: from files, from alpha, or by thresholding against the background with clean-up."""
from __future__ import annotations

from typing import Sequence

import kornia.morphology as morph
import numpy as np
import torch
from scipy import ndimage
from torch import Tensor


def background_distance(image: Tensor, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:
    """Largest per-channel distance of each pixel to the background colour. (B, 3, H, W) -> (B, 1, H, W)."""
    bg = image.new_tensor(background).view(1, 3, 1, 1)
    return (image - bg).abs().amax(dim=1, keepdim=True)


def fill_holes(mask: Tensor) -> Tensor:
    """Fill enclosed background regions of binary masks (a shoe's silhouette has no holes). (B, 1, H, W) -> same."""
    filled = [torch.from_numpy(ndimage.binary_fill_holes(m[0].cpu().numpy() > 0.5)) for m in mask]
    return torch.stack(filled)[:, None].to(mask)


def keep_largest_component(mask: Tensor) -> Tensor:
    """Keep the largest 8-connected component of each binary mask (drops dust and stray shadows). (B,1,H,W)."""
    out = []
    for m in mask:
        labels, n = ndimage.label(m[0].cpu().numpy() > 0.5, structure=np.ones((3, 3)))
        if n > 1:
            sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
            labels = labels == (1 + int(np.argmax(sizes)))
        out.append(torch.from_numpy(labels > 0))
    return torch.stack(out)[:, None].to(mask)


def threshold_mask(
    image: Tensor,
    background: Sequence[float] = (1.0, 1.0, 1.0),
    threshold: float = 0.08,
    kernel_size: int = 3,
    largest_component: bool = True,
) -> Tensor:
    """Foreground mask of photos on a plain background.

    Pixels farther than ``threshold`` from the background colour (any channel) are foreground; a
    morphological opening removes specks (JPEG noise), a closing bridges thin gaps, holes are filled
    and, optionally, only the largest component is kept.

    Args:
        image: (B, 3, H, W) or (3, H, W) in [0, 1].
    Returns:
        float mask of the same leading shape with one channel, values in {0, 1}.

    >>> img = torch.ones(1, 3, 9, 9); img[..., 2:7, 2:7] = 0.2
    >>> threshold_mask(img)[0, 0].sum().item()
    25.0
    """
    squeeze = image.ndim == 3
    x = image[None] if squeeze else image
    fg = (background_distance(x, background) > threshold).to(x.dtype)
    if kernel_size > 1:
        k = x.new_ones(kernel_size, kernel_size)
        fg = morph.closing(morph.opening(fg, k), k)
    fg = fill_holes(fg)
    if largest_component:
        fg = keep_largest_component(fg)
    return fg[0] if squeeze else fg
