"""The sole's ground face: which template vertices form it, and a linear map measuring how far it bends.

No training camera sees a shoe from below (turntables sit at elevation >= 0), so nothing in the images
constrains the vertices of the sole's bottom: left alone, a network bends them up into the shoe (measured on the
issue-10 quality model: the predicted bottom rose up to 0.2 of the length in the middle, and the ground face
scored F@2% 0.42 against 0.65 elsewhere). What the images do pin is the rim around it (the sole's lower edge is
the silhouette's lower edge in every view). A real sole's ground face moves with that rim like a stiff plate:
tilted by the pose, raised or lowered, bent along the length by toe spring. ``sole_bend_projector`` removes
exactly that family (``dy = a + b x + c z + d x^2``) from height changes of the ground vertices (rim included,
so a plate lifted off its rim is not free); what is left is the bend a loss can penalise.

Example:
    >>> import torch
    >>> x, z = torch.meshgrid(torch.linspace(-0.5, 0.5, 5), torch.linspace(-0.2, 0.2, 3), indexing="ij")
    >>> points = torch.stack([x.flatten(), torch.zeros(15), z.flatten()], -1)
    >>> proj = sole_bend_projector(points)
    >>> tilted = 0.1 + 0.2 * points[:, 0] - 0.3 * points[:, 2] + 0.05 * points[:, 0] ** 2
    >>> bool((proj @ tilted).abs().max() < 1e-5)
    True
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from shoerecon.geometry.mesh import vertex_normals


def sole_vertices(verts: Tensor, faces: Tensor, max_tilt_deg: float = 70.0, band: float = 0.06) -> Tensor:
    """Indices of the vertices on a shoe mesh's ground face and its rounded rim (DESIGN frame: +Y up).

    A vertex belongs to it when its normal is within ``max_tilt_deg`` of straight down (70: the rounded lower
    edge is in, the vertical sidewall is not) and it lies at most ``band`` (world units; the shoe's length is 1)
    above the lowest vertex, so the undersides of overhangs higher up (a collar's rim, a tongue) are not taken.

    Args:
        verts: (N, 3) positions. faces: (F, 3) long.
    Returns:
        (S,) long vertex indices, ascending.
    """
    down = vertex_normals(verts, faces)[:, 1] <= -math.cos(math.radians(max_tilt_deg))
    low = verts[:, 1] <= verts[:, 1].min() + band
    return torch.nonzero(down & low).flatten()


def sole_bend_projector(points: Tensor) -> Tensor:
    """(S, S) projector onto what height changes at ``points`` (S, 3) leave after the best fit a + b x + c z + d x^2.

    ``P @ dy`` is the least-squares residual of height changes ``dy`` (S,) at the points' (x, z): zero exactly
    when the ground face moved as a plate (tilt, lift, toe spring). P is symmetric and idempotent; it depends only
    on the template's (x, z), so it is computed once per template.
    """
    x, z = points[:, 0].double(), points[:, 2].double()
    design = torch.stack([torch.ones_like(x), x, z, x * x], dim=-1)                # (S, 4)
    hat = design @ torch.linalg.pinv(design)                                       # (S, S)
    return (torch.eye(len(x), dtype=hat.dtype, device=hat.device) - hat).to(points.dtype)


__all__ = ["sole_vertices", "sole_bend_projector"]
