"""One whole shoe: its parts meshed, normalised, laid out in one UV atlas, with the texel G-buffer.

``shoe_geometry`` is the shape half of a synthetic shoe; ``shoe_mesh`` adds a texture painted from
the G-buffer by ``synth.materials`` (``flat_paint``: a flat colour per part, for looking at shapes alone).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shoerecon.data.synth.atlas import dilate, part_rects, texel_gbuffer
from shoerecon.data.synth.parts import PART_ID, PARTS, TexelGBuffer
from shoerecon.data.synth.shape import ShoeParams, shoe_parts, upper_surface
from shoerecon.geometry.mesh import Mesh


@dataclass
class ShoeGeometry:
    """A multi-part shoe in the normalised frame (centred bounding box, longest extent 1).

    verts (N, 3) float32, faces (F, 3) int64 (every part closed, outward), uvs (T, 2) in the atlas,
    uv_faces (F, 3), face_part (F,) part ids, vert_local (N, 2) part-local coords, part_slices:
    (name, first face, end face) per closed component, scale: normalised / raw units.
    """

    verts: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    face_part: np.ndarray
    vert_local: np.ndarray
    part_slices: list
    scale: float

    def gbuffer(self, size: int) -> TexelGBuffer:
        return texel_gbuffer(self.verts, self.faces, self.uvs, self.uv_faces, self.face_part, self.vert_local, size)


def _area(v: np.ndarray, f: np.ndarray) -> float:
    return float(np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=-1).sum() / 2)


def shoe_geometry(p: ShoeParams, edge_length: float = 0.022, atlas_size: int = 256) -> ShoeGeometry:
    """Mesh, normalise and UV-pack every part of shoe ``p`` (``atlas_size`` sets the gutters)."""
    parts = shoe_parts(p, edge_length)
    allv = np.concatenate([q.verts for q in parts])
    lo, hi = allv.min(0), allv.max(0)
    centre, scale = (lo + hi) / 2, 1.0 / float((hi - lo).max())
    areas = np.array([_area(q.verts, q.faces) for q in parts])
    ext = np.array([np.ptp(q.verts, axis=0).max() for q in parts])
    aspects = np.clip(areas / ext**2, 0.2, 5.0)
    rects = part_rects(areas, aspects, atlas_size)
    verts, faces, uvs, uv_faces, face_part, local, slices = [], [], [], [], [], [], []
    nv = nt = nf = 0
    x_lo, x_hi = lo[0], hi[0]
    for q, (rx, ry, rw, rh) in zip(parts, rects):
        verts.append((q.verts - centre) * scale)
        faces.append(q.faces + nv)
        uvs.append(np.stack([rx + q.uvs[:, 0] * rw, ry + q.uvs[:, 1] * rh], -1))
        uv_faces.append(q.uv_faces + nt)
        pid = PART_ID[q.name]
        fp = np.full(len(q.faces), pid, np.int16)
        if q.name == "upper":  # the inside of the opening is the lining
            params = q.extras["params"]
            _, ex = upper_surface(p, params[:, 0], params[:, 1], with_extras=True)
            fp[ex["opening"][q.faces].mean(1) > 0.35] = PART_ID["lining"]
        face_part.append(fp)
        y = q.verts[:, 1]
        local.append(np.stack([(q.verts[:, 0] - x_lo) / (x_hi - x_lo), (y - y.min()) / max(np.ptp(y), 1e-9)], -1))
        slices.append((q.name, nf, nf + len(q.faces)))
        nv, nt, nf = nv + len(q.verts), nt + len(q.uvs), nf + len(q.faces)
    return ShoeGeometry(np.concatenate(verts).astype(np.float32), np.concatenate(faces), np.concatenate(uvs),
                        np.concatenate(uv_faces), np.concatenate(face_part), np.concatenate(local), slices, scale)


def shoe_and_gbuffer(p: ShoeParams, edge_length: float = 0.035, texture_size: int = 256) -> tuple[Mesh, TexelGBuffer]:
    """The untextured normalised ``Mesh`` of shoe ``p`` and its (texture_size, texture_size) G-buffer."""
    geo = shoe_geometry(p, edge_length, texture_size)
    mesh = Mesh(torch.from_numpy(geo.verts).float(), torch.from_numpy(geo.faces), torch.from_numpy(geo.uvs).float(),
                torch.from_numpy(geo.uv_faces), None)
    return mesh, geo.gbuffer(texture_size)


# ----------------------------------------------------------------------------------------- painting

#: Placeholder colours per part (until the material modules paint real ones).
_PART_COLOURS = {
    "sole": (0.93, 0.92, 0.88), "upper": (0.55, 0.6, 0.68), "tongue": (0.5, 0.55, 0.62),
    "collar": (0.35, 0.38, 0.45), "heel_counter": (0.45, 0.5, 0.58), "pull_tab": (0.9, 0.3, 0.2),
    "laces": (0.95, 0.95, 0.95), "overlay": (0.45, 0.5, 0.58), "lining": (0.2, 0.2, 0.22),
}


_SOLE_COLOURS = [(0.72, 0.52, 0.3), (0.18, 0.18, 0.19), (0.6, 0.6, 0.62), (0.45, 0.5, 0.6)]


def flat_paint(gb: TexelGBuffer, rng: np.random.Generator, light=(0.25, 1.0, 0.45), ambient: float = 0.62) -> np.ndarray:
    """Placeholder texture: a random hue-shifted flat colour per part (soles gum, black, grey or
    blue-grey, never white), a stripe on the lateral side, soft view-independent shading.

    Returns (T, T, 3) float32 in [0, 1].
    """
    shift = rng.uniform(0.5, 1.2, size=(len(PARTS), 3))
    img = np.ones(gb.part.shape + (3,))
    for name, col in _PART_COLOURS.items():
        m = gb.mask(name)
        c = np.clip(np.array(col) * (shift[PART_ID[name]] if name not in ("sole", "laces") else 1.0), 0, 1)
        if name == "sole":
            c = np.array(_SOLE_COLOURS[rng.integers(len(_SOLE_COLOURS))])
        img[m] = c
    # A stripe on the lateral quarter only, so the two sides of a shoe differ.
    x, y, z = gb.position[..., 0], gb.position[..., 1], gb.position[..., 2]
    stripe = gb.mask("upper") & (z > 0.05) & (np.abs(x + 0.6 * y - rng.uniform(-0.1, 0.15)) < 0.03)
    img[stripe] = np.clip(np.array(_PART_COLOURS["pull_tab"]) * shift[0], 0, 1)
    light = np.asarray(light, dtype=np.float64) / np.linalg.norm(light)
    shade = ambient + (1 - ambient) * np.clip(gb.normal @ light, 0, 1)
    img *= shade[..., None]
    img = dilate(img, gb.part >= 0)
    return np.clip(img, 0, 1).astype(np.float32)


def paint_texture(geo: ShoeGeometry, p: ShoeParams, size: int) -> np.ndarray:
    """The shoe's albedo texture (T, T, 3) float32, painted by ``synth.materials`` with a style drawn
    from ``p.seed`` (``flat_paint`` is the appearance-free stand-in, e.g. for looking at shapes)."""
    from shoerecon.data.synth import materials

    rng = np.random.default_rng(p.seed)
    albedo, _ = materials.paint_texture(geo.gbuffer(size), materials.sample_style(rng), rng)
    return np.asarray(albedo, dtype=np.float32)


def shoe_mesh(p: ShoeParams, edge_length: float = 0.022, texture_size: int = 256, textured: bool = True) -> Mesh:
    """The normalised multi-part ``Mesh`` of shoe ``p`` (one atlas texture (3, T, T) when ``textured``)."""
    geo = shoe_geometry(p, edge_length, texture_size)
    texture = None
    if textured:
        texture = torch.from_numpy(paint_texture(geo, p, texture_size)).permute(2, 0, 1).contiguous()
    return Mesh(torch.from_numpy(geo.verts).float(), torch.from_numpy(geo.faces), torch.from_numpy(geo.uvs).float(),
                torch.from_numpy(geo.uv_faces), texture)
