"""Gradient-descent refinement of a turntable calibration through the differentiable renderer.

The grid search (``calib.turntable``) leaves the rig on a grid (elevation steps of about a degree) and each
view's crop fitted to bounding boxes only. This stage starts from it and descends on the soft-silhouette IoU
(``losses.silhouette.soft_iou``) of a deformable shape rendered by ``render.Renderer`` with all unknowns free:

* the rig: elevation (the field of view stays the grid's unless ``fov``: with a free zoom per view the fov
  only shows in the perspective, and descending on it drifts (30 -> 70 degrees on a test shoe));
* every view's crop (shift_x, shift_y, log zoom);
* the shape: the carved visual hull as a mesh (marching cubes of the occupancy), plus per-vertex offsets
  kept smooth by a Laplacian term. A free shape is what makes the camera gradients honest: a fixed hull
  carved with the grid's cameras fits those cameras best and would pin them where they are.

The object pose (offset on the table, start azimuth) is the shape's position and yaw in the turntable frame,
so it moves with the offsets; ``calib.turntable`` reads it off the refined hull (``_canonical``).
Coarse to fine: ``levels`` mask heights, each with its own steps and silhouette sharpness; every step renders
a random subset of the views (``views_per_step``) to keep a step cheap on one CPU core.
The soft IoU is a proxy: it can fall while the hard reprojection gets worse. ``refine`` therefore takes an
optional ``score`` (the caller's hard measure of a parameter state, e.g. the re-carved hull's IoU), calls it
after every level, and leaves ``params`` at the best-scoring of these states (the caller compares with its start).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shoerecon.data.product_photos import framing_distance  # one rule: the hidden rigs and calibrate share it
from shoerecon.losses.silhouette import soft_iou
from shoerecon.geometry.laplacian import uniform_laplacian
from shoerecon.render.cameras import Cameras

ELEVATION_UNIT = 10.0  # degrees per unit of the elevation parameter: similar step sizes for every parameter


@dataclass
class RefineConfig:
    """Refinement settings.

    Attributes:
        levels: mask heights (pixels) of the coarse-to-fine stages. steps: Adam steps per stage.
        views_per_step: views rendered per step (a random subset, different every step).
        sigma_pixels: silhouette edge softness in pixels (SoftRas sigma = (this * pixel)^2): one value for
            every level, or one per level.
        faces_per_pixel: K of the soft renderer.
        lr: Adam learning rate (all parameters are scaled to unit-ish steps). laplacian: weight of the
            offsets' smoothness. grid: voxels along the long side of the occupancy grid that gives the mesh.
        seed: of the view subsets (results are reproducible). fov: descend on the field of view too.
        lr_end: the learning rate falls (cosine) to this fraction of ``lr`` by the end of every level: at a
            constant rate Adam keeps every crop jittering by about ``lr`` (a third of a pixel at 64 px), and the
            re-carved hull, which needs all views aligned at once, pays for each one.
    """

    levels: tuple[int, ...] = (48, 64)
    steps: tuple[int, ...] = (80, 40)
    views_per_step: int = 8
    sigma_pixels: float | tuple[float, ...] = 0.5
    faces_per_pixel: int = 16
    lr: float = 0.01
    laplacian: float = 2.0
    grid: int = 32
    seed: int = 0
    fov: bool = False
    lr_end: float = 0.05


def hull_mesh(occupancy: Tensor, origin: Tensor, voxel: float) -> tuple[Tensor, Tensor]:
    """A closed mesh of a voxel occupancy: marching cubes of the lightly smoothed, zero-padded grid.

    Args:
        occupancy: (X, Y, Z) bool. origin: (3,) centre of voxel (0, 0, 0). voxel: voxel size.
    Returns:
        verts (N, 3) float32, faces (F, 3) long.
    """
    from scipy import ndimage
    from skimage.measure import marching_cubes

    occ = ndimage.gaussian_filter(F.pad(occupancy.float(), (1, 1, 1, 1, 1, 1)).numpy(), 0.6)
    verts, faces, _, _ = marching_cubes(occ, 0.5)
    verts = torch.from_numpy(verts.copy()).float() - 1.0  # undo the padding
    return verts * voxel + origin, torch.from_numpy(faces.copy()).long()


class TurntableParams(nn.Module):
    """The unknowns of one shoe in the turntable frame: elevation, fov, per-view crops, vertex offsets.

    Args:
        elevation, fov: the grid search's (degrees). crops: (V, 3) (shift_x, shift_y, zoom). verts: (N, 3).
        framing: ties the distance to the fov (``framing_distance``). direction: 1 or -1.
    """

    def __init__(self, elevation: float, fov: float, crops: Tensor, verts: Tensor, framing: float, direction: int) -> None:
        super().__init__()
        self.el0, self.fov0, self.framing, self.direction = float(elevation), float(fov), framing, direction
        self.register_buffer("verts0", verts.clone())
        self.d_elevation = nn.Parameter(torch.zeros(()))
        self.d_log_fov = nn.Parameter(torch.zeros(()))
        self.shift = nn.Parameter(crops[:, :2].clone())
        self.log_zoom = nn.Parameter(crops[:, 2].log().clone())
        self.offsets = nn.Parameter(torch.zeros_like(verts))

    @property
    def elevation(self) -> Tensor:
        return self.el0 + ELEVATION_UNIT * self.d_elevation

    @property
    def fov(self) -> Tensor:
        return self.fov0 * torch.exp(self.d_log_fov)

    def distance(self) -> Tensor:
        """The framing distance (``framing_distance``), differentiable in the fov."""
        return framing_distance(self.fov, self.framing)

    def crops(self) -> Tensor:
        """(V, 3) (shift_x, shift_y, zoom)."""
        return torch.cat([self.shift, self.log_zoom.exp()[:, None]], 1)

    def cameras(self, views: Tensor | None = None) -> Cameras:
        """Cameras (V,) (or the ``views`` subset) at azimuths ``direction * i * 360 / V`` of the turntable frame."""
        v = self.shift.shape[0]
        idx = torch.arange(v) if views is None else views
        az = self.direction * idx.float() * (360.0 / v)
        n = idx.shape[0]
        return Cameras(az, self.elevation.expand(n), self.distance().expand(n), self.fov.expand(n),
                       crop=self.crops()[idx], translation=torch.zeros(n, 3))

    def verts(self) -> Tensor:
        return self.verts0 + self.offsets


def _masks_at(masks: Tensor, height: int) -> Tensor:
    v, _, h, w = masks.shape
    if h == height:
        return masks.float()
    return F.interpolate(masks.float(), size=(height, max(1, round(w * height / h))), mode="area")


def _sigmas(cfg: RefineConfig) -> tuple[float, ...]:
    s = cfg.sigma_pixels
    s = (float(s),) * len(cfg.levels) if isinstance(s, (int, float)) else tuple(s)
    if len(s) != len(cfg.levels) or len(cfg.steps) != len(cfg.levels):
        raise ValueError(f"RefineConfig: levels {cfg.levels}, steps {cfg.steps} and sigma_pixels {cfg.sigma_pixels} "
                         "need one entry per level")
    return s


def refine(masks: Tensor, params: TurntableParams, faces: Tensor, cfg: RefineConfig | None = None, progress=None,
           score=None) -> list[float]:
    """Descend on ``1 - soft IoU`` (+ Laplacian of the offsets) over ``cfg.levels``; updates ``params`` in place.

    Args:
        masks: (V, 1, H, W) in [0, 1] (any size; downscaled per level). faces: (F, 3) of ``params.verts()``.
        progress: called once per step (a tqdm ``update``), optional.
        score: optional ``score(params) -> float`` (higher is better), called after every level; ``params``
            ends at the best-scoring of these states.
    Returns:
        The loss of every step (for tests and plots).
    """
    from shoerecon.render.renderer import Renderer, RendererConfig
    from shoerecon.render.shade import packed_silhouette

    cfg = cfg or RefineConfig()
    sigmas = _sigmas(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    v = masks.shape[0]
    params.d_log_fov.requires_grad_(cfg.fov)
    opt = torch.optim.Adam([q for q in params.parameters() if q.requires_grad], lr=cfg.lr)
    losses = []
    best = None
    for height, steps, sigma_pixels in zip(cfg.levels, cfg.steps, sigmas):
        target = _masks_at(masks, height)
        h, w = target.shape[-2:]
        pixel = 2.0 / min(h, w)
        sigma = (sigma_pixels * pixel) ** 2
        renderer = Renderer(RendererConfig(image_size=(h, w), faces_per_pixel=cfg.faces_per_pixel, sigma=sigma))
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * (cfg.lr_end + (1 - cfg.lr_end) * 0.5 * (1 + math.cos(math.pi * step / steps)))
            views = torch.randperm(v, generator=gen)[: cfg.views_per_step]
            cams = params.cameras(views).reshape(1, views.shape[0])
            # Only the silhouette is needed: no colour blending.
            alpha = packed_silhouette(renderer.rasterize_packed(params.verts()[None], faces, cams), sigma)[:, None]
            loss = (1 - soft_iou(alpha, target[views])).mean()
            lap = uniform_laplacian(params.offsets, faces).square().sum(-1).mean()
            # Offsets in pixels of this level, so the smoothness weighs the same at every level.
            total = loss + cfg.laplacian * 1e-3 * lap / pixel**2
            opt.zero_grad()
            total.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress()
        if score is not None:
            value = score(params)
            if best is None or value > best[0]:
                best = (value, _state(params))
    if best is not None:
        with torch.no_grad():
            for q, b in zip(params.parameters(), best[1]):
                q.copy_(b)
    return losses


def _state(params: TurntableParams) -> list[Tensor]:
    return [q.detach().clone() for q in params.parameters()]


def iou(a: Tensor, b: Tensor) -> Tensor:
    """Per-item IoU (V,) of binary-ish (V, 1, H, W) images (threshold 0.5)."""
    a, b = a > 0.5, b > 0.5
    return (a & b).flatten(1).sum(1) / (a | b).flatten(1).sum(1).clamp_min(1)


def outline_error(a: Tensor, b: Tensor) -> Tensor:
    """Per-item mean distance (V,) in pixels between the outlines of binary-ish (V, 1, H, W) images ``a`` and
    ``b``: the area where they differ over the length of ``b``'s outline (its pixels with a background
    4-neighbour). Unlike IoU it does not grow as the silhouette shrinks (a shoe seen end-on), so a mask that lost
    a part stands out.

    >>> b = torch.zeros(1, 1, 20, 20); b[..., 5:15, 5:15] = 1  # outline: 36 pixels
    >>> a = torch.zeros(1, 1, 20, 20); a[..., 5:15, 5:16] = 1  # one column wider: 10 pixels differ
    >>> round(float(outline_error(a, b)[0]), 3)
    0.278
    """
    from shoerecon.data.masks import outline

    a, b = a > 0.5, b > 0.5
    return (a ^ b).flatten(1).sum(1) / outline(b).flatten(1).sum(1).clamp_min(1)


def mesh_silhouettes(verts: Tensor, faces: Tensor, cams: Cameras, height: int, width: int) -> Tensor:
    """(V, 1, H, W) hard silhouettes (pixel-centre coverage) of a mesh (N, 3), (F, 3) seen by cams (V,)."""
    from shoerecon.render.renderer import Renderer, RendererConfig

    r = Renderer(RendererConfig(image_size=(height, width)).hard())
    with torch.no_grad():
        return torch.cat([r(verts[None], faces, cams[i : i + 12].reshape(1, -1))[0, :, 3:4]
                          for i in range(0, cams.shape[0], 12)])


def refined_score(masks: Tensor, params: TurntableParams, faces: Tensor, height: int) -> Tensor:
    """(V,) hard-render IoU of the refined mesh against the masks at ``height`` (threshold 0.5)."""
    target = _masks_at(masks, height)
    h, w = target.shape[-2:]
    return iou(mesh_silhouettes(params.verts().detach(), faces, params.cameras(), h, w), target)

