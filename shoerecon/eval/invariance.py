"""Scale/position invariance: does the predicted shape change when the shoe in the input is a bit
larger, smaller or off-centre?

The network's input tensor (already prepared: masked, centred, padded) is zoomed about its centre
or shifted, on the background colour, and the prediction for each perturbed input is compared
with the prediction for the original by Chamfer-L2. A network that learned the shape, not the
framing, scores ~0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.eval.metrics import chamfer_between_meshes
from shoerecon.geometry.mesh import Mesh


@dataclass
class InvarianceConfig:
    """Perturbations of the input view and how predictions are compared."""

    scales: tuple[float, ...] = (0.8, 1.2)   # apparent size of the shoe relative to the original
    shifts: tuple[float, ...] = (0.08,)      # fractions of the image side, applied +- along x and along y
    num_points: int = 5000                   # surface samples per mesh for the Chamfer distance
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0


def affine_on_background(image: Tensor, theta: Tensor, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:
    """Warp images by an affine map (output -> input, normalised coordinates), filling outside with the background.

    image (B, C, H, W), theta (2, 3) or (B, 2, 3) -> (B, C, H, W).
    """
    b = image.shape[0]
    theta = theta.to(image).expand(b, 2, 3)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    bg = image.new_tensor(background).view(1, -1, 1, 1)
    # Sampling (image - bg) with zero padding then adding bg back fills uncovered pixels with bg.
    return F.grid_sample(image - bg, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + bg


def rescale_image(image: Tensor, scale: float, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:
    """Zoom about the image centre: content appears ``scale`` times as large. (B, C, H, W) -> same.

    >>> img = torch.ones(1, 1, 8, 8); img[..., 2:6, 2:6] = 0
    >>> (rescale_image(img, 0.5, (1.0,)) < 0.5).sum().item()
    4
    """
    theta = torch.tensor([[1.0 / scale, 0.0, 0.0], [0.0, 1.0 / scale, 0.0]])
    return affine_on_background(image, theta, background)


def shift_image(image: Tensor, dx: float, dy: float, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:
    """Move content by dx of the width to the right and dy of the height down. (B, C, H, W) -> same.

    >>> img = torch.ones(1, 1, 8, 8); img[..., 0, 0] = 0
    >>> (shift_image(img, 0.25, 0.5, (1.0,))[0, 0] < 0.5).nonzero().tolist()
    [[4, 2]]
    """
    theta = torch.tensor([[1.0, 0.0, -2.0 * dx], [0.0, 1.0, -2.0 * dy]])
    return affine_on_background(image, theta, background)


def perturbations(cfg: InvarianceConfig) -> dict[str, Callable[[Tensor], Tensor]]:
    """Named input perturbations: ``scale_0.8``, ``scale_1.2``, ``shift_x+0.08``, ``shift_x-0.08``, ``shift_y+0.08``..."""
    out: dict[str, Callable[[Tensor], Tensor]] = {}
    for s in cfg.scales:
        out[f"scale_{s:g}"] = lambda x, s=s: rescale_image(x, s, cfg.background)
    for d in cfg.shifts:
        for sign in (1, -1):
            out[f"shift_x{sign * d:+g}"] = lambda x, v=sign * d: shift_image(x, v, 0.0, cfg.background)
            out[f"shift_y{sign * d:+g}"] = lambda x, v=sign * d: shift_image(x, 0.0, v, cfg.background)
    return out


def predicted_verts(model: torch.nn.Module, images: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, N, 3) predicted vertices, no gradients."""
    with torch.no_grad():
        return model(images).verts


def invariance_chamfer(model: torch.nn.Module, images: Tensor, cfg: InvarianceConfig = InvarianceConfig()) -> dict[str, Tensor]:
    """Chamfer-L2 between the prediction for each perturbed input and the prediction for the original.

    Args:
        model: maps (B, 3, H, W) to an object with ``.verts`` (B, N, 3) and has a ``faces`` (F, 3) buffer.
        images: (B, 3, H, W) prepared input views.
    Returns:
        {perturbation name: (B,) Chamfer-L2 per shoe}.
    """
    faces = model.faces
    base = predicted_verts(model, images)
    out = {}
    for name, perturb in perturbations(cfg).items():
        moved = predicted_verts(model, perturb(images))
        out[name] = torch.tensor([
            chamfer_between_meshes(Mesh(base[i], faces), Mesh(moved[i], faces), cfg.num_points, cfg.seed)
            for i in range(images.shape[0])
        ])
    return out
