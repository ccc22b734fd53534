"""Renderer vertex gradients vs an independent dense float64 reference.

Reference: the naive rasteriser selects the slots and recomputes them with plain autograd, slot by slot
(``rasterize_naive(differentiable=True)``); the dense pytorch3d-style shaders (``sigmoid_silhouette``,
``softmax_rgb_blend``, ``sample_texture_dense``) turn them into images. Under test: ``Renderer`` (the
packed fragments, stage 2's closed-form backward, packed shaders). Blur > 0 (so clipped barycentrics and
outside slots), perspective correction on, soft blend with a gamma large enough that zbuf matters.
"""
import torch

from shoerecon.geometry.primitives import ico_sphere, sphere_uv
from shoerecon.render import Cameras, RasterSettings, Renderer, RendererConfig
from shoerecon.render.rasterize_naive import rasterize_naive
from shoerecon.render.shade import sample_texture_dense, softmax_rgb_blend


def _scene():
    g = torch.Generator().manual_seed(0)
    m = ico_sphere(1, dtype=torch.float64)
    verts = (m.verts * torch.tensor([0.5, 0.3, 0.25], dtype=torch.float64))[None]
    verts = verts + 0.02 * torch.randn(verts.shape, generator=g, dtype=torch.float64)
    cams = Cameras.from_tensor(torch.tensor([[[20.0, 15.0, 1.6, 40.0], [200.0, -25.0, 1.8, 45.0]]], dtype=torch.float64))
    tex = torch.rand(1, 3, 8, 8, generator=g, dtype=torch.float64)
    target = torch.rand(1, 2, 4, 10, 10, generator=g, dtype=torch.float64)
    return verts, m.faces, cams, tex, sphere_uv(m.verts), target


CFG = RendererConfig(image_size=10, faces_per_pixel=4, sigma=2e-3, gamma=5e-2, perspective_correct=True)


def _reference_rgba(verts, faces, cams, tex, uvs):
    """(1, V, 4, H, W) from the naive rasteriser's differentiable slots and the dense shaders."""
    ndc = cams.transform_points_ndc(verts[:, None])[0]  # (V, Nv, 3): image n = view v
    settings = RasterSettings(CFG.image_size, CFG.faces_per_pixel, CFG.resolved_blur_radius(), perspective_correct=True,
                              clip_barycentrics=CFG.resolved_clip(), znear=CFG.znear)
    frags = rasterize_naive(ndc, faces, settings, differentiable=True)
    colors = sample_texture_dense(frags, tex, uvs, faces, renders_per_texture=ndc.shape[0])
    rgba = softmax_rgb_blend(colors, frags, CFG.sigma, CFG.gamma, CFG.znear, CFG.zfar, CFG.background)
    return rgba.permute(0, 3, 1, 2)[None], frags


def test_vertex_gradients_match_naive_autograd_reference():
    """Silhouette, RGB and both losses: vertex gradients within 1e-10 (relative to the largest) of the reference."""
    verts0, faces, cams, tex, uvs, target = _scene()
    assert CFG.resolved_blur_radius() > 0 and CFG.resolved_clip()
    verts_ref, verts = verts0.clone().requires_grad_(), verts0.clone().requires_grad_()
    ref_rgba, frags = _reference_rgba(verts_ref, faces, cams, tex, uvs)
    assert (frags.pix_to_face >= 0).sum() > 300 and (frags.dists > 0).any()  # outside (blurred) slots too
    rgba = Renderer(CFG)(verts, faces, cams, tex, uvs, faces)
    assert torch.allclose(rgba, ref_rgba, atol=1e-12)
    for channels in ([3], [0, 1, 2], [0, 1, 2, 3]):  # silhouette, RGB, both
        (ref,) = torch.autograd.grad(((ref_rgba - target)[:, :, channels] ** 2).mean(), verts_ref, retain_graph=True)
        (got,) = torch.autograd.grad(((rgba - target)[:, :, channels] ** 2).mean(), verts, retain_graph=True)
        assert ref.abs().max() > 1e-3  # a real signal, reaching many vertices
        assert (ref.abs().sum(-1) > 1e-8).sum() > 20
        err = (got - ref).abs().max().item()
        assert err <= 1e-10 * ref.abs().max().item(), f"channels {channels}: max |got - ref| = {err:.3g}"
