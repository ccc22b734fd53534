import math

import numpy as np
import pytest
import torch
import trimesh

from shoerecon.geometry.mesh import face_areas_normals, unique_edges
from shoerecon.geometry.uv import (
    SphericalUVConfig,
    compute_uv,
    connected_components,
    islands_uv,
    spherical_uv,
    uv_signed_areas,
    uv_to_vertex_map,
)


def _mesh(m: trimesh.Trimesh):
    return torch.tensor(m.vertices, dtype=torch.float32), torch.tensor(m.faces, dtype=torch.long)


def icosphere(subdivisions=3):
    return _mesh(trimesh.creation.icosphere(subdivisions=subdivisions))


def shoe_box():
    """An elongated box (shoe proportions) with irregular triangulation and sliver triangles."""
    return _mesh(trimesh.creation.box(extents=(1.0, 0.4, 0.3)).subdivide_to_size(0.05))


def dented_sphere():
    """Not star-shaped about its centre: the +Z cap is pushed inward into a cup (no self-intersection)."""
    v, f = icosphere(4)
    v = v.clone()
    cap = v[:, 2] > 0.3
    v[cap, 2] = 0.3 - (v[cap, 2] - 0.3) * 0.5
    return v, f


MESHES = {"icosphere": icosphere, "shoe_box": shoe_box, "dented_sphere": dented_sphere}


def cut_edges(faces, uv_faces):
    """3D edges whose two faces do not share the same pair of UV vertices (the seam as seen on the surface)."""
    corners = [(0, 1), (1, 2), (2, 0)]
    seen = {}
    for fi in range(faces.shape[0]):
        for a, b in corners:
            key = tuple(sorted((int(faces[fi, a]), int(faces[fi, b]))))
            uv_key = frozenset((int(uv_faces[fi, a]), int(uv_faces[fi, b])))
            seen.setdefault(key, []).append(uv_key)
    return [e for e, uvk in seen.items() if len(set(uvk)) > 1]


@pytest.mark.parametrize("mode", ["islands", "spherical"])
@pytest.mark.parametrize("name", list(MESHES))
def test_layout_valid(mode, name):
    verts, faces = MESHES[name]()
    uvs, uv_faces = compute_uv(verts, faces, mode)
    assert uvs.dtype == verts.dtype and uvs.ndim == 2 and uvs.shape[1] == 2
    assert uv_faces.shape == faces.shape and uv_faces.dtype == torch.long
    assert uv_faces.min() >= 0 and uv_faces.max() < uvs.shape[0]
    assert uvs.min() >= 0 and uvs.max() <= 1
    areas = uv_signed_areas(uvs.double(), uv_faces)
    assert areas.abs().min() > 1e-10, "degenerate UV triangle"
    # Every UV vertex stands for one 3D vertex: the layout is a cut of the same surface.
    uv_to_vertex_map(faces, uv_faces, uvs.shape[0])


@pytest.mark.parametrize("name", list(MESHES))
def test_spherical_one_chart_one_seam(name):
    verts, faces = MESHES[name]()
    uvs, uv_faces = spherical_uv(verts, faces)
    areas = uv_signed_areas(uvs.double(), uv_faces)
    assert (areas > 0).all(), "outward CCW faces must be CCW in UV: no fold-over"
    assert connected_components(uv_faces).max() == 0, "one UV island"
    # Non-overlap: with consistent orientation, the UV areas sum to at most the unit square.
    assert areas.sum() <= 1.0
    split = uvs.shape[0] - verts.shape[0]
    assert 0 < split <= 3 * math.sqrt(faces.shape[0])
    # The cut edges on the surface form one connected curve (seam meridian + the edges at the two poles).
    cut = torch.tensor(cut_edges(faces, uv_faces))
    assert len(cut) > 0
    assert connected_components(torch.cat([cut, cut[:, :1]], dim=1)).max() == 0


def test_islands_is_xatlas_charts():
    verts, faces = shoe_box()
    uvs, uv_faces = islands_uv(verts, faces)
    assert connected_components(uv_faces).max() >= 1  # a box needs several charts
    with pytest.raises(ValueError):
        uv_to_vertex_map(faces.roll(1, dims=0), uv_faces, uvs.shape[0])  # the oracle itself can fail


def test_spherical_area_distortion_bounded_on_sphere():
    verts, faces = icosphere(3)
    uvs, uv_faces = spherical_uv(verts, faces)
    area3d = face_areas_normals(verts.double(), faces).norm(dim=-1) / 2
    ratio = uv_signed_areas(uvs.double(), uv_faces) / area3d
    ratio = ratio / (ratio * area3d).sum() * area3d.sum()  # 1 = the mean density
    unsplit = (uv_faces < verts.shape[0]).all(1)  # away from the seam and the pole fans
    assert ratio.min() > 0.4 and ratio.max() < 2.0
    assert ratio[unsplit].min() > 0.7 and ratio[unsplit].max() < 1.4


def test_spherical_orientation_matches_cameras():
    """Seam behind the heel (-X); lateral side (+Z) at u = 1/4, toe (+X) at u = 1/2; v grows with +Y."""
    verts, faces = icosphere(3)
    uvs, uv_faces = spherical_uv(verts, faces, SphericalUVConfig(margin=0.0))
    uv_of_vert = torch.zeros(verts.shape[0], 2)
    uv_of_vert[faces.reshape(-1)] = uvs[uv_faces.reshape(-1)]

    def uv_near(direction):
        i = int((verts @ torch.tensor(direction)).argmax())
        return uv_of_vert[i]

    assert uv_near([0.0, 0.0, 1.0])[0] == pytest.approx(0.25, abs=0.05)
    assert uv_near([1.0, 0.0, 0.0])[0] == pytest.approx(0.5, abs=0.05)
    assert uv_near([0.0, 0.0, -1.0])[0] == pytest.approx(0.75, abs=0.05)
    # Equal-area latitude: v ~ (1 + y) / 2 (the pole alignment moves points slightly).
    non_pole = verts[:, 1].abs() < 0.95
    assert torch.allclose(uv_of_vert[non_pole, 1], (1 + verts[non_pole, 1]) / 2, atol=0.06)
    # The faces with split (seam) corners sit behind the heel.
    seam_faces = (uv_faces[:, :, None] != faces[:, :, None]).any(1).squeeze(-1)
    seam_faces &= (verts[faces].mean(1)[:, 1].abs() < 0.8)  # leave out the pole fans
    assert (verts[faces[seam_faces]].mean(1)[:, 0] < -0.5).all()


@pytest.mark.parametrize("mode", ["islands", "spherical"])
def test_deterministic(mode):
    verts, faces = shoe_box()
    a = compute_uv(verts, faces, mode)
    b = compute_uv(verts.clone(), faces.clone(), mode)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_seam_azimuth_moves_the_seam():
    verts, faces = icosphere(3)
    uvs, uv_faces = spherical_uv(verts, faces, SphericalUVConfig(seam_azimuth=90.0))  # seam at the toe
    seam_faces = (uv_faces != faces).any(1) & (verts[faces].mean(1)[:, 1].abs() < 0.8)
    assert (verts[faces[seam_faces]].mean(1)[:, 0] > 0.5).all()


def test_bad_input_errors():
    verts, faces = icosphere(1)
    with pytest.raises(ValueError, match="unknown uv mode.*islands, spherical"):
        compute_uv(verts, faces, "cube")
    with pytest.raises(ValueError, match="outside"):
        compute_uv(verts, faces + 1000, "spherical")
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        compute_uv(verts[:, :2], faces, "islands")


def test_connected_components_oracle():
    f = torch.tensor([[0, 1, 2], [2, 3, 4], [5, 6, 7], [7, 8, 5]])
    assert connected_components(f).tolist() == [0, 0, 1, 1]
    assert np.unique(connected_components(unique_edges(f)[:, [0, 1, 1]]).numpy()).size == 2


def test_open_mesh_warns():
    verts, faces = icosphere(2)
    with pytest.warns(UserWarning, match="closed genus-0"):
        spherical_uv(verts, faces[1:])


def test_spherical_on_the_shoe_template():
    """The real use: the shoe template is not star-shaped (collar opening), the embedding must unfold it."""
    from shoerecon.geometry.template import load_template

    template = load_template()
    verts, faces = template.verts, template.faces
    uvs, uv_faces = spherical_uv(verts, faces)
    assert (uv_signed_areas(uvs.double(), uv_faces) > 0).all()
    assert connected_components(uv_faces).max() == 0
    uv_to_vertex_map(faces, uv_faces, uvs.shape[0])
    assert uvs.shape[0] - verts.shape[0] <= 3 * math.sqrt(faces.shape[0])


def random_blob(seed, dent):
    """A smooth random elongated blob; with ``dent`` a cap is pushed inward (not star-shaped about its centre)."""
    s = trimesh.creation.icosphere(subdivisions=3)
    base, faces = torch.tensor(s.vertices), torch.tensor(s.faces)
    g = torch.Generator().manual_seed(seed)
    dirs = torch.nn.functional.normalize(torch.randn(5, 3, dtype=torch.float64, generator=g), dim=-1)
    amp = torch.rand(5, dtype=torch.float64, generator=g) * 0.3
    v = base * (1 + (amp * torch.cos(3 * (base @ dirs.T))).sum(1))[:, None]
    v = v * torch.tensor([1.0, 0.4, 0.35], dtype=torch.float64)
    if dent:
        w = torch.exp(-((base - dirs[0]) ** 2).sum(1) / 0.15)
        v = v - 0.8 * w[:, None] * (v * dirs[0]).sum(1, keepdim=True) * dirs[0]
    return v, faces


@pytest.mark.parametrize("seed", range(8))
def test_spherical_valid_on_random_blobs(seed):
    verts, faces = random_blob(seed, dent=seed % 2 == 1)
    uvs, uv_faces = spherical_uv(verts, faces)
    assert (uv_signed_areas(uvs.double(), uv_faces) > 0).all()
    assert connected_components(uv_faces).max() == 0
    uv_to_vertex_map(faces, uv_faces, uvs.shape[0])
