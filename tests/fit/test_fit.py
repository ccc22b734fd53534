"""shoerecon.fit: refinement lowers its loss, gradients reach the camera, texels seen frontally take the
photo's colour exactly, unseen texels take their mirror's, auto orientation spots a mirrored photo."""
from __future__ import annotations

import math

import torch

from shoerecon.fit import PhotoCamera, RefineConfig, TexelPoints, bake_texture, fit_photo, mirror_mesh, refine
from shoerecon.fit.render import render_projected
from shoerecon.fit.symmetry import mirror_partners, symmetry_loss
from shoerecon.fit.texture import BakeConfig
from shoerecon.geometry.mesh import Mesh, face_normals
from shoerecon.geometry.primitives import quad
from shoerecon.geometry.template import load_template
from shoerecon.render.renderer import RendererConfig

SIZE = 32


def template_photo(size: int = SIZE, stretch: float = 1.0):
    """The template (with a two-colour texture) rendered as a framed input: photo (3, S, S), mask (1, S, S)."""
    from shoerecon.data.preprocess import prepare_input

    t = load_template(uv_mode="file")
    verts = t.verts * torch.tensor([1.0, stretch, 1.0])
    texture = torch.zeros(3, 16, 16)
    texture[0, :, :8], texture[2, :, 8:] = 1.0, 1.0
    cam = PhotoCamera()
    with torch.no_grad():
        rgba = render_projected(cam.project(verts), t.faces, RendererConfig(image_size=2 * size, blend="hard",
                                                                            faces_per_pixel=1), texture, t.uvs,
                                t.uv_faces)
    photo, mask = prepare_input(rgba[:3], rgba[3:], size, 0.9)
    return Mesh(t.verts, t.faces, t.uvs, t.uv_faces, texture), photo, mask


def test_refinement_lowers_the_loss_it_optimises():
    mesh, photo, mask = template_photo(stretch=1.25)  # the photo's shoe is taller than the start
    cfg = RefineConfig(steps=25, image_size=SIZE, camera_only_steps=5, texture_size=32)
    result = refine(mesh, photo, mask, cfg, progress=False)
    totals = [h["total"] for h in result.history]
    assert len(totals) == 25
    # The issue-10 template (a mid top with a thick sole) starts closer: measured 0.176 -> 0.159 in 25 steps
    # (the one-piece template dropped by more than 20 %).
    assert totals[-1] < 0.93 * totals[0]
    assert result.history[-1]["silhouette"] < result.history[0]["silhouette"]


def test_gradients_reach_the_camera_parameters():
    # float64 gradcheck of a soft render of a tiny mesh w.r.t. elevation, scale, angle and shift
    m = quad(0.8, dtype=torch.float64)
    verts = m.verts + torch.tensor([[0.01, 0.02, 0.0], [0.03, -0.01, 0.05], [-0.02, 0.0, 0.02], [0.0, 0.01, -0.03]],
                                   dtype=torch.float64)
    cam = PhotoCamera(elevation=7.0).double()
    blur = (9.21 * 2e-2) ** 0.5
    rcfg = RendererConfig(image_size=6, faces_per_pixel=4, sigma=2e-2, gamma=1e-1, blur_radius=blur)
    weights = torch.rand(4, 6, 6, dtype=torch.float64)

    def render(d_elev, log_scale, angle, shift):
        cam.d_elevation.data, cam.log_scale.data, cam.angle.data, cam.shift.data = d_elev, log_scale, angle, shift
        # the parameters are plain tensors here: rebuild the projection from them
        c = cam.cameras()
        c.elevation = cam.base[1:2] + 10.0 * d_elev[None]
        ndc = c.transform_points_ndc(verts[None])[0]
        s = torch.exp(log_scale)
        rot = torch.stack([torch.stack([torch.cos(angle), -torch.sin(angle)]),
                           torch.stack([torch.sin(angle), torch.cos(angle)])])
        xy = s * ndc[:, :2] @ rot.t() + shift
        out = render_projected(torch.cat([xy, ndc[:, 2:]], -1), m.faces, rcfg)
        return (out * weights).sum()

    params = (torch.tensor(0.1, dtype=torch.float64, requires_grad=True),
              torch.tensor(0.05, dtype=torch.float64, requires_grad=True),
              torch.tensor(0.1, dtype=torch.float64, requires_grad=True),
              torch.tensor([0.05, -0.03], dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(render, params, eps=1e-6, atol=1e-5)
    # and PhotoCamera.project itself carries gradients to every parameter
    cam = PhotoCamera(elevation=7.0).double()
    out = render_projected(cam.project(verts), m.faces, rcfg)
    (out * weights).sum().backward()
    for name, p in cam.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_projection_matches_the_written_formula():
    cam = PhotoCamera(elevation=0.0, distance=2.0, fov=60.0)
    with torch.no_grad():
        cam.log_scale.fill_(math.log(2.0))
        cam.angle.fill_(math.pi / 2)
        cam.shift.copy_(torch.tensor([0.1, -0.2]))
    p = torch.tensor([[0.3, 0.1, 0.0]])
    f = 1 / math.tan(math.radians(30))
    x, y = f * 0.3 / 2.0, f * 0.1 / 2.0  # view depth 2, x right, y up
    expected = torch.tensor([[2 * -y + 0.1, 2 * x - 0.2, 2.0]])  # rotate by 90 degrees, scale 2, shift
    torch.testing.assert_close(cam.project(p).detach(), expected, atol=1e-6, rtol=0)


def test_frontal_visible_texels_take_exactly_the_photos_colour():
    m = quad(1.0)
    h = w = 24
    cols = torch.arange(w, dtype=torch.float32)
    rows = torch.arange(h, dtype=torch.float32)
    photo = torch.stack([cols.expand(h, w) / (w - 1), rows[:, None].expand(h, w) / (h - 1), torch.full((h, w), 0.5)])
    mask = torch.ones(1, h, w)
    cam = PhotoCamera(elevation=0.0, distance=2.0, fov=60.0)
    size = 16
    texels = TexelPoints.from_layout(m.uvs, m.uv_faces, size)
    baked = bake_texture(m.verts, m.faces, texels, cam.project, cam.position(), photo, mask,
                         torch.zeros(3, size, size), BakeConfig(size=size, dilate=0))
    # oracle: texel (i, j) has uv ((j + .5) / S, 1 - (i + .5) / S) = the point (u - .5, v - .5, 0); seen from
    # (0, 0, 2) with f = 1 / tan(30 deg) it lands at column (f x / 2 * W + W - 1) / 2 and row (H - 1 - f y / 2 * H) / 2
    f = 1 / math.tan(math.radians(30))
    j = torch.arange(size, dtype=torch.float32)
    x = (j + 0.5) / size - 0.5
    col = (f * x / 2 * w + w - 1) / 2
    row = (h - 1 - f * (-x) / 2 * h) / 2  # v - .5 for row i equals -(x of column i)
    assert torch.all(baked.weight > 1 - 1e-6)  # seen: the photo's colour (up to float rounding of the weight)
    torch.testing.assert_close(baked.texture[0], (col / (w - 1)).expand(size, size), atol=1e-5, rtol=0)
    torch.testing.assert_close(baked.texture[1], (row / (h - 1))[:, None].expand(size, size), atol=1e-5, rtol=0)


def two_sided_card():
    """A front square at z=+0.2 facing +Z (UV: left half) and its mirror image at z=-0.2 facing -Z (right half)."""
    front = quad(1.0)
    v_front = front.verts + torch.tensor([0.0, 0.0, 0.2])
    v_back = v_front * torch.tensor([1.0, 1.0, -1.0])
    faces = torch.cat([front.faces, front.faces[:, [0, 2, 1]] + 4])
    uvs = torch.cat([front.uvs * torch.tensor([0.5, 1.0]), front.uvs * torch.tensor([0.5, 1.0]) + torch.tensor([0.5, 0.0])])
    return Mesh(torch.cat([v_front, v_back]), faces, uvs, faces.clone())


def test_never_visible_texel_takes_its_mirrors_colour():
    m = two_sided_card()
    assert torch.allclose(face_normals(m.verts, m.faces)[2:], torch.tensor([0.0, 0.0, -1.0]))
    photo = torch.rand(3, 24, 24)
    mask = torch.ones(1, 24, 24)
    cam = PhotoCamera(elevation=0.0, distance=2.5, fov=60.0)
    size = 16
    fallback = torch.full((3, size, size), 0.25)
    baked = bake_texture(m.verts, m.faces, TexelPoints.from_layout(m.uvs, m.uv_faces, size), cam.project,
                         cam.position(), photo, mask, fallback, BakeConfig(size=size, dilate=0))
    front, back = baked.texture[:, :, : size // 2], baked.texture[:, :, size // 2:]
    assert torch.all(baked.weight[:, : size // 2] > 1 - 1e-6) and torch.all(baked.weight[:, size // 2:] == 0)
    assert torch.all(baked.mirror_weight[:, size // 2:] > 1 - 1e-6)
    torch.testing.assert_close(back, front, atol=1e-6, rtol=0)  # the mirror texel's colour, not the fallback
    assert not torch.allclose(back, fallback[:, :, size // 2:])


def test_texel_with_no_visible_mirror_keeps_the_fallback():
    m = two_sided_card()
    cam = PhotoCamera(elevation=0.0, distance=2.5, fov=60.0)
    size = 16
    fallback = torch.full((3, size, size), 0.25)
    baked = bake_texture(m.verts, m.faces, TexelPoints.from_layout(m.uvs, m.uv_faces, size), cam.project,
                         cam.position(), torch.rand(3, 24, 24), torch.zeros(1, 24, 24), fallback,
                         BakeConfig(size=size, dilate=0))  # empty mask: nothing counts as seen
    torch.testing.assert_close(baked.texture, fallback)


def test_mirror_partners_and_symmetry_loss():
    t = load_template(uv_mode="file")
    partners = mirror_partners(t.verts)
    # a mirror-symmetric residual costs nothing, an antisymmetric one does
    delta = torch.randn_like(t.verts)
    sym = 0.5 * (delta + delta[partners] * torch.tensor([1.0, 1.0, -1.0]))
    if torch.equal(partners[partners], torch.arange(len(partners))):
        assert symmetry_loss(sym, partners) < 1e-10
    assert symmetry_loss(delta, partners) > 0.1


def test_mirror_mesh_flips_z_and_keeps_normals_outward():
    t = load_template(uv_mode="file")
    mm = mirror_mesh(t)
    assert torch.allclose(mm.verts[:, 2], -t.verts[:, 2])
    n = face_normals(t.verts, t.faces)
    torch.testing.assert_close(face_normals(mm.verts, mm.faces), n * torch.tensor([1.0, 1.0, -1.0]), atol=1e-5, rtol=0)


def test_auto_orientation_recognises_a_mirrored_photo():
    from shoerecon.model import ModelConfig, ShoeReconNet

    model = ShoeReconNet(ModelConfig(unet_depth=2, unet_width=4, latent_dim=16, latent_pool=2, shape_hidden=16,
                                     shape_layers=2, texture_size=16, flow_hidden=4), load_template(uv_mode="file")).eval()
    _, photo, mask = template_photo(size=48)  # the untrained network predicts the template: a right shoe, toe right
    cfg = RefineConfig(image_size=48, orientation_steps=8, texture_size=32)
    small = torch.nn.functional.interpolate(photo[None], size=(32, 32), mode="area")[0]
    toe_left = fit_photo(model, small.flip(-1), photo.flip(-1), mask.flip(-1), cfg, "auto", steps=0)
    assert toe_left.mirrored and toe_left.scores["mirror"] > toe_left.scores["as-is"] + 0.05
    toe_right = fit_photo(model, small, photo, mask, cfg, "auto", steps=0)
    assert not toe_right.mirrored


def test_pin_similarity_removes_exactly_the_image_plane_similarity():
    from shoerecon.fit.refine import pin_similarity

    p = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    # translation + scale + rotation: nothing is left
    sim = torch.tensor([0.3, -0.1]) + 0.2 * p + 0.05 * torch.stack([-p[:, 1], p[:, 0]], 1)
    assert pin_similarity(sim, p).abs().max() < 1e-6
    # a vertical stretch (0, y) of the square is half scale; the rest, (-x/2, y/2), is worked out by hand
    stretch = torch.stack([torch.zeros(4), p[:, 1]], 1)
    torch.testing.assert_close(pin_similarity(stretch, p), torch.stack([-0.5 * p[:, 0], 0.5 * p[:, 1]], 1))
    # a projection: applying it twice changes nothing
    d = torch.randn(4, 2)
    torch.testing.assert_close(pin_similarity(pin_similarity(d, p), p), pin_similarity(d, p))


def test_silhouette_target_keeps_the_start_deep_inside_and_the_mask_everywhere():
    from shoerecon.fit.refine import silhouette_target

    alpha = torch.zeros(1, 15, 15)
    alpha[:, 3:12, 3:12] = 1.0  # the start covers a 9 x 9 square
    mask = torch.zeros(1, 15, 15)  # the photo's mask says: all background (a white shoe on white)
    mask[:, 0, 0] = 1.0  # and shoe in one corner pixel
    expected = torch.zeros(1, 15, 15)
    expected[:, 5:10, 5:10] = 1.0  # more than 2 pixels inside the square: the start is kept
    expected[:, 0, 0] = 1.0
    torch.testing.assert_close(silhouette_target(alpha, mask, depth=2), expected)


def test_refinement_keeps_the_mesh_in_place_and_the_white_top_the_mask_lost():
    mesh, photo, mask = template_photo(size=48, stretch=1.1)
    rows = mask[0].amax(1).nonzero()[:, 0]
    lost = mask.clone()
    lost[:, : (int(rows[0]) + int(rows[-1])) // 2] = 0.0  # the top half thresholded away (a white upper)
    height = lambda m: float(m.verts[:, 1].max() - m.verts[:, 1].min())  # noqa: E731
    # 60 steps: on the narrower template (width 0.38) 30 steps carved only 0.019 of the height, too close to call
    base = dict(steps=60, image_size=48, camera_only_steps=5, texture_size=32)
    trusting = refine(mesh, photo, lost, RefineConfig(**base, trust_depth=0), progress=False, bake=False).mesh
    robust = refine(mesh, photo, lost, RefineConfig(**base, trust_depth=1), progress=False, bake=False).mesh  # 1 px of 48
    # pinned placement: the residual has no mean, the camera took the framing
    torch.testing.assert_close(robust.verts[:, :2].mean(0), mesh.verts[:, :2].mean(0), atol=1e-5, rtol=0)
    # believing the mask everywhere carves the top; aiming at the mask plus the start's interior keeps it
    assert height(robust) > height(trusting) + 0.01
    assert height(robust) > 0.97 * height(mesh)
