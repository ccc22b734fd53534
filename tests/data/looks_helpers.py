"""Tiny shoes for the appearance tests: today's one-piece generator seen through the parts contract."""
from __future__ import annotations

import numpy as np
import torch

from shoerecon.data.synth.legacy import legacy_gbuffer
from shoerecon.data.synth.materials import MaterialStyle
from shoerecon.data.synth.parts import PARTS
from shoerecon.data.synthetic import ShoeParams, SynthConfig, shoe_mesh

WHITE = (0.94, 0.94, 0.93)


def tiny_shoe(texture_size: int = 64, p: ShoeParams | None = None):
    """(Mesh without texture, TexelGBuffer) of a coarse shoe (a few hundred faces)."""
    p = p or ShoeParams.mean()
    return shoe_mesh(p, SynthConfig(edge_length=0.05), textured=False), legacy_gbuffer(p, texture_size, edge_length=0.05)


def plain_style(upper=WHITE, sole=WHITE, outsole=None, **kw) -> MaterialStyle:
    """A style without logos, panels or stitching: every part ``upper``, the sole ``sole`` / ``outsole``."""
    colours = {name: upper for name in PARTS}
    return MaterialStyle(part_colors=colours, midsole_color=sole, outsole_color=outsole or sole, stitching=False,
                         heel_logo=None, tongue_label=None, **kw)


def with_texture(mesh, albedo: np.ndarray):
    mesh.texture = torch.from_numpy(np.ascontiguousarray(albedo)).permute(2, 0, 1).contiguous().float()
    return mesh


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of boolean masks (V, 1, H, W) -> (V,)."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return inter / union.clamp_min(1)
