"""Fast rasteriser vs the naive loop oracle, orientation pinned by hand, gradients by gradcheck.

Tolerances (float64 inputs): pix_to_face exact, ties included; zbuf, barycentrics and distances within 1e-9
(distances use different but equivalent float formulas). Tie order has its own tests in test_ties.py.
"""
import math

import pytest
import torch

from shoerecon.geometry.primitives import box, ico_sphere
from shoerecon.render.cameras import Cameras
from shoerecon.render import rasterize as rast
from shoerecon.render.rasterize import RasterSettings, rasterize_meshes, rasterize_packed
from shoerecon.render.rasterize_naive import rasterize_naive

TOL = 1e-9


def assert_same_fragments(verts_ndc, faces, image_size, k, **kw):
    """pix_to_face exactly the oracle's, ties included: in float64 both compute the output depth with the same
    float operations, so faces at equal depth (clipped barycentrics at a shared vertex) tie in both and come
    in face-index order."""
    fast = rasterize_meshes(verts_ndc, faces, RasterSettings(image_size, k, **kw))
    ref = rasterize_naive(verts_ndc, faces, RasterSettings(image_size, k, **kw))
    assert torch.equal(fast.pix_to_face, ref.pix_to_face), "pix_to_face differs from the naive oracle"
    for name in ("zbuf", "bary_coords", "dists"):
        a, b = getattr(fast, name), getattr(ref, name)
        assert torch.allclose(a, b, atol=TOL, rtol=0), f"{name} differs: {(a - b).abs().max()}"
    return ref


def tri(*pts):
    return torch.tensor([pts], dtype=torch.float64)


ONE_FACE = torch.tensor([[0, 1, 2]])


@pytest.mark.parametrize("perspective_correct", [True, False])
def test_one_triangle_matches_naive(perspective_correct):
    v = tri((-0.7, -0.6, 2.0), (0.8, -0.3, 3.0), (0.1, 0.75, 2.5))
    ref = assert_same_fragments(v, ONE_FACE, 9, 2, perspective_correct=perspective_correct)
    assert (ref.pix_to_face[..., 0] >= 0).sum() > 10  # the case is not trivially empty


def test_overlapping_faces_sorted_by_depth():
    v = torch.tensor([[
        [-0.9, -0.9, 2.0], [0.9, -0.9, 2.0], [0.0, 0.9, 2.0],      # near
        [-0.9, 0.9, 3.0], [0.0, -0.9, 3.5], [0.9, 0.9, 3.0],       # far, clockwise -> back-facing
        [-0.5, -0.5, 1.5], [0.5, -0.5, 4.0], [0.0, 0.6, 2.8],      # slanted through both
    ]], dtype=torch.float64)
    v = v + 0.01 * torch.randn(v.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # no pixel centre on an edge
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    ref = assert_same_fragments(v, faces, 10, 3)
    assert (ref.pix_to_face[..., 2] >= 0).any()  # some pixel sees all three
    assert_same_fragments(v, faces, 10, 2)  # truncation to K keeps the nearest


def test_face_behind_camera_is_skipped():
    v = tri((-0.9, -0.9, 2.0), (0.9, -0.9, -1.0), (0.0, 0.9, 2.0))
    frags = assert_same_fragments(v, ONE_FACE, 8, 1)
    assert (frags.pix_to_face < 0).all()
    near = tri((-0.9, -0.9, 2.0), (0.9, -0.9, 0.005), (0.0, 0.9, 2.0))  # inside znear = 0.01
    assert (rasterize_meshes(near, ONE_FACE, RasterSettings(8, 1)).pix_to_face < 0).all()


def test_backface_culling_drops_clockwise_faces():
    ccw = tri((-0.81, -0.79, 2.0), (0.83, -0.8, 2.0), (0.02, 0.8, 2.0))
    cw = ccw[:, [0, 2, 1]]
    assert (rasterize_meshes(ccw, ONE_FACE, RasterSettings(8, 1, cull_backfaces=True)).pix_to_face >= 0).any()
    assert (rasterize_meshes(cw, ONE_FACE, RasterSettings(8, 1, cull_backfaces=True)).pix_to_face < 0).all()
    assert (rasterize_meshes(cw, ONE_FACE, RasterSettings(8, 1)).pix_to_face >= 0).any()
    assert_same_fragments(cw, ONE_FACE, 8, 1, cull_backfaces=True)


@pytest.mark.parametrize("clip", [False, True])
def test_blur_radius_counts_nearby_faces(clip):
    v = tri((-0.5, -0.5, 2.0), (0.5, -0.4, 2.2), (0.0, 0.5, 2.4))
    ref = assert_same_fragments(v, ONE_FACE, 12, 1, blur_radius=0.2, clip_barycentrics=clip)
    hard = rasterize_meshes(v, ONE_FACE, RasterSettings(12, 1))
    outside = (ref.pix_to_face[..., 0] >= 0) & (hard.pix_to_face[..., 0] < 0)
    assert outside.any() and (ref.dists[..., 0][outside] > 0).all()
    assert (ref.dists[..., 0][outside] < 0.2**2).all()


def _sphere_ndc(dtype=torch.float64):
    m = ico_sphere(1, dtype=dtype)
    verts = m.verts * torch.tensor([1.0, 0.7, 0.5], dtype=dtype)
    cams = Cameras.from_tensor(torch.tensor([[20.0, 10.0, 3.0, 40.0], [200.0, -30.0, 2.5, 50.0]], dtype=dtype))
    return cams.transform_points_ndc(verts.expand(2, -1, -1)), m.faces


@pytest.mark.parametrize(
    "kw",
    [{}, {"blur_radius": 0.1}, {"cull_backfaces": True}, {"blur_radius": 0.1, "clip_barycentrics": True},
     {"perspective_correct": False}],
)
def test_ico_sphere_matches_naive(kw):
    v, faces = _sphere_ndc()
    assert_same_fragments(v, faces, 12, 4, **kw)


def test_non_square_images_match_naive():
    v, faces = _sphere_ndc()
    assert_same_fragments(v, faces, (7, 12), 3)
    assert_same_fragments(v, faces, (12, 7), 3, blur_radius=0.05)


def test_float32_agrees_with_float64():
    v, faces = _sphere_ndc()
    a = rasterize_meshes(v, faces, RasterSettings(16, 3, blur_radius=0.05))
    b = rasterize_meshes(v.float(), faces, RasterSettings(16, 3, blur_radius=0.05))
    agree = (a.pix_to_face == b.pix_to_face).double().mean()
    assert agree > 0.995  # ties at pixel centres on shared edges may flip in float32
    same = a.pix_to_face == b.pix_to_face
    assert torch.allclose(a.zbuf[same], b.zbuf[same].double(), atol=1e-5)


def test_orientation_hand_computed_10x10():
    """An L-shaped pair of boxes seen at azimuth 0 (camera on +Z): the long arm along +X must appear on
    the image's right, the tall arm along +Y at its top. Expected pixels worked out by hand below."""
    arm_x = box((0.8, 0.2, 0.2)).verts + torch.tensor([0.4, 0.0, 0.0])  # x in [0, 0.8], y in [-0.1, 0.1]
    arm_y = box((0.2, 0.6, 0.2)).verts + torch.tensor([0.0, 0.3, 0.0])  # x in [-0.1, 0.1], y in [0, 0.6]
    faces = box().faces
    verts = torch.cat([arm_x, arm_y])[None]
    all_faces = torch.cat([faces, faces + 8])
    # Camera at distance 10 with fov such that focal = 10: NDC = x / z * 10 ~ x for z ~ 10 (front face z = 9.9).
    fov = math.degrees(2 * math.atan(0.1))
    cam = Cameras.from_tensor(torch.tensor([[0.0, 0.0, 10.0, fov]]))
    frags = rasterize_meshes(cam.transform_points_ndc(verts), all_faces, RasterSettings(10, 1))
    hit = (frags.pix_to_face[0, :, :, 0] >= 0).int()
    # Pixel centres (10 x 10): x = -0.9, -0.7, ..., 0.9 (cols), y = 0.9, ..., -0.9 (rows).
    # Front faces at z = 9.9 scale NDC by 10 / 9.9: arm_x spans x in [0, 0.81], y in [-0.101, 0.101]
    # -> cols 5..8 (x = 0.1, 0.3, 0.5, 0.7), rows 4 and 5 (y = +-0.1, inside since 0.1 < 0.101).
    # arm_y spans x in [-0.101, 0.101] -> cols 4, 5, and y in [0, 0.606] -> rows 2..4 (y = 0.5, 0.3, 0.1).
    expected = torch.zeros(10, 10, dtype=torch.int)
    expected[4:6, 5:9] = 1
    expected[2:5, 4:6] = 1
    assert torch.equal(hit, expected), f"\n{hit}"


def _random_faces_ndc(seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.tensor([[
        [-0.8, -0.7, 2.0], [0.7, -0.6, 2.6], [0.0, 0.8, 2.3],
        [-0.6, 0.5, 3.1], [-0.2, -0.9, 2.7], [0.9, 0.3, 3.4],
    ]], dtype=torch.float64)
    return v + 0.05 * torch.randn(v.shape, generator=g, dtype=torch.float64), torch.tensor([[0, 1, 2], [3, 4, 5]])


@pytest.mark.parametrize("kw", [{}, {"blur_radius": 0.15, "clip_barycentrics": True}, {"perspective_correct": False}])
def test_gradcheck_bary_dists_zbuf(kw):
    v0, faces = _random_faces_ndc()
    pix = rasterize_packed(v0, faces, RasterSettings(6, 2, **kw))  # fixed selection; gradients flow through stage 2

    def geometry(v):
        frags = rasterize_packed(v, faces, RasterSettings(6, 2, **kw))
        assert torch.equal(frags.face, pix.face)  # small perturbations keep the selection
        return frags.bary, frags.dists, frags.zbuf

    v = v0.clone().requires_grad_()
    assert torch.autograd.gradcheck(geometry, (v,), eps=1e-6, atol=1e-5)


def test_gradients_reach_every_visible_vertex():
    v, faces = _sphere_ndc()
    v = v.clone().requires_grad_()
    frags = rasterize_meshes(v, faces, RasterSettings(16, 2, blur_radius=0.05))
    (frags.zbuf.clamp_min(0).sum() + frags.dists.sum() + frags.bary_coords.sum()).backward()
    for n in range(v.shape[0]):
        p2f = frags.pix_to_face[n]
        seen = faces[p2f[p2f >= 0] - n * faces.shape[0]].unique()
        assert seen.numel() > 10
        assert (v.grad[n, seen].abs().sum(-1) > 0).all()


# --------------------------------------------------------------------------- stage 1 internals
def _plain_k_nearest(pix, face, depth, k):
    """Oracle: per pixel, candidates sorted by (depth, face), first K."""
    out = []
    by_pixel = {}
    for p, f, d in zip(pix.tolist(), face.tolist(), depth.tolist()):
        by_pixel.setdefault(p, []).append((d, f))
    for p in sorted(by_pixel):
        for rank, (d, f) in enumerate(sorted(by_pixel[p])[:k]):
            out.append((p, rank, f))
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("use_bound", [False, True])
def test_k_nearest_matches_plain_sort_with_ties(dtype, use_bound):
    """The int64-key sort (float32), the three-sort fallback (float64) and the histogram depth bound that
    drops candidates before the sort keep exactly the K nearest by (depth, face), exact ties included."""
    g = torch.Generator().manual_seed(3)
    n_faces, hw, n_img, k = 50, 16, 2, 3
    pairs = torch.randperm(n_img * hw * n_faces, generator=g)[:900]  # distinct (pixel, face)
    pix, face = pairs // n_faces, pairs % n_faces
    depth = (torch.randint(0, 12, (900,), generator=g) * 0.25 + 1.0).to(dtype)  # many exact ties
    near = None
    if use_bound:
        bound = rast.DepthBound(n_img * hw, k, 1.0, 3.75, pix.device, bins=4)
        bound.add(pix, depth)
        near = bound.near(pix, depth)
        assert not near.all()  # the bound drops something here
    got_pix, got_rank, got_face = rast._k_nearest(pix, face, depth, k, n_img * hw, hw, n_faces, near)
    got = list(zip(got_pix.tolist(), got_rank.tolist(), (got_face % n_faces).tolist()))
    assert got == _plain_k_nearest(pix, face, depth, k)
    assert torch.equal(got_face // n_faces, got_pix // hw)  # packed face index carries the image


def test_equal_depth_faces_come_in_face_order():
    """Two copies of a triangle tie at every pixel: the order is by face index (the naive oracle's)."""
    v = tri((-0.7, -0.6, 2.0), (0.8, -0.3, 3.0), (0.1, 0.75, 2.5)).float()
    faces = torch.tensor([[0, 1, 2], [0, 1, 2]])
    frags = rasterize_meshes(v, faces, RasterSettings(9, 2))
    covered = frags.pix_to_face[..., 0] >= 0
    assert covered.sum() > 10
    assert (frags.pix_to_face[..., 0][covered] == 0).all() and (frags.pix_to_face[..., 1][covered] == 1).all()


def _autograd_slot_geometry(verts, vert_idx, px, py, perspective_correct, clip):
    """Reference: the same formulas through plain autograd (pytorch3d's CPU rasteriser, step by step)."""
    fv = verts[vert_idx]
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = fv.unbind(1)[0].unbind(-1), fv.unbind(1)[1].unbind(-1), fv.unbind(1)[2].unbind(-1)
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    w = torch.stack([
        ((x1 - px) * (y2 - py) - (y1 - py) * (x2 - px)) / area,
        ((x2 - px) * (y0 - py) - (y2 - py) * (x0 - px)) / area,
        ((x0 - px) * (y1 - py) - (y0 - py) * (x1 - px)) / area,
    ], -1)
    if perspective_correct:
        t = w * torch.stack([z1 * z2, z0 * z2, z0 * z1], -1)
        w = t / t.sum(-1, keepdim=True).clamp_min(1e-8)
    inside = (w > 0).all(-1)
    if clip:
        c = w.clamp_min(0.0)
        w = c / c.sum(-1, keepdim=True).clamp_min(1e-5)
    zbuf = (w * fv[..., 2]).sum(-1)
    a, b = fv[..., :2], fv[..., :2].roll(-1, dims=1)
    e = b - a
    l2 = (e * e).sum(-1)
    p = torch.stack([px, py], -1)[:, None]
    tt = (((p - a) * e).sum(-1) / l2.clamp_min(1e-30)).clamp(0, 1).masked_fill(l2 <= 1e-8, 0.0)
    d = p - (a + tt[..., None] * e)
    dist2 = (d * d).sum(-1).min(-1).values
    return w, zbuf, torch.where(inside, -dist2, dist2)


@pytest.mark.parametrize("perspective_correct", [True, False])
@pytest.mark.parametrize("clip", [True, False])
def test_slot_geometry_closed_form_backward_matches_autograd(perspective_correct, clip):
    """The hand-written backward of stage 2 vs autograd through the same formulas (float64, 3000 random
    slots, pixel centres in and around their faces, chunked: SLOT_CHUNK is made small)."""
    g = torch.Generator().manual_seed(5)
    verts = torch.rand(40, 3, generator=g, dtype=torch.float64) * 2 - 1
    verts[:, 2] = verts[:, 2] + 3.0
    vert_idx = torch.stack([torch.randperm(40, generator=g)[:3] for _ in range(3000)])
    fv = verts[vert_idx]
    mix = torch.rand(3000, 3, generator=g, dtype=torch.float64) * 1.4 - 0.2  # some outside the face
    centre = (mix[..., None] * fv[..., :2]).sum(1) / mix.sum(-1, keepdim=True)
    px, py = centre.unbind(-1)
    wb, wz, wd = torch.randn(3000, 3, generator=g, dtype=torch.float64), torch.randn(3000, generator=g, dtype=torch.float64), torch.randn(3000, generator=g, dtype=torch.float64)
    outs, grads = [], []
    for fn in (rast.slot_geometry, _autograd_slot_geometry):
        v = verts.clone().requires_grad_()
        bary, zbuf, dists = fn(v, vert_idx, px, py, perspective_correct, clip)
        ((bary * wb).sum() + (zbuf * wz).sum() + (dists * wd).sum()).backward()
        outs.append((bary, zbuf, dists))
        grads.append(v.grad)
    for a, b in zip(*outs):
        assert torch.allclose(a, b, atol=1e-12, rtol=1e-9)
    assert torch.allclose(grads[0], grads[1], atol=1e-9, rtol=1e-9), (grads[0] - grads[1]).abs().max()
