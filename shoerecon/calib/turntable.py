"""Turntable calibration from silhouettes: the unknown rig of shop photos (``shoerecon calibrate``).

Per shoe, from its masks only: elevation, field of view (distance follows from it, ``framing_distance``),
start azimuth, the shoe's offset from the axis, and every view's crop (``render.cameras`` "Product photos").
Views are assumed evenly spaced (``direction`` +1 or -1) and view 0 near the canonical input view (toe right).

How (coarse to fine):
1. For a candidate (elevation, fov), cameras sit at azimuths ``direction * i * 360 / V`` around the axis
   (the turntable frame). Crops start from a shoe-sized box's projection matched to each mask's box, then
   alternate: carve a voxel visual hull with all views (a voxel stays if it projects inside the masks of
   all but ``tolerance`` views), re-fit each view's crop so the hull's projected box matches the mask's.
2. Score = mean per-view IoU of the hull's reprojection with the masks: a wrong elevation or fov leaves no
   shape consistent with every silhouette. A grid over (elevation, fov), then a finer grid around the best.
3. The shoe's frame: the hull's long axis (in the floor plane) is +X with the toe on view 0's right, its
   box is centred and its length is 1 (DESIGN), which gives the start azimuth, the offset and the scale.
The per-view IoU of the final hull is reported; a shoe below ``min_iou`` is "not converged" and gets no
cameras.json (wrong cameras are never written silently).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.calib.refine import RefineConfig, TurntableParams, framing_distance, hull_mesh, refine
from shoerecon.render.cameras import Cameras, pixel_centers_ndc


@dataclass
class CalibConfig:
    """Calibration settings.

    Attributes:
        mask_height: masks are downscaled to this height (aspect kept) for fitting.
        elevations, fovs: the coarse grid (degrees). fine_step: the fine grid's half-steps around the best.
        voxels: voxel grid resolution along the long side. tolerance: views a voxel may fall outside of.
        crop_iterations: carve / re-fit crop rounds per candidate (crops from bounding boxes).
        moment_iterations: then carve / re-align rounds on the hull's projected silhouettes (``align_moments``).
        framing: the uncropped camera frames a length-1 shoe to this fraction (ties distance to fov).
        direction: turntable direction (1 or -1); 0 tries both.
        min_iou: below this mean reprojection IoU a shoe is "not converged".
        final_voxels, final_mask_height: the best rig is carved once more at this resolution, then refined
            ``octree_levels`` times near the surface (voxels halve each time).
        refine: the gradient-descent stage after the grid (``calib.refine``); None = the grid's rig as it is.
    """

    mask_height: int = 64
    elevations: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    fovs: tuple[float, ...] = (15.0, 25.0, 40.0)
    fine_steps: int = 2
    voxels: int = 40
    tolerance: int = 1
    crop_iterations: int = 3
    moment_iterations: int = 2
    framing: float = 0.8
    direction: int = 1
    min_iou: float = 0.85
    final_voxels: int = 64
    final_mask_height: int = 128
    octree_levels: int = 2
    refine: RefineConfig | None = field(default_factory=RefineConfig)


def downscale_masks(masks: Tensor, height: int) -> Tensor:
    """(V, 1, H, W) masks -> (V, 1, height, round(W * height / H)) in [0, 1] (area filter)."""
    v, _, h, w = masks.shape
    if h <= height:
        return masks.float()
    return F.interpolate(masks.float(), size=(height, max(1, round(w * height / h))), mode="area")


def mask_boxes_ndc(masks: Tensor) -> Tensor:
    """(V, 4) NDC boxes (x0, x1, y0, y1) of (V, 1, H, W) masks (pixel extents, y up)."""
    v, _, h, w = masks.shape
    x, y = pixel_centers_ndc(h, w, dtype=torch.float32)
    s = min(h, w)
    on = masks[:, 0] > 0.5
    cols, rows = on.any(1), on.any(2)
    big = torch.full((v, w), 1e9)
    x0 = torch.where(cols, x.expand(v, w), big).amin(1) - 1 / s
    x1 = torch.where(cols, x.expand(v, w), -big).amax(1) + 1 / s
    y0 = torch.where(rows, y.expand(v, h), torch.full((v, h), 1e9)).amin(1) - 1 / s
    y1 = torch.where(rows, y.expand(v, h), torch.full((v, h), -1e9)).amax(1) + 1 / s
    return torch.stack([x0, x1, y0, y1], 1)


def fit_crops(proj_boxes: Tensor, mask_boxes: Tensor) -> Tensor:
    """Per-view crop (V, 3) (shift_x, shift_y, zoom) mapping projected boxes (V, 4) onto mask boxes (V, 4).

    One zoom for both axes (a similarity): the least-squares ratio of the box extents.
    """
    pw, ph = proj_boxes[:, 1] - proj_boxes[:, 0], proj_boxes[:, 3] - proj_boxes[:, 2]
    mw, mh = mask_boxes[:, 1] - mask_boxes[:, 0], mask_boxes[:, 3] - mask_boxes[:, 2]
    zoom = (pw * mw + ph * mh) / (pw * pw + ph * ph).clamp_min(1e-9)
    pc = torch.stack([(proj_boxes[:, 0] + proj_boxes[:, 1]) / 2, (proj_boxes[:, 2] + proj_boxes[:, 3]) / 2], 1)
    mc = torch.stack([(mask_boxes[:, 0] + mask_boxes[:, 1]) / 2, (mask_boxes[:, 2] + mask_boxes[:, 3]) / 2], 1)
    return torch.cat([mc - zoom[:, None] * pc, zoom[:, None]], 1)


def _moments(images: Tensor) -> tuple[Tensor, Tensor]:
    """Mass (V,) and NDC centroid (V, 2) of (V, 1, H, W) images in [0, 1]."""
    v, _, h, w = images.shape
    x, y = pixel_centers_ndc(h, w, dtype=images.dtype)
    m = images[:, 0]
    mass = m.flatten(1).sum(1).clamp_min(1e-6)
    cx = (m.sum(1) * x).sum(1) / mass
    cy = (m.sum(2) * y).sum(1) / mass
    return mass, torch.stack([cx, cy], 1)


def align_moments(proj: Tensor, masks: Tensor, crops: Tensor) -> Tensor:
    """Crops (V, 3) updated so each view's projected hull ``proj`` (V, 1, H, W) takes the mask's centroid and area.

    Moments use every pixel, so they place a silhouette to a fraction of a pixel where a bounding box moves
    by whole pixels. A carved hull is eroded by every inconsistency, which would inflate all zooms each round:
    the zoom corrections are normalised to a geometric mean of 1 (the common scale is the hull's, not the crops').
    """
    area_p, cp = _moments((proj > 0.5).float())
    area_m, cm = _moments(masks.float())
    k = (area_m / area_p).sqrt()
    k = k / k.log().mean().exp()
    shift = k[:, None] * (crops[:, :2] - cp) + cm
    return torch.cat([shift, (k * crops[:, 2])[:, None]], 1)


def voxel_grid(n: int) -> tuple[Tensor, float]:
    """Voxel centres (N, 3) of a box around a length-1 shoe (x in [-0.7, 0.7], y, z in [-0.45, 0.45]), and the voxel size."""
    size = 1.4 / n
    xs = (torch.arange(n) + 0.5) * size - 0.7
    m = int(round(0.9 / size))
    ys = (torch.arange(m) + 0.5) * size - 0.45
    g = torch.stack(torch.meshgrid(xs, ys, ys, indexing="ij"), -1).reshape(-1, 3)
    return g, size


def sample_masks(masks: Tensor, ndc: Tensor) -> Tensor:
    """Mask values (V, N) at NDC points (V, N, 2) (bilinear; outside the image = 0)."""
    v, _, h, w = masks.shape
    s = min(h, w)
    grid = torch.stack([ndc[..., 0] * s / w, -ndc[..., 1] * s / h], -1)  # grid_sample: x right, y down, [-1, 1]
    return F.grid_sample(masks, grid[:, None], mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0, 0]


def carve(masks: Tensor, cams: Cameras, points: Tensor, tolerance: int) -> Tensor:
    """(N,) bool: points inside the silhouettes of all but ``tolerance`` views. masks (V, 1, H, W), cams (V,)."""
    outside = torch.zeros(points.shape[0], dtype=torch.long)
    for i in range(0, cams.shape[0], 6):  # a few views at a time: (views, N, 3) stays small for fine grids
        c = cams[i : i + 6]
        ndc = c.transform_points_ndc(points.expand(c.shape[0], -1, -1))[..., :2]
        outside += (sample_masks(masks[i : i + 6], ndc) <= 0.5).sum(0)
    return outside <= tolerance


def splat(points: Tensor, cams: Cameras, height: int, width: int, radius: int) -> Tensor:
    """(V, 1, H, W) binary image of points (N, 3) projected by cams (V,), each drawn as a (2r+1)^2 square, closed."""
    from shoerecon.render.cameras import ndc_to_pixel

    v = cams.shape[0]
    img = torch.zeros(v, height * width)
    for i in range(0, v, 6):
        c = cams[i : i + 6]
        pix = ndc_to_pixel(c.transform_points_ndc(points.expand(c.shape[0], -1, -1))[..., :2], height, width).round().long()
        ok = (pix[..., 0] >= 0) & (pix[..., 0] < width) & (pix[..., 1] >= 0) & (pix[..., 1] < height)
        idx = (pix[..., 1] * width + pix[..., 0]).clamp(0, height * width - 1)
        img[i : i + 6].scatter_(1, idx, ok.float())
    img = img.view(v, 1, height, width).clamp(max=1)
    if radius > 0:
        img = F.max_pool2d(img, 2 * radius + 1, 1, radius)
    # Close the gaps between splats (a voxel seen edge-on covers more than its centre's pixel).
    return -F.max_pool2d(-F.max_pool2d(img, 3, 1, 1), 3, 1, 1)


def iou(a: Tensor, b: Tensor) -> Tensor:
    """Per-item IoU (V,) of binary-ish (V, 1, H, W) images (threshold 0.5)."""
    a, b = a > 0.5, b > 0.5
    return (a & b).flatten(1).sum(1) / (a | b).flatten(1).sum(1).clamp_min(1)


def voxel_axes(n: int) -> tuple[Tensor, Tensor, float]:
    """Axis coordinates of ``voxel_grid(n)``: xs (n,), ys = zs (m,), voxel size."""
    size = 1.4 / n
    m = int(round(0.9 / size))
    return (torch.arange(n) + 0.5) * size - 0.7, (torch.arange(m) + 0.5) * size - 0.45, size


def carve_occupancy(masks: Tensor, cams: Cameras, n: int, tolerance: int = 0) -> tuple[Tensor, Tensor, float]:
    """Dense visual hull on ``voxel_axes(n)``: occupancy (n, m, m) bool, the centre (3,) of voxel (0, 0, 0), voxel size."""
    xs, ys, size = voxel_axes(n)
    pts = torch.stack(torch.meshgrid(xs, ys, ys, indexing="ij"), -1)
    occ = carve(masks, cams, pts.reshape(-1, 3), tolerance).view(pts.shape[:3])
    return occ, torch.stack([xs[0], ys[0], ys[0]]), size


def carve_octree(masks: Tensor, cams: Cameras, n0: int, levels: int, tolerance: int = 0) -> tuple[Tensor, float]:
    """Visual hull at ``n0 * 2**levels`` voxels along the long side, refining only near the surface.

    Carves a dense ``n0`` grid, then ``levels`` times: halve the voxels and re-test only the band where the
    occupancy changes within a voxel (the rest keeps its parent's answer).
    Returns the surface voxels' centres (N, 3) (occupied, with an empty 6-neighbour) and the voxel size.
    """
    xs, ys, size = voxel_axes(n0)
    pts = torch.stack(torch.meshgrid(xs, ys, ys, indexing="ij"), -1)
    occ = carve(masks, cams, pts.reshape(-1, 3), tolerance).view(pts.shape[:3])
    for level in range(1, levels + 1):
        n = n0 * 2**level
        xs, ys, size = voxel_axes(n)
        occ = F.interpolate(occ[None, None].float(), size=(n, ys.shape[0], ys.shape[0]), mode="nearest")[0, 0]
        band = (F.max_pool3d(occ[None, None], 3, 1, 1) != -F.max_pool3d(-occ[None, None], 3, 1, 1))[0, 0]
        idx = band.nonzero()
        pts = torch.stack([xs[idx[:, 0]], ys[idx[:, 1]], ys[idx[:, 2]]], -1)
        occ[band] = carve(masks, cams, pts, tolerance).float()
        occ = occ > 0.5
    o = occ.float()[None, None]
    inner = -F.max_pool3d(-F.pad(o, (1, 1, 1, 1, 1, 1)), 3, 1, 0)
    surface = (occ & ~(inner[0, 0] > 0.5)).nonzero()
    return torch.stack([xs[surface[:, 0]], ys[surface[:, 1]], ys[surface[:, 2]]], -1), size


def silhouettes(surface: Tensor, cams: Cameras, height: int, width: int) -> Tensor:
    """(V, 1, H, W) silhouettes of a solid from its surface voxels (N, 3): splat, close, fill holes."""
    from scipy import ndimage

    img = splat(surface, cams, height, width, 0)
    filled = [torch.from_numpy(ndimage.binary_fill_holes(m[0].numpy() > 0.5)) for m in img]
    return torch.stack(filled)[:, None].float()


@dataclass
class Fit:
    """One candidate rig's result in the turntable frame."""

    elevation: float
    fov: float
    distance: float
    direction: int
    crops: Tensor          # (V, 3)
    hull: Tensor           # (N, 3) occupied voxel centres
    view_iou: Tensor       # (V,)
    mask_height: int = 0   # the fitting resolution

    @property
    def score(self) -> float:
        return float(self.view_iou.mean())


def turntable_cameras(num_views: int, elevation: float, fov: float, distance: float, direction: int, crops: Tensor | None) -> Cameras:
    return Cameras.turntable(num_views, elevation, distance, fov, 0.0, direction=direction,
                             translation=None if crops is None else [0.0, 0.0, 0.0], crop=crops)


def fit_candidate(masks: Tensor, elevation: float, fov: float, direction: int, cfg: CalibConfig,
                  grid: tuple[Tensor, float]) -> Fit:
    """Carve + crop rounds for one (elevation, fov, direction); masks (V, 1, h, w) at fitting resolution."""
    v, _, h, w = masks.shape
    dist = framing_distance(fov, cfg.framing)
    plain = turntable_cameras(v, elevation, fov, dist, direction, None)
    boxes = mask_boxes_ndc(masks)
    # A shoe-sized box (length 1, height and width ~0.35) gives the first crops.
    corners = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.18, 0.18) for z in (-0.18, 0.18)])
    points, size = grid
    crops = fit_crops(_boxes(plain, corners), boxes)
    hull = points[:0]
    for _ in range(cfg.crop_iterations):
        cams = turntable_cameras(v, elevation, fov, dist, direction, crops)
        keep = carve(masks, cams, points, cfg.tolerance)
        if int(keep.sum()) < 8:
            break
        hull = points[keep]
        crops = fit_crops(_boxes(plain, hull, pad=size / 2), boxes)
    for _ in range(cfg.moment_iterations if hull.shape[0] >= 8 else 0):
        cams = turntable_cameras(v, elevation, fov, dist, direction, crops)
        keep = carve(masks, cams, points, cfg.tolerance)
        if int(keep.sum()) < 8:
            break
        hull = points[keep]
        crops = align_moments(splat(hull, cams, h, w, _splat_radius(cams, size, h, w)), masks, crops)
    cams = turntable_cameras(v, elevation, fov, dist, direction, crops)
    if hull.shape[0] < 8:
        return Fit(elevation, fov, dist, direction, crops, hull, torch.zeros(v), h)
    radius = _splat_radius(cams, size, h, w)
    view_iou = iou(splat(hull, cams, h, w, radius), masks)
    return Fit(elevation, fov, dist, direction, crops, hull, view_iou, h)


def _boxes(cams: Cameras, points: Tensor, pad: float = 0.0) -> Tensor:
    """(V, 4) NDC boxes of points (N, 3) seen by the plain cams (V,), grown by ``pad`` world units (approx.)."""
    ndc = cams.transform_points_ndc(points.expand(cams.shape[0], -1, -1))
    f = cams.focal()[:, None]
    grow = (pad * f / ndc[..., 2].clamp_min(1e-3)).mean(1) if pad else torch.zeros(cams.shape[0])
    xy = ndc[..., :2]
    return torch.stack([xy[..., 0].amin(1) - grow, xy[..., 0].amax(1) + grow,
                        xy[..., 1].amin(1) - grow, xy[..., 1].amax(1) + grow], 1)


def _splat_radius(cams: Cameras, voxel: float, h: int, w: int) -> int:
    px = voxel * float((cams.focal() * cams.crop[:, 2] / cams.distance).mean()) * min(h, w) / 2
    return max(0, int(round(px / 2)))


def calibrate_shoe(masks: Tensor, cfg: CalibConfig | None = None, progress=None) -> dict:
    """Calibrate one shoe from its masks (V, 1, H, W) (any size; H x W is the photo's).

    Returns a dict: elevation, fov, distance (shoe length 1), start_azimuth, direction, translation (3,),
    cameras (V, 10) (product cameras of the H x W photos, view i at start + direction * i * 360 / V),
    view_iou (V,), mean_iou, converged, candidates (list of (elevation, fov, direction, score)).
    """
    cfg = cfg or CalibConfig()
    small = downscale_masks(masks, cfg.mask_height)
    grid = voxel_grid(cfg.voxels)
    directions = (1, -1) if cfg.direction == 0 else (cfg.direction,)
    tried: list[Fit] = []

    def run(el, fov, d):
        tried.append(fit_candidate(small, el, fov, d, cfg, grid))
        if progress is not None:
            progress()
        return tried[-1]

    best = max((run(el, fov, d) for d in directions for el in cfg.elevations for fov in cfg.fovs), key=lambda f: f.score)
    # Finer grid around the best: halve the steps fine_steps times (elevation and fov independently).
    el_step = (cfg.elevations[1] - cfg.elevations[0]) / 2 if len(cfg.elevations) > 1 else 2.0
    fov_ratio = (cfg.fovs[1] / cfg.fovs[0]) ** 0.5 if len(cfg.fovs) > 1 else 1.2
    for _ in range(cfg.fine_steps):
        cands = [(best.elevation + de, best.fov * fr) for de in (-el_step, 0.0, el_step) for fr in (1 / fov_ratio, 1.0, fov_ratio)
                 if (de, fr) != (0.0, 1.0)]
        for el, fov in cands:
            if -5.0 <= el <= 45.0 and 5.0 <= fov <= 90.0:
                fit = run(el, fov, best.direction)
                if fit.score > best.score:
                    best = fit
        el_step, fov_ratio = el_step / 2, fov_ratio ** 0.5
    # Final: the best rig again at a finer voxel grid and mask resolution, every view must agree.
    fine_cfg = replace(cfg, voxels=cfg.final_voxels, tolerance=0, crop_iterations=cfg.crop_iterations + 1)
    big = downscale_masks(masks, cfg.final_mask_height)
    final = fit_candidate(big, best.elevation, best.fov, best.direction, fine_cfg, voxel_grid(cfg.final_voxels))
    if final.score < best.score:
        final, fine_cfg = best, cfg
    if cfg.octree_levels > 0 and final.hull.shape[0] >= 8:
        # The surface at sub-pixel voxels: the reprojection IoU is then limited by the rig, not the voxels.
        cams = turntable_cameras(big.shape[0], final.elevation, final.fov, final.distance, final.direction, final.crops)
        surface, size = carve_octree(big, cams, fine_cfg.voxels, cfg.octree_levels)
        if surface.shape[0] >= 8:
            final = replace(final, hull=surface, view_iou=iou(silhouettes(surface, cams, *big.shape[-2:]), big),
                            mask_height=big.shape[-2])
            fine_cfg = replace(fine_cfg, voxels=int(round(1.4 / size)))
    grid_elevation, grid_score, used_refine = final.elevation, final.score, False
    if cfg.refine is not None and final.hull.shape[0] >= 8:
        refined, size = refine_fit(masks, final, cfg, progress)
        if refined is not None and refined.score >= final.score:
            final, used_refine = refined, True
            fine_cfg = replace(fine_cfg, voxels=int(round(1.4 / size)), octree_levels=max(1, cfg.octree_levels))
    return _canonical(final, masks.shape[-2:], fine_cfg) | {
        "candidates": [(f.elevation, f.fov, f.direction, round(f.score, 4)) for f in tried],
        "refined": used_refine, "grid_elevation": grid_elevation, "grid_iou": grid_score}


def refine_fit(masks: Tensor, start: Fit, cfg: CalibConfig, progress=None) -> tuple[Fit | None, float]:
    """The gradient-descent stage (``calib.refine``) from a grid fit, then the visual hull of its cameras.

    The hull's reprojection IoU at ``final_mask_height`` (the number calibration reports) is also refine's
    ``score``: the rig after the level that scored best is kept, not merely the last one.

    Args:
        masks: (V, 1, H, W) full-size masks. start: the grid's final fit.
    Returns:
        The refined fit (its hull: surface voxels of the refined cameras' octree hull at ``final_mask_height``,
        view_iou: that hull's reprojection) and its voxel size; (None, 0) when the start hull is empty.
    """
    rc = cfg.refine
    v = masks.shape[0]
    big = downscale_masks(masks, cfg.final_mask_height)
    cams = turntable_cameras(v, start.elevation, start.fov, start.distance, start.direction, start.crops)
    occ, origin, size = carve_occupancy(big, cams, rc.grid, cfg.tolerance)
    if int(occ.sum()) < 8:
        return None, 0.0
    verts, faces = hull_mesh(occ, origin, size)
    params = TurntableParams(start.elevation, start.fov, start.crops, verts, cfg.framing, start.direction)
    fits: list[tuple[Fit | None, float]] = []

    def score(p: TurntableParams) -> float:
        fits.append(_hull_fit(big, p, start.direction, cfg))
        return fits[-1][0].score if fits[-1][0] is not None else -1.0

    refine(masks, params, faces, rc, progress, score=score)
    return max(fits, key=lambda f: f[0].score if f[0] is not None else -1.0)


def _hull_fit(big: Tensor, params: TurntableParams, direction: int, cfg: CalibConfig) -> tuple[Fit | None, float]:
    """The octree visual hull of ``params``' cameras and its reprojection IoU on ``big`` (V, 1, h, w) masks."""
    with torch.no_grad():
        el, fov = float(params.elevation), float(params.fov)
        crops = params.crops().detach().clone()
    dist = framing_distance(fov, cfg.framing)
    cams = turntable_cameras(big.shape[0], el, fov, dist, direction, crops)
    surface, size = carve_octree(big, cams, cfg.final_voxels, max(1, cfg.octree_levels))
    if surface.shape[0] < 8:
        return None, 0.0
    view_iou = iou(silhouettes(surface, cams, *big.shape[-2:]), big)
    return Fit(el, fov, dist, direction, crops, surface, view_iou, big.shape[-2]), size


def _canonical(fit: Fit, photo_hw: tuple[int, int], cfg: CalibConfig) -> dict:
    """The fit in the shoe's frame: long axis +X (toe right in view 0), centred box, length 1."""
    v = fit.crops.shape[0]
    hull = fit.hull
    if hull.shape[0] < 8:
        return {"elevation": fit.elevation, "fov": fit.fov, "distance": fit.distance, "start_azimuth": 0.0,
                "direction": fit.direction, "translation": [0.0, 0.0, 0.0], "cameras": None,
                "view_iou": fit.view_iou, "mean_iou": 0.0, "converged": False}
    xz = hull[:, [0, 2]] - hull[:, [0, 2]].mean(0)
    evals, evecs = torch.linalg.eigh(xz.T @ xz)
    ax = evecs[:, -1]                                  # long axis (x, z) in the turntable frame
    phi = math.degrees(math.atan2(float(ax[1]), float(ax[0])))  # R_y(phi) maps the axis onto +X
    # View 0 (azimuth 0 in the turntable frame) must see the toe side on the right: |start| <= 90.
    phi = (phi + 180.0) % 360.0 - 180.0
    if phi > 90:
        phi -= 180
    elif phi < -90:
        phi += 180
    rot = _rot_y(phi)
    obj = hull @ rot.T
    lo, hi = obj.amin(0), obj.amax(0)
    size = 1.4 / cfg.voxels
    length = float(hi[0] - lo[0]) + size
    centre = (lo + hi) / 2
    scale = 1.0 / length
    translation = (centre * scale).tolist()            # where the shoe's origin sits from the look-at point
    distance = fit.distance * scale
    # Crops were fitted at the fitting resolution; NDC is resolution-free but the aspect must be the photo's.
    crops = fit.crops.clone()
    cams = Cameras.turntable(v, fit.elevation, distance, fit.fov, phi, direction=fit.direction,
                             translation=translation, crop=crops)
    return {"elevation": fit.elevation, "fov": fit.fov, "distance": distance, "start_azimuth": phi,
            "direction": fit.direction, "translation": translation, "cameras": cams.to_tensor(),
            "view_iou": fit.view_iou, "mean_iou": fit.score, "converged": fit.score >= cfg.min_iou,
            "hull": (obj - centre) * scale, "voxel": size * scale, "mask_height": int(fit.mask_height),
            "surface": cfg.octree_levels > 0 and cfg.voxels > cfg.final_voxels}


def _rot_y(deg: float) -> Tensor:
    """R_y(deg) as used by azimuths: it adds ``deg`` to a camera's azimuth (x' = x cos + z sin, z' = -x sin + z cos)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
