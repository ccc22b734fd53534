"""Tie order as a property: every pixel's slots come in (zbuf, face index) order with zbuf exactly as output,
so faces at equal depth come in face-index order; the naive oracle, the fast path and K = 1 agree.

Scenes with many exact ties: a fronto-parallel grid whose vertices sit on pixel centres (dyadic coordinates,
power-of-two areas, z = 2: every interpolated depth is exactly 2.0 in float32 and float64) with shuffled and
duplicated (coplanar) faces, and the shoe template with blur and clipped barycentrics (every face around a
vertex ties at that vertex's depth).
"""
import pytest
import torch

from shoerecon.geometry.template import load_template
from shoerecon.render.cameras import Cameras
from shoerecon.render.rasterize import RasterSettings, blur_radius_from_sigma, rasterize_meshes, rasterize_packed
from shoerecon.render.rasterize_naive import rasterize_naive


def tie_grid(dtype=torch.float64, seed=0):
    """A 4 x 4 cell grid at z = 2 over NDC [-7/8, 7/8] (cell 1/2: two pixels of an 8 x 8 image), so its
    vertices and axis-aligned edges pass through pixel centres and its diagonals through cell centres.
    Faces are shuffled and 8 of them duplicated with the same vertices (coplanar copies)."""
    g = torch.Generator().manual_seed(seed)
    ticks = torch.arange(5, dtype=dtype) * 0.5 - 0.875  # on pixel centres: -7/8, -3/8, 1/8, 5/8, 9/8
    y, x = torch.meshgrid(ticks, ticks, indexing="ij")
    verts = torch.stack([x.reshape(-1), y.reshape(-1), torch.full((25,), 2.0, dtype=dtype)], -1)
    faces = []
    for i in range(4):
        for j in range(4):
            a, b, c, d = 5 * i + j, 5 * i + j + 1, 5 * (i + 1) + j, 5 * (i + 1) + j + 1
            faces += [[a, b, d], [a, d, c]] if (i + j) % 2 else [[a, b, c], [b, d, c]]
    faces = torch.tensor(faces)
    faces = torch.cat([faces, faces[torch.randperm(32, generator=g)[:8]]])
    return verts[None], faces[torch.randperm(faces.shape[0], generator=g)]


def _assert_sorted_by_depth_then_face(frags):
    """Consecutive slots of a pixel: zbuf ascending, face ascending where zbuf is exactly equal."""
    p2f, z = frags.pix_to_face, frags.zbuf
    both = (p2f[..., 1:] >= 0) & (p2f[..., :-1] >= 0)
    later = (z[..., 1:] > z[..., :-1]) | ((z[..., 1:] == z[..., :-1]) & (p2f[..., 1:] > p2f[..., :-1]))
    assert (later | ~both).all(), f"{int((~later & both).sum())} slots out of (depth, face) order"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kw", [
    {"blur_radius": 0.3, "clip_barycentrics": True},
    {"blur_radius": 0.3, "clip_barycentrics": False},
    {"blur_radius": 0.2, "perspective_correct": False},
    {},
])
def test_grid_of_shared_edges_and_coplanar_copies_matches_naive(dtype, kw):
    verts, faces = tie_grid(dtype)
    k = 6
    ref = rasterize_naive(verts, faces, RasterSettings(8, k, **kw))
    fast = rasterize_meshes(verts, faces, RasterSettings(8, k, **kw))
    covered = ref.pix_to_face >= 0
    assert (ref.zbuf[covered] == 2.0).all()  # the scene really ties everywhere
    if kw:
        assert (covered.sum(-1) >= 3).float().mean() > 0.5  # most pixels hold several tied faces
    assert torch.equal(fast.pix_to_face, ref.pix_to_face)
    assert (fast.zbuf[covered] == 2.0).all()
    _assert_sorted_by_depth_then_face(fast)
    for small in (1, 3):  # truncation keeps the first faces of the same order
        smaller = rasterize_meshes(verts, faces, RasterSettings(8, small, **kw))
        assert torch.equal(smaller.pix_to_face, fast.pix_to_face[..., :small])


def test_coplanar_copies_come_in_face_index_order():
    """Three copies of a slanted face (same vertices) among others: at every pixel they cover, 1 < 3 < 4."""
    v = torch.tensor([[[-0.7, -0.6, 2.0], [0.8, -0.3, 3.0], [0.1, 0.75, 2.5], [0.9, 0.9, 9.0]]])
    faces = torch.tensor([[0, 1, 3], [0, 1, 2], [1, 2, 3], [0, 1, 2], [0, 1, 2]])
    frags = rasterize_meshes(v, faces, RasterSettings(9, 3))
    covered = frags.pix_to_face[..., 2] >= 0
    assert covered.sum() > 10
    assert (frags.pix_to_face[covered] == torch.tensor([1, 3, 4])).all()
    assert torch.equal(frags.pix_to_face, rasterize_naive(v, faces, RasterSettings(9, 3)).pix_to_face)


@pytest.fixture(scope="module")
def template_ndc():
    m = load_template()
    cams = Cameras.turntable(4, elevation=10.0, distance=2.2, fov=30.0)
    return cams.transform_points_ndc(m.verts[None].expand(4, -1, -1)), m.faces


def test_template_ties_are_in_face_order_and_k1_is_slot0(template_ndc):
    """The case that found the bug: float32, blur and clipped barycentrics on the shoe template (before the
    fix, stage 1 ranked with its own affine depth and hundreds of tied slots came out of face order)."""
    ndc, faces = template_ndc
    kw = {"blur_radius": blur_radius_from_sigma(1e-4), "clip_barycentrics": True}
    frags = rasterize_packed(ndc, faces, RasterSettings(64, 8, **kw))
    dense = frags.to_dense()
    same_pixel = frags.pix[1:] == frags.pix[:-1]
    assert int((frags.zbuf[1:] == frags.zbuf[:-1])[same_pixel].sum()) > 100  # many exact ties to order
    _assert_sorted_by_depth_then_face(dense)
    for small in (1, 3):
        got = rasterize_meshes(ndc, faces, RasterSettings(64, small, **kw))
        assert torch.equal(got.pix_to_face, dense.pix_to_face[..., :small])
        assert torch.equal(got.zbuf, dense.zbuf[..., :small])
