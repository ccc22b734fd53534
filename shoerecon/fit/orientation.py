"""The photo's orientation, and one call that runs the network and refinement on a photo.

The input convention is the lateral side of a right shoe, toe to the image's right. A photo with the toe to
the left (a left shoe's lateral side, or a right shoe's medial side) looks like the convention once mirrored
horizontally. ``orientation="auto"`` fits both the photo and its mirror image briefly
(``RefineConfig.orientation_steps``, texture not baked) and keeps the better silhouette fit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from shoerecon.fit.refine import RefineConfig, RefineResult, hard_iou, refine
from shoerecon.fit.symmetry import mirror_partners
from shoerecon.geometry.mesh import Mesh

ORIENTATIONS = ("auto", "as-is", "mirror")


@dataclass
class PhotoFit:
    """mesh: the refined mesh (a right shoe, DESIGN frame), or the network's when no steps were asked for.
    result: the refinement of the chosen orientation (None with 0 steps). mirrored: the photo was mirrored
    (toe left in the photo). scores: hard silhouette IoU of each brief fit (auto only)."""

    mesh: Mesh
    result: Optional[RefineResult]
    mirrored: bool
    scores: dict[str, float] = field(default_factory=dict)


def predict_one(model: torch.nn.Module, net_input: Tensor) -> tuple[Mesh, Tensor]:
    """The network's mesh (texture in [0, 1]) and flow (Ht, Wt, 2) for one prepared input (3, h, w)."""
    with torch.no_grad():
        out = model(net_input[None])
    mesh = Mesh(out.verts[0], model.faces, model.uvs, model.uv_faces, out.texture[0].clamp(0, 1))
    # the flow samples the input image; with a variance head the texture is more than that sample
    flow = out.flow[0] if out.variance is None else None
    return mesh, flow


def fit_photo(model: torch.nn.Module, net_input: Tensor, photo: Tensor, mask: Tensor, cfg: RefineConfig,
              orientation: str = "as-is", steps: Optional[int] = None, progress: bool = True) -> PhotoFit:
    """Run the network on ``net_input`` and refine its prediction against ``photo``.

    Args:
        net_input: (3, h, w) the network's prepared input. photo (3, H, W), mask (1, H, W): the same framing at
            the fit's size (``cfg.image_size``). orientation: auto | as-is | mirror. steps: overrides cfg.steps.
    Returns:
        PhotoFit; with orientation "mirror" (or auto choosing it) everything was mirrored horizontally first.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {', '.join(ORIENTATIONS)}, got {orientation!r}")
    partners = mirror_partners(model.template_verts)

    def candidate(mirrored: bool) -> tuple[Mesh, Optional[Tensor], Tensor, Tensor]:
        flip = (lambda t: t.flip(-1)) if mirrored else (lambda t: t)
        mesh, flow = predict_one(model, flip(net_input))
        return mesh, flow, flip(photo), flip(mask)

    scores: dict[str, float] = {}
    if orientation == "auto":
        for name, mirrored in (("as-is", False), ("mirror", True)):
            mesh, flow, ph, m = candidate(mirrored)
            brief = refine(mesh, ph, m, cfg, flow, steps=cfg.orientation_steps, partners=partners, bake=False,
                           progress=False)
            scores[name] = hard_iou(brief.render[3:], m)
        mirrored = scores["mirror"] > scores["as-is"]
    else:
        mirrored = orientation == "mirror"
    mesh, flow, ph, m = candidate(mirrored)
    if (cfg.steps if steps is None else steps) == 0:
        return PhotoFit(mesh, None, mirrored, scores)
    result = refine(mesh, ph, m, cfg, flow, steps=steps, partners=partners, progress=progress)
    return PhotoFit(result.mesh, result, mirrored, scores)


def refine_meshes(model: torch.nn.Module, inputs: Tensor, masks: Tensor, cfg: RefineConfig, steps: int,
                  progress: bool = False) -> list[Mesh]:
    """Refined meshes of a batch of prepared inputs (B, 3, H, W) with masks (B, 1, H, W), fitted at their own
    size (as-is orientation; eval's ``--refine N``)."""
    meshes = []
    for image, mask in zip(inputs, masks):
        fit = fit_photo(model, image, image, mask.to(image), cfg, "as-is", steps=steps, progress=progress)
        meshes.append(fit.mesh)
    return meshes
