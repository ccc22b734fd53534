"""Closed genus-0 triangle meshes of sphere-like parametric surfaces, with near-equilateral triangles.

A surface is a callable ``f(s, theta) -> (..., 3)`` on s in [0, 1] (a pole at s = 0 and one at
s = 1: every ring collapses to a point there) and theta in [-pi/2, 3 pi/2) (periodic around each
ring). Rings of vertices sit at values of s spaced evenly in (a mean) meridian arc length, each
ring with as many vertices as its perimeter needs for the target edge length, spaced evenly in arc
length around it; neighbouring rings are zipped by theta and the poles close with fans. A surface
whose rings are simple closed curves in planes that do not cross gives a closed, consistently
oriented, genus-0 mesh.

UV (part-local): ``u`` = arc-length fraction around the ring from theta = -pi/2, ``v`` = meridian
arc-length fraction from the s = 0 pole.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Surface = Callable[[np.ndarray, np.ndarray], np.ndarray]

_FINE_THETA = 360
_THETA0 = -np.pi / 2


def ring_arcs(f: Surface, s: np.ndarray, fine: int = _FINE_THETA) -> tuple[np.ndarray, np.ndarray]:
    """Fine angles around the rings at s (R,) and the arc length up to each: (K+1,), (R, K+1)."""
    th = np.linspace(_THETA0, _THETA0 + 2 * np.pi, fine + 1)
    pts = f(np.asarray(s, dtype=np.float64)[:, None], th[None, :])
    arc = np.concatenate([np.zeros((pts.shape[0], 1)), np.cumsum(np.linalg.norm(np.diff(pts, axis=1), axis=-1), axis=1)], 1)
    return th, arc


def theta_at_arc_fraction(f: Surface, s: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """Angles (R, U) of the points at arc-length ``fraction`` (U,) in [0, 1] around the rings at s (R,)."""
    th, arc = ring_arcs(f, s)
    return np.stack([np.interp(fraction * a[-1], a, th) for a in arc])


def meridian_arc(f: Surface, fine: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Meridian arc length from the s = 0 pole: s (fine+1,) and the arc length at each s (fine+1,)."""
    s = np.linspace(0.0, 1.0, fine + 1)
    th = np.linspace(_THETA0, _THETA0 + 2 * np.pi, 48, endpoint=False)
    pts = f(s[:, None], th[None, :])
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=-1)
    # Mostly the mean, but where one meridian is much steeper (e.g. the walls of a shoe's opening)
    # rings follow it, so triangles there do not stretch along the wall.
    seg = np.maximum(seg.mean(axis=1), 0.6 * seg.max(axis=1))
    return s, np.concatenate([[0.0], np.cumsum(seg)])


def zip_rings(a_key: np.ndarray, b_key: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangulate the strip between two rings given increasing keys of their points (first point repeated at the end).

    Returns triangles as index triples where indices < len(a_key) are ring a, others ring b (offset).

    >>> zip_rings(np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0]))
    [(0, 1, 3), (1, 2, 3), (2, 4, 3)]
    """
    na, nb = len(a_key) - 1, len(b_key) - 1
    off = len(a_key)
    tris, i, j = [], 0, 0
    while i < na or j < nb:
        if j == nb or (i < na and a_key[i + 1] <= b_key[j + 1]):
            tris.append((i, i + 1, off + j))
            i += 1
        else:
            tris.append((i, off + j + 1, off + j))
            j += 1
    return tris


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("fi,fi->f", v0, np.cross(v1, v2)).sum() / 6.0)


def mesh_surface(f: Surface, edge_length: float, min_ring: int = 6, with_params: bool = False):
    """Closed genus-0 mesh of surface ``f`` with its part-local UV.

    Args:
        f: the surface, see the module docstring.
        edge_length: target triangle edge length.
        min_ring: fewest vertices on a ring (small parts stay round).
    Returns:
        verts (N, 3) float64, faces (F, 3) int64 (counter-clockwise from outside), uvs (T, 2) float64
        in [0, 1], uv_faces (F, 3) int64; with ``with_params`` also (s, theta) of every vertex (N, 2).
    """
    s_fine, arc = meridian_arc(f)
    n_rings = max(3, int(round(arc[-1] / (edge_length * 0.866))))
    ring_v = np.arange(1, n_rings) / n_rings
    ring_s = np.interp(ring_v * arc[-1], arc, s_fine)
    th, arcs = ring_arcs(f, ring_s)
    rings = []
    for a in arcs:
        n = max(min_ring, int(round(a[-1] / edge_length)))
        rings.append(np.interp(np.arange(n) / n * a[-1], a, th))
    ring_pts = f(np.concatenate([np.full(len(t), s) for s, t in zip(ring_s, rings)]), np.concatenate(rings))
    verts = [f(np.array([0.0]), np.array([0.0])).reshape(1, 3), ring_pts.reshape(-1, 3)]
    uvs, faces, uv_faces = [], [], []
    starts, uv_starts = [], []
    v_base, uv_base = 1, 0
    for v, t in zip(ring_v, rings):
        n = len(t)
        uvs.append(np.stack([np.arange(n + 1) / n, np.full(n + 1, v)], axis=1))
        starts.append(v_base)
        uv_starts.append(uv_base)
        v_base += n
        uv_base += n + 1
    verts.append(f(np.array([1.0]), np.array([0.0])).reshape(1, 3))
    end_pole = v_base
    for r in range(len(rings) - 1):
        na, nb = len(rings[r]), len(rings[r + 1])
        key_a = np.append(rings[r], rings[r][0] + 2 * np.pi)
        key_b = np.append(rings[r + 1], rings[r + 1][0] + 2 * np.pi)
        for tri in zip_rings(key_a, key_b):
            pf, uf = [], []
            for t in tri:
                ring, j = (r, t) if t <= na else (r + 1, t - na - 1)
                n = na if ring == r else nb
                pf.append(starts[ring] + j % n)
                uf.append(uv_starts[ring] + j)
            faces.append(pf)
            uv_faces.append(uf)
    for ring, pole, v_pole in ((0, 0, 0.0), (len(rings) - 1, end_pole, 1.0)):
        n = len(rings[ring])
        uvs.append(np.stack([(np.arange(n) + 0.5) / n, np.full(n, v_pole)], axis=1))
        for j in range(n):
            a, b = starts[ring] + j, starts[ring] + (j + 1) % n
            ua, ub, up = uv_starts[ring] + j, uv_starts[ring] + j + 1, uv_base + j
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
    if signed_volume(verts, faces) < 0:  # counter-clockwise seen from outside
        faces, uv_faces = faces[:, [0, 2, 1]], uv_faces[:, [0, 2, 1]]
    if with_params:
        params = np.concatenate([[[0.0, 0.0]], np.stack([np.concatenate([np.full(len(t), s) for s, t in zip(ring_s, rings)]),
                                                         np.concatenate(rings)], -1), [[1.0, 0.0]]])
        return verts, faces, uvs, uv_faces, params
    return verts, faces, uvs, uv_faces
