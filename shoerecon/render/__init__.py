"""Differentiable mesh rendering: cameras, rasterisation (pytorch3d fragment semantics), shading."""
from shoerecon.render.cameras import Cameras, ndc_to_pixel, pixel_centers_ndc
from shoerecon.render.rasterize import Fragments, PackedFragments, RasterSettings, rasterize_meshes, rasterize_packed
from shoerecon.render.renderer import Renderer, RendererConfig
from shoerecon.render.shade import hard_rgb_blend, sigmoid_silhouette, softmax_rgb_blend

__all__ = [
    "Cameras", "pixel_centers_ndc", "ndc_to_pixel",
    "Fragments", "PackedFragments", "RasterSettings", "rasterize_meshes", "rasterize_packed",
    "Renderer", "RendererConfig",
    "sigmoid_silhouette", "softmax_rgb_blend", "hard_rgb_blend",
]
