"""Procedural materials (data/synth/materials.py): ranges, determinism, soles, colour blocking, no aliasing."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from looks_helpers import WHITE, plain_style, tiny_shoe

from shoerecon.data.synth.materials import (
    LOGOS, MATERIALS, PANELS, SCHEMES, STITCH_EDGES, STYLE_RANGES, MaterialStyle, paint_texture, sample_style,
)
from shoerecon.data.synth.parts import PART_ID, PARTS


def test_sampled_styles_stay_in_their_ranges_and_vary():
    rng = np.random.default_rng(0)
    styles = [sample_style(rng) for _ in range(300)]
    for s in styles:
        for k, (lo, hi) in STYLE_RANGES.items():
            assert lo <= s.params[k] <= hi, k
        assert s.scheme in SCHEMES and s.logo in LOGOS and set(s.panels) <= set(PANELS)
        assert set(s.part_colors) == set(PARTS) and set(s.part_materials) == set(PARTS)
        assert all(m in MATERIALS for m in s.part_materials.values())
        colours = [*s.part_colors.values(), *s.panels.values(), s.logo_color, s.midsole_color, s.outsole_color, s.stitch_color]
        assert all(0 <= c <= 1 for col in colours for c in col)
    # Every scheme, logo and upper material occurs; most shoes are neutral (real sneakers mostly are).
    assert {s.scheme for s in styles} == set(SCHEMES)
    assert {s.logo for s in styles} == set(LOGOS)
    assert {s.part_materials["upper"] for s in styles} >= {"leather", "suede", "knit", "mesh"}
    white_soles = np.mean([min(s.midsole_color) > 0.85 for s in styles])
    assert 0.4 < white_soles < 0.8
    gum = np.mean([abs(s.outsole_color[0] - 0.66) < 0.05 and abs(s.outsole_color[2] - 0.24) < 0.05 for s in styles])
    assert 0.05 < gum < 0.35


def test_style_and_texture_are_deterministic_per_seed():
    _, g = tiny_shoe(64)
    a = sample_style(np.random.default_rng(7))
    b = sample_style(np.random.default_rng(7))
    assert a == b
    assert a != sample_style(np.random.default_rng(8))
    t1 = paint_texture(g, a, np.random.default_rng(1))
    t2 = paint_texture(g, b, np.random.default_rng(1))
    np.testing.assert_array_equal(t1[0], t2[0])
    np.testing.assert_array_equal(t1[1], t2[1])


@pytest.mark.parametrize("size", [64, 128])
def test_texture_shapes_dtypes_and_ranges(size):
    _, g = tiny_shoe(size)
    rng = np.random.default_rng(3)
    for _ in range(3):
        albedo, gloss = paint_texture(g, sample_style(rng), rng)
        assert albedo.shape == (size, size, 3) and gloss.shape == (size, size)
        assert albedo.dtype == np.float32 and gloss.dtype == np.float32
        assert 0 <= albedo.min() and albedo.max() <= 1 and 0 <= gloss.min() and gloss.max() <= 1
        assert np.isfinite(albedo).all() and np.isfinite(gloss).all()


def test_sole_has_an_outsole_band_below_the_midsole():
    _, g = tiny_shoe(128)
    black, white = (0.06, 0.06, 0.07), WHITE
    style = plain_style(upper=(0.5, 0.1, 0.1), sole=white, outsole=black)
    style.params["outsole_band"] = 0.3
    albedo, _ = paint_texture(g, style, np.random.default_rng(0))
    sole = g.part == PART_ID["sole"]
    h = g.local[..., 1]
    side = np.abs(g.normal[..., 1]) < 0.5
    low, high = sole & side & (h < 0.2), sole & side & (h > 0.45)
    assert low.sum() > 20 and high.sum() > 20
    np.testing.assert_allclose(albedo[low].mean(0), black, atol=0.03)
    np.testing.assert_allclose(albedo[high].mean(0), white, atol=0.03)
    under = sole & (g.normal[..., 1] < -0.8)  # the tread underneath is outsole too (a little darker in the grooves)
    assert albedo[under].mean() < 0.1


def test_parts_take_their_colours_and_materials_keep_the_mean():
    """Plain colour blocking: each part's mean albedo is its colour (patterns modulate around it)."""
    _, g = tiny_shoe(128)
    colours = {name: tuple(float(c) for c in np.random.default_rng(i).uniform(0.2, 0.9, 3)) for i, name in enumerate(PARTS)}
    for material in ("leather", "suede", "knit", "canvas", "textile"):
        style = dataclasses.replace(plain_style(), part_colors=colours, part_materials={p: material for p in PARTS})
        albedo, _ = paint_texture(g, style, np.random.default_rng(0))
        for name in ("upper", "heel_counter"):
            m = g.part == PART_ID[name]
            scale = 0.92 if material == "suede" else 1.0  # suede is dyed darker by design
            if material == "knit":  # a heathered second yarn pulls the mean toward 0.7 c + 0.12
                continue
            np.testing.assert_allclose(albedo[m].mean(0), np.asarray(colours[name]) * scale, atol=0.03, err_msg=f"{material} {name}")


@pytest.mark.parametrize("material", ["leather", "suede", "knit", "mesh"])
def test_unresolved_patterns_fade_to_their_mean(material):
    """The same material at T=64 (patterns far below a texel) and T=256 has the same mean colour: no aliasing bias."""
    style = dataclasses.replace(plain_style(upper=(0.8, 0.3, 0.2)), part_materials={p: material for p in PARTS})
    means = []
    for size in (64, 256):
        _, g = tiny_shoe(size)
        albedo, _ = paint_texture(g, style, np.random.default_rng(0))
        means.append(albedo[g.part == PART_ID["upper"]].mean(0))
    np.testing.assert_allclose(means[0], means[1], atol=0.03)


def test_logo_panels_and_stitching_change_the_upper_only_where_expected():
    _, g = tiny_shoe(128)
    base = plain_style(upper=WHITE, sole=WHITE)
    ref, _ = paint_texture(g, base, np.random.default_rng(0))
    red = (0.8, 0.05, 0.05)
    logo = dataclasses.replace(base, logo="swoosh", logo_color=red)
    with_logo, _ = paint_texture(g, logo, np.random.default_rng(0))
    changed = np.abs(with_logo - ref).max(-1) > 0.2
    # The logo sits on the sides of the upper, never on the sole, the laces or the lining.
    assert changed.sum() > 30
    assert not (changed & np.isin(g.part, [PART_ID[n] for n in ("sole", "laces", "lining")])).any()
    assert (np.abs(g.normal[changed, 2]) > 0.3).all()
    toe = dataclasses.replace(base, panels={"toe_cap": red})
    with_toe, _ = paint_texture(g, toe, np.random.default_rng(0))
    changed = np.abs(with_toe - ref).max(-1) > 0.2
    x = g.position[..., 0]
    assert changed.any() and x[changed].min() > np.quantile(x[g.part >= 0], 0.5)  # the toe cap is at the front
    # Stitch rows (dark thread on white) run along part edges; at T=256 a 1 mm thread is still under a texel.
    _, g = tiny_shoe(256)
    ref, _ = paint_texture(g, base, np.random.default_rng(0))
    stitched = dataclasses.replace(base, stitching=True, stitch_color=(0.05, 0.05, 0.05))
    with_stitches, _ = paint_texture(g, stitched, np.random.default_rng(0))
    changed = (np.abs(with_stitches - ref).max(-1) > 0.1) & (g.part >= 0)
    assert changed.sum() > 50
    edge_parts = [PART_ID[n] for n in STITCH_EDGES]  # the sole's cup stitch is off in this style
    assert np.isin(g.part[changed], edge_parts).all()


def test_creases_darken_a_part_where_another_meets_it():
    from scipy.spatial import cKDTree

    from shoerecon.data.synth.materials import OCCLUDERS

    _, g = tiny_shoe(128)
    plain = plain_style(upper=WHITE)
    creased = plain_style(upper=WHITE)
    creased.params.update(crease_strength=0.4, crease_radius=0.006)
    ratio = (paint_texture(g, creased, np.random.default_rng(0))[0] / paint_texture(g, plain, np.random.default_rng(0))[0]).mean(-1)
    upper = g.part == PART_ID["upper"]
    occ = np.isin(g.part, [PART_ID[o] for o in OCCLUDERS["upper"]])
    d_sole, _ = cKDTree(g.position[g.part == PART_ID["sole"]]).query(g.position[upper])
    d_all, _ = cKDTree(g.position[occ]).query(g.position[upper])
    near, far = ratio[upper][d_sole < 0.002], ratio[upper][d_all > 0.06]
    assert len(near) > 10 and len(far) > 100
    # 1 - 0.4 exp(-d / r): untouched far from every occluder, 0.6 .. 0.71 within 2 mm-ish of the sole.
    np.testing.assert_allclose(far, 1.0, atol=0.002)
    assert (near >= 0.6 - 1e-4).all() and (near <= 1 - 0.4 * np.exp(-0.002 / 0.006) + 1e-4).all()


def test_bad_style_values_name_the_field():
    with pytest.raises(ValueError, match="part_materials.*'upper'"):
        MaterialStyle(part_materials={"upper": "velvet"})
    with pytest.raises(ValueError, match="unknown parts"):
        MaterialStyle(part_colors={"wing": (1, 1, 1)})
    with pytest.raises(ValueError, match="logo"):
        MaterialStyle(logo="checkmark")
