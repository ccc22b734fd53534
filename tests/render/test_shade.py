"""Packed shading (what the Renderer runs) vs pytorch3d's dense formulas; texture orientation."""
import pytest
import torch

from shoerecon.geometry.primitives import ico_sphere, quad, sphere_uv
from shoerecon.render.cameras import Cameras
from shoerecon.render.rasterize import RasterSettings, rasterize_packed
from shoerecon.render.shade import (
    hard_rgb_blend,
    packed_hard_rgb_blend,
    packed_sample_texture,
    packed_silhouette,
    packed_softmax_rgb_blend,
    sample_texture_dense,
    sigmoid_silhouette,
    softmax_rgb_blend,
)


def _scene(dtype=torch.float64, blur=0.08, views=2):
    m = ico_sphere(1, dtype=dtype)
    cams = Cameras.turntable(views).to(dtype=dtype)
    cams = Cameras.from_tensor(cams.to_tensor().reshape(1, views, 4).expand(2, -1, -1), znear=0.01)
    verts = torch.stack([m.verts * 0.6, m.verts * torch.tensor([0.8, 0.4, 0.4], dtype=dtype)])
    ndc = cams.transform_points_ndc(verts[:, None]).reshape(2 * views, -1, 3)
    frags = rasterize_packed(ndc, m.faces, RasterSettings(12, 4, blur_radius=blur, clip_barycentrics=True))
    return m, frags, views


def _dense_colors(frags, colors):
    n, h, w, k = frags.shape
    return colors.new_zeros(n * h * w * k, colors.shape[-1]).index_put((frags.slot,), colors).view(n, h, w, k, -1)


def test_packed_silhouette_and_blends_match_dense_formulas():
    _, frags, _ = _scene()
    dense = frags.to_dense()
    assert torch.allclose(packed_silhouette(frags, 1e-3), sigmoid_silhouette(dense, 1e-3), atol=1e-12)
    colors = torch.rand(frags.pix.numel(), 3, dtype=torch.float64)
    soft = packed_softmax_rgb_blend(colors, frags, 1e-3, 1e-2, 0.01, 100.0, (0.2, 0.5, 1.0))
    ref = softmax_rgb_blend(_dense_colors(frags, colors), dense, 1e-3, 1e-2, 0.01, 100.0, (0.2, 0.5, 1.0))
    assert torch.allclose(soft, ref, atol=1e-10)
    hard = packed_hard_rgb_blend(colors, frags, (0.2, 0.5, 1.0))
    assert torch.equal(hard, hard_rgb_blend(_dense_colors(frags, colors), dense, (0.2, 0.5, 1.0)))


def test_packed_texture_sampling_matches_dense():
    m, frags, views = _scene()
    uvs, tex = sphere_uv(m.verts), torch.rand(2, 3, 8, 16, dtype=torch.float64)
    packed = packed_sample_texture(frags, tex, uvs, m.faces, views)
    dense = sample_texture_dense(frags.to_dense(), tex, uvs, m.faces, views)
    assert torch.allclose(_dense_colors(frags, packed), dense, atol=1e-12)


def test_gradcheck_silhouette_and_texture_shading():
    # Asymmetric scene (jittered vertices, odd angles) and K above the hits per pixel: a 1e-6 nudge never
    # changes which faces are selected, so the function is smooth where gradcheck probes it.
    m = ico_sphere(1, dtype=torch.float64)
    uvs, faces, views = sphere_uv(m.verts), m.faces, 2
    cams = Cameras.from_tensor(torch.tensor([[[13.0, 7.0, 2.5, 40.0], [101.0, -11.0, 2.7, 45.0]]] * 2, dtype=torch.float64))
    base = torch.stack([m.verts * 0.6, m.verts * 0.5]) + 0.02 * torch.randn(2, m.num_verts, 3, dtype=torch.float64)
    blur = (9.21 * 2e-3) ** 0.5  # silhouette probability 1e-4 at the cut-off: continuous to gradcheck's accuracy
    selection = None

    def shade(verts, tex):
        nonlocal selection
        ndc = cams.transform_points_ndc(verts[:, None]).reshape(2 * views, -1, 3)
        frags = rasterize_packed(ndc, faces, RasterSettings(6, 8, blur_radius=blur, clip_barycentrics=True))
        chosen = (frags.pix * 10**6 + frags.face).sort().values  # order within equal depths may swap
        selection = chosen if selection is None else selection
        assert torch.equal(chosen, selection)
        colors = packed_sample_texture(frags, tex, uvs, faces, views)
        rgba = packed_softmax_rgb_blend(colors, frags, 2e-3, 1e-1, 0.01, 100.0)
        return packed_silhouette(frags, 2e-3), rgba

    verts = base.clone().requires_grad_()
    tex = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(shade, (verts, tex), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("size", [(16, 16), (12, 20)])
def test_texture_top_half_red_renders_red_at_the_top(size):
    """UV v up (texture row 0 is v = 1): the texture's top rows land at the top of a front-facing quad."""
    q = quad(1.0)
    tex = torch.ones(1, 3, 8, 8)
    tex[0, 1:, :4] = 0.0  # top half (rows 0..3, v > 0.5) red
    tex[0, 0, 4:, :] = 0.0  # bottom half blue-green
    cams = Cameras.from_tensor(torch.tensor([[0.0, 0.0, 2.0, 60.0]]))
    ndc = cams.transform_points_ndc(q.verts[None])
    frags = rasterize_packed(ndc, q.faces, RasterSettings(size, 1))
    rgba = packed_hard_rgb_blend(packed_sample_texture(frags, tex, q.uvs, q.uv_faces), frags)
    img = rgba[0]
    covered = img[..., 3] > 0
    rows = covered.any(1).nonzero()[:, 0]
    top, bottom = img[rows[0] + 1], img[rows[-1] - 1]
    red = torch.tensor([1.0, 0.0, 0.0])
    assert torch.allclose(top[covered[rows[0] + 1]][:, :3], red.expand(int(covered[rows[0] + 1].sum()), 3))
    assert (bottom[covered[rows[-1] - 1]][:, 0] == 0).all()
    # u along +X: a texture whose left half is dark renders dark on the image's left.
    tex2 = torch.ones(1, 3, 8, 8)
    tex2[..., :4] = 0.0
    img2 = packed_hard_rgb_blend(packed_sample_texture(frags, tex2, q.uvs, q.uv_faces), frags)[0]
    mid = img2[rows[len(rows) // 2]]
    cols = covered[rows[len(rows) // 2]].nonzero()[:, 0]
    assert mid[cols[0] + 1, 0] == 0 and mid[cols[-1] - 1, 0] == 1
