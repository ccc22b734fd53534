"""Renderer module: API, batching, hard coverage against the naive oracle, silhouette fitting, backends."""
import pytest
import torch

from shoerecon.geometry.mesh import Mesh, Meshes
from shoerecon.geometry.primitives import ico_sphere, sphere_uv
from shoerecon.geometry.topology import Template
from shoerecon.render import Cameras, RasterSettings, Renderer, RendererConfig
from shoerecon.render.backends import pytorch3d_backend
from shoerecon.render.rasterize_naive import rasterize_naive


def test_output_shape_range_and_white_background():
    m = ico_sphere(2)
    cams = Cameras.from_tensor(torch.tensor([[[0.0, 10.0, 2.2, 30.0], [90.0, 10.0, 2.2, 30.0]]] * 3))
    tex = torch.rand(3, 3, 16, 16)
    out = Renderer(RendererConfig(image_size=24))(m.verts[None].repeat(3, 1, 1) * 0.4, m.faces, cams, tex, sphere_uv(m.verts), m.faces)
    assert out.shape == (3, 2, 4, 24, 24)
    assert out.min() >= 0 and out.max() <= 1 + 1e-6
    assert torch.allclose(out[:, :, :, 0, 0], torch.tensor([1.0, 1.0, 1.0, 0.0]).expand(3, 2, 4))
    assert out[:, :, 3, 12, 12].min() > 0.99


def test_hard_blend_k1_alpha_is_exact_coverage_and_cameras_differ_per_item():
    m = ico_sphere(1)
    verts = torch.stack([m.verts * torch.tensor([0.6, 0.3, 0.3]), m.verts * 0.4]).double()
    cams = Cameras.from_tensor(torch.tensor([[[0.0, 10.0, 2.2, 30.0]], [[70.0, -20.0, 2.5, 40.0]]], dtype=torch.float64))
    r = Renderer(RendererConfig(image_size=12, faces_per_pixel=1, blend="hard"))
    alpha = r(verts, m.faces, cams)[:, 0, 3]
    for b in range(2):
        ndc = cams[b].transform_points_ndc(verts[b : b + 1])
        ref = rasterize_naive(ndc, m.faces, RasterSettings(12, 1))
        assert torch.equal(alpha[b] > 0, ref.pix_to_face[0, ..., 0] >= 0)
        assert set(alpha[b].unique().tolist()) <= {0.0, 1.0}


def test_shared_cameras_broadcast_over_batch():
    m = ico_sphere(1)
    r = Renderer(RendererConfig(image_size=10))
    verts = m.verts[None].repeat(2, 1, 1) * 0.5
    shared = r(verts, m.faces, Cameras.turntable(3))
    per_item = r(verts, m.faces, Cameras.from_tensor(Cameras.turntable(3).to_tensor().expand(2, -1, -1)))
    assert torch.equal(shared, per_item)


def test_bad_inputs_raise_clear_errors():
    m = ico_sphere(0)
    r = Renderer(RendererConfig(image_size=8))
    with pytest.raises(ValueError, match="verts must be"):
        r(m.verts, m.faces, Cameras.turntable(1))
    with pytest.raises(ValueError, match="cameras must have batch shape"):
        r(m.verts[None], m.faces, Cameras.from_tensor(torch.rand(2, 2, 4) + 1))
    with pytest.raises(ValueError, match="texture needs uvs"):
        r(m.verts[None], m.faces, Cameras.turntable(1), texture=torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="blend"):
        RendererConfig(blend="fancy")
    with pytest.raises(ValueError, match="unknown renderer backend"):
        Renderer(RendererConfig(image_size=8, backend="opengl"))(m.verts[None], m.faces, Cameras.turntable(1))


def test_meshes_form_renders_what_the_tensor_form_does():
    """renderer(meshes, cameras), as pytorch3d's MeshRenderer, is the tensor call bit for bit, from a template
    batch, one Mesh, or untextured (white)."""
    m = ico_sphere(2)
    uvs = sphere_uv(m.verts)
    verts = torch.stack([m.verts * 0.4, m.verts * torch.tensor([0.6, 0.3, 0.3])])
    tex = torch.rand(2, 3, 8, 8)
    cams = Cameras.turntable(2)
    r = Renderer(RendererConfig(image_size=16))
    want = r(verts, m.faces, cams, tex, uvs, m.faces)
    assert torch.equal(r(Meshes(verts, m.faces, uvs, m.faces, tex), cams), want)
    template = Template.from_mesh(Mesh(m.verts, m.faces, uvs, m.faces), texture_size=8)
    assert torch.equal(r(meshes=Meshes.from_topology(template, verts, tex), cameras=cams), want)
    one = Mesh(verts[1], m.faces, uvs, m.faces, tex[1])
    assert torch.equal(r(Meshes.from_mesh(one), cams.reshape(1, 2)), want[1:])
    white = r(Meshes.from_topology(template, verts), cams)  # no texture: the layout is dropped, renders white
    assert torch.equal(white, r(verts, m.faces, cams)) and torch.equal(white[:, :, :3].unique(), torch.ones(1))


def test_meshes_bad_inputs_raise_clear_errors():
    m = ico_sphere(0)
    with pytest.raises(ValueError, match=r"verts must be \(B, N, 3\)"):
        Meshes(m.verts, m.faces)
    with pytest.raises(ValueError, match="texture needs uvs"):
        Meshes(m.verts[None], m.faces, texture=torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"texture must be \(B=2"):
        Meshes(m.verts[None].repeat(2, 1, 1), m.faces, sphere_uv(m.verts), m.faces, torch.rand(1, 3, 4, 4))
    r = Renderer(RendererConfig(image_size=8))
    with pytest.raises(TypeError, match="missing cameras"):
        r(Meshes(m.verts[None], m.faces))


def _iou(a, b):
    return ((a * b).sum() / (a + b - a * b).sum()).item()


def test_fitting_sphere_to_ellipsoid_silhouettes():
    """Optimise an ico-sphere's vertices to the silhouettes of an elongated, flattened ellipsoid from 4 views."""
    target_mesh = ico_sphere(3)
    tv, tf = target_mesh.verts * torch.tensor([0.75, 0.35, 0.3]), target_mesh.faces
    cams = Cameras.from_tensor(torch.tensor([[[a, 20.0, 2.2, 45.0] for a in (15.0, 105.0, 195.0, 285.0)]]))
    hard = Renderer(RendererConfig(image_size=40, faces_per_pixel=1, blend="hard"))
    target = hard(tv[None], tf, cams)[:, :, 3]
    sphere = ico_sphere(2)
    offsets = torch.zeros_like(sphere.verts, requires_grad=True)
    soft = Renderer(RendererConfig(image_size=40, faces_per_pixel=4, sigma=3e-4))
    edges = sphere.edges()

    def current_alpha():
        with torch.no_grad():
            return hard((sphere.verts * 0.3 + offsets)[None], sphere.faces, cams)[:, :, 3]

    start = _iou(current_alpha(), target)
    opt = torch.optim.Adam([offsets], lr=0.02)
    decay = torch.optim.lr_scheduler.ExponentialLR(opt, 0.97)
    for _ in range(80):
        verts = sphere.verts * 0.3 + offsets
        alpha = soft(verts[None], sphere.faces, cams)[:, :, 3]
        smooth = (verts[edges[:, 0]] - verts[edges[:, 1]]).pow(2).sum(-1).mean()  # tiny edge-length term
        loss = (alpha - target).abs().mean() + 0.05 * smooth
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay.step()
    end = _iou(current_alpha(), target)
    assert start < 0.6 and end > 0.9, (start, end)


def test_pytorch3d_backend_missing_gives_clear_error():
    if pytorch3d_backend.available():
        pytest.skip("pytorch3d is installed; the parity test covers this backend")
    m = ico_sphere(0)
    with pytest.raises(ImportError, match="pytorch3d"):
        Renderer(RendererConfig(image_size=8, backend="pytorch3d"))(m.verts[None], m.faces, Cameras.turntable(1))


@pytest.mark.skipif(not pytorch3d_backend.available(), reason="pytorch3d is not importable here (no wheel for this platform)")
@pytest.mark.parametrize("blend", ["soft", "hard"])
def test_pytorch3d_parity(blend):
    m = ico_sphere(2)
    verts = (m.verts * torch.tensor([0.6, 0.35, 0.3]))[None].repeat(2, 1, 1)
    cams = Cameras.from_tensor(torch.tensor([[[10.0, 15.0, 2.2, 30.0], [200.0, -5.0, 2.4, 35.0]]] * 2))
    tex, uvs = torch.rand(2, 3, 16, 16), sphere_uv(m.verts)
    outs, frags = [], []
    for backend in ("torch", "pytorch3d"):
        r = Renderer(RendererConfig(image_size=32, faces_per_pixel=4, sigma=1e-4, blend=blend, backend=backend))
        outs.append(r(verts, m.faces, cams, tex, uvs, m.faces))
        frags.append(r.rasterize_packed(verts, m.faces, cams).to_dense())
    assert (frags[0].pix_to_face == frags[1].pix_to_face).float().mean() > 0.999
    same = frags[0].pix_to_face == frags[1].pix_to_face
    assert torch.allclose(frags[0].zbuf[same], frags[1].zbuf[same], atol=1e-4)
    assert torch.allclose(frags[0].dists[same], frags[1].dists[same], atol=1e-5)
    assert (outs[0] - outs[1]).abs().mean() < 1e-3
