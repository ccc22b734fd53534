"""Pseudo-label align loss (v2): a visible face's texels sample the input photo where that face projects.

The texture flow says, for every texel, where in the input photo its colour comes from. For the faces the
input camera sees, the right answer is known up to the predicted shape: the face's own projection. This loss
pulls the flow at each visible face's UV centroid toward the projection of the face's 3D centroid (UV is
affine within a face, so the UV centroid is the 3D centroid). The target is a pseudo-label: by default it is
detached, so the loss trains the flow and leaves the shape to the silhouette/photometric losses.

Coordinates: the flow holds grid_sample (x, y) in [-1, 1] into the input image (align_corners=False, x right,
y down); cameras.py gives NDC (x right, y up, the shorter side spans [-1, 1]), hence
``grid = (x_ndc * S / W, -y_ndc * S / H)`` with S = min(H, W).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.losses.registry import LossContext, TermConfig, at_least_fp32, register_loss
from shoerecon.render.cameras import Cameras
from shoerecon.render.rasterize import RasterSettings, rasterize_meshes


@dataclass
class AlignConfig(TermConfig):
    """The align loss's weight (0 = not computed) and options.

    Attributes:
        penalty: "l2" (squared distance), "l1" (distance) or "huber" (smooth L1 per coordinate).
        huber_delta: the Huber transition, in grid units (2 = the image width).
        detach_target: train the flow only (True) or also pull the shape toward the flow (False).
    """
    weight: float = 0.0
    penalty: str = "l2"
    huber_delta: float = 0.05
    detach_target: bool = True


def ndc_to_grid(xy_ndc: Tensor, height: int, width: int) -> Tensor:
    """NDC (..., 2) (x right, y up, shorter side [-1, 1]) to grid_sample (x, y) coordinates (..., 2).

    >>> ndc_to_grid(torch.tensor([[1.0, 1.0]]), 2, 4).tolist()  # top of a 2 x 4 image, half-way to the right edge
    [[0.5, -1.0]]
    """
    s = min(height, width)
    return torch.stack([xy_ndc[..., 0] * (s / width), -xy_ndc[..., 1] * (s / height)], dim=-1)


def apply_grid_affine(grid: Tensor, affine: Tensor) -> Tensor:
    """Points (B, P, 2) through per-sample affine maps (B, 2, 3): ``A[:, :, :2] @ p + A[:, :, 2]``.

    >>> shift = torch.tensor([[[2.0, 0.0, 0.5], [0.0, 2.0, 0.0]]])
    >>> apply_grid_affine(torch.tensor([[[0.25, 0.5]]]), shift).tolist()
    [[[1.0, 1.0]]]
    """
    return grid @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]


def face_uv_centroids(uvs: Tensor, uv_faces: Tensor) -> Tensor:
    """UV centroid of every face. (T, 2), (F, 3) -> (F, 2)."""
    return uvs[uv_faces].mean(dim=-2)


def sample_flow_at_uv(flow: Tensor, uv: Tensor) -> Tensor:
    """Bilinear flow value at UV points. flow (B, Ht, Wt, 2), uv (F, 2) or (B, F, 2), v up -> (B, F, 2)."""
    b = flow.shape[0]
    uv = uv.to(flow.dtype).expand(b, *uv.shape[-2:]) if uv.ndim == 2 else uv.to(flow.dtype)
    grid = torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], dim=-1)[:, None]  # (B, 1, F, 2)
    out = F.grid_sample(flow.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :, 0].transpose(1, 2)


def project_face_centroids(
    verts: Tensor, faces: Tensor, cameras: Cameras, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Grid coordinates of every face's 3D centroid in the input view, and whether it is in front of the camera.

    Args:
        verts: (B, N, 3) world space. faces: (F, 3). cameras: batch shape (B,). height, width: input image size.
    Returns:
        grid (B, F, 2), in_front (B, F) bool.
    """
    if verts.is_floating_point() and verts.element_size() < 4:
        verts = verts.float()
    with torch.autocast(device_type=verts.device.type, enabled=False):  # the projection matmul in float32
        centroids = verts[:, faces].mean(dim=-2)  # (B, F, 3)
        ndc = cameras.to(device=verts.device, dtype=verts.dtype).transform_points_ndc(centroids)
    return ndc_to_grid(ndc[..., :2], height, width), ndc[..., 2] > cameras.znear


def visible_from_pix_to_face(pix_to_face: Tensor, num_faces: int) -> Tensor:
    """Faces that are the nearest face of at least one pixel.

    Args:
        pix_to_face: (B, H, W, K) packed indices b * F + f, -1 = none (pytorch3d fragments). num_faces: F.
    Returns:
        (B, F) bool.
    """
    b = pix_to_face.shape[0]
    nearest = pix_to_face[..., 0].reshape(-1)
    nearest = nearest[nearest >= 0]
    visible = torch.zeros(b * num_faces, dtype=torch.bool, device=pix_to_face.device)
    visible[nearest] = True
    return visible.view(b, num_faces)


def visible_faces(verts: Tensor, faces: Tensor, cameras: Cameras, height: int, width: int) -> Tensor:
    """Faces seen by each input camera: hard rasterisation (K = 1) through shoerecon.render. -> (B, F) bool."""
    if verts.is_floating_point() and verts.element_size() < 4:
        verts = verts.float()  # depth order and coverage need float32 (see render/renderer.py)
    with torch.no_grad(), torch.autocast(device_type=verts.device.type, enabled=False):
        ndc = cameras.to(device=verts.device, dtype=verts.dtype).transform_points_ndc(verts)
        frags = rasterize_meshes(ndc, faces, RasterSettings((height, width), faces_per_pixel=1, znear=cameras.znear))
    return visible_from_pix_to_face(frags.pix_to_face, faces.shape[0])


def _penalty(diff: Tensor, cfg: AlignConfig) -> Tensor:
    """(..., 2) -> (...)."""
    if cfg.penalty == "l2":
        return (diff**2).sum(-1)
    if cfg.penalty == "l1":
        return diff.norm(dim=-1)
    if cfg.penalty == "huber":
        return F.huber_loss(diff, torch.zeros_like(diff), reduction="none", delta=cfg.huber_delta).sum(-1)
    raise ValueError(f"unknown align penalty {cfg.penalty!r}; valid: l2, l1, huber")


def align_loss(
    flow: Tensor,
    verts: Tensor,
    faces: Tensor,
    uvs: Tensor,
    uv_faces: Tensor,
    cameras: Cameras,
    visible: Tensor,
    image_size: tuple[int, int],
    cfg: Optional[AlignConfig] = None,
    input_transform: Optional[Tensor] = None,
) -> Tensor:
    """Mean penalty between each visible face's flow and its projection in the input view.

    Args:
        flow: (B, Ht, Wt, 2) grid_sample coordinates into the input image.
        verts: (B, N, 3) predicted vertices, world space. faces: (F, 3). uvs: (T, 2). uv_faces: (F, 3).
        cameras: the input view's cameras, batch shape (B,) (e.g. ``Cameras.from_tensor(batch["input_camera"])``).
        visible: (B, F) or (F,) bool, faces seen in the input view (``visible_faces`` or the caller's rasteriser).
        image_size: (H, W) of the camera's (uncropped) image.
        input_transform: (B, 2, 3) affine map from that image's grid coordinates to the network input's
            (the dataset's centring crop, composed with input augmentation); None: identity.
    Returns:
        () scalar: the mean over visible faces in front of the camera (0 when there is none).
    """
    cfg = cfg or AlignConfig()
    b, f = verts.shape[0], faces.shape[0]
    if visible.shape not in ((b, f), (f,)):
        raise ValueError(f"visible must be (B, F) = ({b}, {f}) or (F,), got {tuple(visible.shape)}")
    if tuple(cameras.shape) != (b,):
        raise ValueError(
            f"align_loss needs one input camera per sample: batch shape ({b},), got {tuple(cameras.shape)}"
        )
    height, width = image_size
    target, in_front = project_face_centroids(verts, faces, cameras, height, width)
    if input_transform is not None:
        target = apply_grid_affine(target, input_transform.to(target))
    if cfg.detach_target:
        target = target.detach()
    pred = sample_flow_at_uv(flow, face_uv_centroids(uvs, uv_faces))
    weight = (visible.expand(b, f) & in_front).to(flow.dtype)
    per_face = _penalty(pred - target.to(flow.dtype), cfg)
    return (per_face * weight).sum() / weight.sum().clamp_min(1)


@register_loss("align", AlignConfig)
def align_term(ctx: LossContext, cfg: AlignConfig) -> Tensor:
    """``align_loss`` of the network's flow, with the faces the input cameras see (hard rasterisation)."""
    if ctx.input_cameras is None or ctx.uvs is None or ctx.uv_faces is None:
        raise ValueError("losses.align.weight > 0 needs LossContext.input_cameras, uvs and uv_faces")
    size = tuple(ctx.batch["input"].shape[-2:])
    # Its own hard K = 1 pass, not the target renders' fragments: the input camera is a target in only ~2 of 36
    # draws, and the soft renderer's blurred, K-truncated nearest faces mark other faces visible (measured: 44-216
    # of ~700 differ per view at 64 px even keeping covering faces only), so reuse would change the loss.
    visible = visible_faces(ctx.out.verts.detach(), ctx.faces, ctx.input_cameras, *size)
    return align_loss(at_least_fp32(ctx.out.flow), at_least_fp32(ctx.out.verts), ctx.faces, ctx.uvs, ctx.uv_faces,
                      ctx.input_cameras, visible, size, cfg, ctx.input_transform)


__all__ = [
    "AlignConfig",
    "align_loss",
    "ndc_to_grid",
    "apply_grid_affine",
    "face_uv_centroids",
    "sample_flow_at_uv",
    "project_face_centroids",
    "visible_from_pix_to_face",
    "visible_faces",
]
