"""Procedural shoes: a parametric sneaker surface, a UV texture painted from 3D rules, turntable renders.

Geometry
    A deformed sphere. ``s`` in [0, 1] runs along the length from the heel pole (s = 0) to the toe
    pole (s = 1); ``theta`` runs around each cross-section from the sole's centre line
    (theta = -pi/2) over the lateral side (+Z, theta = 0), the top (pi/2) and the medial side. A
    cross-section is a superellipse: a flat, boxy sole below the widest line and a rounder upper
    above it. Profile functions of ``s`` give the side silhouette (collar, ankle dip, tongue, lace
    line, toe box), the sole (heel height, forefoot thickness, toe spring) and the plan outline
    (heel, ball, toe, medial arch). The opening is an oval depression in the top down to just above
    the insole, so the surface stays closed and genus 0. Every cross-section lies in a plane
    ``x = const`` and is a simple curve, so the surface never self-intersects.

Mesh
    Rings of vertices at values of ``s`` spaced evenly in arc length, each ring with as many
    vertices as its perimeter needs for the target edge length, placed evenly in arc length around
    the ring; neighbouring rings are zipped by their arc-length fraction and the two ends close
    with a fan to a pole vertex. Triangles are close to equilateral everywhere.

UV (natural)
    ``u`` = arc-length fraction around the ring starting at the sole's centre line (the seam runs
    under the sole), ``v`` = mean meridian arc-length fraction from the heel (so texels are spread
    evenly over the shoe, the rounded heel and toe included). The texture is painted per texel from the 3D point the texel
    maps to, so rules read as "sole below the midsole line", "stripes on the lateral quarter".

Normalisation follows DESIGN: centred bounding box, longest extent 1, +Y up, toe at +X, the
lateral side of a right shoe at +Z.
"""
from __future__ import annotations

import colorsys
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from scipy.interpolate import PchipInterpolator

from shoerecon.geometry.mesh import Mesh, normalize_verts

# ----------------------------------------------------------------------------------------- parameters

#: Sampling ranges of the continuous shape parameters (length units: shoe length = 1 before normalising).
DEFAULT_SHAPE_RANGES: dict[str, tuple[float, float]] = {
    "length_width_ratio": (2.55, 3.15),   # length / widest width
    "toe_box_height": (0.16, 0.22),       # upper height over the forefoot
    "toe_spring": (0.015, 0.055),         # lift of the sole under the toe tip
    "heel_height": (0.075, 0.12),         # midsole top at the heel
    "sole_thickness": (0.04, 0.065),      # midsole top at the forefoot
    "collar_height": (0.33, 0.42),        # top of the heel collar
    "ankle_dip": (0.03, 0.09),            # how far the collar line dips behind the tongue
    "tongue_height": (0.31, 0.4),        # top of the tongue at the front of the opening
    "opening_start": (0.07, 0.12),        # s where the opening begins
    "opening_length": (0.28, 0.36),       # length of the opening in s
    "opening_width": (0.62, 0.8),         # half-width of the opening / half-width of the upper
    "opening_depth": (0.85, 0.95),         # fraction of the upper height the opening goes down
    "heel_radius": (0.07, 0.12),          # rounding of the heel in s
    "heel_squareness": (2.2, 3.2),        # superellipse exponent of the heel (higher = blunter)
    "toe_radius": (0.17, 0.26),           # rounding of the toe in s
    "upper_taper": (0.12, 0.3),           # how much narrower the upper's top is than the sole
    "toe_offset": (0.0, 0.035),           # medial shift of the toe tip (big-toe side), right shoe
    "arch_depth": (0.0, 0.12),            # relative indentation of the medial midfoot outline
}

#: Ranges of the continuous texture parameters.
DEFAULT_TEXTURE_RANGES: dict[str, tuple[float, float]] = {
    "toe_cap_start": (0.74, 0.84),        # s where the toe cap begins (at the sole)
    "heel_counter_length": (0.14, 0.24),  # s-length of the heel counter at the sole
    "stripe_start": (0.36, 0.5),          # s of the first lateral stripe
    "stripe_spacing": (0.045, 0.075),
    "stripe_width": (0.018, 0.035),
    "stripe_slant": (-0.12, 0.02),        # s shift of a stripe from the sole to the collar
    "logo_s": (0.3, 0.55),                # medial logo position along the length
    "logo_radius": (0.05, 0.09),
    "lace_spacing": (0.028, 0.042),
    "midsole_wave": (0.0, 0.012),         # waviness of the midsole line
}


@dataclass
class ShoeParams:
    """One shoe: continuous shape parameters (see ``DEFAULT_SHAPE_RANGES``), texture layout and colours.

    Colours are RGB tuples in [0, 1]; ``stripe_count`` 0 means no stripes; ``seed`` drives the fabric noise.
    """

    length_width_ratio: float = 2.85
    toe_box_height: float = 0.19
    toe_spring: float = 0.035
    heel_height: float = 0.0975
    sole_thickness: float = 0.0525
    collar_height: float = 0.375
    ankle_dip: float = 0.06
    tongue_height: float = 0.355
    opening_start: float = 0.095
    opening_length: float = 0.32
    opening_width: float = 0.71
    opening_depth: float = 0.9
    heel_radius: float = 0.095
    heel_squareness: float = 2.7
    toe_radius: float = 0.215
    upper_taper: float = 0.21
    toe_offset: float = 0.0175
    arch_depth: float = 0.06
    # texture layout
    toe_cap_start: float = 0.79
    heel_counter_length: float = 0.19
    stripe_start: float = 0.43
    stripe_spacing: float = 0.06
    stripe_width: float = 0.0265
    stripe_slant: float = -0.05
    logo_s: float = 0.425
    logo_radius: float = 0.07
    lace_spacing: float = 0.035
    midsole_wave: float = 0.006
    stripe_count: int = 3
    # colours
    upper_color: tuple[float, float, float] = (0.55, 0.6, 0.68)
    toe_cap_color: tuple[float, float, float] = (0.45, 0.5, 0.58)
    heel_color: tuple[float, float, float] = (0.35, 0.38, 0.45)
    stripe_color: tuple[float, float, float] = (0.9, 0.3, 0.2)
    logo_color: tuple[float, float, float] = (0.95, 0.8, 0.2)
    lace_color: tuple[float, float, float] = (0.95, 0.95, 0.95)
    tongue_color: tuple[float, float, float] = (0.5, 0.55, 0.62)
    lining_color: tuple[float, float, float] = (0.2, 0.2, 0.22)
    sole_color: tuple[float, float, float] = (0.93, 0.92, 0.88)
    outsole_color: tuple[float, float, float] = (0.25, 0.24, 0.23)
    seed: int = 0

    @classmethod
    def mean(cls, cfg: "SynthConfig | None" = None) -> "ShoeParams":
        """The mid-point of every range in ``cfg`` (the template's parameters)."""
        cfg = cfg or SynthConfig()
        values = {k: (lo + hi) / 2 for k, (lo, hi) in {**cfg.shape_ranges, **cfg.texture_ranges}.items()}
        return cls(**values)


@dataclass
class SynthConfig:
    """Procedural shoe generator and turntable rig.

    Attributes:
        shape_ranges / texture_ranges: uniform sampling range per continuous parameter of ``ShoeParams``.
        edge_length: target triangle edge length of the ground-truth meshes (shoe length 1).
        texture_size: side of the square painted texture.
        num_views, elevation, distance, fov: the turntable (defaults = ``Cameras.turntable()``).
        image_size: rendered view side in pixels. supersample: render at this factor and box-filter
            down, so alpha is fractional pixel coverage (1 = hard 0/1 coverage).
        light: direction of the soft light baked into the texture (view-independent shading, so the
            renders stay consistent with an unlit renderer). ambient: its ambient share.
        val_fraction, test_fraction: split sizes written to splits.json.
    """

    shape_ranges: dict = field(default_factory=lambda: dict(DEFAULT_SHAPE_RANGES))
    texture_ranges: dict = field(default_factory=lambda: dict(DEFAULT_TEXTURE_RANGES))
    edge_length: float = 0.022
    texture_size: int = 256
    num_views: int = 36
    elevation: float = 10.0
    distance: float = 2.2
    fov: float = 30.0
    image_size: int = 128
    supersample: int = 2
    light: tuple[float, float, float] = (0.25, 1.0, 0.45)
    ambient: float = 0.62
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        names = {f.name for f in fields(ShoeParams) if f.type in ("float", float)}
        for what, ranges in (("shape_ranges", self.shape_ranges), ("texture_ranges", self.texture_ranges)):
            unknown = set(ranges) - names
            if unknown:
                raise ValueError(f"SynthConfig.{what}: unknown parameters {sorted(unknown)}; valid: {sorted(names)}")
            for k, r in ranges.items():
                if len(r) != 2 or not float(r[0]) <= float(r[1]):
                    raise ValueError(f"SynthConfig.{what}[{k!r}] must be (low, high) with low <= high, got {r}")
        if self.supersample < 1 or self.image_size < 1 or self.num_views < 1:
            raise ValueError("SynthConfig: supersample, image_size and num_views must be >= 1")


# ----------------------------------------------------------------------------------------- sampling

_SOLE_PALETTE = [(0.95, 0.95, 0.93), (0.93, 0.9, 0.82), (0.15, 0.15, 0.16), (0.72, 0.52, 0.3), (0.85, 0.85, 0.87)]
_OUTSOLE_PALETTE = [(0.22, 0.22, 0.22), (0.6, 0.42, 0.24), (0.9, 0.9, 0.9), (0.35, 0.33, 0.3)]


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def shoe_rng(seed: int, index: int) -> np.random.Generator:
    """The per-shoe generator: shoe ``index`` of a dataset with ``seed`` is the same in every process."""
    return np.random.default_rng([int(seed), int(index)])


def sample_shoe_params(rng: np.random.Generator, cfg: SynthConfig | None = None) -> ShoeParams:
    """Draw one shoe: every continuous parameter uniform in its range, colours from a harmonious palette."""
    cfg = cfg or SynthConfig()
    values = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in {**cfg.shape_ranges, **cfg.texture_ranges}.items()}
    hue = rng.uniform()
    dark = rng.uniform() < 0.25
    upper = _hsv(hue, rng.uniform(0.15, 0.75), rng.uniform(0.15, 0.35) if dark else rng.uniform(0.45, 0.92))
    accent = _hsv(hue + rng.uniform(0.3, 0.7), rng.uniform(0.6, 1.0), rng.uniform(0.7, 1.0))
    second = _hsv(hue + rng.uniform(-0.08, 0.08), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.95))
    colours = dict(
        upper_color=upper,
        toe_cap_color=second if rng.uniform() < 0.6 else upper,
        heel_color=_hsv(hue + rng.uniform(-0.5, 0.5), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9)),
        stripe_color=accent,
        logo_color=_hsv(hue + rng.uniform(0.2, 0.8), rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)),
        lace_color=_hsv(rng.uniform(), rng.uniform(0.0, 0.3), rng.uniform(0.6, 1.0)),
        tongue_color=second,
        lining_color=_hsv(hue, rng.uniform(0.0, 0.5), rng.uniform(0.08, 0.3)),
        sole_color=_SOLE_PALETTE[rng.integers(len(_SOLE_PALETTE))],
        outsole_color=_OUTSOLE_PALETTE[rng.integers(len(_OUTSOLE_PALETTE))],
    )
    return ShoeParams(**values, **colours, stripe_count=int(rng.integers(0, 5)), seed=int(rng.integers(2**31)))


# ----------------------------------------------------------------------------------------- profiles


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _end_envelope(s: np.ndarray, radius: float, power: float) -> np.ndarray:
    """Superellipse quadrant that closes a profile at s = 0: 0 at the pole, 1 beyond ``radius``."""
    t = np.clip((radius - s) / radius, 0.0, 1.0)
    return (1.0 - t**power) ** (1.0 / power)


@dataclass
class Profiles:
    """Profile functions of s (arrays of the shape of ``s``), in shoe-length units."""

    bottom: np.ndarray      # sole bottom y
    sole_top: np.ndarray    # midsole top y (the insole level)
    top: np.ndarray         # side-silhouette top y (before the opening)
    centre_y: np.ndarray    # height of the widest line
    half_width: np.ndarray  # lateral half-width at the widest line (medial: times medial_scale)
    medial_scale: np.ndarray
    centre_z: np.ndarray
    env_top: np.ndarray     # end envelopes (0 at the poles)
    env_bottom: np.ndarray
    env_width: np.ndarray


def shoe_profiles(p: ShoeParams, s: np.ndarray) -> Profiles:
    """Evaluate every profile of shoe ``p`` at s (any shape, values in [0, 1])."""
    toe = _smoothstep(0.6, 1.0, s)
    bottom = p.toe_spring * toe**2
    sole_top = bottom + p.sole_thickness + (p.heel_height - p.sole_thickness) * (1 - _smoothstep(0.25, 0.62, s))
    o_end = p.opening_start + p.opening_length
    knots_s = [0.0, p.opening_start * 0.6, p.opening_start + 0.45 * p.opening_length, o_end, 0.74, 0.9, 1.0]
    knots_y = [
        p.collar_height * 0.97, p.collar_height, p.collar_height - p.ankle_dip, p.tongue_height,
        p.toe_box_height + p.toe_spring * 0.3, p.toe_box_height * 0.95 + p.toe_spring * 0.8,
        p.toe_box_height * 0.85 + p.toe_spring,
    ]
    top = PchipInterpolator(knots_s, knots_y)(s)
    centre_y = bottom + 0.75 * (sole_top - bottom)
    outline = PchipInterpolator([0.0, 0.25, 0.5, 0.68, 0.85, 1.0], [0.8, 0.8, 0.86, 1.0, 0.96, 0.88])(s)
    half_width = outline / (2 * p.length_width_ratio)
    medial_scale = 1.0 - p.arch_depth * np.exp(-(((s - 0.42) / 0.13) ** 2))
    centre_z = -p.toe_offset * _smoothstep(0.45, 1.0, s)
    heel_t = _end_envelope(s, p.heel_radius, p.heel_squareness)
    heel_b = _end_envelope(s, p.heel_radius * 0.5, p.heel_squareness + 1.0)
    heel_w = _end_envelope(s, p.heel_radius * 0.8, p.heel_squareness)
    toe_t = _end_envelope(1 - s, p.toe_radius, 2.0)
    toe_b = _end_envelope(1 - s, p.toe_radius * 0.6, 2.5)
    toe_w = _end_envelope(1 - s, p.toe_radius, 2.2)
    return Profiles(bottom, sole_top, top, centre_y, half_width, medial_scale, centre_z,
                    heel_t * toe_t, heel_b * toe_b, heel_w * toe_w)


def shoe_surface(p: ShoeParams, s: np.ndarray, theta: np.ndarray, with_extras: bool = False):
    """Surface points of shoe ``p`` in un-normalised shoe units (length 1, heel at x = 0).

    Args:
        s, theta: broadcastable arrays (s in [0, 1], theta in radians, -pi/2 = sole centre line,
            0 = lateral side, pi/2 = top).
    Returns:
        (..., 3) points; with ``with_extras`` also a dict of per-point arrays used by the painter:
        ``opening`` (0..1, how deep in the opening), ``profiles``.
    """
    s, theta = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(theta, dtype=np.float64))
    pr = shoe_profiles(p, s)
    c, sn = np.cos(theta), np.sin(theta)
    upper = sn > 0
    # Superellipse cross-section: a boxy sole (small exponents: flat bottom, upright sides), a rounder upper.
    ez = np.where(upper, 0.8, 0.3)
    cz = np.sign(c) * np.abs(c) ** ez
    cy = np.sign(sn) * np.abs(sn) ** np.where(upper, 0.75, 0.22)
    taper = 1.0 - p.upper_taper * np.clip(sn, 0, None) ** 1.5
    width = pr.half_width * pr.env_width * np.where(c < 0, pr.medial_scale, 1.0)
    z = pr.centre_z + width * cz * taper
    h_top = (pr.top - pr.centre_y) * pr.env_top
    h_bot = (pr.centre_y - pr.bottom) * pr.env_bottom
    y = pr.centre_y + np.where(upper, h_top * cy, h_bot * cy)
    # Opening: an oval footprint in (s, z) pulls the top down towards the insole level.
    o_mid = p.opening_start + p.opening_length / 2
    rs = (s - o_mid) / (p.opening_length / 2)
    rz = cz * taper / np.maximum(p.opening_width * (1.0 - p.upper_taper * 0.6), 1e-6)
    footprint = _smoothstep(0.0, 0.85, 1.0 - rs**2 - rz**2) * upper
    insole = pr.sole_top + 0.012
    depth = footprint * p.opening_depth
    y = np.where(y > insole, y - depth * (y - insole), y)
    x = s
    pts = np.stack([x, y, z], axis=-1)
    if with_extras:
        return pts, {"opening": footprint, "profiles": pr}
    return pts


# ----------------------------------------------------------------------------------------- mesh


_FINE_THETA = 720


def _ring_arcs(p: ShoeParams, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fine angles around the rings at s (R,) from the sole centre line, and the arc length up to each (R, K+1)."""
    th = np.linspace(-np.pi / 2, 1.5 * np.pi, _FINE_THETA + 1)
    pts = shoe_surface(p, np.asarray(s, dtype=np.float64)[:, None], th[None, :])
    arc = np.concatenate([np.zeros((pts.shape[0], 1)), np.cumsum(np.linalg.norm(np.diff(pts, axis=1), axis=-1), axis=1)], 1)
    return th, arc


def _theta_at_arc_fraction(p: ShoeParams, s: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """Angles (R, U) of the points at arc-length ``fraction`` (U,) in [0, 1] around the rings at s (R,)."""
    th, arc = _ring_arcs(p, s)
    return np.stack([np.interp(fraction * a[-1], a, th) for a in arc])


def _ring_thetas(p: ShoeParams, s: np.ndarray, edge: float) -> list[np.ndarray]:
    """Per ring at s (R,): angles of points evenly spaced in arc length, about ``edge`` apart (at least 3)."""
    th, arc = _ring_arcs(p, s)
    out = []
    for a in arc:
        n = max(3, int(round(a[-1] / edge)))
        out.append(np.interp(np.arange(n) / n * a[-1], a, th))
    return out


def _meridian_arc(p: ShoeParams, fine: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Meridian arc length from the heel pole: s (fine+1,) and the arc length at each s (fine+1,)."""
    s = np.linspace(0.0, 1.0, fine + 1)
    th = np.linspace(-np.pi / 2, 1.5 * np.pi, 64, endpoint=False)
    pts = shoe_surface(p, s[:, None], th[None, :])
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=-1)
    # Mostly the mean, but where one meridian is much steeper (the opening's walls) rings follow it,
    # so triangles there do not stretch along the wall.
    seg = np.maximum(seg.mean(axis=1), 0.6 * seg.max(axis=1))
    return s, np.concatenate([[0.0], np.cumsum(seg)])


def _ring_positions(p: ShoeParams, edge: float) -> tuple[np.ndarray, np.ndarray]:
    """Rings evenly spaced in mean meridian arc length (poles excluded): their s and their v = arc fraction."""
    s, arc = _meridian_arc(p)
    n = max(3, int(round(arc[-1] / (edge * 0.866))))
    v = np.arange(1, n) / n
    return np.interp(v * arc[-1], arc, s), v


def s_of_v(p: ShoeParams, v: np.ndarray) -> np.ndarray:
    """The length parameter s at texture coordinate v (v = mean meridian arc-length fraction from the heel)."""
    s, arc = _meridian_arc(p)
    return np.interp(np.asarray(v) * arc[-1], arc, s)


def _zip_rings(a_uv: np.ndarray, b_uv: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangulate the strip between two rings given increasing keys of their points (first point repeated at the end).

    Returns triangles as index triples where indices < len(a_uv) are ring a, others ring b (offset).
    Triangles are counter-clockwise in (key, v) when ring b lies at larger v.

    >>> _zip_rings(np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0]))
    [(0, 1, 3), (1, 2, 3), (2, 4, 3)]
    """
    na, nb = len(a_uv) - 1, len(b_uv) - 1
    off = len(a_uv)
    tris, i, j = [], 0, 0
    while i < na or j < nb:
        advance_a = j == nb or (i < na and a_uv[i + 1] <= b_uv[j + 1])
        if advance_a:
            tris.append((i, i + 1, off + j))
            i += 1
        else:
            tris.append((i, off + j + 1, off + j))
            j += 1
    return tris


def shoe_geometry(p: ShoeParams, edge_length: float = 0.022):
    """Closed genus-0 triangle mesh of shoe ``p`` with its natural UV layout (un-normalised units).

    Returns:
        verts (N, 3) float64, faces (F, 3) int64 (counter-clockwise from outside),
        uvs (T, 2) float64, uv_faces (F, 3) int64.
    """
    ring_s, ring_vs = _ring_positions(p, edge_length)
    rings = _ring_thetas(p, ring_s, edge_length)
    verts = [shoe_surface(p, np.array([0.0]), np.array([0.0]))]  # heel pole
    uvs, faces, uv_faces = [], [], []
    v_base, uv_base = 1, 0
    ring_v, ring_uv = [], []  # per ring: position start index, uv start index, n
    ring_pts = shoe_surface(p, np.concatenate([np.full(len(th), s) for s, th in zip(ring_s, rings)]), np.concatenate(rings))
    verts.append(ring_pts)
    for v, th in zip(ring_vs, rings):
        n = len(th)
        u = np.arange(n + 1) / n
        uvs.append(np.stack([u, np.full(n + 1, v)], axis=1))
        ring_v.append((v_base, n))
        ring_uv.append(uv_base)
        v_base += n
        uv_base += n + 1
    verts.append(shoe_surface(p, np.array([1.0]), np.array([0.0])))  # toe pole
    toe_v = v_base

    def pos_index(ring: int, j: int) -> int:
        start, n = ring_v[ring]
        return start + (j % n)

    # Strips between rings.
    for r in range(len(rings) - 1):
        na = ring_v[r][1]
        # Zip by the surface parameter theta (continuous across rings), not by u: near the opening's
        # walls the arc-length fractions of neighbouring rings drift apart and would skew triangles.
        key_a = np.append(rings[r], rings[r][0] + 2 * np.pi)
        key_b = np.append(rings[r + 1], rings[r + 1][0] + 2 * np.pi)
        for tri in _zip_rings(key_a, key_b):
            pf, uf = [], []
            for t in tri:
                ring, j = (r, t) if t <= na else (r + 1, t - na - 1)
                pf.append(pos_index(ring, j))
                uf.append(ring_uv[ring] + j)
            faces.append(pf)
            uv_faces.append(uf)
    # Pole fans: one UV vertex per fan triangle at the segment's mid u.
    for ring, pole, v_pole in ((0, 0, 0.0), (len(rings) - 1, toe_v, 1.0)):
        n = ring_v[ring][1]
        pole_uv = np.stack([(np.arange(n) + 0.5) / n, np.full(n, v_pole)], axis=1)
        uvs.append(pole_uv)
        for j in range(n):
            a, b = pos_index(ring, j), pos_index(ring, j + 1)
            ua, ub, up = ring_uv[ring] + j, ring_uv[ring] + j + 1, uv_base + j
            if ring == 0:
                faces.append([pole, b, a])
                uv_faces.append([up, ub, ua])
            else:
                faces.append([a, b, pole])
                uv_faces.append([ua, ub, up])
        uv_base += n
    verts = np.concatenate(verts, axis=0)
    faces = np.asarray(faces, dtype=np.int64)
    uv_faces = np.asarray(uv_faces, dtype=np.int64)
    uvs = np.concatenate(uvs, axis=0)
    if _signed_volume(verts, faces) < 0:  # make the faces counter-clockwise seen from outside
        faces, uv_faces = faces[:, [0, 2, 1]], uv_faces[:, [0, 2, 1]]
    return verts, faces, uvs, uv_faces


def _signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("fi,fi->f", v0, np.cross(v1, v2)).sum() / 6.0)


# ----------------------------------------------------------------------------------------- texture


def _texel_surface(p: ShoeParams, size: int):
    """3D point, normal and painter extras at every texel centre (row 0 = v = 1)."""
    v = 1.0 - (np.arange(size) + 0.5) / size
    u = (np.arange(size) + 0.5) / size
    s = np.clip(s_of_v(p, v), 1e-3, 1 - 1e-3)
    theta = _theta_at_arc_fraction(p, s, u)
    pts, extras = shoe_surface(p, s[:, None], theta, with_extras=True)
    # Normals from finite differences along the grid (u wraps around).
    du = np.roll(pts, -1, axis=1) - np.roll(pts, 1, axis=1)
    dv = np.gradient(pts, axis=0)
    n = np.cross(du, dv)
    n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12
    mid = (size // 2, size // 2)  # u = 0.5 is the top of the shoe: its normal must point up
    if n[mid][1] < 0:
        n = -n
    return s[:, None] * np.ones_like(theta), u[None, :] * np.ones_like(theta), pts, n, extras


def shoe_texture(p: ShoeParams, size: int = 256, light=(0.25, 1.0, 0.45), ambient: float = 0.62) -> np.ndarray:
    """Paint shoe ``p``'s texture in its natural UV layout. Returns (size, size, 3) float32 in [0, 1], row 0 = v 1."""
    s, u, pts, normal, extras = _texel_surface(p, size)
    pr, opening = extras["profiles"], extras["opening"]
    y, z = pts[..., 1], pts[..., 2]
    lateral = z > pr.centre_z
    height = np.clip((y - pr.sole_top) / np.maximum(pr.top - pr.sole_top, 1e-6), 0, 1)
    rng = np.random.default_rng(p.seed)
    img = np.empty(s.shape + (3,))
    img[:] = p.upper_color
    paint = lambda where, colour: img.__setitem__(where, colour)  # noqa: E731

    # Heel counter: a curved patch at the back, taller at the sole; a tab at the top of the collar.
    paint(s < p.heel_counter_length * (1.0 - 0.55 * height), p.heel_color)
    paint((s < 0.05) & (height > 0.55), p.stripe_color if p.stripe_count % 2 else p.logo_color)
    # Toe cap: its edge curves back along the sides.
    paint(s > p.toe_cap_start + 0.06 * height, p.toe_cap_color)
    # Lateral side: slanted stripes over the quarter; medial side: a round logo patch and a thin line.
    for k in range(p.stripe_count):
        centre = p.stripe_start + k * p.stripe_spacing + p.stripe_slant * height
        paint(lateral & (np.abs(s - centre) < p.stripe_width / 2) & (height > 0.12) & (height < 0.8), p.stripe_color)
    ls = (s - p.logo_s) / p.logo_radius
    lh = (height - 0.45) / (p.logo_radius * 4.0)
    paint(~lateral & (ls**2 + lh**2 < 1.0), p.logo_color)
    paint(~lateral & (np.abs(height - 0.12) < 0.025) & (s > 0.15) & (s < 0.85), p.stripe_color)
    # Tongue and laces on top, in front of the opening.
    o_end = p.opening_start + p.opening_length
    zrel = (z - pr.centre_z) / np.maximum(pr.half_width, 1e-6)
    lace_zone = (s > o_end - 0.03) & (s < min(o_end + 0.28, 0.8)) & (np.abs(zrel) < 0.42) & (height > 0.55)
    paint(lace_zone, p.tongue_color)
    bars = (np.mod((s - o_end) / p.lace_spacing, 1.0) < 0.38) & (np.abs(zrel) < 0.36) & (s > o_end)
    paint(lace_zone & bars, p.lace_color)
    # Opening: lining inside.
    paint(opening > 0.35, p.lining_color)
    # Sole: midsole up to a (wavy) line, outsole band at the bottom, tread underneath.
    wave = p.midsole_wave * np.sin(s * 2 * np.pi * 6 + 1.3)
    midsole = y < pr.sole_top + wave
    paint(midsole, p.sole_color)
    outsole = (y < pr.bottom + 0.3 * (pr.sole_top - pr.bottom)) | (normal[..., 1] < -0.75)
    paint(outsole, p.outsole_color)
    tread = (normal[..., 1] < -0.75) & (np.mod(s * 40, 1.0) < 0.3)
    img[tread] *= 0.7
    # Fabric noise and soft view-independent shading.
    img *= 1.0 + 0.04 * rng.standard_normal(s.shape)[..., None]
    light = np.asarray(light, dtype=np.float64)
    light = light / np.linalg.norm(light)
    shade = ambient + (1 - ambient) * np.clip(normal @ light, 0, 1)
    shade = shade * (1.0 - 0.35 * _smoothstep(0.3, 1.0, opening))  # the opening is in shadow
    img *= shade[..., None]
    return np.clip(img, 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------------------- mesh API


def shoe_mesh(p: ShoeParams, cfg: SynthConfig | None = None, textured: bool = True) -> Mesh:
    """The normalised, textured ``Mesh`` of shoe ``p`` (centred bbox, longest extent 1, toe +X, lateral +Z)."""
    cfg = cfg or SynthConfig()
    verts, faces, uvs, uv_faces = shoe_geometry(p, cfg.edge_length)
    verts_t = normalize_verts(torch.from_numpy(verts)).float()
    texture = None
    if textured:
        tex = shoe_texture(p, cfg.texture_size, cfg.light, cfg.ambient)
        texture = torch.from_numpy(tex).permute(2, 0, 1).contiguous()
    return Mesh(verts_t, torch.from_numpy(faces), torch.from_numpy(uvs).float(), torch.from_numpy(uv_faces), texture)


# ----------------------------------------------------------------------------------------- rendering


def render_turntable(mesh: Mesh, cameras: Tensor, image_size: int, supersample: int = 1, chunk: int = 12) -> Tensor:
    """Render a textured mesh from cameras (V, 4): (V, 4, S, S) straight RGB + alpha = pixel coverage.

    The mesh must be closed with outward faces (back faces are culled). Hard blending with one face
    per pixel gives exact 0/1 coverage per sample; with ``supersample``
    k the mesh is rendered at k*S and box-filtered, so alpha is the covered fraction of each pixel
    and RGB is un-premultiplied (white where nothing is covered).
    """
    from shoerecon.render.cameras import Cameras
    from shoerecon.render.renderer import Renderer, RendererConfig

    big = image_size * supersample
    # The mesh is closed, so culling back faces changes no pixel of a K=1 hard render and is ~4x faster.
    renderer = Renderer(RendererConfig(image_size=big, faces_per_pixel=1, blend="hard", background=(1.0, 1.0, 1.0),
                                       cull_backfaces=True))
    out = []
    for start in range(0, cameras.shape[0], chunk):
        cams = Cameras.from_tensor(cameras[start : start + chunk][None])
        with torch.no_grad():
            rgba = renderer(mesh.verts[None], mesh.faces, cams, mesh.texture[None], mesh.uvs, mesh.uv_faces)[0]
        out.append(rgba)
    rgba = torch.cat(out)
    if supersample > 1:
        rgba = torch.nn.functional.avg_pool2d(rgba, supersample)
    alpha = rgba[:, 3:].clamp(0, 1)
    premult = rgba[:, :3] - (1.0 - alpha)  # the renderer composites on white
    rgb = torch.where(alpha > 1e-6, premult / alpha.clamp_min(1e-6), torch.ones_like(premult))
    return torch.cat([rgb.clamp(0, 1), alpha], dim=1)


def _save_mesh(mesh: Mesh, path: Path) -> None:
    """Ground truth as GLB through the export module (textured, UVs kept)."""
    from shoerecon.geometry.io.glb import save_glb

    save_glb(mesh, path)


def shoe_id(index: int) -> str:
    return f"shoe_{index:05d}"


def generate_shoe(out_dir: str | Path, index: int, seed: int, cfg: SynthConfig, cameras: Tensor) -> str:
    """Make, render and write shoe ``index`` (views/NNN.png, mesh.glb, params.json); returns its id."""
    from shoerecon.data.layout import save_rgba, write_json

    params = sample_shoe_params(shoe_rng(seed, index), cfg)
    mesh = shoe_mesh(params, cfg)
    folder = Path(out_dir) / shoe_id(index)
    views = render_turntable(mesh, cameras, cfg.image_size, cfg.supersample)
    for v, rgba in enumerate(views):
        save_rgba(folder / "views" / f"{v:03d}.png", rgba[:3], rgba[3:])
    _save_mesh(mesh, folder / "mesh.glb")
    write_json(folder / "params.json", asdict(params))
    return shoe_id(index)


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _generate_one(job) -> str:
    return generate_shoe(*job)


def split_ids(ids: Sequence[str], seed: int, val_fraction: float, test_fraction: float) -> dict[str, list[str]]:
    """Shuffle ids with ``seed`` and cut them into train/val/test (at least one val/test shoe when there are 3+)."""
    ids = list(ids)
    order = np.random.default_rng([int(seed), 7]).permutation(len(ids))
    n_val = int(round(val_fraction * len(ids)))
    n_test = int(round(test_fraction * len(ids)))
    if len(ids) >= 3:
        n_val, n_test = max(n_val, 1 if val_fraction > 0 else 0), max(n_test, 1 if test_fraction > 0 else 0)
    shuffled = [ids[i] for i in order]
    return {
        "train": sorted(shuffled[n_val + n_test :]),
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
    }


def _remove_dataset(root: Path) -> None:
    """Delete what a previous ``generate_dataset`` wrote (rig, splits, shoe folders); refuse anything else."""
    import shutil

    ours = {"rig.json", "splits.json"}
    foreign = [p.name for p in root.iterdir() if p.name not in ours and not (p.is_dir() and (p / "views").is_dir())]
    if foreign:
        raise FileExistsError(f"{root}: not a dataset folder (contains {foreign[:5]}); refusing to overwrite it")
    for p in root.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def generate_dataset(
    out_dir: str | Path,
    num_shoes: int,
    num_views: int | None = None,
    image_size: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    cfg: SynthConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic turntable dataset in the DESIGN layout; the same (seed, config) gives the same files.

    Args:
        num_views / image_size: override ``cfg.num_views`` / ``cfg.image_size`` when given.
        workers: processes (None = all CPU cores, 0 or 1 = in this process), one torch thread each.
        overwrite: replace an existing dataset in ``out_dir`` (otherwise a non-empty folder is an error,
            so stale shoes of an earlier, larger run never mix in).
    Returns:
        the dataset root.
    """
    from tqdm import tqdm

    from shoerecon.data.layout import rig_from_turntable, write_json

    cfg = cfg or SynthConfig()
    cfg = SynthConfig(**{**asdict(cfg), **{k: v for k, v in (("num_views", num_views), ("image_size", image_size)) if v is not None}})
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out}: folder is not empty; choose a new folder or pass overwrite=True (--overwrite)")
        _remove_dataset(out)
    out.mkdir(parents=True, exist_ok=True)
    rig = rig_from_turntable(cfg.num_views, cfg.elevation, cfg.distance, cfg.fov)
    write_json(out / "rig.json", rig.to_json(image_size=cfg.image_size, background=[1.0, 1.0, 1.0],
                                             source={"generator": "shoerecon.data.synthetic", "seed": seed,
                                                     "config": asdict(cfg)}))
    jobs = [(str(out), i, seed, cfg, rig.cameras) for i in range(num_shoes)]
    workers = os.cpu_count() or 1 if workers is None else workers
    bar = tqdm(total=num_shoes, desc="synth", unit="shoe", disable=not progress)
    ids = []
    if workers <= 1:
        for job in jobs:
            ids.append(_generate_one(job))
            bar.update()
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(1,)) as pool:
            for sid in pool.imap_unordered(_generate_one, jobs):
                ids.append(sid)
                bar.update()
    bar.close()
    write_json(out / "splits.json", split_ids(sorted(ids), seed, cfg.val_fraction, cfg.test_fraction))
    return out
