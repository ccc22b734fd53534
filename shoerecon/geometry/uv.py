"""UV layouts for the template: xatlas charts ("islands", v1) or one continuous spherical chart ("spherical", v2).

v1 renders showed colour seams where xatlas charts meet: neighbouring texels across a chart boundary are far
apart in the texture, so the predicted flow (one per texel) has no reason to agree there. The spherical layout
keeps the whole surface in one chart with a single seam (a meridian behind the heel by default), so almost
every pair of neighbouring surface points is also a pair of neighbouring texels.

Spherical layout, step by step (``spherical_uv``):
 1. Embed the mesh on the unit sphere: directions from the bounding-box centre after scaling each axis by the
    box's half extent (an elongated shoe becomes roughly round). A surface that is not star-shaped about the
    centre folds over under this projection; such a shape is first rounded by uniform Laplacian smoothing until
    its projection has no folded triangle, and further until no triangle flips in UV either (the longitude/
    latitude chart is not linear: a sliver barely unfolded on the sphere can still flip in it).
 2. Make the poles vertices: the top-most and bottom-most vertices are sent exactly to +Y / -Y by a rotation
    followed by a Moebius transform (conformal and bijective, so no new fold-overs), scaled so that half the
    vertices lie on each hemisphere.
 3. u = longitude about +Y measured with the cameras' azimuth (0 = +Z, 90 = +X) from the seam meridian,
    v = (1 + y) / 2: Lambert's cylindrical equal-area projection, so texel density per unit sphere area is
    uniform and v is up (+Y up).
 4. Faces that straddle the seam get copies of their small-u vertices at u + 1; each face at a pole gets its
    own copy of the pole vertex at the mean u of its other two vertices. These are the only split vertices.
 5. An affine fit packs the layout into [margin, 1 - margin]^2.
Faces that are counter-clockwise seen from outside are counter-clockwise in UV (positive signed area).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterator, Literal

import numpy as np
import torch
from torch import Tensor

from shoerecon.geometry.mesh import unique_edges

UV_MODES = ("islands", "spherical")


@dataclass
class SphericalUVConfig:
    """Options of the spherical layout.

    Attributes:
        seam_azimuth: azimuth (degrees, cameras.py convention: 0 = +Z lateral, 90 = +X toe) of the seam meridian;
            -90 puts it behind the heel, away from the input view.
        margin: gap left on every side of [0, 1]^2 (texture units), so bilinear lookups never reach the border.
        max_unfold_iters: smoothing steps allowed to undo fold-overs of non-star-shaped meshes.
    """
    seam_azimuth: float = -90.0
    margin: float = 0.005
    max_unfold_iters: int = 2000


@dataclass
class UVConfig:
    """How the template's UV layout is built (the ``uv:`` config section).

    Attributes:
        mode: "islands" (xatlas charts: v1, colour seams at every chart border) or "spherical" (one continuous
            chart with a single seam, packed into the unit square).
        spherical: options of the spherical layout.
    """
    mode: Literal["islands", "spherical"] = "islands"
    spherical: SphericalUVConfig = field(default_factory=SphericalUVConfig)


# ---------------------------------------------------------------------------------------------------------------
# Small mesh/UV helpers (also used by the tests and by eval's seam metric).


def uv_signed_areas(uvs: Tensor, uv_faces: Tensor) -> Tensor:
    """Signed areas of UV triangles, positive when counter-clockwise (u right, v up). (T,2), (F,3) -> (F,)."""
    a, b, c = (uvs[uv_faces[:, i]] for i in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def connected_components(faces: Tensor, num_verts: int | None = None) -> Tensor:
    """Component label per face, faces connected when they share a vertex. (F, 3) long -> (F,) long labels 0..K-1.

    >>> connected_components(torch.tensor([[0, 1, 2], [3, 4, 5], [2, 6, 7]])).tolist()
    [0, 1, 0]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as cc

    n = int(faces.max()) + 1 if num_verts is None else num_verts
    f = faces.detach().cpu().numpy()
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, vert_labels = cc(graph, directed=False)
    # Relabel so that labels of used vertices are 0..K-1 in order of first appearance.
    _, labels = np.unique(vert_labels[f[:, 0]], return_inverse=True)
    return torch.as_tensor(labels, dtype=torch.long, device=faces.device)


def uv_to_vertex_map(faces: Tensor, uv_faces: Tensor, num_uvs: int) -> Tensor:
    """The 3D vertex of every UV vertex, -1 where unused. Raises if a UV vertex is shared by two 3D vertices.

    faces, uv_faces: (F, 3) long -> (T,) long.
    """
    mapping = torch.full((num_uvs,), -1, dtype=torch.long, device=faces.device)
    mapping[uv_faces.reshape(-1)] = faces.reshape(-1)
    if not torch.equal(mapping[uv_faces], faces):
        raise ValueError("a UV vertex is used by two different 3D vertices")
    return mapping


def _check_mesh(verts: Tensor, faces: Tensor) -> None:
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise ValueError(f"verts must be (N, 3), got {tuple(verts.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"faces must be (F, 3) integer, got {tuple(faces.shape)} {faces.dtype}")
    if faces.numel() and (faces.min() < 0 or faces.max() >= verts.shape[0]):
        raise ValueError(f"faces index vertices outside [0, {verts.shape[0]})")


# ---------------------------------------------------------------------------------------------------------------
# islands: xatlas charts (v1)


def islands_uv(verts: Tensor, faces: Tensor) -> tuple[Tensor, Tensor]:
    """xatlas charts packed into [0, 1]^2.

    Args:
        verts: (N, 3) float. faces: (F, 3) long.
    Returns:
        uvs (T, 2) float in [0, 1] (dtype/device of verts), uv_faces (F, 3) long, face order kept.
    """
    import xatlas

    _check_mesh(verts, faces)
    pos = verts.detach().cpu().numpy().astype(np.float32)
    idx = faces.detach().cpu().numpy().astype(np.uint32)
    vmapping, indices, uvs = xatlas.parametrize(pos, idx)
    if not np.array_equal(vmapping[indices], idx):  # xatlas keeps face order; make sure, the UV faces rely on it
        raise RuntimeError("xatlas changed the face order; islands_uv cannot map its UV faces back")
    uvs_t = torch.as_tensor(uvs, device=verts.device).to(verts.dtype).clamp(0, 1)
    return uvs_t, torch.as_tensor(indices.astype(np.int64), device=faces.device)


# ---------------------------------------------------------------------------------------------------------------
# spherical: one chart, one seam


def _vertex_neighbour_mean(x: Tensor, edges: Tensor) -> tuple[Tensor, Tensor]:
    """Sum of neighbour positions and neighbour counts. x (N, 3), edges (E, 2) -> (N, 3), (N,)."""
    total = torch.zeros_like(x).index_add_(0, edges[:, 0], x[edges[:, 1]]).index_add_(0, edges[:, 1], x[edges[:, 0]])
    count = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    ones = torch.ones(edges.shape[0], dtype=x.dtype, device=x.device)
    count.index_add_(0, edges[:, 0], ones).index_add_(0, edges[:, 1], ones)
    return total, count


def spherical_flipped_faces(x: Tensor, faces: Tensor) -> Tensor:
    """Faces of a sphere embedding that are folded over (inward facing). x (N, 3) on the unit sphere -> (F,) bool."""
    a, b, c = (x[faces[:, i]] for i in range(3))
    return (torch.linalg.cross(b - a, c - a, dim=-1) * (a + b + c)).sum(-1) <= 0


def sphere_embeddings(verts: Tensor, faces: Tensor, max_steps: int = 2000) -> Iterator[Tensor]:
    """Successive sphere embeddings: the central projection, then after each step of a smoothing flow.

    Central projection from the bounding-box centre after scaling each axis by its half extent. A surface that
    is not star-shaped about that centre folds over; smoothing the (normalised) shape with the uniform
    Laplacian rounds it, and after enough steps its central projection has no folded face.

    Args:
        verts: (N, 3). faces: (F, 3) long, counter-clockwise seen from outside. max_steps: smoothing steps.
    Yields:
        (N, 3) float64 unit vectors, 1 + max_steps of them at most.
    """
    v = verts.detach().to(torch.float64)
    lo, hi = v.min(0).values, v.max(0).values
    shape = (v - (lo + hi) / 2) / ((hi - lo) / 2).clamp_min(1e-12)
    yield torch.nn.functional.normalize(shape, dim=-1)
    edges = unique_edges(faces)
    for _ in range(max_steps):
        total, count = _vertex_neighbour_mean(shape, edges)
        shape = shape + 0.5 * (total / count.clamp_min(1)[:, None] - shape)
        shape = shape - shape.mean(0)
        shape = shape / shape.norm(dim=-1).mean().clamp_min(1e-300)  # keep the scale: no collapse to a point
        yield torch.nn.functional.normalize(shape, dim=-1)


def sphere_embedding(verts: Tensor, faces: Tensor, max_unfold_iters: int = 2000) -> Tensor:
    """The first embedding of ``sphere_embeddings`` without fold-overs (the last one, with a warning, if none).

    Args:
        verts: (N, 3). faces: (F, 3) long, counter-clockwise seen from outside.
    Returns:
        (N, 3) float64 unit vectors.
    """
    for x in sphere_embeddings(verts, faces, max_unfold_iters):
        flipped = spherical_flipped_faces(x, faces)
        if not flipped.any():
            return x
    warnings.warn(
        f"sphere_embedding: {int(flipped.sum())} of {faces.shape[0]} faces still fold over after "
        f"{max_unfold_iters} smoothing steps",
        stacklevel=2,
    )
    return x


def _warn_if_not_closed(faces: Tensor) -> None:
    e = torch.sort(torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), dim=1).values
    counts = torch.unique(e, dim=0, return_counts=True)[1]
    if (counts != 2).any():
        warnings.warn(
            f"spherical_uv expects a closed genus-0 mesh, but {int((counts != 2).sum())} edges are not shared by "
            "exactly two faces (vertices split at UV seams? weld them first); the layout may fold over",
            stacklevel=3,
        )


def _rotation_to_y(d: Tensor) -> Tensor:
    """The smallest rotation taking unit vector d (3,) to +Y. -> (3, 3)."""
    y = d.new_tensor([0.0, 1.0, 0.0])
    axis = torch.linalg.cross(d, y)
    s, c = axis.norm(), (d * y).sum()
    if s < 1e-12:
        return torch.eye(3, dtype=d.dtype, device=d.device) * (1 if c > 0 else d.new_tensor([1.0, -1.0, -1.0]))
    k = axis / s
    kx = torch.stack(
        [torch.stack([0 * s, -k[2], k[1]]), torch.stack([k[2], 0 * s, -k[0]]), torch.stack([-k[1], k[0], 0 * s])]
    )
    return torch.eye(3, dtype=d.dtype, device=d.device) + s * kx + (1 - c) * kx @ kx


def poles_to_axis(x: Tensor, north: int, south: int) -> Tensor:
    """Move vertex ``north`` exactly to +Y and ``south`` exactly to -Y by a rotation and a Moebius transform.

    Stereographic projection from +Y to the plane (w = (x + i z) / (1 - y)), a similarity w -> lam (w - w_south)
    (which keeps infinity, i.e. +Y, fixed), then back; lam puts the median vertex on the equator. Conformal and
    bijective, so an embedding without fold-overs keeps none.

    Args:
        x: (N, 3) float64 unit vectors. north, south: vertex indices, north != south.
    Returns:
        (N, 3) float64 unit vectors.
    """
    x = x @ _rotation_to_y(x[north]).T
    others = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    others[north] = False
    w = torch.complex(x[:, 0], x[:, 2]) / (1 - x[:, 1]).clamp_min(1e-300).to(torch.complex128)
    w = w - w[south]
    radius = w.abs()
    lam = 1.0 / radius[others & (radius > 0)].median().clamp_min(1e-12) if others.sum() > 1 else 1.0
    w = lam * w
    r2 = w.abs() ** 2
    out = torch.stack([2 * w.real / (r2 + 1), (r2 - 1) / (r2 + 1), 2 * w.imag / (r2 + 1)], dim=-1)
    out[north] = x.new_tensor([0.0, 1.0, 0.0])
    out[south] = x.new_tensor([0.0, -1.0, 0.0])
    return out


def spherical_uv(verts: Tensor, faces: Tensor, cfg: SphericalUVConfig | None = None) -> tuple[Tensor, Tensor]:
    """One continuous equal-area spherical chart with a single seam, packed into [0, 1]^2.

    Args:
        verts: (N, 3) float, a closed genus-0 mesh. faces: (F, 3) long, counter-clockwise seen from outside.
        cfg: layout options.
    Returns:
        uvs (T, 2) float in [0, 1] (dtype/device of verts), T = N + split vertices; uv_faces (F, 3) long.
        UV vertex t < N is 3D vertex t (poles excepted: their UV slots are unused).

    >>> import trimesh
    >>> sphere = trimesh.creation.icosphere(subdivisions=2)
    >>> uvs, uv_faces = spherical_uv(torch.tensor(sphere.vertices), torch.tensor(sphere.faces))
    >>> bool(uv_signed_areas(uvs, uv_faces).min() > 0), connected_components(uv_faces).max().item()
    (True, 0)
    """
    cfg = cfg or SphericalUVConfig()
    _check_mesh(verts, faces)
    faces = faces.long()
    _warn_if_not_closed(faces)
    flipped = None
    for x in sphere_embeddings(verts, faces, cfg.max_unfold_iters):
        if spherical_flipped_faces(x, faces).any():
            continue
        uvs, uv_faces = _layout_from_sphere(x, faces, cfg.seam_azimuth)
        flipped = uv_signed_areas(uvs, uv_faces) <= 0
        if not flipped.any():
            break
    else:
        if flipped is None:  # never unfolded on the sphere
            uvs, uv_faces = _layout_from_sphere(x, faces, cfg.seam_azimuth)
            flipped = uv_signed_areas(uvs, uv_faces) <= 0
        warnings.warn(
            f"spherical_uv: {int(flipped.sum())} of {faces.shape[0]} UV triangles are flipped after "
            f"{cfg.max_unfold_iters} smoothing steps (is the mesh closed, genus 0, consistently oriented?)",
            stacklevel=2,
        )
    uvs = _fit_unit_square(uvs, uv_faces, cfg.margin)
    return uvs.to(dtype=verts.dtype if verts.is_floating_point() else torch.float32, device=verts.device), uv_faces


def _layout_from_sphere(x: Tensor, faces: Tensor, seam_azimuth: float) -> tuple[Tensor, Tensor]:
    """Steps 2-4 of the module docstring: poles, equal-area longitude/latitude, seam and pole splits.

    Args:
        x: (N, 3) float64 unit vectors without fold-overs. faces: (F, 3) long. seam_azimuth: degrees.
    Returns:
        uvs (T, 2) float64, not yet packed into [0, 1]; uv_faces (F, 3) long.
    """
    north, south = int(x[:, 1].argmax()), int(x[:, 1].argmin())
    if north == south:
        raise ValueError("spherical_uv needs a mesh with at least two vertices")
    x = poles_to_axis(x, north, south)

    azimuth = torch.rad2deg(torch.atan2(x[:, 0], x[:, 2]))
    u = torch.remainder(azimuth - seam_azimuth, 360.0) / 360.0
    v = (1 + x[:, 1].clamp(-1, 1)) / 2

    is_pole = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    is_pole[[north, south]] = True
    fu = u[faces]  # (F, 3)
    pole_corner = is_pole[faces]
    fu_valid = fu.masked_fill(pole_corner, float("nan"))
    span = fu_valid.nan_to_num(-1.0).amax(1) - fu_valid.nan_to_num(2.0).amin(1)
    shifted = (span > 0.5)[:, None] & (fu < 0.5) & ~pole_corner  # corners that wrap to u + 1 across the seam
    fu = fu + shifted.to(fu.dtype)
    # A pole corner takes the mean u of the face's other corners (a pole vertex is a line in UV).
    non_pole = (~pole_corner).to(fu.dtype)
    mean_u = (fu * non_pole).sum(1) / non_pole.sum(1).clamp_min(1)
    fu = torch.where(pole_corner, mean_u[:, None], fu)

    # UV vertices: the N originals, one copy per seam-shifted vertex, one per pole corner.
    n = x.shape[0]
    uv_faces = faces.clone()
    shifted_verts, shifted_slot = torch.unique(faces[shifted], return_inverse=True)
    uv_faces[shifted] = n + shifted_slot
    num_pole_corners = int(pole_corner.sum())
    uv_faces[pole_corner] = n + len(shifted_verts) + torch.arange(num_pole_corners, device=faces.device)
    uvs = torch.zeros(n + len(shifted_verts) + num_pole_corners, 2, dtype=torch.float64, device=x.device)
    uvs[:n, 0], uvs[:n, 1] = u, v
    uvs[n : n + len(shifted_verts), 0] = u[shifted_verts] + 1
    uvs[n : n + len(shifted_verts), 1] = v[shifted_verts]
    uvs[n + len(shifted_verts) :, 0] = fu[pole_corner]
    uvs[n + len(shifted_verts) :, 1] = v[faces[pole_corner]]
    return uvs, uv_faces


def _fit_unit_square(uvs: Tensor, uv_faces: Tensor, margin: float) -> Tensor:
    """Scale/shift each axis so the used UV vertices span [margin, 1 - margin]. (T, 2) -> (T, 2)."""
    used = torch.zeros(uvs.shape[0], dtype=torch.bool, device=uvs.device)
    used[uv_faces.reshape(-1)] = True
    lo, hi = uvs[used].min(0).values, uvs[used].max(0).values
    out = margin + (uvs - lo) / (hi - lo).clamp_min(1e-12) * (1 - 2 * margin)
    return torch.where(used[:, None], out, torch.full_like(out, 0.5)).clamp(0, 1)


# ---------------------------------------------------------------------------------------------------------------


def compute_uv(
    verts: Tensor, faces: Tensor, mode: str = "islands", spherical: SphericalUVConfig | None = None
) -> tuple[Tensor, Tensor]:
    """UV layout by name: ``"islands"`` (xatlas charts) or ``"spherical"`` (one chart, one seam).

    Args:
        verts: (N, 3) float. faces: (F, 3) long. mode: one of UV_MODES. spherical: options of the spherical mode.
    Returns:
        uvs (T, 2) float in [0, 1], uv_faces (F, 3) long.
    """
    if mode == "islands":
        return islands_uv(verts, faces)
    if mode == "spherical":
        return spherical_uv(verts, faces, spherical)
    raise ValueError(f"unknown uv mode {mode!r}; valid modes: {', '.join(UV_MODES)}")


__all__ = [
    "UV_MODES",
    "SphericalUVConfig",
    "UVConfig",
    "islands_uv",
    "spherical_uv",
    "compute_uv",
    "sphere_embedding",
    "sphere_embeddings",
    "poles_to_axis",
    "spherical_flipped_faces",
    "uv_signed_areas",
    "connected_components",
    "uv_to_vertex_map",
]
