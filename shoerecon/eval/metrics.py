"""Evaluation metrics: 2D image metrics, 3D surface/volume metrics, and mesh quality.

Every metric is a plain function on tensors and runs on any device. Conventions:

* 2D: images (B, C, H, W) float in [0, 1]; each metric returns one value per image, (B,).
* 3D: meshes are compared in the shared normalised world frame (longest extent 1), so distance
  thresholds are fractions of that unit length. Chamfer-L2 follows pytorch3d's
  ``chamfer_distance``: mean squared nearest-neighbour distance pred -> gt plus gt -> pred.
* Mesh quality: self-intersections are counted between faces that share no vertex; coplanar
  overlaps (zero volume) are not counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.geometry.mesh import Mesh, face_areas_normals
from shoerecon.geometry.quality import self_intersecting_faces, triangle_angles


@dataclass
class MetricsConfig:
    """Knobs of the evaluation metrics."""

    # Surface samples per mesh. Sampling alone caps the F-score of a perfect prediction at about
    # 1 - exp(-pi t^2 N / area): 50k points on a shoe (area ~2) give > 0.99 at t = 1 %, 10k only ~0.8.
    num_points: int = 50000
    fscore_thresholds: tuple[float, ...] = (0.01, 0.02)   # fractions of the unit length
    unit_length: float = 1.0                      # longest extent of a normalised shoe
    voxel_resolution: int = 32                    # Pix2Vox volumetric IoU grid
    silhouette_threshold: float = 0.5
    ssim_window: int = 11
    ssim_sigma: float = 1.5                       # kornia's SSIM window: 1.5 is the only value
    seed: int = 0                                 # point sampling is seeded: metrics are reproducible

    def __post_init__(self) -> None:
        if self.ssim_sigma != 1.5:
            raise ValueError(f"MetricsConfig.ssim_sigma={self.ssim_sigma}: SSIM is kornia's, whose Gaussian "
                             f"window has sigma 1.5 (the standard); no other value is supported")


# ====================================================================== 2D
def silhouette_iou(pred: Tensor, target: Tensor, threshold: float = 0.5) -> Tensor:
    """IoU of binarised silhouettes. pred, target (B, 1, H, W) in [0, 1] -> (B,); two empty masks give 1.

    >>> m = torch.zeros(1, 1, 4, 4); m[..., :2, :] = 1
    >>> silhouette_iou(m, torch.ones(1, 1, 4, 4)).item()
    0.5
    """
    p, t = pred > threshold, target > threshold
    inter = (p & t).flatten(1).sum(-1).float()
    union = (p | t).flatten(1).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def psnr(pred: Tensor, target: Tensor, max_val: float = 1.0, max_db: float = 100.0) -> Tensor:
    """Peak signal-to-noise ratio in dB. pred, target (B, C, H, W) -> (B,); identical images give ``max_db``.

    Not ``kornia.metrics.psnr``: that one is one value over the whole batch and infinite for identical images.

    >>> round(psnr(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.1)).item(), 4)
    20.0
    """
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(-1)
    floor = max_val**2 * 10 ** (-max_db / 10)
    return 10 * torch.log10(max_val**2 / mse.clamp_min(floor))


def ssim(pred: Tensor, target: Tensor, window_size: int = 11, data_range: float = 1.0) -> Tensor:
    """Structural similarity (Wang et al. 2004): ``kornia.metrics.ssim`` (Gaussian window, sigma 1.5, k1 0.01,
    k2 0.03) over 'valid' windows only, in float64 (E[x^2] - E[x]^2 cancels badly in float32 on flat regions).

    Args:
        pred, target: (B, C, H, W), H and W >= window_size.
    Returns:
        (B,) mean SSIM over channels and window positions.
    """
    if min(pred.shape[-2:]) < window_size:
        raise ValueError(f"ssim needs images of at least {window_size} px, got {tuple(pred.shape[-2:])}")
    ssim_map = kornia.metrics.ssim(pred.double(), target.double(), window_size, max_val=data_range, eps=0.0,
                                   padding="valid")
    return ssim_map.flatten(1).mean(-1).float()


def lpips_distance(lpips_model: torch.nn.Module, pred: Tensor, target: Tensor) -> Tensor:
    """LPIPS per image. lpips_model: ``shoerecon.losses.perceptual.build_lpips(...)``;
    pred, target (B, 3, H, W) in [0, 1], H, W >= 32 -> (B,)."""
    with torch.no_grad():
        return lpips_model(pred.float(), target.float(), normalize=True).reshape(-1)


# ====================================================================== 3D: surfaces
def sample_points(
    verts: Tensor, faces: Tensor, num_points: int, generator: Optional[torch.Generator] = None
) -> tuple[Tensor, Tensor]:
    """Uniform samples on a mesh surface (faces picked by area, uniform barycentrics).

    Args:
        verts (N, 3), faces (F, 3).
    Returns:
        points (P, 3) and the unit normals of the faces they lie on (P, 3).
    """
    fn = face_areas_normals(verts.float(), faces)
    areas = fn.norm(dim=-1)
    if not torch.isfinite(areas).all() or areas.sum() <= 0:
        raise ValueError("cannot sample points on a mesh with zero or non-finite area")
    idx = torch.multinomial(areas.cpu(), num_points, replacement=True, generator=generator).to(verts.device)
    u = torch.rand(num_points, 2, generator=generator).to(verts)
    r = u[:, :1].sqrt()  # sqrt makes the barycentric density uniform over the triangle
    w = torch.cat([1 - r, r * (1 - u[:, 1:]), r * u[:, 1:]], dim=-1)
    tri = verts.float()[faces[idx]]  # (P, 3, 3)
    points = (w[:, :, None] * tri).sum(1)
    return points, F.normalize(fn[idx], dim=-1)


def nearest_neighbours(a: Tensor, b: Tensor, chunk: int = 2048, use_kdtree: bool | None = None) -> tuple[Tensor, Tensor]:
    """For each point of a (N, 3): squared distance to and index of its nearest point in b (M, 3). -> (N,), (N,).

    On CPU a scipy k-d tree (O(N log M)); elsewhere, or with use_kdtree=False, chunked brute force.
    """
    if use_kdtree if use_kdtree is not None else a.device.type == "cpu":
        from scipy.spatial import cKDTree

        dist, index = cKDTree(b.detach().double().numpy()).query(a.detach().double().numpy(), k=1)
        return torch.from_numpy(dist**2).to(a.dtype), torch.from_numpy(index).long()
    d2, idx = [], []
    for start in range(0, a.shape[0], chunk):
        d = torch.cdist(a[start:start + chunk].float(), b.float(), compute_mode="donot_use_mm_for_euclid_dist")
        m = d.min(dim=-1)
        d2.append(m.values**2)
        idx.append(m.indices)
    return torch.cat(d2), torch.cat(idx)


def point_cloud_metrics(
    pred_points: Tensor, pred_normals: Tensor, gt_points: Tensor, gt_normals: Tensor,
    thresholds: Sequence[float] = (0.01, 0.02),
) -> dict[str, float]:
    """Chamfer-L2, F-score at each threshold, and normal consistency between two oriented point sets.

    Args:
        pred_points, pred_normals: (P, 3); gt_points, gt_normals: (Q, 3); thresholds: absolute distances.
    Returns:
        {"chamfer_l2", "fscore@<t>" per threshold, "precision@<t>", "recall@<t>", "normal_consistency"}.
        Normal consistency = mean |cos| between each point's normal and its nearest neighbour's, averaged over
        both directions (orientation-free, as in Occupancy Networks).
    """
    d_pg, i_pg = nearest_neighbours(pred_points, gt_points)
    d_gp, i_gp = nearest_neighbours(gt_points, pred_points)
    out = {"chamfer_l2": float(d_pg.mean() + d_gp.mean())}
    for t in thresholds:
        precision = float((d_pg < t * t).float().mean())
        recall = float((d_gp < t * t).float().mean())
        f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        out[f"fscore@{t:g}"], out[f"precision@{t:g}"], out[f"recall@{t:g}"] = f, precision, recall
    nc_pg = (pred_normals * gt_normals[i_pg]).sum(-1).abs().mean()
    nc_gp = (gt_normals * pred_normals[i_gp]).sum(-1).abs().mean()
    out["normal_consistency"] = float((nc_pg + nc_gp) / 2)
    return out


# ====================================================================== 3D: volumes
def winding_numbers(points: Tensor, verts: Tensor, faces: Tensor, chunk_elems: int = 2**22) -> Tensor:
    """Generalised winding number of a triangle soup at query points (Jacobson et al. 2013).

    ~1 inside a closed outward-oriented mesh, ~0 outside; degrades gracefully on small holes.
    points (Q, 3), verts (N, 3), faces (F, 3) -> (Q,).
    """
    tri = verts.double()[faces]  # (F, 3, 3)
    rows = max(1, chunk_elems // max(1, faces.shape[0]))
    out = []
    for start in range(0, points.shape[0], rows):
        p = points[start:start + rows].double()[:, None, None, :]
        a, b, c = (tri[None, :, i, :] - p[:, :, 0] for i in range(3))
        la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
        det = (a * torch.linalg.cross(b, c, dim=-1)).sum(-1)
        den = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        out.append((2 * torch.atan2(det, den)).sum(-1) / (4 * math.pi))
    return torch.cat(out).to(points.dtype)


def voxel_grid_centers(lo: Tensor, hi: Tensor, resolution: int) -> Tensor:
    """Centres of a resolution^3 grid over the cube bounding [lo, hi] (3,) each. -> (R^3, 3), x slowest."""
    axis = grid_axis(lo, hi, resolution)
    g = torch.stack(torch.meshgrid(*axis.unbind(0), indexing="ij"), dim=-1)
    return g.reshape(-1, 3)


def grid_axis(lo: Tensor, hi: Tensor, resolution: int) -> Tensor:
    """Voxel-centre coordinates along x, y, z of the cube bounding [lo, hi]: (3, R)."""
    centre, side = (lo + hi) / 2, (hi - lo).max()
    t = (torch.arange(resolution, device=lo.device, dtype=lo.dtype) + 0.5) / resolution - 0.5
    return centre[:, None] + t[None, :] * side


def voxelize(verts: Tensor, faces: Tensor, axis: Tensor) -> Tensor:
    """Occupancy of a voxel grid by signed ray crossings along +z (winding number along the ray).

    Every voxel column casts a ray up +z; a face crossed with its normal up adds +1, down -1. The sum
    over crossings above a voxel centre is its winding number for a closed mesh (1 inside, 0 outside).
    Ray positions get a tiny irrational offset so no ray runs exactly through an edge or vertex.

    Args:
        verts (N, 3), faces (F, 3); axis (3, R) voxel-centre coordinates per axis (:func:`grid_axis`).
    Returns:
        (R, R, R) bool occupancy indexed [x, y, z].
    """
    r = axis.shape[1]
    axis = axis.double()
    h = (axis[:, 1] - axis[:, 0]) if r > 1 else torch.ones(3, dtype=axis.dtype, device=axis.device)
    ray_xy = axis[:2] + h[:2, None] * torch.tensor([[math.pi * 1e-7], [math.e * 1e-7]], dtype=axis.dtype, device=axis.device)
    tri = verts.double()[faces]  # (F, 3, 3)
    # Columns whose ray may hit each face: index ranges from the face's xy bounding box.
    lo = torch.ceil((tri[:, :, :2].min(1).values - ray_xy[:, 0]) / h[:2]).long().clamp(0, r)
    hi = torch.floor((tri[:, :, :2].max(1).values - ray_xy[:, 0]) / h[:2]).long().clamp(-1, r - 1)
    n = (hi - lo + 1).clamp_min(0)  # (F, 2) columns per face in x and y
    count = n[:, 0] * n[:, 1]
    face = torch.repeat_interleave(torch.arange(len(faces), device=faces.device), count)
    local = torch.arange(int(count.sum()), device=faces.device) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
    ix = lo[face, 0] + local // n[face, 1].clamp_min(1)
    iy = lo[face, 1] + local % n[face, 1].clamp_min(1)
    px, py = ray_xy[0, ix], ray_xy[1, iy]
    t = tri[face]
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = (t[:, k].unbind(-1) for k in range(3))
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)  # 2 * signed xy area = normal z (CCW from above: +)
    w1 = ((px - x0) * (y2 - y0) - (x2 - x0) * (py - y0)) / area
    w2 = ((x1 - x0) * (py - y0) - (px - x0) * (y1 - y0)) / area
    w0 = 1 - w1 - w2
    hit = (area != 0) & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    z_hit = w0 * z0 + w1 * z1 + w2 * z2
    # A crossing at height z counts for every voxel centre below it: scatter at the index of the first
    # centre above, then a suffix sum over z.
    above = torch.searchsorted(axis[2].contiguous(), z_hit[hit].contiguous())
    d = torch.zeros(r, r, r + 1, dtype=torch.long, device=verts.device)
    d.index_put_((ix[hit], iy[hit], above), torch.sign(area[hit]).long(), accumulate=True)
    suffix = torch.flip(torch.cumsum(torch.flip(d, [-1]), -1), [-1])
    return suffix[:, :, 1:] > 0


def voxel_iou(pred: Mesh, gt: Mesh, resolution: int = 32) -> float:
    """Volumetric IoU (the Pix2Vox metric) on a resolution^3 grid over the cube that bounds both meshes."""
    both = torch.cat([pred.verts.float(), gt.verts.float().to(pred.verts.device)])
    axis = grid_axis(both.min(0).values, both.max(0).values, resolution)
    a = voxelize(pred.verts, pred.faces, axis)
    b = voxelize(gt.verts.to(pred.verts.device), gt.faces.to(pred.verts.device), axis)
    union = (a | b).sum()
    return float((a & b).sum() / union) if union > 0 else 1.0


def mesh_metrics_3d(pred: Mesh, gt: Mesh, cfg: MetricsConfig = MetricsConfig()) -> dict[str, float]:
    """All 3D metrics of a predicted mesh against ground truth (both in the normalised world frame).

    Returns:
        chamfer_l2, fscore@1%, fscore@2% (keys use the absolute threshold, e.g. ``fscore@0.01``),
        precision/recall at each, normal_consistency, voxel_iou.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    pp, pn = sample_points(pred.verts, pred.faces, cfg.num_points, gen)
    gp, gn = sample_points(gt.verts.to(pred.verts.device), gt.faces.to(pred.verts.device), cfg.num_points, gen)
    thresholds = [t * cfg.unit_length for t in cfg.fscore_thresholds]
    out = point_cloud_metrics(pp, pn, gp, gn, thresholds)
    out["voxel_iou"] = voxel_iou(pred, gt, cfg.voxel_resolution)
    return out


def chamfer_between_meshes(a: Mesh, b: Mesh, num_points: int = 5000, seed: int = 0) -> float:
    """Chamfer-L2 between surface samples of two meshes.

    Each mesh is sampled by its own generator seeded with ``seed``: identical meshes get identical
    samples (Chamfer exactly 0), so small differences are not buried in sampling noise.
    """
    pa, _ = sample_points(a.verts, a.faces, num_points, torch.Generator().manual_seed(seed))
    pb, _ = sample_points(b.verts, b.faces, num_points, torch.Generator().manual_seed(seed))
    d_ab, _ = nearest_neighbours(pa, pb.to(pa.device))
    d_ba, _ = nearest_neighbours(pb.to(pa.device), pa)
    return float(d_ab.mean() + d_ba.mean())


# ====================================================================== mesh quality
def mesh_quality(mesh: Mesh) -> dict[str, float]:
    """Self-intersection and triangle-shape statistics of the report (``geometry.quality`` has the maths).

    Returns:
        self_intersection_fraction: fraction of faces crossing a non-adjacent face;
        min_angle_deg: smallest interior angle of the mesh;
        mean_min_angle_deg: mean over faces of each face's smallest angle (the mean of *all* angles is always 60);
        num_verts, num_faces.
    """
    angles = torch.rad2deg(triangle_angles(mesh.verts.double(), mesh.faces)).to(mesh.verts.dtype)
    return {
        "self_intersection_fraction": float(self_intersecting_faces(mesh.verts, mesh.faces).float().mean()),
        "min_angle_deg": float(angles.min()),
        "mean_min_angle_deg": float(angles.min(dim=-1).values.mean()),
        "num_verts": float(mesh.num_verts),
        "num_faces": float(mesh.num_faces),
    }
