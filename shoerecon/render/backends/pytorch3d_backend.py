"""pytorch3d backend: the same fragments from pytorch3d's rasteriser, when pytorch3d is installed.

Conversions from shoerecon's conventions (render/cameras.py):
- pytorch3d's NDC +x points to the image's *left*: x is negated on the way in. Negating x mirrors the
  image plane, which flips every face's winding; pytorch3d's own culling then sees the same front
  faces (they are counter-clockwise in its left-handed screen frame), and barycentrics, depth and
  distances do not depend on the mirror.
- pytorch3d compares its ``blur_radius`` with the *squared* distance; ours is a distance: we pass r**2.
- pytorch3d only drops faces behind z ~ 0; faces with a vertex at z <= znear are removed per image
  before the call and face indices are mapped back to shoerecon's packed n * F + f.
"""
from __future__ import annotations

import torch
from torch import Tensor

from shoerecon.render.rasterize import ImageSize, PackedFragments, image_hw

INSTALL_HINT = (
    "RendererConfig.backend='pytorch3d' needs pytorch3d, which is not importable here. Install it "
    "(https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md) or use backend='torch'."
)


def available() -> bool:
    """True when pytorch3d can be imported."""
    try:
        import pytorch3d.renderer  # noqa: F401  (availability probe)
    except ImportError:
        return False
    return True


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
) -> PackedFragments:
    """verts_ndc (N, Nv, 3), faces (F, 3) -> PackedFragments, through pytorch3d's rasterize_meshes."""
    try:
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes as p3d_rasterize
        from pytorch3d.structures import Meshes
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    height, width = image_hw(image_size)
    n_img, n_faces = verts_ndc.shape[0], faces.shape[0]
    faces = faces.to(verts_ndc.device)
    flip = verts_ndc.new_tensor([-1.0, 1.0, 1.0])
    kept = [(verts_ndc[n, faces, 2] > znear).all(-1).nonzero()[:, 0] for n in range(n_img)]
    meshes = Meshes(verts=list(verts_ndc * flip), faces=[faces[k] for k in kept])
    p2f, zbuf, bary, dists = p3d_rasterize(
        meshes,
        image_size=(height, width),
        blur_radius=blur_radius**2,
        faces_per_pixel=faces_per_pixel,
        perspective_correct=perspective_correct,
        clip_barycentric_coords=clip_barycentrics,
        cull_backfaces=cull_backfaces,
    )
    # pytorch3d's packed faces -> shoerecon's n * F + f.
    original = torch.cat([k + n * n_faces for n, k in enumerate(kept)])
    slot = (p2f.reshape(-1) >= 0).nonzero()[:, 0]
    k_dim = faces_per_pixel
    return PackedFragments(
        pix=slot // k_dim,
        rank=slot % k_dim,
        face=original[p2f.reshape(-1)[slot]],
        bary=bary.reshape(-1, 3)[slot],
        zbuf=zbuf.reshape(-1)[slot],
        dists=dists.reshape(-1)[slot],
        shape=(n_img, height, width, k_dim),
    )
