"""Near-plane clipping (pytorch3d's ``z_clip_value``): faces crossing z = znear are cut to their part in front.

A face with one vertex in front of the plane becomes the triangle (p1, p4, p5); a face with one vertex
behind becomes the quadrilateral (p4, p2, p3, p5), split into (p4, p2, p5) and (p5, p2, p3) (pytorch3d's
split); p4, p5 are where the edges from the lone vertex p1 to p2, p3 meet the plane. With perspective
correction the crossing point is found in view space (x_ndc * z is linear there), else in NDC.
Barycentrics of a piece convert back to the original face linearly (its corners' barycentrics), depth
and distances are the piece's (as pytorch3d); where both halves of a quadrilateral reach a pixel only the
one with the smaller signed distance counts (as pytorch3d).

The pieces go to the rasteriser as a *virtual mesh* of 2F faces per image: virtual face 2f is face f
(unchanged, or its first piece), 2f + 1 is the second piece of a split face (else degenerate, skipped).
Ordering by virtual index keeps the tie rule (face index order) of the original faces.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class NearClip:
    """The virtual mesh of clipped faces.

    Attributes:
        verts: (N, 6F, 3) NDC vertices, three per virtual face; differentiable w.r.t. the input vertices.
        faces: (2F, 3) long, shared: virtual face v uses verts 3v, 3v + 1, 3v + 2.
        conv: (N, 2F, 3, 3): b_original = conv @ b_piece for pieces (column k: corner k's barycentrics).
        is_piece: (N, 2F) bool, virtual faces that are pieces of a clipped face (need ``conv``).
        split: (N, F) bool, faces cut into two pieces (a pixel keeps only the nearer one).
        znear: the validity threshold for the virtual mesh (< the clip plane, > 0): pieces have
            vertices on the plane; faces wholly behind it are made degenerate instead.
    """

    verts: Tensor
    faces: Tensor
    conv: Tensor
    is_piece: Tensor
    split: Tensor
    znear: float


def _gather_vertex(fv: Tensor, idx: Tensor) -> Tensor:
    """fv (N, F, 3, 3), idx (N, F) in [0, 3) -> (N, F, 3): vertex idx of every face."""
    return fv.gather(2, idx[..., None, None].expand(*idx.shape, 1, 3))[:, :, 0]


def clip_near_plane(verts_ndc: Tensor, faces: Tensor, znear: float, perspective_correct: bool) -> NearClip | None:
    """The virtual mesh of ``verts_ndc`` (N, Nv, 3) (x_ndc, y_ndc, z_view), ``faces`` (F, 3) clipped at
    z = znear, or None when no face crosses the plane (then nothing changes)."""
    if znear <= 0:
        raise ValueError(f"near-plane clipping needs znear > 0, got {znear}")
    fv = verts_ndc[:, faces]  # (N, F, 3, 3)
    behind = fv[..., 2] <= znear
    n_behind = behind.sum(-1)
    crossing = ((n_behind == 1) | (n_behind == 2)) & torch.isfinite(fv).all(-1).all(-1)
    if not bool(crossing.any()):
        return None
    n_img, n_faces = crossing.shape
    one_front = crossing & (n_behind == 2)  # -> one triangle (p1, p4, p5)
    split = crossing & (n_behind == 1)  # -> two triangles (p4, p2, p5), (p5, p2, p3)
    lone = torch.where(one_front[..., None], ~behind, behind).to(torch.uint8).argmax(-1)  # p1: the odd vertex out
    i1, i2, i3 = lone, (lone + 1) % 3, (lone + 2) % 3
    p1, p2, p3 = (_gather_vertex(fv, i) for i in (i1, i2, i3))
    one = torch.ones((), dtype=fv.dtype, device=fv.device)

    def cut(pa: Tensor, pb: Tensor) -> tuple[Tensor, Tensor]:
        """Where segment pa -> pb (N, F, 3) meets z = znear: the point (N, F, 3) and its weight w on pb."""
        za, zb = pa[..., 2], pb[..., 2]
        w = (za - znear) / torch.where(crossing, za - zb, one)
        w1 = (1 - w)[..., None]
        if perspective_correct:  # x_ndc * z is linear in view space
            xy = (pa[..., :2] * za[..., None] * w1 + pb[..., :2] * zb[..., None] * w[..., None]) / znear
        else:
            xy = pa[..., :2] * w1 + pb[..., :2] * w[..., None]
        return torch.cat([xy, torch.full_like(za, znear)[..., None]], -1), w

    p4, w2 = cut(p1, p2)
    p5, w3 = cut(p1, p3)
    zero = torch.zeros_like(fv)
    first = torch.where(one_front[..., None, None], torch.stack([p1, p4, p5], 2), torch.stack([p4, p2, p5], 2))
    first = torch.where(crossing[..., None, None], first, torch.where(behind.any(-1)[..., None, None], zero, fv))
    second = torch.where(split[..., None, None], torch.stack([p5, p2, p3], 2), zero)
    virtual = torch.stack([first, second], 2).reshape(n_img, 2 * n_faces, 3, 3)

    # Barycentrics of p1..p5 in the original face: one-hot rows mixed by the cut weights.
    eye = torch.eye(3, dtype=fv.dtype, device=fv.device)
    e1, e2, e3 = eye[i1], eye[i2], eye[i3]  # (N, F, 3)
    b4 = e1 * (1 - w2)[..., None] + e2 * w2[..., None]
    b5 = e1 * (1 - w3)[..., None] + e3 * w3[..., None]
    conv_first = torch.where(one_front[..., None, None], torch.stack([e1, b4, b5], -1), torch.stack([b4, e2, b5], -1))
    conv_second = torch.stack([b5, e2, e3], -1)
    conv = torch.stack([conv_first, conv_second], 2).reshape(n_img, 2 * n_faces, 3, 3)
    is_piece = torch.stack([crossing, split], 2).reshape(n_img, 2 * n_faces)
    faces_v = torch.arange(6 * n_faces, device=faces.device).view(2 * n_faces, 3)
    return NearClip(virtual.reshape(n_img, 6 * n_faces, 3), faces_v, conv, is_piece, split, 0.5 * znear)
