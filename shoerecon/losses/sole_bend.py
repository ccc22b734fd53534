"""Sole bend: the ground face of the predicted shoe moves with its rim like a plate (a prior for what no camera sees).

Turntable cameras never look from below, so the images say nothing about the vertices of the sole's ground
face, and a network bends them up into the shoe (see ``geometry.sole``). This term penalises the part of their
height change (prediction minus template, rim included) that a plate does not explain (lift, tilt, toe spring and
heel bevel: ``geometry.sole.plate_basis``): ``mean_{b,s} ((P dy_b)_s)^2`` with ``P`` the template's bend projector.
Bulges, dents and arches across the sole, and a sole lifted off its rim, cost; a plate's motions do not.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from shoerecon.geometry.topology import Template
from shoerecon.losses.registry import LossContext, TermConfig, at_least_fp32, register_loss


def sole_bend_loss(verts: Tensor, template: Template) -> Tensor:
    """Mean squared bend of the ground face's height change from the template.

    Args:
        verts: (B, N, 3) predicted vertices on ``template``'s topology (DESIGN frame, +Y up).
        template: the live template; its ``sole_operands`` (indices (S,), projector (S, S)) are cached on it.
    Returns:
        () scalar in squared world units; 0 when the template has no ground face.

    Example:
        >>> import torch, trimesh
        >>> box = trimesh.creation.box(extents=(1.0, 0.4, 0.4)).subdivide().subdivide()
        >>> verts, faces = torch.tensor(box.vertices, dtype=torch.float32), torch.tensor(box.faces)
        >>> template = Template(verts, faces)
        >>> tilted = verts + torch.stack([0 * verts[:, 0], 0.2 * verts[:, 0] - 0.1 * verts[:, 2], 0 * verts[:, 0]], -1)
        >>> bool(sole_bend_loss(tilted[None], template) < 1e-10)  # tilt is free
        True
        >>> bulged = verts.clone(); bulged[(verts[:, 1] < -0.19) & (verts.norm(dim=-1) < 0.21), 1] += 0.05
        >>> bool(sole_bend_loss(bulged[None], template) > 5e-5)   # a bump in the middle of the sole is not
        True
    """
    index, projector = template.sole_operands
    if index.numel() == 0:
        return verts.sum() * 0.0
    lift = verts[:, index, 1] - template.verts[index, 1].to(verts.dtype)   # (B, S)
    residual = lift @ projector.to(lift.dtype).T                           # (B, S)
    return residual.pow(2).mean()


@dataclass
class SoleBendConfig(TermConfig):
    """Sole-bend prior's weight (0 = off, the v1/v2 method): the soft form of ``model.sole_plate`` (which removes
    the bend from the network's output outright, so this term is then 0). Without either, the unseen ground face
    of a trained model bent up to 0.2 of the length into the shoe."""

    weight: float = 0.0


@register_loss("sole_bend", SoleBendConfig)
def sole_bend_term(ctx: LossContext, cfg: SoleBendConfig) -> Tensor:
    return sole_bend_loss(at_least_fp32(ctx.out.verts), ctx.template)


__all__ = ["sole_bend_loss", "SoleBendConfig"]
