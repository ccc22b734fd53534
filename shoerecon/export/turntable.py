"""Turntable renders of a mesh with our own Renderer, and PNG strips / grids of them.

A person can look at a prediction without a 3D viewer: ``save_turntable_strip(mesh, "x.png")``
writes 8 azimuths side by side, azimuth 0 (the input view) first.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from shoerecon.geometry.mesh import Mesh, Meshes
from shoerecon.render import Cameras, Renderer, RendererConfig


@dataclass
class TurntableConfig:
    """Cameras and image size of preview renders (the rig's defaults: elevation 10, distance 2.2, fov 30).

    The background is light grey so that white parts of a texture stay visible.
    """
    num_views: int = 8
    image_size: int = 128
    elevation: float = 10.0
    distance: float = 2.2
    fov: float = 30.0
    background: tuple[float, float, float] = (0.85, 0.85, 0.85)


def preview_renderer(image_size: int, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Renderer:
    """A hard-edged renderer (nearest face, exact coverage) for previews and export checks."""
    return Renderer(RendererConfig().hard(image_size=image_size, background=tuple(background)))


def render_mesh(mesh: Mesh, cameras: Cameras, renderer: Renderer) -> Tensor:
    """Render one mesh (textured if it has uvs + texture, else white) from cameras (V,) -> (V, 4, H, W)."""
    with torch.no_grad():
        return renderer(Meshes.from_mesh(mesh).apply(Tensor.float), cameras.to(device=mesh.verts.device).reshape(1, -1))[0]


def render_turntable(mesh: Mesh, cfg: TurntableConfig = TurntableConfig()) -> Tensor:
    """(num_views, 4, H, W) RGBA renders at evenly spaced azimuths starting at 0 (the input view)."""
    cams = Cameras.turntable(cfg.num_views, cfg.elevation, cfg.distance, cfg.fov, device=mesh.verts.device)
    return render_mesh(mesh, cams, preview_renderer(cfg.image_size, cfg.background))


def to_pil(images: Tensor) -> Image.Image:
    """(3, H, W) or (4, H, W) float in [0, 1] -> RGB PIL image (alpha dropped: renders are on the background)."""
    arr = (images[:3].detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def image_grid(rows: Sequence[Sequence[Tensor]], pad: int = 2, pad_value: float = 1.0) -> Tensor:
    """Tile rows of (3+, H, W) images (same H, W) into one (3, R*(H+pad)-pad, C*(W+pad)-pad) image."""
    if not rows or not rows[0]:
        raise ValueError("image_grid needs at least one image")
    h, w = rows[0][0].shape[-2:]
    ncols = max(len(r) for r in rows)
    out = torch.full((3, len(rows) * (h + pad) - pad, ncols * (w + pad) - pad), pad_value)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[:, i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = img[:3].detach().float().cpu()
    return out


def save_turntable_strip(mesh: Mesh, path: str | Path, cfg: TurntableConfig = TurntableConfig()) -> Path:
    """Render ``cfg.num_views`` azimuths and write them side by side as one PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    views = render_turntable(mesh, cfg)
    to_pil(image_grid([list(views)])).save(path)
    return path
