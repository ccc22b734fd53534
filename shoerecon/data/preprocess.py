"""Image geometry shared by the dataset and ``predict``: pad to square, resize, and the input-view preparation."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.data.masks import threshold_mask


def pad_to_square(image: Tensor, value: Sequence[float] | float = 1.0) -> Tensor:
    """Centre-pad a (C, H, W) image to (C, S, S), S = max(H, W), with a per-channel ``value``.

    The camera of the padded image has the fov ``cameras.fov_after_padding(fov, H, W)``.

    >>> pad_to_square(torch.zeros(1, 2, 4), 1.0)[0].tolist()
    [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    """
    c, h, w = image.shape
    s = max(h, w)
    if h == w:
        return image
    vals = torch.as_tensor(value, dtype=image.dtype, device=image.device).expand(c)
    out = vals.view(c, 1, 1).expand(c, s, s).clone()
    top, left = (s - h) // 2, (s - w) // 2
    out[:, top : top + h, left : left + w] = image
    return out


def resize(image: Tensor, size: int) -> Tensor:
    """Resize a square (C, S, S) image to (C, size, size): antialiased bilinear (area-like when shrinking)."""
    if image.shape[-1] == size and image.shape[-2] == size:
        return image
    return F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def mask_bbox(mask: Tensor, level: float = 0.5) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1), half-open, of the pixels of a (1, H, W) mask above ``level``; None if empty."""
    on = mask[0] > level
    if not bool(on.any()):
        return None
    rows, cols = on.any(1).nonzero()[:, 0], on.any(0).nonzero()[:, 0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def crop_square(image: Tensor, top: int, left: int, side: int, value: Sequence[float] | float) -> Tensor:
    """The (C, side, side) window at (top, left) of a (C, H, W) image; outside the image is ``value``."""
    c, h, w = image.shape
    vals = torch.as_tensor(value, dtype=image.dtype, device=image.device).expand(c)
    out = vals.view(c, 1, 1).expand(c, side, side).clone()
    r0, r1, c0, c1 = max(top, 0), min(top + side, h), max(left, 0), min(left + side, w)
    if r1 > r0 and c1 > c0:
        out[:, r0 - top : r1 - top, c0 - left : c1 - left] = image[:, r0:r1, c0:c1]
    return out


def crop_grid_affine(top: int, left: int, side: int, height: int, width: int) -> Tensor:
    """(2, 3) map from grid coordinates of an (H, W) image to those of its square crop at (top, left, side).

    Grid coordinates are grid_sample's (align_corners=False): x right, y down, [-1, 1] spans the image.
    Resizing the crop keeps its grid coordinates, so the map holds for the resized network input too.

    >>> A = crop_grid_affine(top=0, left=10, side=20, height=40, width=40)
    >>> (A[:, :2] @ torch.tensor([0.0, -1.0]) + A[:, 2]).tolist()  # full-image (col 20, row 0) -> crop centre/top
    [0.0, -1.0]
    """
    return torch.tensor([[width / side, 0.0, (width - 2 * left) / side - 1],
                         [0.0, height / side, (height - 2 * top) / side - 1]])


def prepare_input(
    image: Tensor,
    mask: Tensor | None = None,
    size: int = 64,
    fill: float = 0.9,
    background: Sequence[float] = (1.0, 1.0, 1.0),
    threshold: float = 0.08,
    kernel_size: int = 3,
    composite: bool = True,
    return_transform: bool = False,
) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]:
    """The input view as the network sees it: masked, cropped to the shoe, centred, scaled, padded.

    The shoe's bounding box is centred in a square whose side is the box's longest side / ``fill``,
    on the background colour, resized to ``size``. The same function serves training (the dataset's
    input view) and inference (``predict``), so both see identically framed shoes.

    Args:
        image: (3, H, W) in [0, 1], any aspect ratio. mask: (1, H, W) in [0, 1]; None thresholds
            the image against ``background`` (``masks.threshold_mask``).
        composite: replace everything outside the mask by the background colour.
        return_transform: also return the (2, 3) ``crop_grid_affine`` from the given image's grid
            coordinates to the result's (where a point seen by the image's camera lands in the input).
    Returns:
        image (3, size, size), mask (1, size, size)[, transform (2, 3)].

    >>> img = torch.ones(3, 20, 40); img[:, 5:15, 10:20] = 0.0
    >>> out, m = prepare_input(img, size=10, fill=1.0)
    >>> m[0].sum().item(), out[:, 0, 0].tolist()
    (100.0, [0.0, 0.0, 0.0])
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"prepare_input: image must be (3, H, W), got {tuple(image.shape)}")
    if mask is None:
        mask = threshold_mask(image, background, threshold, kernel_size)
    if mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"prepare_input: mask {tuple(mask.shape)} does not match image {tuple(image.shape)}")
    mask = mask.to(image)
    if composite:
        bg = image.new_tensor(background).view(3, 1, 1)
        image = image * mask + bg * (1 - mask)
    box = mask_bbox(mask)
    if box is None:
        raise ValueError("prepare_input: the mask is empty (no foreground found)")
    r0, r1, c0, c1 = box
    side = max(1, math.ceil(max(r1 - r0, c1 - c0) / fill))
    top = int(round((r0 + r1) / 2 - side / 2))
    left = int(round((c0 + c1) / 2 - side / 2))
    h, w = image.shape[-2:]
    image = crop_square(image, top, left, side, background)
    mask = crop_square(mask, top, left, side, 0.0)
    if return_transform:
        return resize(image, size), resize(mask, size), crop_grid_affine(top, left, side, h, w)
    return resize(image, size), resize(mask, size)
