"""The sole's ground face: which template vertices form it, and a linear map measuring how far it bends.

No training camera sees a shoe from below (turntables sit at elevation >= 0), so nothing in the images
constrains the vertices of the sole's bottom: left alone, a network bends them up into the shoe (measured on the
issue-10 quality model: the predicted bottom rose up to 0.2 of the length in the middle, and the ground face
scored F@2% 0.42 against 0.65 elsewhere). What the images do pin is the rim around it (the sole's lower edge is
the silhouette's lower edge in every view). A real sole's ground face moves with that rim like a stiff plate:
tilted by the pose, raised or lowered, and curled up only at its ends: toe spring under the front 40% and a heel
bevel under the back 15% (``plate_basis``); flat from the heel to the ball of the foot, as shoes are built.
``sole_bend_projector`` removes exactly that family from height changes of the ground vertices (rim included, so a
plate lifted off its rim is not free); what is left is the bend a loss can penalise, or a network can drop
(``project_onto_plate``). An earlier family bent the whole length (``d x^2``): it let the middle arch up between
heel and toe, which no shoe does, and the quality model used that freedom (projecting its predictions onto the
stricter family raised F@2% from 0.715 to 0.768).

Example:
    >>> import torch
    >>> x, z = torch.meshgrid(torch.linspace(-0.5, 0.5, 5), torch.linspace(-0.2, 0.2, 3), indexing="ij")
    >>> points = torch.stack([x.flatten(), torch.zeros(15), z.flatten()], -1)
    >>> proj = sole_bend_projector(points)
    >>> tilted = 0.1 + 0.2 * points[:, 0] - 0.3 * points[:, 2] + 0.05 * plate_basis(points)[:, 3]
    >>> bool((proj @ tilted).abs().max() < 1e-5)
    True
    >>> arched = 0.05 * (0.25 - points[:, 0] ** 2)       # the middle higher than both ends: not a sole
    >>> bool((proj @ arched).abs().max() > 1e-3)
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


def _smoothstep(edge0: float, edge1: float, t: Tensor) -> Tensor:
    u = ((t - edge0) / (edge1 - edge0)).clamp(0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def plate_basis(points: Tensor, toe_start: float = 0.6, heel_end: float = 0.15) -> Tensor:
    """(S, 5) height changes a sole's ground face may make: 1, x, z (lift and tilt), toe spring, heel bevel.

    Along the sole, ``t`` runs from 0 at the heel to 1 at the toe (the points' own x extent; toe +X). Toe spring
    rises as ``smoothstep(toe_start, 1, t)^2``, the heel bevel as ``(1 - smoothstep(0, heel_end, t))^2``; both
    are 0 on the flat part between them.

    Args:
        points: (S, 3) positions of the ground face's vertices (DESIGN frame).
    Returns:
        (S, 5) design matrix, in the points' dtype.
    """
    x, z = points[:, 0], points[:, 2]
    if len(x) == 0:
        return points.new_zeros(0, 5)
    t = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)
    toe = _smoothstep(toe_start, 1.0, t) ** 2
    heel = (1.0 - _smoothstep(0.0, heel_end, t)) ** 2
    return torch.stack([torch.ones_like(x), x, z, toe, heel], dim=-1)


def sole_bend_projector(points: Tensor) -> Tensor:
    """(S, S) projector onto what height changes at ``points`` (S, 3) leave after their best fit by ``plate_basis``.

    ``P @ dy`` is the least-squares residual of height changes ``dy`` (S,) at the points: zero exactly when the
    ground face moved as a plate (tilt, lift, toe spring, heel bevel). P is symmetric and idempotent; it depends
    only on the template's (x, z), so it is computed once per template.
    """
    design = plate_basis(points.double())                                          # (S, 5)
    hat = design @ torch.linalg.pinv(design)                                       # (S, S)
    return (torch.eye(len(points), dtype=hat.dtype, device=hat.device) - hat).to(points.dtype)


def project_onto_plate(offsets: Tensor, index: Tensor, projector: Tensor) -> Tensor:
    """Offsets whose ground-face heights are replaced by their plate fit: the sole can only move as a plate.

    Args:
        offsets: (B, N, 3) vertex offsets from the template. index: (S,) long ground-face vertices.
        projector: (S, S) ``sole_bend_projector`` of those vertices.
    Returns:
        (B, N, 3); only ``offsets[:, index, 1]`` change (minus their bend), differentiably. An empty ``index``
        returns ``offsets`` itself.
    """
    if index.numel() == 0:
        return offsets
    heights = offsets[:, index, 1]                                                  # (B, S)
    bend = heights @ projector.to(heights.dtype).T                                 # (B, S)
    return _replace_heights(offsets, index, heights - bend)


def _replace_heights(offsets: Tensor, index: Tensor, heights: Tensor) -> Tensor:
    y = offsets[..., 1].index_copy(1, index, heights)                               # (B, N), out of place
    return torch.stack([offsets[..., 0], y, offsets[..., 2]], dim=-1)


__all__ = ["sole_vertices", "plate_basis", "sole_bend_projector", "project_onto_plate"]
