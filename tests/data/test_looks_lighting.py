"""Studio lighting and framing (data/synth/lighting.py): hand-computed shading values, ranges, framing."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shoerecon.data.synth.lighting import LIGHTING_RANGES, LightingParams, expose, framing_distance, sample_lighting, shade

TOWARD_CAMERA = torch.tensor([0.0, 0.0, -1.0])  # camera space: z points away from the camera


def frontal(**kw) -> LightingParams:
    """A key light at the camera, no fill, uniform ambient."""
    base = dict(ambient=0.4, ambient_falloff=0.0, key_azimuth=0.0, key_elevation=0.0, fill_ratio=0.0, exposure=1.0, specular=0.0)
    return LightingParams(**{**base, **kw})


def test_flat_albedo_under_a_frontal_key_is_lambert():
    albedo = torch.full((1, 3), 0.5)
    # Facing the camera: ambient 0.4 + key (exposure - ambient = 0.6) * cos 0 -> 0.5 * 1.0.
    out = shade(albedo, TOWARD_CAMERA[None], TOWARD_CAMERA[None], None, frontal())
    torch.testing.assert_close(out, torch.full((1, 3), 0.5))
    # Tilted 60 degrees away: 0.5 * (0.4 + 0.6 * cos 60) = 0.35.
    tilt = torch.tensor([[math.sin(math.radians(60)), 0.0, -math.cos(math.radians(60))]])
    torch.testing.assert_close(shade(albedo, tilt, TOWARD_CAMERA[None], None, frontal()), torch.full((1, 3), 0.35))
    # Facing away from the key: ambient only, 0.5 * 0.4.
    away = torch.tensor([[1.0, 0.0, 0.0]])
    torch.testing.assert_close(shade(albedo, away, TOWARD_CAMERA[None], None, frontal()), torch.full((1, 3), 0.2))


def test_ambient_falloff_darkens_downward_faces():
    albedo = torch.full((2, 3), 0.5)
    normals = torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])  # up, down: both perpendicular to the key
    out = shade(albedo, normals, TOWARD_CAMERA.expand(2, 3), None, frontal(ambient_falloff=0.5))
    torch.testing.assert_close(out[:, 0], torch.tensor([0.5 * 0.4, 0.5 * 0.4 * 0.5]))


def test_specular_highlight_scales_with_gloss():
    albedo = torch.zeros(3, 3)
    n = TOWARD_CAMERA.expand(3, 3)
    gloss = torch.tensor([0.0, 0.5, 1.0])
    out = shade(albedo, n, n.neg().neg(), gloss, frontal(specular=0.2))
    # Normal = light = view: n . h = 1, so the highlight is specular * gloss * key (0.6).
    torch.testing.assert_close(out[:, 0], 0.2 * gloss * 0.6)


def test_shade_is_differentiable():
    albedo = torch.rand(4, 3, dtype=torch.float64) * 0.5 + 0.1
    normal = torch.nn.functional.normalize(torch.tensor([[0.1, 0.3, -1.0]] * 4, dtype=torch.float64), dim=-1)
    gloss = torch.rand(4, dtype=torch.float64)
    p = LightingParams(exposure=1.0)
    f = lambda a, g: shade(a, normal, TOWARD_CAMERA.double().expand(4, 3), g, p)  # noqa: E731
    assert torch.autograd.gradcheck(f, (albedo.requires_grad_(), gloss.requires_grad_()))


def test_sampled_lighting_is_in_range_and_deterministic():
    rng = np.random.default_rng(0)
    samples = [sample_lighting(rng) for _ in range(200)]
    for s in samples:
        for k, (lo, hi) in LIGHTING_RANGES.items():
            assert lo <= getattr(s, k) <= hi, k
        key, fill = s.intensities()
        assert 0 < fill < key
        # A white surface facing the camera is lit to ~exposure: it reads light (about 215-250 of 255), but stays
        # below the white background by the headroom, as in product photos.
        white = shade(torch.full((1, 3), 0.94), TOWARD_CAMERA[None], TOWARD_CAMERA[None], torch.zeros(1), s)
        assert 0.84 <= float(white.min()) and float(white.max()) <= 1 - s.headroom
    assert sample_lighting(np.random.default_rng(5)) == sample_lighting(np.random.default_rng(5))
    assert {s.key_azimuth > 0 for s in samples} == {True, False}


def test_expose_keeps_shadows_rolls_highlights_off_below_the_background():
    x = torch.tensor([0.0, 0.3, 0.82, 0.94, 1.0, 1.5, 3.0])
    y = expose(x, 0.06, 0.12)  # top 0.94, knee 0.82
    # Up to the knee: unchanged. Above: 0.82 + 0.12 (1 - exp(-(x - 0.82) / 0.12)), by hand at x = 0.94: 1 - 1/e.
    torch.testing.assert_close(y[:3], x[:3])
    torch.testing.assert_close(y[3], torch.tensor(0.82 + 0.12 * (1 - math.exp(-1.0))))
    torch.testing.assert_close(y[4], torch.tensor(0.82 + 0.12 * (1 - math.exp(-1.5))))
    assert float(y.max()) <= 0.94
    # Strictly increasing (shading survives in the highlights), slope 1 at the knee.
    grid = torch.linspace(0.0, 1.6, 1601, dtype=torch.float64)
    assert (expose(grid, 0.06, 0.12).diff() > 0).all()
    k = torch.tensor([0.82 + 1e-6], dtype=torch.float64, requires_grad=True)
    expose(k, 0.06, 0.12).backward()
    assert float(k.grad) == pytest.approx(1.0, abs=1e-4)
    # shoulder 0: a hard clip at 1 - headroom; both 0: the old look's clamp to [0, 1].
    torch.testing.assert_close(expose(x, 0.1, 0.0), x.clamp(0, 0.9))
    assert torch.equal(expose(x - 0.5, 0.0, 0.0), (x - 0.5).clamp(0, 1))


def test_headroom_is_drawn_last_so_a_seed_keeps_its_other_lighting():
    # Oracle: the draws in LIGHTING_RANGES order with numpy directly; headroom is the last one.
    assert list(LIGHTING_RANGES)[-1] == "headroom"
    rng = np.random.default_rng(11)
    expected = {k: rng.uniform(lo, hi) for k, (lo, hi) in LIGHTING_RANGES.items()}
    got = sample_lighting(np.random.default_rng(11))
    for k, v in expected.items():
        assert getattr(got, k) == pytest.approx(v, abs=0), k
    # With its own stream, headroom leaves ``rng`` where the old lighting left it (make_shoe draws on from there).
    rng, old = np.random.default_rng(11), np.random.default_rng(11)
    own = sample_lighting(rng, headroom_rng=np.random.default_rng(3))
    for k, (lo, hi) in list(LIGHTING_RANGES.items())[:-1]:
        old.uniform(lo, hi)
    assert rng.uniform() == old.uniform()
    assert own.headroom == pytest.approx(np.random.default_rng(3).uniform(*LIGHTING_RANGES["headroom"]), abs=0)


def test_bad_lighting_values_name_the_field():
    with pytest.raises(ValueError, match="fill"):
        LightingParams(fill=1.5)
    with pytest.raises(ValueError, match="ambient"):
        LightingParams(ambient=-0.1)
    with pytest.raises(ValueError, match="headroom"):
        LightingParams(headroom=-0.01)
    with pytest.raises(ValueError, match="headroom \\+ shoulder"):
        LightingParams(headroom=0.5, shoulder=0.5)


def test_framing_distance_of_a_segment_is_hand_computed():
    # A segment of length 1 along x at the origin, seen from +Z at elevation 0 with a 90 degree fov:
    # x_ndc = x / (d tan 45) = x / d, so the half-extent 0.5 / d equals fill at d = 0.5 / fill.
    verts = torch.tensor([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0]])
    assert framing_distance(verts, 90.0, 0.0, 0.8, max_extent=None) == pytest.approx(0.625, rel=1e-6)
    assert framing_distance(verts, 90.0, 0.0, 0.5, max_extent=None) == pytest.approx(1.0, rel=1e-6)
    # So close, the end nearest the camera at azimuth 60 would leave the frame (x 0.25 at depth 0.19):
    # with max_extent the camera backs off.
    assert framing_distance(verts, 90.0, 0.0, 0.8) > 0.7


def test_framing_fills_the_width_at_view_0_and_keeps_every_view_in_frame():
    from looks_helpers import tiny_shoe

    from shoerecon.render.cameras import Cameras

    mesh, _ = tiny_shoe()
    for fill in (0.7, 0.9):
        d = framing_distance(mesh.verts, 30.0, 10.0, fill)
        x = Cameras.from_tensor(torch.tensor([[0.0, 10.0, d, 30.0]])).transform_points_ndc(mesh.verts[None])[0, :, 0]
        assert float(x.max() - x.min()) / 2 == pytest.approx(fill, abs=1e-4)
        all_views = Cameras.turntable(36, 10.0, d, 30.0).transform_points_ndc(mesh.verts[None].expand(36, -1, -1))
        assert float(all_views[..., :2].abs().max()) <= 0.98 + 1e-4


def test_bake_shading_is_the_old_soft_light():
    from shoerecon.data.synth.lighting import bake_shading

    albedo = np.full((1, 3, 3), 0.8, dtype=np.float32)
    light = np.array([0.0, 1.0, 0.0])
    normal = np.array([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]])  # toward, across, away from the light
    out = bake_shading(albedo, normal, tuple(light), ambient=0.6)
    np.testing.assert_allclose(out[0, :, 0], [0.8, 0.8 * 0.6, 0.8 * 0.6], rtol=1e-6)
    tilted = np.array([[[0.0, 0.5, math.sqrt(0.75)]]])
    np.testing.assert_allclose(bake_shading(albedo[:, :1], tilted, tuple(light), 0.6)[0, 0, 0], 0.8 * (0.6 + 0.4 * 0.5), rtol=1e-6)
