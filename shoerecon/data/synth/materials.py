"""Procedural sneaker materials painted per texel from a ``TexelGBuffer`` (issue 10, appearance).

A ``MaterialStyle`` is everything that decides how one shoe looks: a palette (mostly neutrals with
one accent, tonal, or colour-blocked), a material per part (leather, suede, knit, mesh, canvas,
foam, rubber, textile), upper panels (toe cap, mudguard, heel panel, eyestay), a side logo (a
curved swoosh-like stripe or parallel stripes), a heel glyph, a tongue label, perforations on the
toe box, stitching and the sole's colours (midsole, outsole band, optional stripe).

``paint_texture`` turns a style into an albedo and a gloss map. It only reads the G-buffer:
    - side coordinates of every texel, from 3D: ``xr`` along the shoe (heel 0 -> toe 1) and ``hr``
      the height between the upper's lowest and highest point at that ``xr`` (0 -> 1); logos and
      panels live there, so they are continuous across parts and charts of the atlas;
    - part-local coordinates for stitching along part edges (scaled to 3D lengths per part);
    - 3D position for noise (leather grain, suede nap), so patterns never show the atlas' seams.
Patterns finer than the texel footprint fade to their mean (no aliasing at T = 64).

Lengths are in the normalised shoe frame (shoe length ~ 1, i.e. ~ 280 mm: 1 mm ~ 0.0036).
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from shoerecon.data.synth.parts import PART_ID, PARTS, TexelGBuffer

RGB = tuple[float, float, float]

MATERIALS: tuple[str, ...] = ("leather", "suede", "knit", "mesh", "canvas", "foam", "rubber", "textile")
SCHEMES: tuple[str, ...] = ("neutral_accent", "tonal", "colorblock")
LOGOS: tuple[str, ...] = ("none", "swoosh", "stripes")
PANELS: tuple[str, ...] = ("toe_cap", "mudguard", "heel_panel", "eyestay")

#: (name, rgb, weight) of the neutrals real sneakers are mostly made of.
NEUTRALS: tuple[tuple[str, RGB, float], ...] = (
    ("white", (0.94, 0.94, 0.93), 0.30),
    ("sail", (0.93, 0.90, 0.82), 0.10),
    ("light_grey", (0.78, 0.78, 0.79), 0.10),
    ("grey", (0.55, 0.56, 0.58), 0.08),
    ("dark_grey", (0.27, 0.27, 0.29), 0.08),
    ("black", (0.06, 0.06, 0.07), 0.18),
    ("navy", (0.09, 0.12, 0.24), 0.06),
    ("tan", (0.72, 0.55, 0.36), 0.05),
    ("brown", (0.33, 0.22, 0.14), 0.03),
    ("olive", (0.36, 0.38, 0.25), 0.02),
)
GUM: RGB = (0.66, 0.44, 0.24)

#: Base gloss of each material (specular weight; 0 matte, 1 patent leather).
MATERIAL_GLOSS: dict[str, float] = {
    "leather": 0.55, "suede": 0.05, "knit": 0.12, "mesh": 0.15, "canvas": 0.06, "foam": 0.25, "rubber": 0.35,
    "textile": 0.08,
}

#: Edges of each part (in its local coordinates) that carry a stitch row: u0 heel end, u1 toe end, v0 bottom, v1 top.
STITCH_EDGES: dict[str, tuple[str, ...]] = {
    "upper": ("v1",),
    "overlay": ("u0", "u1", "v0", "v1"),
    "heel_counter": ("u1", "v1"),
    "collar": ("v0",),
    "tongue": ("v1",),
    "pull_tab": ("u0", "u1", "v1"),
}

#: Parts that shadow each receiving part where they meet or overlap it (the receiver lies underneath).
OCCLUDERS: dict[str, tuple[str, ...]] = {
    "upper": ("sole", "laces", "tongue", "collar", "overlay", "heel_counter", "pull_tab"),
    "tongue": ("laces", "upper", "overlay"),
    "overlay": ("laces", "sole"),
    "heel_counter": ("sole", "collar", "pull_tab"),
    "collar": ("pull_tab",),
}

#: Sampling ranges of the continuous style parameters (tests check samples stay inside).
STYLE_RANGES: dict[str, tuple[float, float]] = {
    "outsole_band": (0.12, 0.45),       # outsole height as a fraction of the sole's height
    "toe_cap_start": (0.72, 0.84),      # xr where the toe cap begins (at mid height)
    "mudguard_height": (0.15, 0.3),     # hr of the mudguard's top
    "heel_panel_length": (0.14, 0.26),  # xr of the heel panel's front edge at the sole
    "logo_start": (0.18, 0.34),         # xr of the logo's tail / first stripe
    "logo_length": (0.32, 0.5),
    "logo_height": (0.28, 0.5),         # hr of the logo's centre line
    "logo_width": (0.015, 0.035),       # stripe width (3D units)
    "stitch_pitch": (0.008, 0.014),     # 3 - 5 mm
    "stitch_width": (0.0025, 0.004),    # ~1 mm thread
    "stitch_offset": (0.005, 0.01),     # distance of a stitch row from its edge
    "perf_pitch": (0.011, 0.018),
    "grain_scale": (0.004, 0.009),      # leather grain cell size
    "knit_period": (0.006, 0.012),
    "mesh_period": (0.012, 0.022),
    "noise_strength": (0.5, 1.5),       # scales every pattern's contrast
    "crease_strength": (0.15, 0.4),     # baked occlusion where one part meets or covers another
    "crease_radius": (0.004, 0.01),
    "gloss_scale": (0.6, 1.4),
}


@dataclass
class MaterialStyle:
    """How one shoe looks (sampled by ``sample_style``; every colour an RGB tuple in [0, 1]).

    Attributes:
        scheme: one of ``SCHEMES``. kind: "court" | "runner" | "skate" (what the materials follow).
        part_colors / part_materials: per name in ``PARTS`` (materials from ``MATERIALS``).
        panels: panel name (``PANELS``) -> colour; absent panels are not painted.
        panel_material: material of the panels (overlay leather, suede on runners).
        logo: one of ``LOGOS``; logo_color; stripe_count for "stripes"; logo_sides "both" | "lateral".
        heel_logo / tongue_label: small glyphs (colours or None).
        midsole_color, outsole_color: the sole; midsole_stripe a thin line colour or None.
        cupsole_stitch: a stitch row around the sole's sidewall. stitching: stitch rows on part edges.
        stitch_color: thread colour. perforations: holes on the toe box (court shoes).
        params: the continuous parameters (keys of ``STYLE_RANGES``).
    """

    scheme: str = "neutral_accent"
    kind: str = "court"
    part_colors: dict[str, RGB] = field(default_factory=lambda: {p: (0.94, 0.94, 0.93) for p in PARTS})
    part_materials: dict[str, str] = field(default_factory=lambda: {p: "leather" for p in PARTS})
    panels: dict[str, RGB] = field(default_factory=dict)
    panel_material: str = "leather"
    logo: str = "none"
    logo_color: RGB = (0.06, 0.06, 0.07)
    stripe_count: int = 3
    logo_sides: str = "both"
    heel_logo: RGB | None = None
    tongue_label: RGB | None = None
    midsole_color: RGB = (0.94, 0.94, 0.93)
    outsole_color: RGB = (0.94, 0.94, 0.93)
    midsole_stripe: RGB | None = None
    cupsole_stitch: bool = False
    stitching: bool = True
    stitch_color: RGB = (0.9, 0.9, 0.88)
    perforations: bool = False
    params: dict[str, float] = field(default_factory=lambda: {k: (lo + hi) / 2 for k, (lo, hi) in STYLE_RANGES.items()})

    def __post_init__(self) -> None:
        checks = (("scheme", self.scheme, SCHEMES), ("logo", self.logo, LOGOS), ("panel_material", self.panel_material, MATERIALS))
        for name, value, valid in checks:
            if value not in valid:
                raise ValueError(f"MaterialStyle.{name} must be one of {valid}, got {value!r}")
        for p, m in self.part_materials.items():
            if m not in MATERIALS:
                raise ValueError(f"MaterialStyle.part_materials[{p!r}] must be one of {MATERIALS}, got {m!r}")
        unknown = (set(self.part_colors) | set(self.part_materials)) - set(PARTS)
        if unknown:
            raise ValueError(f"MaterialStyle: unknown parts {sorted(unknown)}; valid: {list(PARTS)}")
        bad_panels = set(self.panels) - set(PANELS)
        if bad_panels:
            raise ValueError(f"MaterialStyle.panels: unknown panels {sorted(bad_panels)}; valid: {list(PANELS)}")
        bad = set(self.params) - set(STYLE_RANGES)
        if bad:
            raise ValueError(f"MaterialStyle.params: unknown keys {sorted(bad)}; valid: {sorted(STYLE_RANGES)}")


# ----------------------------------------------------------------------------------------- sampling


def _hsv(h: float, s: float, v: float) -> RGB:
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _pick(rng: np.random.Generator, options, weights=None):
    w = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    return options[int(rng.choice(len(options), p=w))]


def _neutral(rng: np.random.Generator, exclude: RGB | None = None) -> RGB:
    names, colours, weights = zip(*NEUTRALS)
    weights = np.array([0.0 if c == exclude else w for c, w in zip(colours, weights)])
    c = np.asarray(colours[int(rng.choice(len(colours), p=weights / weights.sum()))])
    return tuple(float(x) for x in np.clip(c + rng.normal(0, 0.012, 3), 0, 1))  # no two whites quite alike


def _accent(rng: np.random.Generator, hue: float | None = None) -> RGB:
    hue = rng.uniform() if hue is None else hue
    return _hsv(hue, rng.uniform(0.55, 0.95), rng.uniform(0.45, 0.92))


def _shade_of(c: RGB, rng: np.random.Generator) -> RGB:
    """Another tone of the same colour (tonal schemes)."""
    h, s, v = colorsys.rgb_to_hsv(*c)
    return _hsv(h, float(np.clip(s * rng.uniform(0.7, 1.2), 0, 1)), float(np.clip(v + rng.choice([-1, 1]) * rng.uniform(0.08, 0.25), 0.04, 0.96)))


def _palette(rng: np.random.Generator, scheme: str) -> tuple[RGB, RGB, RGB]:
    """(base, second, accent) colours of a scheme."""
    if scheme == "neutral_accent":
        base = _neutral(rng)
        return base, _neutral(rng, exclude=None) if rng.uniform() < 0.6 else base, _accent(rng)
    if scheme == "tonal":
        base = _neutral(rng) if rng.uniform() < 0.6 else _hsv(rng.uniform(), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.85))
        return base, _shade_of(base, rng), _shade_of(base, rng)
    hue = rng.uniform()
    base = _neutral(rng) if rng.uniform() < 0.5 else _accent(rng, hue)
    harmony = _pick(rng, [0.5, 1 / 3, 0.08, 0.0], [0.35, 0.2, 0.3, 0.15])  # complementary, triadic, analogous, same
    return base, _accent(rng, hue), _accent(rng, hue + harmony)


def _sole_colours(rng: np.random.Generator, base: RGB, accent: RGB) -> tuple[RGB, RGB]:
    white, sail, black = NEUTRALS[0][1], NEUTRALS[1][1], NEUTRALS[5][1]
    mid = _pick(rng, [white, sail, black, (0.6, 0.6, 0.62), GUM, accent, base], [0.42, 0.18, 0.16, 0.06, 0.04, 0.07, 0.07])
    if mid == black:
        out = _pick(rng, [black, GUM, (0.2, 0.2, 0.21)], [0.7, 0.1, 0.2])
    else:
        out = _pick(rng, [mid, GUM, black, (0.25, 0.25, 0.26), accent], [0.42, 0.2, 0.18, 0.12, 0.08])
    jitter = lambda c: tuple(float(x) for x in np.clip(np.asarray(c) + rng.normal(0, 0.01, 3), 0, 1))  # noqa: E731
    return jitter(mid), jitter(out)


def sample_style(rng: np.random.Generator) -> MaterialStyle:
    """Draw one shoe's look: a scheme, colours per part and panel, materials, logo, sole and pattern scales."""
    scheme = _pick(rng, list(SCHEMES), [0.5, 0.2, 0.3])
    kind = _pick(rng, ["court", "runner", "skate"], [0.45, 0.35, 0.2])
    base, second, accent = _palette(rng, scheme)
    params = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in STYLE_RANGES.items()}

    upper_mat = {"court": "leather", "runner": _pick(rng, ["knit", "mesh"]), "skate": _pick(rng, ["suede", "canvas"], [0.7, 0.3])}[kind]
    panel_mat = {"court": _pick(rng, ["leather", "suede"], [0.75, 0.25]), "runner": _pick(rng, ["suede", "leather"]), "skate": "suede"}[kind]
    dark = _neutral(rng) if rng.uniform() < 0.3 else _pick(rng, [NEUTRALS[5][1], NEUTRALS[4][1], base])
    lace = _pick(rng, [base, NEUTRALS[0][1], NEUTRALS[5][1], second], [0.5, 0.25, 0.15, 0.1])
    colours = {
        "sole": base,  # not used for the sole itself (midsole/outsole colours are), kept for completeness
        "upper": base,
        "tongue": _pick(rng, [base, second], [0.7, 0.3]),
        "collar": _pick(rng, [base, second, dark], [0.45, 0.35, 0.2]),
        "heel_counter": _pick(rng, [second, base, accent], [0.55, 0.3, 0.15]),
        "pull_tab": _pick(rng, [accent, second, base], [0.45, 0.35, 0.2]),
        "laces": lace,
        "overlay": second,
        "lining": _pick(rng, [base, second, dark, accent], [0.35, 0.2, 0.35, 0.1]),
    }
    materials = {
        "sole": "foam", "upper": upper_mat, "tongue": _pick(rng, [upper_mat, "mesh", "textile"], [0.5, 0.3, 0.2]),
        "collar": _pick(rng, [upper_mat, panel_mat, "textile"], [0.5, 0.3, 0.2]), "heel_counter": panel_mat,
        "pull_tab": _pick(rng, ["textile", "leather"]), "laces": "textile", "overlay": panel_mat, "lining": "textile",
    }
    panels: dict[str, RGB] = {}
    for name, prob, colour in (("toe_cap", 0.45, second), ("mudguard", 0.35, second), ("heel_panel", 0.45, colours["heel_counter"]),
                               ("eyestay", 0.4, _pick(rng, [second, accent], [0.7, 0.3]))):
        if rng.uniform() < prob:
            panels[name] = colour
    logo = _pick(rng, list(LOGOS), [0.25, 0.45, 0.3])
    logo_color = _pick(rng, [accent, second, NEUTRALS[5][1], NEUTRALS[0][1]], [0.5, 0.25, 0.15, 0.1])
    if scheme == "tonal" and rng.uniform() < 0.7:
        logo_color = _shade_of(base, rng)
    midsole, outsole = _sole_colours(rng, base, accent)
    lum = lambda c: 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2]  # noqa: E731
    stitch = _pick(rng, [base, NEUTRALS[0][1], NEUTRALS[5][1]], [0.6, 0.2, 0.2])
    if abs(lum(stitch) - lum(second)) < 0.05 and rng.uniform() < 0.5:  # tone-on-tone thread still reads through the shading
        stitch = _shade_of(second, rng)
    return MaterialStyle(
        scheme=scheme, kind=kind, part_colors=colours, part_materials=materials, panels=panels, panel_material=panel_mat,
        logo=logo, logo_color=logo_color, stripe_count=int(rng.integers(2, 5)), logo_sides=_pick(rng, ["both", "lateral"], [0.8, 0.2]),
        heel_logo=_pick(rng, [None, accent, logo_color, second], [0.35, 0.25, 0.25, 0.15]),
        tongue_label=_pick(rng, [None, accent, NEUTRALS[5][1], NEUTRALS[0][1]], [0.4, 0.25, 0.2, 0.15]),
        midsole_color=midsole, outsole_color=outsole,
        midsole_stripe=_pick(rng, [None, accent, second], [0.75, 0.15, 0.1]),
        cupsole_stitch=kind == "court" and rng.uniform() < 0.4, stitching=rng.uniform() < 0.9, stitch_color=stitch,
        perforations=kind == "court" and rng.uniform() < 0.55, params=params,
    )


# ----------------------------------------------------------------------------------------- noise


def _hash01(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) on an integer lattice (splitmix-style integer hash)."""
    h = (ix.astype(np.int64) * 73856093) ^ (iy.astype(np.int64) * 19349663) ^ (iz.astype(np.int64) * 83492791) ^ (seed * 2654435761)
    h = h.astype(np.uint64)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def value_noise(points: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth 3D value noise in [-1, 1] with feature size ``cell``. points (..., 3) -> (...)."""
    q = points / cell
    i = np.floor(q)
    f = q - i
    f = f * f * (3 - 2 * f)
    i = i.astype(np.int64)
    out = np.zeros(points.shape[:-1])
    for dx in (0, 1):
        wx = f[..., 0] if dx else 1 - f[..., 0]
        for dy in (0, 1):
            wy = f[..., 1] if dy else 1 - f[..., 1]
            for dz in (0, 1):
                wz = f[..., 2] if dz else 1 - f[..., 2]
                out += wx * wy * wz * _hash01(i[..., 0] + dx, i[..., 1] + dy, i[..., 2] + dz, seed)
    return 2 * out - 1


def _aa(period: float | np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Contrast kept by a pattern of ``period`` at texel size ``footprint``: 1 from 4 texels per period, 0 at 2."""
    return np.clip(np.asarray(period) / footprint / 2 - 1, 0, 1)


def fbm(points: np.ndarray, cell: float, seed: int, footprint: np.ndarray, octaves: int = 3) -> np.ndarray:
    """Fractal value noise (octaves halve the cell), octaves below the texel footprint faded out. -> (...) ~[-1, 1]."""
    out, amp, total = np.zeros(points.shape[:-1]), 1.0, 0.0
    for o in range(octaves):
        c = cell / 2**o
        out += amp * _aa(2 * c, footprint) * value_noise(points, c, seed + 101 * o)
        total += amp
        amp *= 0.5
    return out / total


def _line(dist: np.ndarray, width: float, footprint: np.ndarray) -> np.ndarray:
    """Antialiased coverage of a line at distance ``dist`` (3D units) of ``width``; thinner than a texel -> fainter."""
    w = np.maximum(width, footprint)
    return np.clip((w / 2 - np.abs(dist)) / footprint + 0.5, 0, 1) * (width / w)


def _dashes(along: np.ndarray, pitch: float, footprint: np.ndarray, duty: float = 0.65) -> np.ndarray:
    """Dash pattern (1 on a stitch, 0 between) along a coordinate in 3D units, fading to ``duty`` when unresolved."""
    on = (np.mod(along / pitch, 1.0) < duty).astype(np.float64)
    k = _aa(pitch, footprint)
    return k * on + (1 - k) * duty


# ----------------------------------------------------------------------------------------- geometry helpers


@dataclass
class _Frame:
    """Per-texel helpers derived once from the G-buffer."""

    valid: np.ndarray      # (T, T) bool
    footprint: np.ndarray  # (T, T) texel size in 3D units
    xr: np.ndarray         # (T, T) along the shoe, heel 0 -> toe 1
    hr: np.ndarray         # (T, T) height between the upper's bottom and top at that xr, 0 -> 1
    length: float          # shoe length (3D units)
    height: np.ndarray     # (T, T) upper height at that xr (3D units)
    lx: np.ndarray         # (T, T) 3D length of one unit of local u of the texel's part
    ly: np.ndarray         # (T, T) same for local v


def _footprint(g: TexelGBuffer, valid: np.ndarray) -> np.ndarray:
    """Texel size in 3D: the larger step to the right/lower neighbour of the same part (median elsewhere)."""
    pos, part = g.position.astype(np.float64), g.part
    steps = []
    for axis in (0, 1):
        d = np.linalg.norm(np.diff(pos, axis=axis), axis=-1)
        same = (np.diff(part.astype(np.int32), axis=axis) == 0) & (part[:-1, :] if axis == 0 else part[:, :-1]) >= 0
        d = np.where(same, d, np.nan)
        pad = ((0, 1), (0, 0)) if axis == 0 else ((0, 0), (0, 1))
        steps.append(np.pad(d, pad, constant_values=np.nan))
    fp = np.fmax(steps[0], steps[1])
    ok = np.isfinite(fp) & valid
    med = float(np.median(fp[ok])) if ok.any() else 1.0 / g.size
    # A step across an atlas seam inside one part is long: never trust more than 4x the median.
    fp = np.where(ok, np.clip(fp, med / 4, 4 * med), med)
    return ndimage.median_filter(fp, size=3)


def _local_scale(g: TexelGBuffer) -> tuple[np.ndarray, np.ndarray]:
    """Per part, 3D length per unit of local u and v: least squares |dp|^2 ~ a^2 du^2 + b^2 dv^2 over neighbours."""
    pos, loc, part = g.position.astype(np.float64), g.local.astype(np.float64), g.part
    lx, ly = np.ones(part.shape), np.ones(part.shape)
    rows = {p: [] for p in range(len(PARTS))}
    for axis in (0, 1):
        dp = np.sum(np.diff(pos, axis=axis) ** 2, -1)
        dl = np.diff(loc, axis=axis) ** 2
        a = part[:-1, :] if axis == 0 else part[:, :-1]
        b = part[1:, :] if axis == 0 else part[:, 1:]
        ok = (a == b) & (a >= 0) & (dp > 0)
        for p in np.unique(a[ok]):
            m = ok & (a == p)
            rows[int(p)].append((dl[m], dp[m]))
    for p, chunks in rows.items():
        if not chunks:
            continue
        A = np.concatenate([c[0] for c in chunks])
        y = np.concatenate([c[1] for c in chunks])
        # Neighbours straddling a seam jump in local coordinates: drop the largest 2% of steps.
        keep = np.linalg.norm(A, axis=1) <= np.quantile(np.linalg.norm(A, axis=1), 0.98)
        coef, *_ = np.linalg.lstsq(A[keep], y[keep], rcond=None)
        coef = np.sqrt(np.clip(coef, 1e-8, None))
        lx[part == p], ly[part == p] = coef[0], coef[1]
    return lx, ly


def _frame(g: TexelGBuffer) -> _Frame:
    valid = g.part >= 0
    if not valid.any():
        raise ValueError("paint_texture: the TexelGBuffer has no covered texel (part >= 0 nowhere)")
    pos = g.position.astype(np.float64)
    x, y = pos[..., 0], pos[..., 1]
    x0, x1 = float(x[valid].min()), float(x[valid].max())
    length = max(x1 - x0, 1e-6)
    xr = np.clip((x - x0) / length, 0, 1)
    # The upper's lowest and highest y per slice along the length (fall back to every part if there is no upper).
    ref = valid & (g.part == PART_ID["upper"]) if (g.part == PART_ID["upper"]).any() else valid
    bins = 48
    idx = np.clip((xr * bins).astype(int), 0, bins - 1)
    labels = np.arange(1, bins + 1)
    lo = np.asarray(ndimage.minimum(y, labels=np.where(ref, idx + 1, 0), index=labels), dtype=np.float64)
    hi = np.asarray(ndimage.maximum(y, labels=np.where(ref, idx + 1, 0), index=labels), dtype=np.float64)
    sole = valid & (g.part == PART_ID["sole"])
    if sole.any():  # a cup sole hides the upper's bottom: the visible upper starts at the sole's top
        sole_top = np.asarray(ndimage.maximum(y, labels=np.where(sole, idx + 1, 0), index=labels), dtype=np.float64)
        lo = np.where(np.bincount(idx[sole], minlength=bins) > 0, np.maximum(lo, sole_top), lo)
    have = (np.bincount(idx[ref], minlength=bins) > 0) & (hi > lo)  # empty bins read 0 in ndimage: skip them
    centres = (np.arange(bins) + 0.5) / bins
    lo_f = np.interp(xr, centres[have], ndimage.uniform_filter1d(lo[have], 3))
    hi_f = np.interp(xr, centres[have], ndimage.uniform_filter1d(hi[have], 3))
    height = np.maximum(hi_f - lo_f, 1e-3)
    hr = np.clip((y - lo_f) / height, -0.5, 1.5)
    lx, ly = _local_scale(g)
    return _Frame(valid, _footprint(g, valid), xr, hr, length, height, lx, ly)


# ----------------------------------------------------------------------------------------- patterns


def _material_pattern(
    material: str, g: TexelGBuffer, fr: _Frame, style: MaterialStyle, seed: int, colour: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Albedo and gloss of ``material`` with base colour ``colour`` (3,) on the texels of ``mask`` (T, T) only.

    Returns (albedo (T, T, 3), gloss (T, T)), zero outside ``mask`` (patterns cost per covered texel).
    """
    p = style.params
    k = p["noise_strength"]
    albedo_full, gloss_full = np.zeros(mask.shape + (3,)), np.zeros(mask.shape)
    if not mask.any():
        return albedo_full, gloss_full
    pos, fp = g.position[mask].astype(np.float64), fr.footprint[mask]
    gloss = np.full(fp.shape, MATERIAL_GLOSS[material] * p["gloss_scale"])
    lum = np.ones(fp.shape)
    mix = np.zeros(fp.shape)  # toward a second tone (heathered yarn, mesh holes)
    second = colour * 0.45
    # Metric local coordinates for woven patterns (3D units along the part's u and v).
    X, Y = g.local[mask][:, 0] * fr.lx[mask], g.local[mask][:, 1] * fr.ly[mask]
    if material == "leather":
        grain = fbm(pos, p["grain_scale"], seed, fp, 2)
        lum += k * (0.035 * grain + 0.025 * value_noise(pos, 0.08, seed + 7))
        gloss *= 1 + 0.35 * grain
    elif material == "suede":
        nap = fbm(pos, 0.02, seed, fp, 3)
        lum += k * 0.08 * nap
        lum *= 0.92  # suede reads darker and flatter than leather of the same dye
        gloss *= 1 + 0.5 * nap
    elif material == "knit":
        per = p["knit_period"]
        rows = 0.5 + 0.5 * np.cos(2 * np.pi * Y / per)
        cols = 0.5 + 0.5 * np.cos(2 * np.pi * X / (0.7 * per))
        lum += k * _aa(per * 0.7, fp) * 0.09 * (rows * cols - 0.25)
        heather = value_noise(pos, per * 0.8, seed + 3) > 0.55
        mix += heather * 0.35 * _aa(per, fp) + (1 - _aa(per, fp)) * 0.35 * 0.22  # mean of the heather when unresolved
        second = np.clip(colour * 0.7 + 0.12, 0, 1)
    elif material == "mesh":
        per = p["mesh_period"]
        u = np.mod(X / per, 1.0) - 0.5
        v = np.mod(Y / per + 0.5 * (np.floor(X / per) % 2), 1.0) - 0.5  # staggered rows of cells
        d = np.sqrt((u * per) ** 2 + (v * per) ** 2)
        hole = np.clip((0.3 * per - d) / fp + 0.5, 0, 1)
        w = _aa(per, fp)
        mix += 0.75 * (w * hole + (1 - w) * np.pi * 0.3**2)
        lum += k * 0.03 * fbm(pos, 0.01, seed, fp, 2)
    elif material == "canvas":
        per = 0.003
        weave = np.sign(np.sin(2 * np.pi * X / per)) * np.sign(np.sin(2 * np.pi * Y / per))
        lum += k * (_aa(per, fp) * 0.04 * weave + 0.03 * value_noise(pos, 0.05, seed))
    elif material == "foam":
        lum += k * 0.015 * fbm(pos, 0.01, seed, fp, 2)
    elif material == "rubber":
        lum += k * 0.03 * fbm(pos, 0.006, seed, fp, 2)
    elif material == "textile":
        lum += k * 0.04 * fbm(pos, 0.004, seed, fp, 2)
    albedo = colour[None, :] * lum[:, None]
    albedo_full[mask] = albedo * (1 - mix[:, None]) + second * mix[:, None]
    gloss_full[mask] = gloss
    return albedo_full, gloss_full


def _paint(albedo, gloss, where, colour, g_val=None, amount=None) -> None:
    """Blend ``colour`` into ``albedo`` where ``where`` (bool or coverage in [0, 1]); optionally set gloss."""
    w = where.astype(np.float64) if amount is None else where.astype(np.float64) * amount
    albedo[:] = albedo * (1 - w[..., None]) + np.asarray(colour) * w[..., None]
    if g_val is not None:
        gloss[:] = gloss * (1 - w) + g_val * w


def _toe_cap_field(fr: _Frame, start: float) -> np.ndarray:
    """Signed 3D distance to the toe cap's edge (> 0 inside); the edge sweeps back toward the sole."""
    f = fr.xr - (start - 0.08 * (1 - np.clip(fr.hr, 0, 1)))
    grad = np.sqrt((1 / fr.length) ** 2 + (0.08 / fr.height) ** 2)
    return f / grad


def _heel_panel_field(fr: _Frame, length: float) -> np.ndarray:
    """Signed distance to the heel panel's front edge (> 0 inside): long at the sole, shorter at the collar."""
    f = length * (1 - 0.45 * np.clip(fr.hr, 0, 1)) - fr.xr
    grad = np.sqrt((1 / fr.length) ** 2 + (0.45 * length / fr.height) ** 2)
    return f / grad


def _swoosh_field(fr: _Frame, p: dict) -> np.ndarray:
    """Signed distance (> 0 inside) of a swoosh-like stripe: a thin tail high at the heel end sweeping down
    and forward, thickening to a belly low on the quarter and ending in a short upturned hook."""
    t = (fr.xr - p["logo_start"]) / p["logo_length"]  # 0 tail (heel side) -> 1 hook (toe side)
    tc = np.clip(t, 0, 1)
    hook = np.clip((tc - 0.78) / 0.22, 0, 1)
    centre = p["logo_height"] + 0.22 - 0.42 * tc**1.2 + 0.3 * hook**2
    half = p["logo_width"] * 1.2 * tc**1.3 * np.sqrt(np.clip(1 - hook**2, 0, 1)) + 1e-4
    dy = (fr.hr - centre) * fr.height
    inside = half - np.abs(dy)
    return np.where((t >= 0) & (t <= 1), inside, -1.0)


def _stripes_field(fr: _Frame, p: dict, count: int) -> np.ndarray:
    """Signed distance to the nearest of ``count`` parallel slanted stripes over the quarter (> 0 inside)."""
    spacing = p["logo_length"] / max(count, 1) * 0.55
    best = np.full(fr.xr.shape, -1.0)
    for i in range(count):
        x_c = p["logo_start"] + 0.12 + i * spacing - 0.09 * (np.clip(fr.hr, 0, 1) - 0.5)  # slanted toward the heel at the top
        d = p["logo_width"] / 2 - np.abs(fr.xr - x_c) * fr.length
        band = (fr.hr > 0.1) & (fr.hr < 0.85)
        best = np.maximum(best, np.where(band, d, -1.0))
    return best


def _glyph(a: np.ndarray, b: np.ndarray, width: float, height: float, n: int, seed: int, fp: np.ndarray) -> np.ndarray:
    """Coverage of a text-like glyph row centred at (a, b) = (0, 0): ``n`` blocky letters. a, b in 3D units."""
    rng = np.random.default_rng(seed)
    cov = np.zeros(a.shape)
    cell = width / n
    for i in range(n):
        x0 = -width / 2 + i * cell
        top, bot = height / 2 * rng.uniform(0.6, 1.0), -height / 2
        for _ in range(2):  # two strokes per letter: a vertical and a bar
            if rng.uniform() < 0.6:
                cx, w, h0, h1 = x0 + cell * rng.uniform(0.15, 0.6), cell * 0.22, bot, top
            else:
                cx, w, h0, h1 = x0 + cell * 0.4, cell * 0.7, bot + (top - bot) * rng.uniform(0, 0.8), None
                h1 = h0 + height * 0.18
            inside = np.minimum(w / 2 - np.abs(a - cx), np.minimum(b - h0, h1 - b))
            cov = np.maximum(cov, np.clip(inside / fp + 0.5, 0, 1))
    return cov


def _crease_occlusion(g: TexelGBuffer, strength: float, radius: float) -> np.ndarray:
    """(T, T) albedo multiplier in [1 - strength, 1]: 1 - strength * exp(-d / radius), d the 3D distance of a
    texel to the nearest texel of a part that ``OCCLUDERS`` says shadows it (a baked ambient occlusion)."""
    from scipy.spatial import cKDTree

    out = np.ones(g.part.shape)
    pos = g.position.astype(np.float64)
    for receiver, occluders in OCCLUDERS.items():
        rec = g.part == PART_ID[receiver]
        occ = np.isin(g.part, [PART_ID[o] for o in occluders])
        if not rec.any() or not occ.any():
            continue
        d, _ = cKDTree(pos[occ]).query(pos[rec], distance_upper_bound=6 * radius)
        out[rec] = 1 - strength * np.exp(-np.minimum(d, 6 * radius) / radius)
    return out


def paint_texture(gbuffer: TexelGBuffer, style: MaterialStyle, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint a shoe's albedo and gloss from its texel G-buffer.

    Args:
        gbuffer: the (T, T) texel G-buffer (``parts.TexelGBuffer``); any T from 64 up.
        style: what to paint (``sample_style``).
        rng: draws the noise seeds (the same generator state gives the same texture).
    Returns:
        albedo (T, T, 3) float32 in [0, 1], gloss (T, T) float32 in [0, 1]; texels no part covers take
        their nearest covered texel's values (so bilinear sampling at chart edges never bleeds).
    """
    g, s, p = gbuffer, style, style.params
    fr = _frame(g)
    seed = int(rng.integers(2**31))
    t = g.size
    albedo = np.zeros((t, t, 3))
    gloss = np.zeros((t, t))
    part = g.part
    # 1. Base colour and material per part.
    for name in PARTS:
        m = part == PART_ID[name]
        if not m.any():
            continue
        colour = np.asarray(s.midsole_color if name == "sole" else s.part_colors.get(name, (0.9, 0.9, 0.9)), dtype=np.float64)
        material = s.part_materials.get(name, "leather")
        a, gl = _material_pattern(material, g, fr, s, seed + PART_ID[name], colour, m)
        if name == "lining":
            a = a * 0.75  # the inside of the shoe gets little light: the renderer has no occlusion
        albedo[m], gloss[m] = a[m], gl[m]
    upperish = np.isin(part, [PART_ID[n] for n in ("upper", "overlay", "heel_counter")])
    side = np.abs(g.normal[..., 2]) > 0.3
    lateral = g.position[..., 2] > np.median(g.position[..., 2][fr.valid])
    stitch_rows = np.zeros((t, t))

    def add_stitches(dist_to_edge: np.ndarray, along: np.ndarray, where: np.ndarray) -> None:
        """A stitch row parallel to an edge, ``stitch_offset`` inside it (``dist_to_edge`` > 0 inside)."""
        if not s.stitching:
            return
        row = _line(dist_to_edge - p["stitch_offset"], p["stitch_width"], fr.footprint)
        row = row * _dashes(along, p["stitch_pitch"], fr.footprint)
        stitch_rows[:] = np.maximum(stitch_rows, row * where)

    # 2. Panels on the upper (colour blocking), each with a stitch row along its edge.
    pmat_a, pmat_g = {}, {}
    along_x = g.position[..., 0]
    along_y = g.position[..., 1]
    on_upper = part == PART_ID["upper"]
    for name, colour in s.panels.items():
        if name == "toe_cap":
            d = _toe_cap_field(fr, p["toe_cap_start"])
            along = along_y + g.position[..., 2]
        elif name == "mudguard":
            d = (p["mudguard_height"] - fr.hr) * fr.height
            d = np.where(fr.xr > 0.3, d, np.minimum(d, (fr.xr - 0.3) * fr.length + p["stitch_offset"] * 3))
            along = along_x
        elif name == "heel_panel":
            d = _heel_panel_field(fr, p["heel_panel_length"])
            along = along_y + g.position[..., 2]
        else:  # eyestay: a band along the lace rows, found in 3D
            lace = part == PART_ID["laces"]
            if not lace.any():
                continue
            from scipy.spatial import cKDTree

            dist, _ = cKDTree(g.position[lace].astype(np.float64)).query(g.position.reshape(-1, 3).astype(np.float64))
            d = 0.035 - dist.reshape(t, t)
            along = along_x
        key = (s.panel_material, tuple(colour))
        if key not in pmat_a:
            pmat_a[key], pmat_g[key] = _material_pattern(s.panel_material, g, fr, s, seed + 50 + len(pmat_a),
                                                          np.asarray(colour, dtype=np.float64), on_upper)
        cov = np.clip(d / fr.footprint + 0.5, 0, 1) * on_upper
        albedo[:] = albedo * (1 - cov[..., None]) + pmat_a[key] * cov[..., None]
        gloss[:] = gloss * (1 - cov) + pmat_g[key] * cov
        add_stitches(d, along, on_upper)
    # 3. Perforations on the toe box (inside the toe cap region, above the mudguard line).
    if s.perforations:
        per = p["perf_pitch"]
        X, Y = g.local[..., 0] * fr.lx, g.local[..., 1] * fr.ly
        u = np.mod(X / per, 1.0) - 0.5
        v = np.mod(Y / per + 0.5 * (np.floor(X / per) % 2), 1.0) - 0.5
        d = np.sqrt(u**2 + v**2) * per
        w = _aa(per, fr.footprint)
        hole = w * np.clip((0.22 * per - d) / fr.footprint + 0.5, 0, 1) + (1 - w) * np.pi * 0.22**2
        zone = (_toe_cap_field(fr, p["toe_cap_start"] + 0.03) > 0.01) & (fr.hr > 0.35) & on_upper
        _paint(albedo, gloss, zone, albedo * 0.35, 0.0, hole)
    # 4. Side logo, on both sides or the lateral only.
    if s.logo != "none":
        d = _swoosh_field(fr, p) if s.logo == "swoosh" else _stripes_field(fr, p, s.stripe_count)
        where = upperish & side & (lateral if s.logo_sides == "lateral" else True)
        cov = np.clip(d / fr.footprint + 0.5, 0, 1) * where
        _paint(albedo, gloss, cov, s.logo_color, MATERIAL_GLOSS["leather"] * p["gloss_scale"])
        add_stitches(d, along_x + along_y, where)
    # 5. Heel glyph on the back, tongue label on the tongue's top.
    back = (g.normal[..., 0] < -0.6) & np.isin(part, [PART_ID[n] for n in ("upper", "heel_counter", "collar", "overlay")])
    if s.heel_logo is not None and back.any():
        yb = g.position[..., 1][back]
        yc = float(np.quantile(yb, 0.6))
        zc = float(np.median(g.position[..., 2][back]))
        cov = _glyph(-(g.position[..., 2] - zc), g.position[..., 1] - yc, 0.07, 0.022, 4, seed + 11, fr.footprint) * back
        _paint(albedo, gloss, cov, s.heel_logo)
    tongue = part == PART_ID["tongue"]
    if s.tongue_label is not None and tongue.any():
        zc = float(np.median(g.position[..., 2][tongue]))
        yc = float(np.quantile(g.position[..., 1][tongue], 0.85))
        a, b = g.position[..., 2] - zc, g.position[..., 1] - yc
        label = np.clip(np.minimum(0.022 - np.abs(a), 0.014 - np.abs(b)) / fr.footprint + 0.5, 0, 1) * tongue * (g.normal[..., 1] > -0.2)
        _paint(albedo, gloss, label, s.tongue_label, 0.2)
        glyph = _glyph(a, b, 0.03, 0.012, 3, seed + 13, fr.footprint) * label
        lum = 0.3 * s.tongue_label[0] + 0.59 * s.tongue_label[1] + 0.11 * s.tongue_label[2]
        _paint(albedo, gloss, glyph, (0.95, 0.95, 0.95) if lum < 0.5 else (0.08, 0.08, 0.08))
    # 6. Stitch rows along part edges: local coordinates rescaled per atlas island (one island = one piece),
    #    so an edge is where the piece's own local range ends, whatever range the shape gave the part.
    loc_u, loc_v = g.local[..., 0].astype(np.float64), g.local[..., 1].astype(np.float64)
    for name, edges in STITCH_EDGES.items():
        m = part == PART_ID[name]
        if not m.any():
            continue
        islands, n = ndimage.label(m, structure=np.ones((3, 3)))
        ids = np.arange(1, n + 1)
        ranges = {}
        for key, loc in (("u", loc_u), ("v", loc_v)):
            lo = np.asarray(ndimage.minimum(loc, islands, ids), dtype=np.float64)
            hi = np.asarray(ndimage.maximum(loc, islands, ids), dtype=np.float64)
            ranges[key] = (np.concatenate([[0.0], lo])[islands], np.concatenate([[1.0], hi])[islands])
        for e in edges:
            lo, hi = ranges[e[0]]
            loc, scale = (loc_u, fr.lx) if e[0] == "u" else (loc_v, fr.ly)
            dist = ((loc - lo) if e[1] == "0" else (hi - loc)) * scale
            along = loc_v * fr.ly if e[0] == "u" else loc_u * fr.lx
            add_stitches(dist, along, m)
            if name in ("overlay", "pull_tab"):  # double rows on overlays, like real ones
                add_stitches(dist - 0.6 * p["stitch_offset"] - p["stitch_width"], along, m)
    # 7. The sole: outsole band at the bottom, midsole above, an optional stripe, tread underneath.
    sole = part == PART_ID["sole"]
    if sole.any():
        h = loc_v
        sole_scale = fr.ly
        out_a, out_g = _material_pattern("rubber", g, fr, s, seed + 31, np.asarray(s.outsole_color, dtype=np.float64), sole)
        under = g.normal[..., 1] < -0.6
        band = np.clip((p["outsole_band"] - h) * sole_scale / fr.footprint + 0.5, 0, 1)
        cov = np.maximum(band, under.astype(np.float64)) * sole
        albedo[:] = albedo * (1 - cov[..., None]) + out_a * cov[..., None]
        gloss[:] = gloss * (1 - cov) + out_g * cov
        if s.midsole_stripe is not None:
            line = _line((h - (p["outsole_band"] + 0.12)) * sole_scale, 0.004, fr.footprint) * sole * ~under
            _paint(albedo, gloss, line, s.midsole_stripe)
        # Tread: herringbone grooves underneath (darker).
        xz = g.position[..., 0] + 0.6 * np.abs(g.position[..., 2] - np.median(g.position[..., 2][sole]))
        groove = _line(np.mod(xz, 0.018) - 0.009, 0.004, fr.footprint) * under * sole
        albedo[:] *= (1 - 0.35 * groove)[..., None]
        if s.cupsole_stitch:
            add_stitches(np.where(sole & ~under, (h - 0.6) * sole_scale, -1.0) + p["stitch_offset"], loc_u * fr.lx, sole & ~under)
    # 8. Creases: where a part meets or covers another the renderer (no occlusion) would light both fully.
    albedo *= _crease_occlusion(g, p["crease_strength"], p["crease_radius"])[..., None]
    # 9. Stitches: thread colour.
    _paint(albedo, gloss, stitch_rows, s.stitch_color, 0.15, 0.85)
    albedo, gloss = np.clip(albedo, 0, 1), np.clip(gloss, 0, 1)
    # 10. Fill texels outside every chart with their nearest covered texel.
    if not fr.valid.all():
        idx = ndimage.distance_transform_edt(~fr.valid, return_distances=False, return_indices=True)
        albedo, gloss = albedo[idx[0], idx[1]], gloss[idx[0], idx[1]]
    return albedo.astype(np.float32), gloss.astype(np.float32)
