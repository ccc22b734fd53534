"""Texture from the photo: project every texel into the photo and keep what the camera saw.

For a texel with surface point p and face normal n (``model.flow.rasterize_uv`` gives its face and
barycentrics), with the fitted photo camera:

    w(p, n)  = visible(p) * ramp(cos(n, p -> camera)) * mask(proj(p))      in [0, 1]
    colour   = w(p, n) photo(proj(p))
             + (1 - w(p, n)) [ w(p', n') photo(proj(p')) + (1 - w(p', n')) fallback ]

where p' = (x, y, -z), n' = (nx, ny, -nz) is the mirror point (bilateral symmetry of a shoe across its
vertical length plane, DESIGN frame): a texel the camera never saw takes the colour its mirror texel takes
when that one is seen, else the fallback (the network's flow sample). ``visible`` is a hard depth test
against the hard-rasterised depth map (within ``depth_tol``); the facing ramp and the photo mask's soft
edge make the blend soft at the visibility boundary. A frontal, unoccluded texel inside the mask has
w = 1: exactly the photo's (bilinear) colour.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.fit.render import depth_map, ndc_to_grid, sample_image
from shoerecon.geometry.mesh import face_normals
from shoerecon.model.flow import rasterize_uv

MIRROR = (1.0, 1.0, -1.0)


@dataclass
class BakeConfig:
    """size: texture side. depth_tol: world units a texel may lie behind the visible surface and still count as
    seen. facing: (c0, c1) cosines between which the facing weight ramps from 0 to 1. dilate: texel rings the
    baked colours grow into the UV gutter (bilinear lookups at chart borders read them)."""

    size: int = 512
    depth_tol: float = 0.02
    facing: tuple[float, float] = (0.1, 0.3)
    dilate: int = 4


@dataclass
class TexelPoints:
    """Surface points of the texels a UV layout uses. face (Ht, Wt) long (-1: gutter), bary (Ht, Wt, 3)."""

    face: Tensor
    bary: Tensor

    @classmethod
    def from_layout(cls, uvs: Tensor, uv_faces: Tensor, size: int) -> "TexelPoints":
        face, bary = rasterize_uv(uvs, uv_faces, size)
        return cls(face, bary)

    def points(self, verts: Tensor, faces: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """verts (N, 3) -> (used (Ht, Wt) bool, points (P, 3), normals (P, 3)) of the P used texels."""
        used = self.face >= 0
        f = self.face[used]
        corners = verts[faces[f]]  # (P, 3, 3)
        pts = (self.bary[used].to(verts)[:, :, None] * corners).sum(1)
        return used, pts, face_normals(verts, faces)[f]


def visibility_weight(points: Tensor, normals: Tensor, project: Callable[[Tensor], Tensor], cam_pos: Tensor,
                      depth: Tensor, mask: Tensor, cfg: BakeConfig) -> tuple[Tensor, Tensor]:
    """How much of each point's colour comes from the photo.

    Args:
        points, normals: (P, 3) world. project: (P, 3) -> (P, 3) NDC + view depth. cam_pos: (3,).
        depth: (H, W) nearest-surface depth (``fit.render.depth_map``). mask: (1, H, W) photo mask.
    Returns:
        weight (P,) in [0, 1]; grid (P, 2) where the points land in the photo (grid_sample coordinates).
    """
    h, w = depth.shape
    ndc = project(points)
    grid = ndc_to_grid(ndc[:, :2], h, w)
    inside = (grid.abs() <= 1).all(-1)
    front = ndc[:, 2] <= sample_image(depth[None], grid, mode="nearest")[:, 0] + cfg.depth_tol
    view = F.normalize(cam_pos - points, dim=-1)
    c0, c1 = cfg.facing
    facing = (((normals * view).sum(-1) - c0) / max(c1 - c0, 1e-6)).clamp(0, 1)
    m = sample_image(mask, grid)[:, 0].clamp(0, 1)
    return (inside & front).to(points) * facing * m, grid


def dilate_into_gutter(texture: Tensor, used: Tensor, rings: int) -> Tensor:
    """Grow colours of used texels into unused neighbours, one 3x3 ring per step. texture (C, H, W), used (H, W)."""
    filled = used.to(texture)[None, None]
    tex = (texture * filled[0])[None]
    for _ in range(rings):
        total = F.avg_pool2d(tex, 3, 1, 1, count_include_pad=False)
        count = F.avg_pool2d(filled, 3, 1, 1, count_include_pad=False)
        grow = (count > 0) & (filled == 0)
        tex = torch.where(grow, total / count.clamp_min(1e-8), tex)
        filled = torch.where(grow, torch.ones_like(filled), filled)
    return torch.where(filled > 0, tex, texture[None])[0]


@dataclass
class BakeResult:
    """texture (3, S, S); weight (S, S) photo share per texel; mirror_weight (S, S) mirror share of the rest."""

    texture: Tensor
    weight: Tensor
    mirror_weight: Tensor


@torch.no_grad()
def bake_texture(verts: Tensor, faces: Tensor, texels: TexelPoints, project: Callable[[Tensor], Tensor],
                 cam_pos: Tensor, photo: Tensor, mask: Tensor, fallback: Tensor, cfg: BakeConfig = BakeConfig(),
                 backend: str = "torch") -> BakeResult:
    """The photo-projected texture with mirrored and fallback colours (module docstring).

    Args:
        verts: (N, 3) world. faces: (F, 3) long. texels: for a texture of side S (``TexelPoints.from_layout``).
        project: world (P, 3) -> NDC (P, 3) of the photo camera. cam_pos: (3,) camera centre.
        photo: (3, H, W), mask (1, H, W) in [0, 1]. fallback: (3, S, S) colours of unseen texels.
    Returns:
        BakeResult.
    """
    h, w = photo.shape[-2:]
    depth = depth_map(project(verts), faces, h, w, backend)
    used, pts, normals = texels.points(verts, faces)
    wt, grid = visibility_weight(pts, normals, project, cam_pos, depth, mask, cfg)
    mirror = pts.new_tensor(MIRROR)
    wm, grid_m = visibility_weight(pts * mirror, normals * mirror, project, cam_pos, depth, mask, cfg)
    fb = fallback.permute(1, 2, 0)[used]  # (P, 3)
    colour = wt[:, None] * sample_image(photo, grid) + (1 - wt[:, None]) * (
        wm[:, None] * sample_image(photo, grid_m) + (1 - wm[:, None]) * fb)
    texture = fallback.clone()
    texture.permute(1, 2, 0)[used] = colour.to(texture)
    texture = dilate_into_gutter(texture, used, cfg.dilate)
    weight = torch.zeros(used.shape, dtype=photo.dtype, device=photo.device)
    mweight = torch.zeros_like(weight)
    weight[used], mweight[used] = wt.to(weight), wm.to(weight)
    return BakeResult(texture.clamp(0, 1), weight, mweight)
