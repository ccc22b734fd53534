"""The default backend: shoerecon's pure-PyTorch rasteriser (runs on any device)."""
from __future__ import annotations

from torch import Tensor

from shoerecon.render.rasterize import PackedFragments, RasterSettings, rasterize_packed


def rasterize(verts_ndc: Tensor, faces: Tensor, settings: RasterSettings) -> PackedFragments:
    """verts_ndc (N, Nv, 3), faces (F, 3) -> PackedFragments (see ``rasterize.rasterize_packed``)."""
    return rasterize_packed(verts_ndc, faces, settings)
