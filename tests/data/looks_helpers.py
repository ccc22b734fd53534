"""Tiny shoes for the appearance tests: the multi-part generator, or today's one-piece shoe through the parts contract."""
from __future__ import annotations

import functools

import numpy as np
import torch

from shoerecon.data.synth.materials import MaterialStyle
from shoerecon.data.synth.parts import PARTS
from shoerecon.geometry.mesh import Mesh

WHITE = (0.94, 0.94, 0.93)


@functools.lru_cache(maxsize=4)
def _tiny(texture_size: int):
    try:  # the multi-part generator (issue 10, shape) when it is there
        from shoerecon.data.synth.shape import ShoeParams
        from shoerecon.data.synth.shoe import shoe_geometry

        geo = shoe_geometry(ShoeParams(), 0.05, texture_size)
        mesh = Mesh(torch.from_numpy(geo.verts).float(), torch.from_numpy(geo.faces), torch.from_numpy(geo.uvs).float(),
                    torch.from_numpy(geo.uv_faces), None)
        return mesh, geo.gbuffer(texture_size)
    except ImportError:  # today's one-piece shoe through the parts contract
        from shoerecon.data.synth.legacy import legacy_gbuffer
        from shoerecon.data.synthetic import ShoeParams, SynthConfig, shoe_mesh

        p = ShoeParams.mean()
        return shoe_mesh(p, SynthConfig(edge_length=0.05), textured=False), legacy_gbuffer(p, texture_size, edge_length=0.05)


def tiny_shoe(texture_size: int = 64):
    """(Mesh without texture, TexelGBuffer) of a coarse shoe; the mesh is a fresh object (tests set its texture)."""
    mesh, g = _tiny(texture_size)
    return Mesh(mesh.verts.clone(), mesh.faces, mesh.uvs, mesh.uv_faces, None), g


def plain_style(upper=WHITE, sole=WHITE, outsole=None, **kw) -> MaterialStyle:
    """A style without logos, panels or stitching: every part ``upper``, the sole ``sole`` / ``outsole``."""
    colours = {name: upper for name in PARTS}
    style = MaterialStyle(part_colors=colours, midsole_color=sole, outsole_color=outsole or sole, stitching=False,
                          heel_logo=None, tongue_label=None, **kw)
    style.params["crease_strength"] = 0.0
    return style


def with_texture(mesh, albedo: np.ndarray):
    mesh.texture = torch.from_numpy(np.ascontiguousarray(albedo)).permute(2, 0, 1).contiguous().float()
    return mesh


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of boolean masks (V, 1, H, W) -> (V,)."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return inter / union.clamp_min(1)
