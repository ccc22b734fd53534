"""The one-piece shoe of ``data/synthetic.py`` seen through the parts contract.

Parts are assigned by simple rules (height bands -> sole and upper, the opening -> lining, a strip
in front of the opening -> laces and tongue, the back of the collar -> collar and heel counter), so
that the appearance modules can be developed, tested and looked at before the multi-part
generator exists. Not a training generator: it exists for tests and ``benchmarks/looks_sheet.py``.
"""
from __future__ import annotations

import numpy as np

from shoerecon.data.synth.parts import PART_ID, TexelGBuffer
from shoerecon.data.synthetic import ShoeParams, _texel_surface, shoe_geometry


def legacy_gbuffer(p: ShoeParams, size: int, edge_length: float = 0.022) -> TexelGBuffer:
    """The (size, size) texel G-buffer of shoe ``p`` in its natural UV layout (matches ``shoe_mesh``'s frame).

    Local coordinates: u = s (heel 0 -> toe 1) for every part, v = height within the part's band.
    """
    s, _u, pts, normal, extras = _texel_surface(p, size)
    verts, *_ = shoe_geometry(p, edge_length)
    lo, hi = verts.min(0), verts.max(0)
    # The same normalisation as ``normalize_verts`` (centred bbox, longest extent 1) on the mesh's vertices.
    pos = (pts - (lo + hi) / 2) / float((hi - lo).max())
    pr, opening = extras["profiles"], extras["opening"]
    y, z = pts[..., 1], pts[..., 2]
    height = np.clip((y - pr.sole_top) / np.maximum(pr.top - pr.sole_top, 1e-6), 0, 1)
    o_end = p.opening_start + p.opening_length
    zrel = (z - pr.centre_z) / np.maximum(pr.half_width, 1e-6)
    part = np.full(s.shape, PART_ID["upper"], dtype=np.int16)
    local_v = height.copy()
    sole = y < pr.sole_top
    part[(s < p.heel_counter_length * (1.0 - 0.55 * height)) & (height < 0.7)] = PART_ID["heel_counter"]
    part[(s < 0.2) & (height >= 0.7)] = PART_ID["collar"]
    tongue = (s > o_end - 0.03) & (s < min(o_end + 0.28, 0.8)) & (np.abs(zrel) < 0.45) & (height > 0.55)
    part[tongue] = PART_ID["tongue"]
    laces = tongue & (np.abs(zrel) < 0.32) & (s > o_end)
    part[laces] = PART_ID["laces"]
    part[opening > 0.35] = PART_ID["lining"]
    part[sole] = PART_ID["sole"]
    local_v[sole] = np.clip((y - pr.bottom) / np.maximum(pr.sole_top - pr.bottom, 1e-6), 0, 1)[sole]
    band = part == PART_ID["heel_counter"]
    local_v[band] = np.clip(height / 0.7, 0, 1)[band]
    local_u = np.where(band, s / np.maximum(p.heel_counter_length, 1e-6), s)
    local = np.stack([np.clip(local_u, 0, 1), local_v], axis=-1)
    return TexelGBuffer(pos.astype(np.float32), normal.astype(np.float32), part, local.astype(np.float32))
