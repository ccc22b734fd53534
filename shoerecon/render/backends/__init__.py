"""Rasteriser backends behind ``RendererConfig.backend``: "torch" (default) and "pytorch3d"."""
from __future__ import annotations

from typing import Callable

from shoerecon.render.backends import pytorch3d_backend, torch_backend

BACKENDS = {"torch": torch_backend.rasterize, "pytorch3d": pytorch3d_backend.rasterize}


def get_rasterizer(name: str) -> Callable:
    """The rasterise function of a backend; a clear error for unknown or unavailable ones."""
    if name not in BACKENDS:
        raise ValueError(f"unknown renderer backend {name!r}; valid: {sorted(BACKENDS)}")
    if name == "pytorch3d" and not pytorch3d_backend.available():
        raise ImportError(pytorch3d_backend.INSTALL_HINT)
    return BACKENDS[name]
