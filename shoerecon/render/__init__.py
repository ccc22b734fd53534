"""Differentiable mesh rendering: cameras, rasterisation (pytorch3d fragment semantics), shading."""
from shoerecon.render.cameras import Cameras, pixel_centers_ndc, ndc_to_pixel

__all__ = ["Cameras", "pixel_centers_ndc", "ndc_to_pixel"]
