"""Shape regularizers on the predicted mesh: Laplacian, flatten (SoftRas), normal consistency, edge length.

All take vertices with a batch dimension (B, N, 3) and faces (F, 3), and return a scalar averaged over
the batch. ``reduction`` says how the per-vertex / per-edge terms of one mesh are combined: "sum" (as
SoftRas, so the weight scales with the mesh resolution) or "mean".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from torch import Tensor

from shoerecon.geometry.laplacian import (
    adjacent_normal_cosines,
    dihedral_cosines,
    edge_lengths,
    edge_quads,
    mesh_edges,
    uniform_laplacian,
)
from shoerecon.geometry.topology import Template
from shoerecon.losses.registry import LossContext, TermConfig, at_least_fp32, check_choice, register_loss


Topology = Union[Tensor, Template]  # faces (F, 3) long, or a Template (its cached connectivity)


def _faces(topology: Topology) -> Tensor:
    return topology.faces if isinstance(topology, Template) else topology


def _edges(topology: Topology) -> Tensor:
    return topology.edges if isinstance(topology, Template) else mesh_edges(topology)


def _quads(topology: Topology):
    return topology.edge_quads if isinstance(topology, Template) else edge_quads(topology)


def _reduce(per_item: Tensor, reduction: str) -> Tensor:
    """(B, K) -> () : sum or mean over K, then mean over the batch."""
    if reduction == "sum":
        return per_item.sum(-1).mean()
    if reduction == "mean":
        return per_item.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def laplacian_loss(verts: Tensor, faces: Topology, reduction: str = "sum") -> Tensor:
    """Uniform Laplacian smoothness: ``reduce_i |L(x)_i|^2`` with ``L(x)_i = mean_{j in N(i)} x_j - x_i``.

    Pass absolute vertices to smooth the surface itself (SoftRas), or offsets from the template to
    smooth only the deformation (keeps the template's own detail).

    Args:
        verts: (B, N, 3) vertices or offsets. faces: (F, 3) long, or a Template (cached connectivity).
    Returns:
        () scalar.
    """
    operands = faces.laplacian_operands if isinstance(faces, Template) else None
    return _reduce(uniform_laplacian(verts, _faces(faces), operands).pow(2).sum(-1), reduction)


def flatten_loss(verts: Tensor, faces: Topology, reduction: str = "sum", eps: float = 1e-6) -> Tensor:
    """SoftRas flatten loss: ``reduce_e (1 + cos theta_e)^2`` over interior edges e.

    ``theta_e`` is the interior dihedral angle between the two faces on edge e (pi when flat, so the
    term is 0; 0 when folded shut, term 4), computed as in SoftRas
    (:func:`shoerecon.geometry.laplacian.dihedral_cosines`).

    Args:
        verts: (B, N, 3). faces: (F, 3) long, or a Template (cached connectivity).
    Returns:
        () scalar.
    """
    cos = dihedral_cosines(verts, _quads(faces).verts, eps)
    return _reduce((1 + cos).pow(2), reduction)


def normal_consistency_loss(verts: Tensor, faces: Topology, reduction: str = "mean") -> Tensor:
    """Normal consistency: ``reduce_e (1 - n_f . n_g)`` over interior edges e between faces f and g.

    Args:
        verts: (B, N, 3). faces: (F, 3) long, consistently oriented.
    Returns:
        () scalar, 0 on a plane.
    """
    cos = adjacent_normal_cosines(verts, _faces(faces), _quads(faces).faces)
    return _reduce(1 - cos, reduction)


def edge_length_loss(verts: Tensor, faces: Topology, template: Optional[Tensor] = None,
                     reduction: str = "mean") -> Tensor:
    """Edge-length regularizer.

    With ``template`` (B or 1, N, 3): ``reduce_e (|e| - |e_template|)^2`` (keep the template's edge
    lengths). Without: ``var_e |e|`` per mesh, the variance of the edge lengths (even triangles);
    ``reduction`` does not apply to the variance.

    Args:
        verts: (B, N, 3). faces: (F, 3) long. template: (B or 1, N, 3) or None.
    Returns:
        () scalar.
    """
    edges = _edges(faces)
    lengths = edge_lengths(verts, edges)
    if template is None:
        return lengths.var(dim=-1, unbiased=False).mean()
    return _reduce((lengths - edge_lengths(template, edges)).pow(2).expand_as(lengths), reduction)


# ------------------------------------------------------------------------------------------ terms
@dataclass
class LaplacianConfig(TermConfig):
    """Laplacian smoothness. ``smooth``: offsets (the deformation) | verts (the surface itself, SoftRas);
    ``reduction``: sum over vertices (SoftRas) | mean."""

    weight: float = 0.1
    smooth: str = "offsets"     # not "on": YAML reads the key `on` as the boolean true
    reduction: str = "sum"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "smooth", ("offsets", "verts"))
        check_choice(self, "reduction", ("sum", "mean"))


@register_loss("laplacian", LaplacianConfig)
def laplacian_term(ctx: LossContext, cfg: LaplacianConfig) -> Tensor:
    x = ctx.out.offsets if cfg.smooth == "offsets" else ctx.out.verts
    return laplacian_loss(at_least_fp32(x), ctx.template, cfg.reduction)


@dataclass
class FlattenConfig(TermConfig):
    """SoftRas flatten loss. ``reduction``: sum over interior edges (SoftRas) | mean."""

    weight: float = 0.001
    reduction: str = "sum"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "reduction", ("sum", "mean"))


@register_loss("flatten", FlattenConfig)
def flatten_term(ctx: LossContext, cfg: FlattenConfig) -> Tensor:
    return flatten_loss(at_least_fp32(ctx.out.verts), ctx.template, cfg.reduction)


@dataclass
class NormalConsistencyConfig(TermConfig):
    """Normal consistency between adjacent faces (mean over interior edges)."""


@register_loss("normal_consistency", NormalConsistencyConfig)
def normal_consistency_term(ctx: LossContext, cfg: NormalConsistencyConfig) -> Tensor:
    return normal_consistency_loss(at_least_fp32(ctx.out.verts), ctx.template)


@dataclass
class EdgeLengthConfig(TermConfig):
    """Edge lengths. ``mode``: template (keep the template's lengths) | variance (even lengths)."""

    mode: str = "template"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "mode", ("template", "variance"))


@register_loss("edge_length", EdgeLengthConfig)
def edge_length_term(ctx: LossContext, cfg: EdgeLengthConfig) -> Tensor:
    verts, offsets = at_least_fp32(ctx.out.verts), at_least_fp32(ctx.out.offsets)
    return edge_length_loss(verts, ctx.template, verts - offsets if cfg.mode == "template" else None)
