"""Near-plane clipping: a camera inside the shoe's bounding sphere, fast path vs the naive oracle (which cuts
faces in plain Python), gradients through the cut, and the Renderer switch."""
import pytest
import torch

from shoerecon.geometry.primitives import ico_sphere
from shoerecon.render import Cameras, Renderer, RendererConfig
from shoerecon.render.clip import clip_near_plane
from shoerecon.render.rasterize import RasterSettings, rasterize_meshes, rasterize_packed
from shoerecon.render.rasterize_naive import rasterize_naive

ZNEAR = 0.15


def _inside_scene():
    """A shoe-proportioned ellipsoid (half-length 0.5, bounding sphere radius 0.5) seen by two cameras inside
    that sphere: one inside the shoe itself (0.05 from its centre), one outside the shoe but within 0.25."""
    m = ico_sphere(2, dtype=torch.float64)
    verts = m.verts * torch.tensor([0.5, 0.2, 0.18], dtype=torch.float64)
    cams = Cameras.from_tensor(torch.tensor([[60.0, 10.0, 0.05, 90.0], [200.0, 30.0, 0.25, 80.0]], dtype=torch.float64))
    assert (cams.position().norm(dim=-1) < verts.norm(dim=-1).max()).all()
    return cams.transform_points_ndc(verts.expand(2, -1, -1)), m.faces


@pytest.mark.parametrize("kw", [{}, {"blur_radius": 0.1, "clip_barycentrics": True}, {"perspective_correct": False},
                                {"cull_backfaces": True}])
def test_camera_inside_bounding_sphere_matches_naive(kw):
    ndc, faces = _inside_scene()
    z = ndc[:, faces, 2]
    assert ((z <= ZNEAR).any(-1) & (z > ZNEAR).any(-1)).sum() > 50  # many faces cross the plane
    fast = rasterize_meshes(ndc, faces, RasterSettings(12, 3, znear=ZNEAR, clip_near=True, **kw))
    ref = rasterize_naive(ndc, faces, RasterSettings(12, 3, znear=ZNEAR, clip_near=True, **kw))
    assert torch.equal(fast.pix_to_face, ref.pix_to_face)
    for name in ("zbuf", "bary_coords", "dists"):
        a, b = getattr(fast, name), getattr(ref, name)
        assert torch.allclose(a, b, atol=1e-9, rtol=0), f"{name}: {(a - b).abs().max()}"
    covered = fast.pix_to_face >= 0
    assert torch.allclose(fast.bary_coords[covered].sum(-1), torch.ones(()).double(), atol=1e-9)
    assert (fast.zbuf[covered] >= ZNEAR - 1e-12).all()
    # Each face at most once per pixel (the two halves of a cut face never both count).
    p2f = fast.pix_to_face
    for k in range(1, 3):
        assert not ((p2f[..., k:] == p2f[..., :-k]) & (p2f[..., k:] >= 0)).any()
    skipped = rasterize_meshes(ndc, faces, RasterSettings(12, 3, znear=ZNEAR, **kw))
    if not kw.get("cull_backfaces"):  # (culled, nothing is left: from inside one sees back faces)
        assert (covered[..., 0].sum() - (skipped.pix_to_face[..., 0] >= 0).sum()) > 20  # clipping fills holes


def test_no_crossing_face_is_untouched():
    ndc, faces = _inside_scene()
    far = ndc[1:] + torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64)
    assert clip_near_plane(far, faces, ZNEAR, True) is None
    a = rasterize_packed(far, faces, RasterSettings(12, 3, znear=ZNEAR, clip_near=True))
    b = rasterize_packed(far, faces, RasterSettings(12, 3, znear=ZNEAR))
    assert all(torch.equal(getattr(a, n), getattr(b, n)) for n in ("pix", "rank", "face", "bary", "zbuf", "dists"))


@pytest.mark.parametrize("kw", [{}, {"blur_radius": 0.13}])
def test_gradcheck_through_the_cut(kw):
    """Two faces crossing z = 0.5: one with a vertex behind (cut into two), one with two behind. (Not with
    clipped barycentrics: outside a cut face, which half is nearer may flip, and the halves' clipped
    barycentrics differ, a discontinuity pytorch3d's rule has too.)"""
    v0 = torch.tensor([[
        [-0.7, -0.6, 2.0], [0.8, -0.5, 0.2], [0.1, 0.7, 2.5],     # vertex 1 behind
        [-0.8, 0.4, 0.3], [0.6, 0.8, 1.8], [-0.3, -0.9, 0.25],    # vertices 3, 5 behind
    ]], dtype=torch.float64)
    v0 = v0 + torch.tensor([0.013, 0.0065, 0.0], dtype=torch.float64)  # no pixel centre within 1e-6 of an edge
    faces = torch.tensor([[0, 1, 2], [3, 5, 4]])
    ref = rasterize_packed(v0, faces, RasterSettings(10, 3, znear=0.5, clip_near=True, **kw))
    assert ref.face.unique().numel() == 2 and ref.pix.numel() > 15

    def geometry(v):
        frags = rasterize_packed(v, faces, RasterSettings(10, 3, znear=0.5, clip_near=True, **kw))
        assert torch.equal(frags.face, ref.face) and torch.equal(frags.pix, ref.pix)
        return frags.bary, frags.zbuf, frags.dists

    assert torch.autograd.gradcheck(geometry, (v0.clone().requires_grad_(),), eps=1e-6, atol=1e-5)


def test_renderer_clips_by_default_and_can_skip():
    m = ico_sphere(2)
    verts = (m.verts * torch.tensor([0.5, 0.2, 0.18]))[None]
    cams = Cameras.from_tensor(torch.tensor([[[60.0, 10.0, 0.05, 90.0]]]), znear=ZNEAR)
    clipped = Renderer(RendererConfig(image_size=16, blend="hard", faces_per_pixel=1))(verts, m.faces, cams)
    skipped = Renderer(RendererConfig(image_size=16, blend="hard", faces_per_pixel=1, clip_near=False))(verts, m.faces, cams)
    assert clipped[0, 0, 3].sum() > skipped[0, 0, 3].sum() + 20
