"""Rendering from already projected vertices (the photo camera's NDC), with the Renderer's rasteriser and
shading: the same fragments and blends as ``render.Renderer``, only the projection step differs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.render.backends import get_rasterizer
from shoerecon.render.rasterize import RasterSettings
from shoerecon.render.renderer import RendererConfig
from shoerecon.render.shade import packed_hard_rgb_blend, packed_sample_texture, packed_softmax_rgb_blend


def render_projected(
    verts_ndc: Tensor, faces: Tensor, cfg: RendererConfig,
    texture: Tensor | None = None, uvs: Tensor | None = None, uv_faces: Tensor | None = None,
) -> Tensor:
    """Render one mesh from projected vertices.

    Args:
        verts_ndc: (N, 3) (x_ndc, y_ndc, z_view). faces: (F, 3) long. cfg: image size, K, blend, ...
        texture: (3, Ht, Wt) with uvs (T, 2) and uv_faces (F, 3); None renders white.
    Returns:
        (4, H, W) RGBA (alpha: soft silhouette for blend="soft", coverage for "hard").
    """
    frags = get_rasterizer(cfg.backend)(verts_ndc[None], faces, cfg.raster_settings(clip_near=False))
    if texture is None:
        colors = frags.bary.new_ones(frags.bary.shape[0], 3)
    else:
        colors = packed_sample_texture(frags, texture[None].to(verts_ndc.dtype), uvs.to(verts_ndc), uv_faces)
    if cfg.blend == "soft":
        rgba = packed_softmax_rgb_blend(colors, frags, cfg.sigma, cfg.gamma, cfg.znear, cfg.zfar, cfg.background)
    else:
        rgba = packed_hard_rgb_blend(colors, frags, cfg.background)
    return rgba[0].permute(2, 0, 1)


def depth_map(verts_ndc: Tensor, faces: Tensor, height: int, width: int, backend: str = "torch",
              znear: float = 0.01, empty: float = 1e6) -> Tensor:
    """Nearest-surface view depth per pixel (hard rasterisation, no gradient). -> (H, W), ``empty`` where no face."""
    with torch.no_grad():
        settings = RasterSettings((height, width), faces_per_pixel=1, znear=znear)
        frags = get_rasterizer(backend)(verts_ndc[None].detach(), faces, settings)
        zbuf = verts_ndc.new_full((height * width,), empty)
        zbuf[frags.pix] = frags.zbuf.detach()
    return zbuf.view(height, width)


def ndc_to_grid(xy_ndc: Tensor, height: int, width: int) -> Tensor:
    """NDC (..., 2) -> grid_sample coordinates (..., 2) (x right, y down, [-1, 1] spans the image, align_corners=False)."""
    s = min(height, width)
    return torch.stack([xy_ndc[..., 0] * s / width, -xy_ndc[..., 1] * s / height], dim=-1)


def sample_image(image: Tensor, grid: Tensor, mode: str = "bilinear") -> Tensor:
    """image (C, H, W) at grid (P, 2) -> (P, C); border padding."""
    out = F.grid_sample(image[None], grid.view(1, 1, -1, 2).to(image.dtype), mode=mode, padding_mode="border",
                        align_corners=False)
    return out[0, :, 0].t()
