"""The pytorch3d backend's gradient routing and guard, without pytorch3d: its call is replaced by a fake that
returns what pytorch3d would (pix_to_face into its packed kept faces) plus deliberately bad gradients."""
import pytest
import torch

from shoerecon.geometry.primitives import ico_sphere
from shoerecon.render.backends import pytorch3d_backend as p3b
from shoerecon.render.cameras import Cameras
from shoerecon.render.rasterize import RasterSettings, rasterize_packed

ARGS = dict(image_size=12, faces_per_pixel=3, blur_radius=0.08, cull_backfaces=False, perspective_correct=True,
            clip_barycentrics=True, znear=0.01)


def _scene():
    m = ico_sphere(1, dtype=torch.float64)
    cams = Cameras.from_tensor(torch.tensor([[20.0, 10.0, 2.0, 40.0], [150.0, -20.0, 2.3, 45.0]], dtype=torch.float64))
    return cams.transform_points_ndc((m.verts * 0.5).expand(2, -1, -1)), m.faces


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``blowup``."""

    @staticmethod
    def forward(ctx, x, blowup):
        ctx.blowup = blowup
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.blowup, None


def _fake_pytorch3d(blowup: float):
    """A stand-in for ``_call_pytorch3d``: our own selection in pytorch3d's indexing, and zbuf/bary/dists whose
    vertex gradient is scaled by ``blowup`` (inf, or huge), as pytorch3d issue 561 produces."""

    def call(verts_ndc, faces, settings):
        ours = rasterize_packed(verts_ndc, faces, settings)
        n_img, n_faces = verts_ndc.shape[0], faces.shape[0]
        kept = [torch.arange(n_faces) for _ in range(n_img)]  # every face in front of znear here
        p2f = ours.to_dense().pix_to_face  # our n * F + f is pytorch3d's packed index when nothing is dropped
        d = ours.to_dense()
        zbuf, bary, dists = (_ScaleGrad.apply(getattr(d, name), blowup) for name in ("zbuf", "bary_coords", "dists"))
        return kept, p2f, zbuf, bary, dists

    return call


def _grad(frags, verts):
    loss = frags.bary.sum() + 0.3 * frags.zbuf.sum() + torch.sigmoid(-frags.dists / 1e-3).sum()
    (g,) = torch.autograd.grad(loss, verts)
    return g


def test_backend_routes_gradients_through_our_closed_form(monkeypatch):
    """backend='pytorch3d' uses pytorch3d's face choice only: its (here deliberately exploding) gradients
    never reach the vertices; values and gradients equal the torch backend's."""
    monkeypatch.setattr(p3b, "_call_pytorch3d", _fake_pytorch3d(float("inf")))
    ndc, faces = _scene()
    v_ours, v_p3d = ndc.clone().requires_grad_(), ndc.clone().requires_grad_()
    ours = rasterize_packed(v_ours, faces, RasterSettings(**{**ARGS, "image_size": 12}))
    routed = p3b.rasterize(v_p3d, faces, RasterSettings(**ARGS))
    for name in ("pix", "rank", "face", "bary", "zbuf", "dists"):
        assert torch.equal(getattr(routed, name), getattr(ours, name)), name
    g_routed, g_ours = _grad(routed, v_p3d), _grad(ours, v_ours)
    assert torch.isfinite(g_routed).all() and torch.equal(g_routed, g_ours)


@pytest.mark.parametrize("blowup", [float("inf"), 1e12])
def test_raw_pytorch3d_gradients_are_guarded(monkeypatch, blowup):
    """raw_fragments (pytorch3d's own gradients, for comparisons) stops non-finite or exploded vertex gradients
    with an error that says why, instead of passing them on."""
    monkeypatch.setattr(p3b, "_call_pytorch3d", _fake_pytorch3d(blowup))
    ndc, faces = _scene()
    v = ndc.clone().requires_grad_()
    frags = p3b.raw_fragments(v, faces, RasterSettings(**ARGS))
    with pytest.raises(FloatingPointError, match="issue 561"):
        _grad(frags, v)


def test_raw_guard_passes_sane_gradients(monkeypatch):
    monkeypatch.setattr(p3b, "_call_pytorch3d", _fake_pytorch3d(1.0))
    ndc, faces = _scene()
    v, v_ours = ndc.clone().requires_grad_(), ndc.clone().requires_grad_()
    g = _grad(p3b.raw_fragments(v, faces, RasterSettings(**ARGS)), v)
    assert torch.allclose(g, _grad(rasterize_packed(v_ours, faces, RasterSettings(**ARGS)), v_ours))


def test_check_vertex_gradients_messages():
    p3b.check_vertex_gradients(torch.tensor([1.0, -2.0]))
    with pytest.raises(FloatingPointError, match="1 non-finite"):
        p3b.check_vertex_gradients(torch.tensor([1.0, float("nan")]))
    with pytest.raises(FloatingPointError, match="exceeds"):
        p3b.check_vertex_gradients(torch.tensor([5.4e9]))
