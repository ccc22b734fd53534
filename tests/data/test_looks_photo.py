"""Photo renders (data/synth/photo.py): the unlit path is the old render, alpha stays exact under lighting
and shadows, and what the threshold mask path makes of white soles on white."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from looks_helpers import WHITE, iou, plain_style, tiny_shoe, with_texture

from shoerecon.data.masks import threshold_mask
from shoerecon.data.synth.lighting import LightingParams, framing_distance, sample_lighting
from shoerecon.data.synth.materials import paint_texture, sample_style
from shoerecon.data.synth.photo import composite, render_photo
from shoerecon.data.synthetic import render_turntable


def cams(distance: float = 2.2, azimuths=(0.0, 90.0, 200.0), elevation: float = 10.0) -> torch.Tensor:
    return torch.tensor([[a, elevation, distance, 30.0] for a in azimuths])


@pytest.mark.parametrize("supersample", [1, 2])
def test_unlit_photo_is_the_old_turntable_render(supersample):
    mesh, g = tiny_shoe()
    rng = np.random.default_rng(2)
    with_texture(mesh, paint_texture(g, sample_style(rng), rng)[0])
    old = render_turntable(mesh, cams(), 32, supersample)
    new = render_photo(mesh, cams(), 32, supersample, lighting=None)
    assert new.shape == (3, 4, 32, 32)
    assert torch.equal(new, old)


def test_lighting_off_reproduces_the_albedo():
    mesh, _ = tiny_shoe()
    colour = (0.8, 0.35, 0.1)
    with_texture(mesh, np.broadcast_to(np.asarray(colour, dtype=np.float32), (64, 64, 3)))
    rgba = render_photo(mesh, cams(), 32, 2, lighting=None)
    inside = rgba[:, 3] == 1
    assert inside.sum() > 300
    torch.testing.assert_close(rgba[:, :3].permute(0, 2, 3, 1)[inside], torch.tensor(colour).expand(int(inside.sum()), 3), atol=1e-6, rtol=0)
    assert (rgba[:, :3].permute(0, 2, 3, 1)[rgba[:, 3] == 0] == 1).all()  # white where nothing is covered


def test_lit_render_shades_a_flat_albedo():
    """A camera-facing key light, no fill, no ambient falloff: pixels = albedo * (ambient + key cos) <= albedo * exposure,
    the brightest ones (normals toward the camera) near albedo * exposure."""
    mesh, _ = tiny_shoe()
    with_texture(mesh, np.full((64, 64, 3), 0.5, dtype=np.float32))
    light = LightingParams(ambient=0.4, ambient_falloff=0.0, key_azimuth=0.0, key_elevation=0.0, fill_ratio=0.0,
                           exposure=1.0, specular=0.0, shadow_strength=0.0)
    rgba = render_photo(mesh, cams(), 32, 1, light)
    px = rgba[:, 0][rgba[:, 3] == 1]
    assert float(px.max()) <= 0.5 + 1e-5 and float(px.max()) > 0.49
    assert float(px.min()) >= 0.5 * 0.4 - 1e-5  # never below the ambient term
    assert float(px.std()) > 0.01  # actually shaded, not flat


def test_white_sole_on_white_keeps_the_exact_alpha_under_light_and_shadow():
    mesh, g = tiny_shoe()
    albedo, gloss = paint_texture(g, plain_style(upper=WHITE, sole=WHITE), np.random.default_rng(0))
    with_texture(mesh, albedo)
    ref = render_photo(mesh, cams(), 32, 2, lighting=None)[:, 3:]
    gloss_t = torch.from_numpy(gloss)[None]
    for strength in (0.0, 0.4):
        light = LightingParams(shadow_strength=strength, shadow_softness=0.03, exposure=1.12)
        rgba, bg = render_photo(mesh, cams(), 32, 2, light, gloss_t, with_background=True)
        assert torch.equal(rgba[:, 3:], ref)  # bit for bit: lighting and shadow never touch alpha
        empty = rgba[:, 3] == 0
        # Background pixels hold the background: white, or darker under the sole when there is a shadow.
        torch.testing.assert_close(rgba[:, :3].permute(0, 2, 3, 1)[empty], bg.permute(0, 2, 3, 1)[empty])
        if strength:
            assert float(bg.min()) < 0.9 and float(bg.max()) == 1.0
        else:
            assert (bg == 1).all()


def test_contact_shadow_sits_under_the_sole():
    mesh, _ = tiny_shoe()
    with_texture(mesh, np.full((64, 64, 3), 0.94, dtype=np.float32))
    d = framing_distance(mesh.verts, 30.0, 5.0, 0.8)
    rgba, bg = render_photo(mesh, cams(d, (0.0,), 5.0), 64, 1, LightingParams(shadow_strength=0.4), with_background=True)
    dark = (1 - bg[0, 0]) > 0.05
    rows = torch.nonzero(dark)[:, 0].float()
    shoe_rows = torch.nonzero(rgba[0, 3] > 0)[:, 0].float()
    assert len(rows) > 10
    # Below the shoe's middle (rows grow downward) and reaching past its bottom edge.
    assert rows.mean() > shoe_rows.mean() and rows.max() > shoe_rows.max()


def test_threshold_masks_on_white_soles(capsys):
    """What ``masks.threshold_mask`` (used for RGB without alpha) makes of lit shoes with white soles.

    Measured (64 px, 4 views): a coloured upper on a white sole reaches IoU 0.88-0.94 (one-piece
    legacy shoe) and 0.73-0.87 (multi-part shoe, thick cup sole) without a shadow, 0.75-0.84 with a
    strong one (the shadow is taken as shoe, the white sole is lost); an all-white shoe falls to IoU
    0.02-0.6: the threshold path cannot segment white on white. Exact alpha is the only reliable mask
    for synthetic data; issue 13 owns better masks for real photos.
    """
    mesh, g = tiny_shoe()
    d = framing_distance(mesh.verts, 30.0, 5.0, 0.8)
    views = cams(d, (0.0, 90.0, 180.0, 270.0), 5.0)
    results = {}
    for name, upper in (("red_upper", (0.7, 0.1, 0.1)), ("all_white", WHITE)):
        albedo, gloss = paint_texture(g, plain_style(upper=upper, sole=WHITE), np.random.default_rng(0))
        with_texture(mesh, albedo)
        for strength in (0.0, 0.3):
            rgba, bg = render_photo(mesh, views, 64, 2, LightingParams(shadow_strength=strength), torch.from_numpy(gloss)[None],
                                    with_background=True)
            mask = threshold_mask(composite(rgba, bg)) > 0.5
            results[name, strength] = iou(mask, rgba[:, 3:] > 0.5)
    print({k: [round(x, 3) for x in v.tolist()] for k, v in results.items()})
    # The coloured upper carries the mask; the white sole (and the shadow) cost the rest.
    assert (results["red_upper", 0.0] > 0.7).all() and (results["red_upper", 0.0] < 0.97).all()
    assert (results["red_upper", 0.3] > 0.65).all()
    # all_white is measured, not asserted: it fails (see above), and issue 13 may well improve it.


def test_render_photo_is_deterministic_and_checks_inputs():
    mesh, g = tiny_shoe()
    rng = np.random.default_rng(4)
    style, light = sample_style(rng), sample_lighting(rng)
    albedo, gloss = paint_texture(g, style, rng)
    with_texture(mesh, albedo)
    a = render_photo(mesh, cams(), 32, 1, light, torch.from_numpy(gloss))
    b = render_photo(mesh, cams(), 32, 1, light, torch.from_numpy(gloss))
    assert torch.equal(a, b) and a.shape == (3, 4, 32, 32)
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    with pytest.raises(ValueError, match="gloss"):
        render_photo(mesh, cams(), 32, 1, light, torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="cameras"):
        render_photo(mesh, cams()[0], 32, 1, light)


def test_white_shoe_on_white_stays_below_the_background_by_the_headroom():
    """Product-photo exposure: an all-white shoe under a bright key and glossy highlights stays below the white
    background by ``headroom`` everywhere and keeps its shading; alpha is the exact coverage whatever the exposure.
    The old look (headroom = shoulder = 0) clips the same shoe to the background's white."""
    mesh, g = tiny_shoe()
    albedo, gloss = paint_texture(g, plain_style(upper=WHITE, sole=WHITE), np.random.default_rng(0))
    with_texture(mesh, albedo)
    gloss_t = torch.from_numpy(np.ones_like(gloss))[None]
    ref = render_photo(mesh, cams(), 32, 2, lighting=None)[:, 3:]
    bright = dict(exposure=1.12, specular=0.4, shininess=12.0, shadow_strength=0.3)
    for headroom in (0.02, 0.12):
        rgba, bg = render_photo(mesh, cams(), 32, 2, LightingParams(headroom=headroom, **bright), gloss_t, with_background=True)
        assert torch.equal(rgba[:, 3:], ref)
        shoe = rgba[:, :3].permute(0, 2, 3, 1)[rgba[:, 3] > 0]
        assert float(shoe.max()) <= 1 - headroom + 1e-6
        assert float(shoe.max()) >= 1 - headroom - 0.05  # the highlights do reach the shoulder
        assert float(shoe.std()) > 0.02 and len(torch.unique(shoe)) > 50  # shaded, not one flat value
        photo = composite(rgba, bg)
        assert float(photo[:, :, 0, :].min()) == 1.0  # the top rows: background blown to white
    old = render_photo(mesh, cams(), 32, 2, LightingParams(headroom=0.0, shoulder=0.0, **bright), gloss_t)
    inside = old[:, 3] == 1
    assert torch.equal(old[:, 3:], ref)
    assert float((old[:, :3].amin(1)[inside] == 1.0).float().mean()) > 0.2  # clipped: white on white


def test_photo_clipped_look_is_the_photo_look_without_headroom():
    from dataclasses import asdict

    from shoerecon.data.synthetic import SynthConfig, make_shoe

    cfg = dict(edge_length=0.06, texture_size=32)
    _, _, _, new, _ = make_shoe(3, 7, SynthConfig(look="photo", **cfg))
    _, _, _, again, _ = make_shoe(3, 7, SynthConfig(look="photo", **cfg))
    _, _, _, old, _ = make_shoe(3, 7, SynthConfig(look="photo-clipped", **cfg))
    assert new == again  # deterministic per (seed, index)
    assert 0.02 <= new.headroom <= 0.12 and (old.headroom, old.shoulder) == (0.0, 0.0)
    assert {k: v for k, v in asdict(old).items() if k not in ("headroom", "shoulder")} == \
        {k: v for k, v in asdict(new).items() if k not in ("headroom", "shoulder")}
