"""The multi-part shoe: parameters, sampling, and one closed surface per part.

Parts (names in ``parts.PARTS``), each a closed genus-0 surface meshed by ``mesher.mesh_surface``:

* sole: outsole + midsole, a cup: an extruded footprint (heel and forefoot thickness, toe spring,
  flared and slanted heel, bevelled bottom edge, optional cupsole lip) whose top holds the upper in
  a cavity, so that the two parts overlap only in thin walls.
* upper: the body of the shoe (toe box, vamp, quarters, collar line, the opening as a dip in the
  top); below the sole's ledge it fills the sole's cavity down to a thin floor.
* tongue: a slab on the vamp that rises above the throat. collar: a padded tube along the back
  of the opening. heel_counter: a band around the heel. pull_tab: slabs at the back of the collar
  (and the top of the tongue). laces: tubes across the throat. overlay: optional mudguard band
  around the toe and eyestay strips along the lacing.

Hidden geometry is kept thin on purpose: ground-truth meshes are compared with a single genus-0
prediction by surface sampling (``eval.metrics``), and every hidden surface lies within a part's
wall thickness (< 2 % of the length) of a visible one.

Units: shoe length 1 (heel of the upper at x = 0, toe at x = 1), ground at y = 0 under the heel,
+Y up, lateral side of a right shoe at +Z. ``shoe_parts`` returns raw meshes; ``shoe.py``
normalises them like the data (centred bounding box, longest extent 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np
from scipy.interpolate import PchipInterpolator

from shoerecon.data.synth.mesher import mesh_surface

# ----------------------------------------------------------------------------------------- parameters

#: Global range of every continuous shape parameter (length 1). Styles sample sub-ranges of these.
DEFAULT_SHAPE_RANGES: dict[str, tuple[float, float]] = {
    "width_ratio": (0.33, 0.45),          # widest sole width / length
    "heel_sole": (0.07, 0.16),            # sole top at the heel above the ground (real: 0.08-0.14)
    "fore_sole": (0.035, 0.085),          # sole top at the forefoot above the sole bottom (real: 0.04-0.08)
    "toe_spring": (0.01, 0.06),           # lift of the sole under the toe tip
    "heel_flare": (0.0, 0.03),            # how far the sole's heel reaches behind the upper at the ground
    "sole_flare": (0.0, 0.012),           # outward flare of the sole's sidewall at the ground
    "sole_margin": (0.006, 0.018),        # sole sidewall outside the upper (the ledge)
    "cupsole_lip": (0.0, 0.02),           # rim of a cupsole above its ledge
    "toe_box_height": (0.085, 0.13),      # upper height above the sole at the toe box
    "collar_height": (0.31, 0.68),        # top of the collar at the heel above the ground
    "ankle_dip": (0.0, 0.08),             # how far the collar line dips behind the tongue
    "tongue_rise": (-0.02, 0.09),         # tongue top above the collar height
    "opening_start": (0.06, 0.11),        # s where the opening begins
    "opening_length": (0.26, 0.36),       # length of the opening in s
    "opening_width": (0.6, 0.78),         # half-width of the opening / half-width of the upper
    "opening_depth": (0.05, 0.14),        # depth of the opening below its rim
    "lace_end": (0.66, 0.76),             # s where the lacing ends on the vamp
    "heel_radius": (0.07, 0.12),          # rounding of the heel in s
    "heel_squareness": (2.2, 3.2),        # superellipse exponent of the heel (higher = blunter)
    "toe_radius": (0.17, 0.26),           # rounding of the toe in s
    "upper_taper": (0.12, 0.3),           # how much narrower the upper's top is than its base
    "toe_offset": (0.0, 0.035),           # medial shift of the toe tip (big-toe side), right shoe
    "arch_depth": (0.0, 0.12),            # relative indentation of the medial midfoot outline
    "collar_padding": (0.008, 0.02),      # radius of the padded collar
    "counter_height": (0.3, 0.75),        # heel counter height / upper height at the heel
    "counter_length": (0.12, 0.26),       # heel counter reach along the sides (s)
    "tab_height": (0.015, 0.05),          # pull tab above the collar
}

#: Shoe styles: probability and the sub-ranges they sample (other parameters: the global range).
STYLES: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {
    "low": (0.53, {"collar_height": (0.32, 0.41), "ankle_dip": (0.02, 0.07), "tongue_rise": (0.02, 0.09)}),
    "mid": (0.12, {"collar_height": (0.41, 0.5), "ankle_dip": (0.01, 0.05), "tongue_rise": (0.0, 0.06)}),
    "high": (0.3, {"collar_height": (0.51, 0.61), "ankle_dip": (0.0, 0.03), "tongue_rise": (-0.02, 0.04),
                   "opening_start": (0.05, 0.08), "opening_length": (0.28, 0.34)}),
    "tall": (0.05, {"collar_height": (0.61, 0.68), "ankle_dip": (0.0, 0.02), "tongue_rise": (-0.02, 0.02),
                    "opening_start": (0.05, 0.08), "opening_length": (0.28, 0.34)}),
}

#: Sole kinds: probability and sub-ranges (slim runners to chunky soles). Width goes with the sole, as in real
#: sneakers: racers and slim runners are narrow (about 0.33-0.38 of the length), court and lifestyle shoes
#: 0.35-0.40 (Air Force 1, Superstar, Old Skool ~0.37), chunky "dad" and skate shoes wide (0.38-0.45). Drawn
#: independently of everything a side view shows, the width was a coin toss for the network (quality model:
#: width r(pred, true) = -0.1), and the family's mean (0.39) was wider than most real shoes.
SOLES: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {
    "slim": (0.25, {"heel_sole": (0.07, 0.09), "fore_sole": (0.035, 0.05), "sole_flare": (0.0, 0.006),
                    "width_ratio": (0.33, 0.38)}),
    "regular": (0.5, {"heel_sole": (0.085, 0.12), "fore_sole": (0.045, 0.065), "width_ratio": (0.35, 0.40)}),
    "chunky": (0.25, {"heel_sole": (0.115, 0.16), "fore_sole": (0.06, 0.085), "sole_flare": (0.004, 0.012),
                      "width_ratio": (0.38, 0.45)}),
}

_FLOOR = 0.006          # sole floor under the upper (hidden surfaces lie within it of the ground)
_TONGUE_THICKNESS = 0.012
_COUNTER_THICKNESS = 0.005
_LACE_RADIUS = 0.0055


@dataclass
class ShoeParams:
    """One shoe's shape: continuous parameters (``DEFAULT_SHAPE_RANGES``) and discrete choices.

    ``style`` is low / mid / high / tall (the tallest high tops), ``sole`` slim / regular / chunky; ``lace_rows`` lace tubes;
    the booleans switch optional parts; ``seed`` drives the appearance.
    """

    width_ratio: float = 0.38
    heel_sole: float = 0.105
    fore_sole: float = 0.055
    toe_spring: float = 0.035
    heel_flare: float = 0.012
    sole_flare: float = 0.005
    sole_margin: float = 0.012
    cupsole_lip: float = 0.0
    toe_box_height: float = 0.105
    collar_height: float = 0.42
    ankle_dip: float = 0.04
    tongue_rise: float = 0.035
    opening_start: float = 0.085
    opening_length: float = 0.31
    opening_width: float = 0.69
    opening_depth: float = 0.095
    lace_end: float = 0.71
    heel_radius: float = 0.095
    heel_squareness: float = 2.7
    toe_radius: float = 0.215
    upper_taper: float = 0.21
    toe_offset: float = 0.0175
    arch_depth: float = 0.06
    collar_padding: float = 0.014
    counter_height: float = 0.5
    counter_length: float = 0.19
    tab_height: float = 0.03
    style: str = "mid"
    sole: str = "regular"
    lace_rows: int = 6
    heel_tab: bool = True
    tongue_tab: bool = False
    toe_overlay: bool = False
    eyestay: bool = True
    seed: int = 0

    @classmethod
    def mean(cls, n: int = 2000) -> "ShoeParams":
        """The family's mean shape: every continuous parameter averaged over ``n`` draws (seeded).

        The template is built from it (``geometry.template``); discrete choices stay the defaults.
        """
        draws = [sample_shoe_params(np.random.default_rng([12345, i])) for i in range(n)]
        values = {k: float(np.mean([getattr(d, k) for d in draws])) for k in DEFAULT_SHAPE_RANGES}
        return cls(**values)


def continuous_names() -> list[str]:
    return [f.name for f in fields(ShoeParams) if f.name in DEFAULT_SHAPE_RANGES]


def _pick(rng: np.random.Generator, table: dict) -> str:
    names = list(table)
    probs = np.array([table[k][0] for k in names])
    return names[int(rng.choice(len(names), p=probs / probs.sum()))]


def sample_shoe_params(rng: np.random.Generator, ranges: dict | None = None) -> ShoeParams:
    """Draw one shoe: a style and a sole kind, then every continuous parameter uniform in its
    (style / sole) sub-range, clipped to ``ranges`` (default ``DEFAULT_SHAPE_RANGES``)."""
    ranges = ranges or DEFAULT_SHAPE_RANGES
    style, sole = _pick(rng, STYLES), _pick(rng, SOLES)
    sub = {**STYLES[style][1], **SOLES[sole][1]}
    values = {}
    for k in DEFAULT_SHAPE_RANGES:
        lo, hi = sub.get(k, ranges.get(k, DEFAULT_SHAPE_RANGES[k]))
        glo, ghi = ranges.get(k, DEFAULT_SHAPE_RANGES[k])
        lo, hi = max(lo, glo), min(hi, ghi)
        if lo > hi:
            lo = hi = min(max(lo, glo), ghi)
        values[k] = float(rng.uniform(lo, hi))
    values["cupsole_lip"] *= float(rng.uniform() < 0.35)  # most soles have no lip
    return ShoeParams(
        **values, style=style, sole=sole, lace_rows=int(rng.integers(4, 9)),
        heel_tab=bool(rng.uniform() < 0.75), tongue_tab=bool(rng.uniform() < 0.35),
        toe_overlay=bool(rng.uniform() < 0.5), eyestay=bool(rng.uniform() < 0.7), seed=int(rng.integers(2**31)),
    )


# ----------------------------------------------------------------------------------------- profiles


def _smoothstep(e0: float, e1: float, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _end_envelope(s, radius: float, power: float):
    """Superellipse quadrant that closes a profile at s = 0: 0 at the pole, 1 beyond ``radius``."""
    t = np.clip((radius - np.asarray(s, dtype=np.float64)) / radius, 0.0, 1.0)
    return (1.0 - t**power) ** (1.0 / power)


def _spow(x, e):
    return np.sign(x) * np.abs(x) ** e


@dataclass
class Profiles:
    """Profile functions of x (arrays of the shape of ``x``), in shoe-length units."""

    bottom: np.ndarray      # sole bottom y
    sole_top: np.ndarray    # sole ledge height (where the upper leaves the sole)
    top: np.ndarray         # the upper's side-silhouette top (before the opening)
    half_width: np.ndarray  # sole's outer lateral half-width (medial: times medial_scale)
    medial_scale: np.ndarray
    centre_z: np.ndarray


def profiles(p: ShoeParams, x) -> Profiles:
    x = np.asarray(x, dtype=np.float64)
    xc = np.clip(x, 0.0, 1.0)
    bottom = p.toe_spring * _smoothstep(0.6, 1.0, xc) ** 2
    sole_top = bottom + p.fore_sole + (p.heel_sole - p.fore_sole) * (1 - _smoothstep(0.25, 0.62, xc))
    o_end = p.opening_start + p.opening_length
    throat = p.collar_height - 0.4 * p.ankle_dip
    vamp = p.fore_sole + p.toe_box_height
    knots_x = [0.0, p.opening_start * 0.6, p.opening_start + 0.45 * p.opening_length, o_end,
               max(p.lace_end, o_end + 0.12), 0.9, 1.0]
    lace_y = vamp + p.toe_spring * 0.3 + 0.04 + 0.15 * (throat - vamp) * (p.style in ("high", "tall"))
    knots_y = [p.collar_height * 0.98, p.collar_height, p.collar_height - p.ankle_dip, throat,
               min(lace_y, throat), vamp * 0.97 + p.toe_spring * 0.8, vamp * 0.86 + p.toe_spring]
    top = PchipInterpolator(knots_x, knots_y)(xc)
    outline = PchipInterpolator([0.0, 0.25, 0.5, 0.68, 0.85, 1.0], [0.8, 0.8, 0.86, 1.0, 0.96, 0.88])(xc)
    half_width = outline * p.width_ratio / 2
    medial_scale = 1.0 - p.arch_depth * np.exp(-(((xc - 0.42) / 0.13) ** 2))
    centre_z = -p.toe_offset * _smoothstep(0.45, 1.0, xc)
    return Profiles(bottom, sole_top, top, half_width, medial_scale, centre_z)


# ----------------------------------------------------------------------------------------- upper


def _upper_envelopes(p: ShoeParams, s):
    heel_t = _end_envelope(s, p.heel_radius * 0.6, p.heel_squareness + 2.0)  # a near-vertical heel back
    heel_b = _end_envelope(s, p.heel_radius * 0.35, p.heel_squareness + 2.0)
    heel_w = _end_envelope(s, p.heel_radius * 0.8, p.heel_squareness)
    toe_t = _end_envelope(1 - s, p.toe_radius, 2.0)
    toe_b = _end_envelope(1 - s, p.toe_radius * 0.4, 3.0)
    toe_w = _end_envelope(1 - s, p.toe_radius, 2.2)
    return heel_t * toe_t, heel_b * toe_b, heel_w * toe_w


def _taper(p: ShoeParams, sn):
    return 1.0 - p.upper_taper * np.clip(sn, 0, None) ** 1.5


def upper_surface(p: ShoeParams, s, theta, outer: bool = False, with_extras: bool = False):
    """The upper: rings at x = s (s in [0, 1]), theta = -pi/2 the bottom centre, 0 lateral, pi/2 top.

    ``outer``: the outer envelope of upper + sole instead (lower half as wide as the sole, down to
    the ground): the single closed surface the template is made of.
    Returns (..., 3); with ``with_extras`` also ``opening`` (0..1, how deep in the opening).
    """
    s, theta = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(theta, dtype=np.float64))
    pr = profiles(p, s)
    env_t, env_b, env_w = _upper_envelopes(p, s)
    c, sn = np.cos(theta), np.sin(theta)
    up = sn > 0
    base_w = pr.half_width - (0.0 if outer else p.sole_margin)
    side = np.where(c < 0, pr.medial_scale, 1.0)
    bottom = pr.bottom if outer else pr.bottom + _FLOOR
    if outer:  # the template: the sole's flare and the upper's shape in one surface
        base_w = base_w + p.sole_flare * 0.5
    # Tall uppers (high tops) get straighter sides and a flatter top: a shaft, not a dome.
    tall = np.clip((pr.top - pr.sole_top - 0.22) / 0.25, 0, 1)
    cz = _spow(c, np.where(up, 0.8 - 0.25 * tall, 0.25))
    cy = _spow(sn, np.where(up, 0.75 - 0.35 * tall, 0.2))
    width = base_w * env_w * side * np.where(up, _taper(p, sn), 1.0)
    z = pr.centre_z + width * cz
    h_top = (pr.top - pr.sole_top) * env_t
    h_bot = (pr.sole_top - bottom) * env_b
    y = pr.sole_top + np.where(up, h_top * cy, h_bot * cy)
    o_mid = p.opening_start + p.opening_length / 2
    rs = (s - o_mid) / (p.opening_length / 2)
    rz = cz * _taper(p, sn) / (p.opening_width * (1.0 - p.upper_taper * 0.6))
    footprint = _smoothstep(0.0, 0.6, 1.0 - rs**2 - rz**2) * up
    insole = pr.sole_top + 0.015
    drop = np.minimum(p.opening_depth, 0.9 * np.clip(y - insole, 0, None))
    y = y - footprint * drop
    pts = np.stack([s, y, z], axis=-1)
    if with_extras:
        return pts, {"opening": footprint}
    return pts


def _tall(p: ShoeParams, s):
    pr = profiles(p, s)
    return np.clip((pr.top - pr.sole_top - 0.22) / 0.25, 0, 1)


def _theta_where(p: ShoeParams, s, target, scale: float):
    """Angle on the upper half (lateral 0 .. medial pi) where ``cz * taper / scale`` equals ``target``, per s."""
    s, target = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(target, dtype=np.float64))
    th = np.linspace(0.0, np.pi, 721)
    c, taper = np.cos(th), _taper(p, np.sin(th)) / scale
    tall = _tall(p, s).ravel()
    out = np.array([np.interp(-ti, -_spow(c, 0.8 - 0.25 * t) * taper, th) for t, ti in zip(tall, target.ravel())])
    return out.reshape(s.shape)


def _theta_for_rz(p: ShoeParams, s, rz):
    """Angle at s where the opening's lateral coordinate is ``rz`` (the rim is at |rz| = 1 in front/back = 0)."""
    return _theta_where(p, s, rz, p.opening_width * (1.0 - p.upper_taper * 0.6))


def upper_top(p: ShoeParams, s, z_frac):
    """Points on the upper's top at s where z = z_frac * (its half-width at the base), no opening."""
    s = np.asarray(s, dtype=np.float64)
    return upper_surface(p, s, _theta_where(p, s, z_frac, 1.0))


# ----------------------------------------------------------------------------------------- sole


def sole_extent(p: ShoeParams) -> tuple[float, float]:
    """x of the sole's heel end and toe end."""
    return -(p.sole_margin + p.heel_flare), 1.0 + p.sole_margin * 0.8


def sole_surface(p: ShoeParams, s, theta):
    """The sole as a cup: a closed polyline per x (bottom, flared sidewall, lip, ledge, cavity wall, floor)."""
    s, theta = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(theta, dtype=np.float64))
    x0, x1 = sole_extent(p)
    x = x0 + s * (x1 - x0)
    pr = profiles(p, x)
    length = x1 - x0
    u = (x - x0) / length
    heel_r, toe_r = (p.heel_radius * 0.8 - x0) / length, (p.toe_radius + x1 - 1) / length
    env_w = _end_envelope(u, heel_r, p.heel_squareness) * _end_envelope(1 - u, toe_r, 2.2)
    env_h = _end_envelope(u, 0.012 / length, 2.0) * _end_envelope(1 - u, 0.03 / length, 2.0)
    b = pr.bottom
    # The heel slants: behind the upper the top drops towards the flared bottom edge.
    behind = np.clip(-x / max(-x0, 1e-6), 0, 1)
    top_out = b + (pr.sole_top + p.cupsole_lip - b) * (1 - 0.45 * behind**1.5)
    ledge = b + (pr.sole_top - b) * (1 - 0.45 * behind**1.5)
    w_out = pr.half_width * env_w
    bevel = 0.25 * (pr.sole_top - b)
    # The cavity follows the upper's lower half (same width envelope), and vanishes where it ends.
    _, _, env_up = _upper_envelopes(p, np.clip(x, 0, 1))
    inside = (x > 0) & (x < 1)
    w_in = np.where(inside, (pr.half_width - p.sole_margin) * env_up, 0.0) * env_w
    depth = _smoothstep(0.0, 0.02, w_in)
    floor = ledge - (ledge - (b + _FLOOR)) * depth
    # Right half (lateral, z >= 0) from the bottom centre; the medial half mirrors it.
    flare = p.sole_flare
    half = [
        (np.zeros_like(x), b),
        (w_out + flare - bevel * 0.6, b),
        (w_out + flare, b + bevel),
        (w_out, top_out),
        (w_in, ledge),
        (w_in, floor),
        (np.zeros_like(x), floor),
    ]
    zs = [h[0] for h in half] + [-h[0] for h in half[-2::-1]][:-1]
    ys = [h[1] for h in half] + [h[1] for h in half[-2::-1]][:-1]
    zs, ys = np.stack(zs, -1), np.stack(ys, -1)           # (..., K) closed polyline, first point not repeated
    zs = np.where(zs < 0, zs * pr.medial_scale[..., None], zs)
    zp, yp = np.concatenate([zs, zs[..., :1]], -1), np.concatenate([ys, ys[..., :1]], -1)
    seg = np.hypot(np.diff(zp, axis=-1), np.diff(yp, axis=-1))
    cum = np.concatenate([np.zeros(seg.shape[:-1] + (1,)), np.cumsum(seg, -1)], -1)
    q = ((theta + np.pi / 2) % (2 * np.pi)) / (2 * np.pi) * cum[..., -1]
    k = np.clip((cum[..., 1:] <= q[..., None]).sum(-1), 0, seg.shape[-1] - 1)
    k = np.where(q >= cum[..., -1], seg.shape[-1] - 1, k)
    c0 = np.take_along_axis(cum, k[..., None], -1)[..., 0]
    sl = np.maximum(np.take_along_axis(seg, k[..., None], -1)[..., 0], 1e-12)
    t = np.clip((q - c0) / sl, 0, 1)
    za, zb = np.take_along_axis(zp, k[..., None], -1)[..., 0], np.take_along_axis(zp, k[..., None] + 1, -1)[..., 0]
    ya, yb = np.take_along_axis(yp, k[..., None], -1)[..., 0], np.take_along_axis(yp, k[..., None] + 1, -1)[..., 0]
    z, y = za + t * (zb - za), ya + t * (yb - ya)
    yc = 0.5 * (b + top_out)
    y = yc + (y - yc) * env_h
    return np.stack([x, y, pr.centre_z + z * env_h], axis=-1)


# ----------------------------------------------------------------------------------------- sweeps


def sweep(path: np.ndarray, n1: np.ndarray, n2: np.ndarray, h1: np.ndarray, h2: np.ndarray,
          exponent: float = 1.0, ends: tuple[float, float] = (0.1, 0.1)) -> Callable:
    """A closed tube: section ``h1 cos^e * n1 + h2 sin^e * n2`` swept along ``path`` (M, 3), pinched at both ends.

    n1, n2 (M, 3) orthonormal to the path; h1, h2 (M,) half sizes; ``ends``: the fraction of the path
    over which each end closes (a superellipse cap).
    """
    a_knots = np.linspace(0.0, 1.0, len(path))

    def at(a, arr):
        return np.stack([np.interp(a, a_knots, arr[:, i]) for i in range(arr.shape[1])], -1)

    def f(a, theta):
        a, theta = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(theta, dtype=np.float64))
        env = _end_envelope(a, ends[0], 2.0) * _end_envelope(1 - a, ends[1], 2.0)
        c, sn = _spow(np.cos(theta), exponent), _spow(np.sin(theta), exponent)
        w1, w2 = np.interp(a, a_knots, h1) * env, np.interp(a, a_knots, h2) * env
        return at(a, path) + (w1 * c)[..., None] * at(a, n1) + (w2 * sn)[..., None] * at(a, n2)

    return f


def _frames(path: np.ndarray, hint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (M, 3): n1 = ``hint`` made orthogonal to the path's tangent, n2 = tangent x n1."""
    tangent = np.gradient(path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=-1, keepdims=True) + 1e-12
    hint = np.broadcast_to(hint, path.shape)
    n1 = hint - (hint * tangent).sum(-1, keepdims=True) * tangent
    n1 /= np.linalg.norm(n1, axis=-1, keepdims=True) + 1e-12
    return n1, np.cross(tangent, n1)


def _tongue(p: ShoeParams):
    o_end = p.opening_start + p.opening_length
    lie = np.linspace(p.lace_end + 0.02, o_end, 24)                 # lying on the vamp, toe -> throat
    base = upper_top(p, lie, np.zeros_like(lie))
    base[:, 1] += _TONGUE_THICKNESS * 0.4
    top_y = p.collar_height + p.tongue_rise
    start = base[-1]
    rise_t = np.linspace(0, 1, 16)[1:]
    lean = 0.05 + 0.05 * (p.style in ("high", "tall"))
    rise = np.stack([start[0] - lean * rise_t**1.2, start[1] + (top_y - start[1]) * rise_t,
                     np.full_like(rise_t, start[2])], -1)
    path = np.concatenate([base, rise])
    width = profiles(p, np.clip(path[:, 0], 0, 1)).half_width * 0.42
    n1, n2 = _frames(path, np.array([0.0, 0.0, 1.0]))
    return sweep(path, n1, n2, width, np.full(len(path), _TONGUE_THICKNESS / 2), exponent=0.35, ends=(0.04, 0.05))


def _rim(p: ShoeParams, phi: np.ndarray) -> np.ndarray:
    """Points on the rim of the opening; phi = 0 at its back, +-pi at its front (lateral +)."""
    o_mid = p.opening_start + p.opening_length / 2
    s = o_mid - np.cos(phi) * p.opening_length / 2
    theta = _theta_for_rz(p, s, np.sin(phi) * 0.98)
    return upper_surface(p, s, theta)


def _collar(p: ShoeParams):
    phi = np.linspace(-np.pi * 0.8, np.pi * 0.8, 64)
    path = _rim(p, phi)
    path[:, 1] += p.collar_padding * 0.35
    n1, n2 = _frames(path, np.array([0.0, 1.0, 0.0]))
    r = np.full(len(path), p.collar_padding)
    return sweep(path, n1, n2, r, r * 1.2, exponent=1.0, ends=(0.06, 0.06))


def _band(p: ShoeParams, s_lat: float, s_med: float, y_lo: float, height, thickness: float, toe: bool):
    """A vertical band around the heel (toe=False) or the toe, on the upper's side walls (plan path)."""
    n = 48
    if toe:
        s = np.concatenate([np.linspace(s_lat, 0.999, n // 2), np.linspace(0.999, s_med, n // 2)[1:]])
    else:
        s = np.concatenate([np.linspace(s_lat, 0.001, n // 2), np.linspace(0.001, s_med, n // 2)[1:]])
    side = np.concatenate([np.full(n // 2, 1.0), np.full(n // 2 - 1, -1.0)])
    h = height(s) if callable(height) else np.full(len(s), height)
    mid_y = y_lo + h / 2
    # The wall point at mid height: the upper's ring at s, on the lateral / medial side.
    th = np.linspace(-0.2, np.pi + 0.2, 361)
    ring = upper_surface(p, s[:, None], th[None, :])                  # (M, K, 3)
    k = np.argmin(np.abs(ring[..., 1] - mid_y[:, None]) + 10 * ((ring[..., 2] - ring[:, 180:181, 2]) * side[:, None] < 0), axis=1)
    path = ring[np.arange(len(s)), k]
    path[:, 1] = mid_y
    tangent = np.gradient(path, axis=0)
    out = np.cross(tangent, np.array([0.0, 1.0, 0.0])) * (1 if toe else -1)
    out[:, 1] = 0
    out /= np.linalg.norm(out, axis=-1, keepdims=True) + 1e-12
    path = path + out * thickness * 0.3
    up = np.tile([0.0, 1.0, 0.0], (len(s), 1))
    return sweep(path, up, out, h / 2, np.full(len(s), thickness), exponent=0.3, ends=(0.05, 0.05))


def _heel_counter(p: ShoeParams):
    pr0 = profiles(p, np.array([0.0]))
    y_lo = float(pr0.sole_top[0]) - 0.004
    h_back = (p.collar_height - y_lo) * p.counter_height
    height = lambda s: h_back * (1 - 0.55 * _smoothstep(0.0, p.counter_length, s))  # noqa: E731
    return _band(p, p.counter_length, p.counter_length, y_lo, height, _COUNTER_THICKNESS, toe=False)


def _toe_overlay(p: ShoeParams):
    s0 = 0.76
    y_lo = float(profiles(p, np.array([0.9])).sole_top[0]) - 0.004
    return _band(p, s0, s0, y_lo, p.toe_box_height * 0.42, _COUNTER_THICKNESS, toe=True)


def _heel_tab(p: ShoeParams):
    back = _rim(p, np.array([0.0]))[0]
    y = np.linspace(back[1] - 0.05, p.collar_height + p.collar_padding + p.tab_height, 12)
    s = np.full_like(y, 0.0)
    # x of the upper's back at each height: the first ring point behind the collar.
    xs = np.linspace(0.0, 0.2, 401)
    back_top = upper_surface(p, xs, np.full_like(xs, np.pi / 2))
    x_at = np.interp(np.minimum(y, back_top[:, 1].max() - 1e-4), back_top[: np.argmax(back_top[:, 1]) + 1, 1],
                     xs[: np.argmax(back_top[:, 1]) + 1])
    path = np.stack([x_at - 0.006 - 0.01 * np.clip((y - back[1]) / 0.1, 0, 1), y, s + back[2]], -1)
    n1, n2 = _frames(path, np.array([0.0, 0.0, 1.0]))
    return sweep(path, n1, n2, np.full(len(y), 0.018), np.full(len(y), 0.004), exponent=0.35, ends=(0.08, 0.15))


def _tongue_tab(p: ShoeParams):
    o_end = p.opening_start + p.opening_length
    top_y = p.collar_height + p.tongue_rise
    lean = 0.05 + 0.05 * (p.style in ("high", "tall"))
    y = np.linspace(top_y - 0.05, top_y + 0.5 * p.tab_height, 10)
    start = upper_top(p, np.array([o_end]), np.zeros(1))[0]
    path = np.stack([np.full_like(y, start[0] - lean + 0.012), y, np.full_like(y, start[2])], -1)
    n1, n2 = _frames(path, np.array([0.0, 0.0, 1.0]))
    return sweep(path, n1, n2, np.full(len(y), 0.016), np.full(len(y), 0.004), exponent=0.35, ends=(0.1, 0.2))


def _laces(p: ShoeParams) -> list[Callable]:
    o_end = p.opening_start + p.opening_length
    rows = np.linspace(o_end + 0.03, p.lace_end - 0.01, p.lace_rows)
    out = []
    for s in rows:
        zf = np.linspace(-0.55, 0.55, 12)
        path = upper_top(p, np.full_like(zf, s), zf)
        path[:, 1] += _TONGUE_THICKNESS + _LACE_RADIUS * 0.5
        path[:, 0] += np.linspace(-0.008, 0.008, len(zf))  # slanted a little, like criss-crossed laces
        n1, n2 = _frames(path, np.array([0.0, 1.0, 0.0]))
        r = np.full(len(zf), _LACE_RADIUS)
        out.append(sweep(path, n1, n2, r * 0.8, r * 1.6, exponent=0.8, ends=(0.12, 0.12)))
    return out


def _eyestays(p: ShoeParams) -> list[Callable]:
    o_end = p.opening_start + p.opening_length
    s = np.linspace(o_end - 0.01, p.lace_end + 0.02, 20)
    out = []
    for zf in (0.62, -0.62):
        path = upper_top(p, s, np.full_like(s, zf))
        above = upper_top(p, s, np.full_like(s, zf * 0.8))
        across = above - path
        n1, n2 = _frames(path, across.mean(0))
        out.append(sweep(path, n1, n2, np.full(len(s), 0.02), np.full(len(s), 0.004), exponent=0.35, ends=(0.05, 0.05)))
    return out


# ----------------------------------------------------------------------------------------- parts


@dataclass
class PartMesh:
    """One closed part, un-normalised: verts (N, 3), faces (F, 3), part-local uvs (T, 2), uv_faces (F, 3)."""

    name: str
    verts: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    extras: dict = field(default_factory=dict)


def part_surfaces(p: ShoeParams) -> list[tuple[str, Callable]]:
    """(part name, surface callable) of every part of shoe ``p``, in drawing order."""
    out: list[tuple[str, Callable]] = [
        ("sole", lambda s, t: sole_surface(p, s, t)),
        ("upper", lambda s, t: upper_surface(p, s, t)),
        ("tongue", _tongue(p)),
        ("collar", _collar(p)),
        ("heel_counter", _heel_counter(p)),
    ]
    if p.heel_tab:
        out.append(("pull_tab", _heel_tab(p)))
    if p.tongue_tab:
        out.append(("pull_tab", _tongue_tab(p)))
    out += [("laces", f) for f in _laces(p)]
    if p.toe_overlay:
        out.append(("overlay", _toe_overlay(p)))
    if p.eyestay:
        out += [("overlay", f) for f in _eyestays(p)]
    return out


def shoe_parts(p: ShoeParams, edge_length: float = 0.022) -> list[PartMesh]:
    """Mesh every part of shoe ``p`` (un-normalised units); thin parts (laces, collar, tabs) use edges
    of at most 0.02 and at least 6 vertices a ring, so they stay round."""
    parts = []
    for name, f in part_surfaces(p):
        edge = edge_length if name in ("sole", "upper", "heel_counter", "tongue", "overlay") else min(edge_length, 0.02)
        v, fa, uv, uvf, params = mesh_surface(f, edge, with_params=True)
        parts.append(PartMesh(name, v, fa, uv, uvf, {"params": params}))
    return parts
