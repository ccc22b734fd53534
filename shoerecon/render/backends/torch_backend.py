"""The default backend: shoerecon's pure-PyTorch rasteriser (runs on any device)."""
from __future__ import annotations

from torch import Tensor

from shoerecon.render.rasterize import ImageSize, PackedFragments, rasterize_packed


def rasterize(
    verts_ndc: Tensor,
    faces: Tensor,
    image_size: ImageSize,
    faces_per_pixel: int,
    blur_radius: float,
    cull_backfaces: bool,
    perspective_correct: bool,
    clip_barycentrics: bool,
    znear: float,
    clip_near: bool = False,
) -> PackedFragments:
    """verts_ndc (N, Nv, 3), faces (F, 3) -> PackedFragments (see ``rasterize.rasterize_packed``)."""
    return rasterize_packed(
        verts_ndc, faces, image_size, faces_per_pixel, blur_radius,
        cull_backfaces, perspective_correct, clip_barycentrics, znear, clip_near,
    )
