"""Turntable calibration from silhouettes: the unknown rig of shop photos (``shoerecon calibrate``).

Per shoe, from its masks only: elevation, field of view (distance follows from it, ``framing_distance``),
start azimuth, the shoe's offset from the axis, and every view's crop (``render.cameras`` "Product photos").
Views are assumed evenly spaced (``direction`` +1 or -1) and view 0 near the canonical input view (toe right).

How (coarse to fine):
1. For a candidate (elevation, fov), cameras sit at azimuths ``direction * i * 360 / V`` around the axis
   (the turntable frame). Crops start from a shoe-sized box's projection matched to each mask's box, then
   alternate: carve a voxel visual hull with all views (a voxel stays if it projects inside the masks of
   all but ``tolerance`` views), re-fit each view's crop so the hull's projected box matches the mask's.
   The crops' common zoom is then set so that the hull is 1 long (``pin_length``): the candidate's distance is
   the framing distance of a length-1 shoe, and only then is the perspective the candidate's.
2. Score = mean per-view IoU of the hull's reprojection with the masks: a wrong elevation or fov leaves no
   shape consistent with every silhouette. A grid over (elevation, fov), then a finer grid around the best.
3. The photographer's prior (``aim``): the camera aims at the shoe's centre. With a free crop per view a lowered
   shoe and a lowered camera give nearly the same silhouettes; the hull is kept centred on the look-at point.
4. ``polish``: line searches over elevation and fov scored by the reprojection of a sub-pixel hull (the zero
   level of the views' signed distances, rendered by the rasteriser): the voxel hull's splats are a pixel off
   all along the outline, more than what a few degrees change.
   Known limit: the score depends on the crops as much as on the rig. With each candidate's best crops (fitted
   to the true cameras' projections of the true shoe) the hull's IoU peaks at the true elevation and fov (a
   synthetic shop set, exact masks at 128 px: 0.978, 0.975 a degree off); the crops ``align_moments`` settles
   on are about 0.01 lower, and that shortfall changes with elevation by as much as a degree does, so on some
   shoes the best candidate is 1-2 degrees high (and its fov low). Leave-one-out hulls (each view aligned to
   the hull of the others) halve the drift from true crops but cost three times as much per round and still
   peaked a degree high. A hull that lets a point fall outside a few views (``PolishConfig.tolerance``) made
   it worse (it forgives a camera too high), so the candidates are scored on the strict hull
   (``PolishConfig.score_tolerance``), which brought the worst of 40 synthetic shop sets from 3.2 to 1.9 degrees.
5. The shoe's frame (DESIGN): the hull's long axis (in the floor plane) is +X, the toe the end view 0 sees on
   the right unless that end stands clearly taller than the other (``heel_rise``: the collar is at the heel),
   its box (``shoe_box``: the sole, not the uncarvable wedge under it) is centred and its length is 1, which
   gives the start azimuth, the offset and the scale; the cameras are re-aimed at the box's centre (``aim_at``).
The per-view IoU of the final hull is reported; a shoe below ``min_iou`` is "not converged" and gets no
cameras.json (wrong cameras are never written silently).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.calib.refine import (RefineConfig, TurntableParams, framing_distance, hull_mesh, iou, outline_error,  # noqa: F401
                                    mesh_silhouettes, refine)
from shoerecon.render.cameras import Cameras, pixel_centers_ndc


@dataclass
class PolishConfig:
    """The elevation / fov line searches on the sub-pixel visual hull (``polish``).

    Attributes:
        mask_height: masks are scored at this height. voxels: grid of the hull's distance field (long side).
        offsets: elevations tried around the start (degrees); fov_ratios: then fields of view (times the
            start's); fine_offsets: then elevations again. Each search also tries the vertex of a parabola
            through the best and its neighbours.
        rounds: hull / crop-alignment rounds per candidate (the crops start from the same fit for every
            candidate of a search, so they are compared fairly); settle_rounds: for the start, whose crops come
            from the voxel hull.
        distance_height: the views' signed distances (``hull_field``) are computed from the masks at this height
            and area-averaged down to ``mask_height`` (0 = at ``mask_height``). A thresholded mask's outline is a
            staircase, so its distances are up to half a pixel off along it, which is about what a degree of
            elevation moves an outline; computed finer, the zero level keeps the sub-pixel edge.
        tolerance: the fraction of the views (rounded down: 2 of 36, none of 12) a point of the hull may fall
            outside of (``hull_field``). A mask that lost a part (a white toe cap on white) then no longer cuts it
            out of the shoe in every view: on 20 synthetic shop turntables through the import's masks, 2 of 36 took
            the elevation from 19 to 20 of 20 within 2 degrees and the mean reprojection IoU from 0.937 to 0.958
            (measured when this hull also scored the candidates, before ``score_tolerance`` and the sub-pixel
            distances). Each view left out widens the arc between the views that carve a side, so with few views it
            loosens the hull more than it helps; 3 of 36 measured worse than 2, and so did leaving the views that
            fit worst out of the hull. The cost: the width is carved by the views that see the shoe nearly end-on,
            and without 2 of them the hull is wider seen end-on (IoU 0.80-0.88 in those 2-4 views where the strict
            hull has 0.92; ignoring only views that disagree by 3 px did not change that). This is the hull the
            result keeps (its reprojection, the shoe's frame), at the chosen rig.
        score_tolerance: the same for the hull that scores the candidates and aligns their crops. A tolerant
            hull forgives a camera set too high or with too narrow a fov a little: with the crops fitted to the
            truth (a synthetic shop shoe, 36 views), its IoU falls by 0.0018 a degree above the true elevation
            where the strict hull's falls by 0.0033, and with aligned crops it peaked 2 degrees high. On 40
            synthetic shop turntables, scoring strict took the largest elevation error from 3.2 to 1.9 degrees
            (mean 0.66 to 0.55; signed mean +0.27 to -0.18).
    """

    mask_height: int = 128
    voxels: int = 64
    offsets: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)
    fov_ratios: tuple[float, ...] = (0.7, 0.84, 1.0, 1.19, 1.42)
    fine_offsets: tuple[float, ...] = (-1.0, 0.0, 1.0)
    rounds: int = 2
    settle_rounds: int = 4
    tolerance: float = 0.06
    score_tolerance: float = 0.0
    distance_height: int = 256

    @property
    def candidates(self) -> int:
        """About how many candidates ``polish`` scores (the start, the searches' grids and their parabola
        vertices; a search whose best is at an end tries two more; the kept hull), for progress bars."""
        return 2 + len(self.offsets) + len(self.fov_ratios) + len(self.fine_offsets) + 3


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
        direction: turntable direction (1 or -1); 0 (the default) tries both in the coarse grid: shops spin
            either way, and forcing the wrong one on a real set converged to elevation -13, fov 7 at IoU 0.89.
        min_iou: below this mean reprojection IoU a shoe is "not converged".
        final_voxels, final_mask_height: the best rig is carved once more at this resolution, then refined
            ``octree_levels`` times near the surface (voxels halve each time).
        refine: the gradient-descent stage after the grid (``calib.refine``, e.g. ``RefineConfig()``); None (the
            default) = none: ``polish`` measures elevation better, and both would not fit in a minute per shoe.
        aim: the photographer's prior: the camera aims at the shoe's centre (``shoe_box``). Silhouettes with a
            free crop per view barely tell a lowered shoe from a lowered camera (the hull's reprojection IoU is
            flat along that valley), so without it elevation is whatever the carve/crop rounds drift to.
            The grid's candidates keep the hull centred on the look-at point, and the result aims at it.
        polish: the last stage, elevation / fov line searches on the sub-pixel hull (``polish``); None = skip.
        floor_area: the shoe's sole is the lowest hull level whose floor-plane box keeps this fraction of the
            largest level's box (``shoe_box``).
        heel_rise: the toe end of the hull's long axis is the one view 0 sees on the right, unless the other end
            stands lower by more than this fraction of the height (``heel_rise``: a shop whose 360 set starts
            with the toe on the left); 0 = always the view-0 prior. The input view is then the view nearest the
            side with the toe on the right (``side_view``).
        pin_length: after each crop alignment (grid and polish), scale the zooms so that the hull's length is 1
            (``hull_length``). A candidate's distance is ``framing_distance(fov)`` for a length-1 shoe, but the
            crops' common zoom sets the hull's size and moments leave it wherever the start put it (0.87 on a
            test shoe): the perspective (distance over size) then is not the candidate's, and the fov search
            chose 38 degrees for a true 27 (13 for a true 39).
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
    direction: int = 0
    min_iou: float = 0.85
    final_voxels: int = 64
    final_mask_height: int = 128
    octree_levels: int = 2
    refine: RefineConfig | None = None
    aim: bool = True
    floor_area: float = 0.7
    polish: PolishConfig | None = field(default_factory=lambda: PolishConfig())
    pin_length: bool = True
    heel_rise: float = 0.1


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


def signed_distances(masks: Tensor) -> Tensor:
    """(V, 1, H, W) signed distance to each mask's outline in NDC units (positive outside, negative inside);
    the zero level runs between pixel centres, where a thresholded mask's edge is."""
    import numpy as np
    from scipy import ndimage

    px = 2.0 / min(masks.shape[-2:])
    on = masks[:, 0].numpy() > 0.5
    sd = [ndimage.distance_transform_edt(~m) - ndimage.distance_transform_edt(m) for m in on]
    return torch.from_numpy(np.stack(sd)).float()[:, None] * px


def fine_signed_distances(masks: Tensor, height: int, size: tuple[int, int]) -> Tensor:
    """(V, 1, *size) ``signed_distances`` of masks (V, 1, H, W) computed at ``height`` (at most H; at least
    ``size``'s, so 0 gives the distances of the masks downscaled to ``size``) and area-averaged to ``size``:
    sub-pixel outlines at ``size``, where the distances of the thresholded small masks would follow their pixel
    staircase. Distances are in NDC units, which do not depend on the resolution.

    >>> m = torch.zeros(1, 1, 64, 64); m[..., 16:48, 16:47] = 1  # the right edge at x = 47 of 64: mid-pixel at 32
    >>> coarse = signed_distances(downscale_masks(m, 32))[0, 0, 16, 23] * 16  # pixels of the 32-px image
    >>> fine = fine_signed_distances(m, 64, (32, 32))[0, 0, 16, 23] * 16
    >>> round(float(coarse), 2), round(float(fine), 2)  # the pixel whose centre is on the edge
    (1.0, 0.0)
    """
    sd = signed_distances(downscale_masks(masks, max(height, size[0])))
    if tuple(sd.shape[-2:]) == tuple(size):
        return sd
    return F.interpolate(sd, size=size, mode="area")


def hull_field(sd: Tensor, cams: Cameras, n: int, tolerance: int = 0) -> tuple[Tensor, Tensor, float]:
    """The visual hull as a distance-like field on ``voxel_axes(n)``: the largest of the views' signed distances
    (``signed_distances`` (V, 1, H, W)) at each voxel centre's projection; a point is in the hull iff < 0.
    Unlike carving's inside/outside test, it moves continuously with the cameras: its zero level is the hull's
    surface to a fraction of a pixel (``subpixel_hull``).

    With ``tolerance`` k > 0 the field is the (k+1)-th largest: a point outside at most k silhouettes stays in
    (``carve``'s tolerance), so a band that k masks lost is not cut out of the shoe in every view.

    Returns:
        field (n, m, m), the centre (3,) of voxel (0, 0, 0), voxel size.
    """
    xs, ys, size = voxel_axes(n)
    pts = torch.stack(torch.meshgrid(xs, ys, ys, indexing="ij"), -1).reshape(-1, 3)
    v, _, h, w = sd.shape
    if not 0 <= tolerance < v:
        raise ValueError(f"hull_field: tolerance must be in [0, {v - 1}] for {v} views, got {tolerance}")
    s = min(h, w)
    top = torch.full((tolerance + 1, pts.shape[0]), -1e9)  # the k+1 largest so far, per point
    for i in range(0, v, 6):
        c = cams[i : i + 6]
        ndc = c.transform_points_ndc(pts.expand(c.shape[0], -1, -1))[..., :2]
        grid = torch.stack([ndc[..., 0] * s / w, -ndc[..., 1] * s / h], -1)
        # Outside the photo: the border's distance (a shoe cut by the frame stays open there).
        d = F.grid_sample(sd[i : i + 6], grid[:, None], mode="bilinear", padding_mode="border", align_corners=False)
        top = torch.cat([top, d[:, 0, 0]]).topk(tolerance + 1, dim=0).values
    return top[-1].view(xs.shape[0], ys.shape[0], ys.shape[0]), torch.stack([xs[0], ys[0], ys[0]]), size


def subpixel_hull(field: Tensor, origin: Tensor, voxel: float) -> tuple[Tensor, Tensor]:
    """Mesh (verts (N, 3), faces (F, 3)) of the zero level of ``hull_field`` (marching cubes, closed by padding)."""
    import numpy as np
    from skimage.measure import marching_cubes

    verts, faces, _, _ = marching_cubes(-np.pad(field.numpy(), 1, constant_values=1.0), 0.0)
    verts = torch.from_numpy(verts.copy()).float() - 1.0
    return verts * voxel + origin, torch.from_numpy(faces.copy()).long()


def floor_axis(points: Tensor) -> Tensor:
    """The long axis (2,) (unit x, z; sign arbitrary) of points (N, 3) in the floor plane: their principal axis."""
    xz = points[:, [0, 2]] - points[:, [0, 2]].mean(0)
    return torch.linalg.eigh(xz.T @ xz)[1][:, -1]


def hull_length(verts: Tensor) -> float:
    """The length of a hull (points (N, 3), turntable frame): its extent along ``floor_axis``."""
    along = verts[:, [0, 2]] @ floor_axis(verts)
    return float(along.amax() - along.amin())


def shoe_box(points: Tensor, voxel: float, floor_area: float = 0.7) -> tuple[Tensor, Tensor]:
    """The shoe's box (lo (3,), hi (3,)) from its visual hull's voxel centres (N, 3) (solid or surface voxels).

    Every camera looks down on the shoe, so the hull keeps a wedge under the sole that no view can carve
    (down to about half the shoe's width times tan(elevation) below it: 0.09 of the length at 20 degrees).
    Its floor-plane cross-sections shrink quickly, while the sole's is the shoe's largest: the bottom is the
    lowest voxel level whose x-z box area is at least ``floor_area`` times the largest level's (a sole with toe
    spring is smaller than the largest level; the bottom of a linear wedge is cut 1 - floor_area of its depth
    below the sole).
    x, z and the top are the hull's extents (voxel centres grown by half a voxel).
    """
    lo, hi = points.amin(0) - voxel / 2, points.amax(0) + voxel / 2
    level = torch.round((points[:, 1] - points[:, 1].min()) / voxel).long()
    n = int(level.max()) + 1
    big = torch.full((n,), 1e9)
    x0, z0 = (big.scatter_reduce(0, level, points[:, i], "amin") for i in (0, 2))
    x1, z1 = ((-big).scatter_reduce(0, level, points[:, i], "amax") for i in (0, 2))
    area = ((x1 - x0 + voxel) * (z1 - z0 + voxel)).clamp_min(0) * (x1 >= x0)
    first = int((area >= floor_area * area.max()).nonzero()[0])
    lo = lo.clone()
    lo[1] = points[:, 1].min() + first * voxel - voxel / 2
    return lo, hi


def shoe_centre(points: Tensor, voxel: float, floor_area: float = 0.7) -> Tensor:
    """(3,) centre of ``shoe_box``."""
    lo, hi = shoe_box(points, voxel, floor_area)
    return (lo + hi) / 2


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
    mesh: tuple[Tensor, Tensor] | None = None  # the sub-pixel hull (``polish``): verts (N, 3), faces (F, 3)

    @property
    def score(self) -> float:
        return float(self.view_iou.mean())


def turntable_cameras(num_views: int, elevation: float, fov: float, distance: float, direction: int, crops: Tensor | None) -> Cameras:
    return Cameras.turntable(num_views, elevation, distance, fov, 0.0, direction=direction,
                             translation=None if crops is None else [0.0, 0.0, 0.0], crop=crops)


def fit_candidate(masks: Tensor, elevation: float, fov: float, direction: int, cfg: CalibConfig,
                  grid: tuple[Tensor, float]) -> Fit:
    """Carve + crop rounds for one (elevation, fov, direction); masks (V, 1, h, w) at fitting resolution.

    With ``cfg.aim`` every round re-fits the crops to the hull moved so that its centre (``shoe_centre``) sits
    at the look-at point: the next carve then finds the shoe there, and the candidate's elevation is the
    elevation of the camera's aim at the shoe's centre (the prior that makes it identifiable).
    """
    v, _, h, w = masks.shape
    dist = framing_distance(fov, cfg.framing)
    plain = turntable_cameras(v, elevation, fov, dist, direction, None)
    boxes = mask_boxes_ndc(masks)
    # A shoe-sized box (length 1, height and width ~0.35) gives the first crops.
    corners = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.18, 0.18) for z in (-0.18, 0.18)])
    points, size = grid
    crops = fit_crops(_boxes(plain, corners), boxes)
    hull = points[:0]

    def carved(crops):
        keep = carve(masks, turntable_cameras(v, elevation, fov, dist, direction, crops), points, cfg.tolerance)
        if int(keep.sum()) < 8:
            return None
        hull = points[keep]
        if cfg.aim:  # up or down onto the look-at point (x, z stay: the offset from the axis is real)
            hull = hull - torch.tensor([0.0, float(shoe_centre(hull, size, cfg.floor_area)[1]), 0.0])
        return hull

    for _ in range(cfg.crop_iterations):
        found = carved(crops)
        if found is None:
            break
        hull = found
        crops = fit_crops(_boxes(plain, hull, pad=size / 2), boxes)
    for _ in range(cfg.moment_iterations if hull.shape[0] >= 8 else 0):
        found = carved(crops)
        if found is None:
            break
        hull = found
        cams = turntable_cameras(v, elevation, fov, dist, direction, crops)
        crops = align_moments(splat(hull, cams, h, w, _splat_radius(cams, size, h, w)), masks, crops)
        if cfg.pin_length:  # voxel centres: the solid reaches half a voxel further at each end
            crops = crops * torch.tensor([1.0, 1.0, hull_length(hull) + size])
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
    polished = False
    if cfg.polish is not None and final.hull.shape[0] >= 8:
        fit = polish(masks, final, cfg, progress)
        if fit is not None:  # its IoU is the sub-pixel hull's: not comparable with the voxel splats', always kept
            final, polished = fit, True
            fine_cfg = replace(fine_cfg, voxels=cfg.polish.voxels)
    result = _canonical(final, masks.shape[-2:], fine_cfg)
    if result.get("mesh") is not None:  # the reprojection with the cameras as written (re-aimed crops)
        big = downscale_masks(masks, result["mask_height"])
        sil = mesh_silhouettes(*result["mesh"], Cameras.from_tensor(result["cameras"]), *big.shape[-2:])
        score_reprojection(result, sil, big, cfg.min_iou)
    return result | {"polished": polished,
        "candidates": [(f.elevation, f.fov, f.direction, round(f.score, 4)) for f in tried],
        "refined": used_refine, "grid_elevation": grid_elevation, "grid_iou": grid_score}


def score_reprojection(result: dict, reprojection: Tensor, masks: Tensor, min_iou: float) -> dict:
    """Score a calibration result by its hull's reprojection (V, 1, h, w) against the masks (V, 1, h, w): sets
    ``view_iou`` (V,), ``mean_iou``, ``converged`` (mean >= ``min_iou``), ``view_outline`` (V,) (``outline_error``
    in image heights) and keeps ``reprojection`` = (reprojection, masks) for overlays. Returns ``result``."""
    result["view_iou"] = iou(reprojection, masks)
    result["mean_iou"] = float(result["view_iou"].mean())
    result["converged"] = result["mean_iou"] >= min_iou
    result["view_outline"] = outline_error(reprojection, masks) / masks.shape[-2]
    result["reprojection"] = (reprojection, masks)
    return result


def polish(masks: Tensor, start: Fit, cfg: CalibConfig, progress=None) -> Fit | None:
    """Line searches on the sub-pixel hull: the last word on elevation and field of view.

    The voxel hull's splatted reprojection misses the masks by about a pixel all along the outline, which
    swamps what a few degrees of elevation or a fov 15% off change (its IoU is flat within +-4 degrees even
    for the true cameras). The zero level of ``hull_field`` rendered by the rasteriser is a sub-pixel outline:
    on a 128 px test shoe its IoU is 0.982 at the true cameras, 0.974 two degrees off, 0.977 at 0.87 x the fov.
    A candidate (elevation, fov) is scored by ``rounds`` times: hull -> (with ``cfg.aim``: moved onto the
    look-at point) -> render -> IoU -> re-align the crops by moments, from the same crops for every candidate.
    Searches: elevation over ``offsets``, fov over ``fov_ratios``, elevation again over ``fine_offsets``; each
    tries the vertex of a parabola through the best and its neighbours and keeps the best-scoring candidate.
    Candidates are scored on the hull of ``PolishConfig.score_tolerance`` (strict); the result keeps the hull of
    ``PolishConfig.tolerance`` at the best candidate's rig and crops.

    Args:
        masks: (V, 1, H, W) full-size masks. start: the fit to polish (elevation, fov, direction, crops).
        progress: called once per candidate scored (about ``PolishConfig.candidates``).
    Returns:
        The best fit (hull: its solid voxel centres, mesh: the sub-pixel hull), None when the hull is empty.
    """
    pc = cfg.polish
    big = downscale_masks(masks, pc.mask_height)
    sd = fine_signed_distances(masks, pc.distance_height, big.shape[-2:])  # height 0: the distances of ``big``
    v, _, h, w = big.shape
    score_tolerance, keep_tolerance = int(pc.score_tolerance * v), int(pc.tolerance * v)  # in views

    def evaluate(elevation: float, fov: float, base: Fit, rounds: int = pc.rounds,
                 tolerance: int = score_tolerance) -> Fit | None:
        if progress is not None:
            progress()
        dist = framing_distance(fov, cfg.framing)
        # Keep the shoe's size in the photos: zoom follows focal / distance (moments then fix the rest).
        k = (dist / base.distance) * math.tan(math.radians(fov) / 2) / math.tan(math.radians(base.fov) / 2)
        crops, best = base.crops * torch.tensor([1.0, 1.0, k]), None
        for r in range(rounds):
            if r > 0:
                crops = align_moments(sil, big, crops)
                if cfg.pin_length:  # the perspective is distance / size: the size must be the one framing assumed
                    crops = crops * torch.tensor([1.0, 1.0, hull_length(verts)])
                if cfg.aim:  # the crops of the hull moved onto the look-at point (the aim prior)
                    c = turntable_cameras(v, elevation, fov, dist, base.direction, crops)
                    ends = torch.stack([centre, centre - torch.tensor([0.0, float(centre[1]), 0.0])])
                    ndc = c.transform_points_ndc(ends.expand(v, -1, -1))[..., :2]
                    crops = torch.cat([crops[:, :2] - (ndc[:, 1] - ndc[:, 0]), crops[:, 2:]], 1)
            cams = turntable_cameras(v, elevation, fov, dist, base.direction, crops)
            field, origin, size = hull_field(sd, cams, pc.voxels, tolerance)
            inside = (field < 0).nonzero()
            if inside.shape[0] < 8:
                return None
            solid = inside.float() * size + origin
            centre = shoe_centre(solid, size, cfg.floor_area)
            verts, faces = subpixel_hull(field, origin, size)
            sil = mesh_silhouettes(verts, faces, cams, h, w)
            best = Fit(elevation, fov, dist, base.direction, crops, solid, iou(sil, big), h, mesh=(verts, faces))
        return best

    def search(base: Fit, offsets: tuple[float, ...], make, widen: bool = True) -> Fit:
        """Best of ``make(x)`` over offsets x, every candidate from ``base``'s crops (x = 0 too: the same number
        of alignment rounds for all), then of the parabola's vertex; once more around an end that wins."""
        ok = {x: f for x in sorted(set(offsets) | {0.0}) if (f := make(x)) is not None}
        if not ok:
            return base
        keys = sorted(ok)
        i = max(range(len(keys)), key=lambda j: ok[keys[j]].score)
        if widen and len(keys) > 2 and i in (0, len(keys) - 1):  # the best is at an end: two steps beyond it
            step = (keys[-1] - keys[0]) / (len(keys) - 1)
            for n in (1, 2):
                x = keys[i] + (n if i else -n) * step
                if (f := make(x)) is not None:
                    ok[x] = f
            keys = sorted(ok)
            i = max(range(len(keys)), key=lambda j: ok[keys[j]].score)
        if 0 < i < len(keys) - 1:
            x0, x1, x2 = keys[i - 1 : i + 2]
            vertex = _parabola_vertex(x0, x1, x2, ok[x0].score, ok[x1].score, ok[x2].score)
            if vertex is not None and all(abs(vertex - x) > 1e-3 for x in keys):
                if (f := make(vertex)) is not None:
                    ok[vertex] = f
        return max(ok.values(), key=lambda f: f.score)

    settled = evaluate(start.elevation, start.fov, start, rounds=pc.settle_rounds)
    if settled is None:
        return None
    b = settled
    b = search(b, pc.offsets, lambda x, b=b: evaluate(b.elevation + x, b.fov, b))
    fovs = tuple(math.log(r) for r in pc.fov_ratios)  # searched in log fov
    b = search(b, fovs, lambda x, b=b: evaluate(b.elevation, b.fov * math.exp(x), b))
    b = search(b, pc.fine_offsets, lambda x, b=b: evaluate(b.elevation + x, b.fov, b), widen=False)
    if keep_tolerance == score_tolerance:  # b's hull is already the one to keep
        return b
    # The hull to keep: the same rig and crops, carved with ``tolerance`` (robust to a mask that lost a part).
    return evaluate(b.elevation, b.fov, b, rounds=1, tolerance=keep_tolerance) or b


def _parabola_vertex(x0: float, x1: float, x2: float, y0: float, y1: float, y2: float) -> float | None:
    """Abscissa of the maximum of the parabola through three points (x0 < x1 < x2), clamped to [x0, x2];
    None when it opens upwards."""
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / den
    if a >= 0:
        return None
    return min(max(-b / (2 * a), x0), x2)


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


def aim_at(fit: Fit, height: float, points: Tensor) -> tuple[float, float, Tensor]:
    """The fit's cameras re-aimed at the point of the turntable axis at ``height`` (the shoe's centre).

    The camera centres stay where they are: elevation and distance are those of the ray to the new look-at
    point, and each view's crop (V, 3) is re-fitted (least squares on the projections of ``points`` (N, 3))
    to the small tilt this adds, so the photos are explained as before.
    Returns:
        elevation (degrees), distance, crops (V, 3).
    """
    v = fit.crops.shape[0]
    el = math.radians(fit.elevation)
    across, up = fit.distance * math.cos(el), fit.distance * math.sin(el) - height
    elevation, distance = math.degrees(math.atan2(up, across)), math.hypot(across, up)
    old = turntable_cameras(v, fit.elevation, fit.fov, fit.distance, fit.direction, fit.crops)
    new = Cameras.turntable(v, elevation, distance, fit.fov, 0.0, direction=fit.direction,
                            translation=[0.0, -height, 0.0])
    a = new.transform_points_ndc(points.expand(v, -1, -1))[..., :2]
    b = old.transform_points_ndc(points.expand(v, -1, -1))[..., :2]
    a0, b0 = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    zoom = (a0 * b0).sum((1, 2)) / a0.square().sum((1, 2)).clamp_min(1e-12)
    shift = b.mean(1) - zoom[:, None] * a.mean(1)
    return elevation, distance, torch.cat([shift, zoom[:, None]], 1)


def _canonical(fit: Fit, photo_hw: tuple[int, int], cfg: CalibConfig) -> dict:
    """The fit in the shoe's frame (DESIGN): long axis +X (toe right in view 0), the shoe's box centred
    (``shoe_box``: its sole, not the hull's uncarvable wedge under it), length 1. With ``cfg.aim`` the cameras
    are re-aimed at the shoe's centre (``aim_at``), so the object pose keeps no height (translation y = 0)."""
    v = fit.crops.shape[0]
    hull = fit.hull
    if hull.shape[0] < 8:
        return {"elevation": fit.elevation, "fov": fit.fov, "distance": fit.distance, "start_azimuth": 0.0,
                "direction": fit.direction, "translation": [0.0, 0.0, 0.0], "cameras": None,
                "view_iou": fit.view_iou, "mean_iou": 0.0, "converged": False}
    ax = floor_axis(hull)                              # long axis (x, z) in the turntable frame
    phi = math.degrees(math.atan2(float(ax[1]), float(ax[0])))  # R_y(phi) maps the axis onto +X
    # The prior: view 0 (azimuth 0 in the turntable frame) sees the toe on the right, |start| <= 90 ...
    phi = (phi + 180.0) % 360.0 - 180.0
    if phi > 90:
        phi -= 180
    elif phi < -90:
        phi += 180
    # ... unless the shoe says otherwise: its heel (the collar) stands clearly taller than its toe box.
    if cfg.heel_rise and heel_rise(hull @ _rot_y(phi).T) < -cfg.heel_rise:
        phi = phi - 180.0 if phi > 0 else phi + 180.0
    rot = _rot_y(phi)
    obj = hull @ rot.T
    size = 1.4 / cfg.voxels
    lo, hi = shoe_box(obj, size, cfg.floor_area)
    mesh = None if fit.mesh is None else fit.mesh[0] @ rot.T
    if mesh is not None:  # the sub-pixel hull's extents (the sole's height stays shoe_box's)
        lo = torch.stack([mesh[:, 0].min(), lo[1], mesh[:, 2].min()])
        hi = mesh.amax(0)
    length = float(hi[0] - lo[0])
    centre = (lo + hi) / 2
    scale = 1.0 / length
    elevation, distance, crops = fit.elevation, fit.distance, fit.crops.clone()
    look_at = torch.zeros(3)
    if cfg.aim:
        look_at[1] = centre[1]
        sample = hull[torch.linspace(0, hull.shape[0] - 1, min(2000, hull.shape[0])).long()]
        elevation, distance, crops = aim_at(fit, float(centre[1]), sample)
    translation = ((centre - look_at) * scale).tolist()  # where the shoe's origin sits from the look-at point
    distance = distance * scale
    cams = Cameras.turntable(v, elevation, distance, fit.fov, phi, direction=fit.direction,
                             translation=translation, crop=crops)
    out = {"elevation": elevation, "fov": fit.fov, "distance": distance, "start_azimuth": phi,
           "input_view": side_view(phi, fit.direction, v),
           "direction": fit.direction, "translation": translation, "cameras": cams.to_tensor(),
           "view_iou": fit.view_iou, "mean_iou": fit.score, "converged": fit.score >= cfg.min_iou,
           "hull": (obj - centre) * scale, "voxel": size * scale, "mask_height": int(fit.mask_height),
           "surface": cfg.octree_levels > 0 and cfg.voxels > cfg.final_voxels}
    if mesh is not None:
        out["mesh"] = ((mesh - centre) * scale, fit.mesh[1])
    return out


def heel_rise(points: Tensor) -> float:
    """How much taller the back quarter (-X) of a shoe (points (N, 3), long axis on X) stands than its front
    quarter (+X), over its height: 0.15-0.68 on 68 synthetic shoes (the collar is at the heel, the toe box is
    low), about -0.5 for a shoe the wrong way round."""
    x, y = points[:, 0], points[:, 1]
    lo, hi = float(x.min()), float(x.max())
    quarter = 0.25 * (hi - lo)
    back, front = y[x <= lo + quarter], y[x >= hi - quarter]
    if back.numel() == 0 or front.numel() == 0:
        return 0.0
    return float(back.max() - front.max()) / max(float(y.max() - y.min()), 1e-9)


def side_view(start_azimuth: float, direction: int, num_views: int) -> int:
    """The view nearest the canonical input view (azimuth 0: the side, toe on the right) of a turntable whose
    view i is at ``start_azimuth + direction * i * 360 / num_views`` degrees."""
    az = torch.tensor([start_azimuth + direction * i * 360.0 / num_views for i in range(num_views)])
    return int(((az + 180.0) % 360.0 - 180.0).abs().argmin())


def _rot_y(deg: float) -> Tensor:
    """R_y(deg) as used by azimuths: it adds ``deg`` to a camera's azimuth (x' = x cos + z sin, z' = -x sin + z cos)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
