"""pytorch3d backend: pytorch3d chooses the faces of every pixel, shoerecon's closed form differentiates them.

Why not pytorch3d's own barycentrics and gradients: with perspective correction and a blur radius,
pytorch3d differentiates through its clamped perspective denominator (its open issue 561,
https://github.com/facebookresearch/pytorch3d/issues/561): vertex gradients reach 1e9 or inf where a
float64 reference gives ~1e2, while the forward values look right. So this backend keeps pytorch3d's
``pix_to_face`` only and recomputes barycentrics, depth and distances of those slots with
``rasterize.slot_geometry`` (pytorch3d's formulas, our closed-form backward); forward values agree with
pytorch3d's to ~1e-6. ``raw_fragments`` returns pytorch3d's own outputs for comparisons, with
``guard_vertex_gradients`` to stop a bad gradient with an explanation instead of passing it on.

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

from shoerecon.render.rasterize import PackedFragments, RasterSettings, pixel_centres, slot_geometry

INSTALL_HINT = (
    "RendererConfig.backend='pytorch3d' needs pytorch3d, which is not importable here. Install it "
    "(https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md) or use backend='torch'."
)
ISSUE_561 = (
    "pytorch3d's rasteriser differentiates through its clamped perspective-correction denominator "
    "(pytorch3d issue 561), which gives non-finite or exploding vertex gradients with perspective_correct "
    "and blur_radius > 0. The pytorch3d backend avoids it by recomputing barycentrics with shoerecon's "
    "closed form (backend='pytorch3d'); raw pytorch3d gradients are only for comparisons."
)
GRAD_LIMIT = 1e6  # |d loss / d vertex| in NDC units beyond which a raw pytorch3d gradient counts as exploded


def available() -> bool:
    """True when pytorch3d can be imported."""
    try:
        import pytorch3d.renderer  # noqa: F401  (availability probe)
    except ImportError:
        return False
    return True


class _GradientGuard(torch.autograd.Function):
    """Identity whose backward raises on a non-finite or exploded gradient (see ``guard_vertex_gradients``)."""

    @staticmethod
    def forward(ctx, x: Tensor, limit: float, what: str) -> Tensor:
        ctx.limit, ctx.what = limit, what
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        check_vertex_gradients(grad, ctx.limit, ctx.what)
        return grad, None, None


def check_vertex_gradients(grad: Tensor, limit: float = GRAD_LIMIT, what: str = "pytorch3d") -> None:
    """Raise FloatingPointError naming issue 561 if ``grad`` (any shape) holds inf/nan or |values| > limit."""
    finite = torch.isfinite(grad)
    if not bool(finite.all()):
        raise FloatingPointError(f"{what}: {int((~finite).sum())} non-finite vertex gradient entries. {ISSUE_561}")
    peak = float(grad.abs().max()) if grad.numel() else 0.0
    if peak > limit:
        raise FloatingPointError(f"{what}: vertex gradient {peak:.3g} exceeds {limit:.3g} (exploded). {ISSUE_561}")


def guard_vertex_gradients(verts: Tensor, limit: float = GRAD_LIMIT, what: str = "pytorch3d") -> Tensor:
    """verts (any shape), unchanged; in backward, its gradient is checked by ``check_vertex_gradients``."""
    return _GradientGuard.apply(verts, limit, what) if verts.requires_grad else verts


def _call_pytorch3d(verts_ndc: Tensor, faces: Tensor, settings: RasterSettings):
    """pytorch3d's rasterize_meshes on our NDC -> (kept face lists per image, p2f, zbuf, bary, dists)."""
    try:
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes as p3d_rasterize
        from pytorch3d.structures import Meshes
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    n_img = verts_ndc.shape[0]
    flip = verts_ndc.new_tensor([-1.0, 1.0, 1.0])
    kept = [(verts_ndc[n, faces, 2] > settings.znear).all(-1).nonzero()[:, 0] for n in range(n_img)]
    meshes = Meshes(verts=list(verts_ndc * flip), faces=[faces[k] for k in kept])
    outs = p3d_rasterize(
        meshes, image_size=settings.hw, blur_radius=settings.blur_radius**2,
        faces_per_pixel=settings.faces_per_pixel, perspective_correct=settings.perspective_correct,
        clip_barycentric_coords=settings.clip_barycentrics, cull_backfaces=settings.cull_backfaces,
    )
    return (kept, *outs)


def packed_from_pytorch3d(
    verts_ndc: Tensor, faces: Tensor, kept: list[Tensor], pix_to_face: Tensor,
    perspective_correct: bool, clip_barycentrics: bool,
) -> PackedFragments:
    """PackedFragments from pytorch3d's pix_to_face (N, H, W, K) (indices into its packed kept faces,
    kept[n] the faces of image n it saw), with barycentrics, depth and distances recomputed from verts_ndc
    (N, Nv, 3) by ``slot_geometry``: gradients take shoerecon's closed form, never pytorch3d's."""
    n_img, height, width, k_dim = pix_to_face.shape
    n_faces, n_verts = faces.shape[0], verts_ndc.shape[1]
    original = torch.cat([k + n * n_faces for n, k in enumerate(kept)])  # pytorch3d packed -> n * F + f
    slot = (pix_to_face.reshape(-1) >= 0).nonzero()[:, 0]
    pix, face = slot // k_dim, original[pix_to_face.reshape(-1)[slot]]
    vert_idx = faces[face % n_faces] + (face // n_faces * n_verts)[:, None]
    px, py = pixel_centres(pix, height, width, verts_ndc.dtype)
    bary, zbuf, dists = slot_geometry(
        verts_ndc.reshape(-1, 3), vert_idx, px, py, perspective_correct, clip_barycentrics
    )
    return PackedFragments(pix, slot % k_dim, face, bary, zbuf, dists, (n_img, height, width, k_dim))


def rasterize(verts_ndc: Tensor, faces: Tensor, settings: RasterSettings) -> PackedFragments:
    """verts_ndc (N, Nv, 3), faces (F, 3) -> PackedFragments: pytorch3d's face choice, our slot geometry.
    Faces crossing znear are skipped; with ``clip_near`` such faces raise (use backend 'torch')."""
    faces = faces.to(verts_ndc.device)
    if settings.clip_near:
        z, znear = verts_ndc.detach()[:, faces, 2], settings.znear
        if bool(((z <= znear).any(-1) & (z > znear).any(-1)).any()):
            raise NotImplementedError(
                "backend='pytorch3d' does not clip faces crossing the near plane (render.clip_near); "
                "use backend='torch' or clip_near=False (such faces are then skipped)"
            )
    with torch.no_grad():
        kept, p2f, *_ = _call_pytorch3d(verts_ndc.detach(), faces, settings)
    return packed_from_pytorch3d(verts_ndc, faces, kept, p2f, settings.perspective_correct,
                                 settings.clip_barycentrics)


def raw_fragments(verts_ndc: Tensor, faces: Tensor, settings: RasterSettings, guard: bool = True) -> PackedFragments:
    """pytorch3d's own fragments and gradients (for comparisons), packed; with ``guard`` a non-finite or
    exploded vertex gradient raises FloatingPointError explaining pytorch3d issue 561."""
    height, width = settings.hw
    faces = faces.to(verts_ndc.device)
    if guard:
        verts_ndc = guard_vertex_gradients(verts_ndc)
    kept, p2f, zbuf, bary, dists = _call_pytorch3d(verts_ndc, faces, settings)
    n_faces, k_dim = faces.shape[0], settings.faces_per_pixel
    original = torch.cat([k + n * n_faces for n, k in enumerate(kept)])
    slot = (p2f.reshape(-1) >= 0).nonzero()[:, 0]
    return PackedFragments(
        pix=slot // k_dim, rank=slot % k_dim, face=original[p2f.reshape(-1)[slot]],
        bary=bary.reshape(-1, 3)[slot], zbuf=zbuf.reshape(-1)[slot], dists=dists.reshape(-1)[slot],
        shape=(verts_ndc.shape[0], height, width, k_dim),
    )
