"""Bilateral symmetry prior: a shoe's medial side roughly mirrors its lateral side across its vertical
length plane (z -> -z in the DESIGN frame).

The prior acts on the refinement *residual* through template correspondences: vertex i and its mirror
partner j (the template vertex nearest to i's mirror image) should move as mirror images,
``delta_i ~ M delta_j`` with M = diag(1, 1, -1). The network's own (possibly asymmetric) shape is kept; only
what refinement adds is pulled towards symmetry, so a change fitted on the seen side reaches the unseen one.
"""
from __future__ import annotations

import torch
from torch import Tensor

MIRROR = (1.0, 1.0, -1.0)


def mirror_partners(verts: Tensor) -> Tensor:
    """Index of the vertex nearest to each vertex's mirror image (x, y, -z). verts (N, 3) -> (N,) long.

    >>> v = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    >>> mirror_partners(v).tolist()
    [1, 0, 2]
    """
    mirrored = verts * verts.new_tensor(MIRROR)
    return torch.cdist(mirrored.float(), verts.float()).argmin(dim=1)


def symmetry_loss(delta: Tensor, partners: Tensor) -> Tensor:
    """``mean_i |delta_i - M delta_partner(i)|^2``. delta (N, 3), partners (N,) long -> () scalar."""
    mirrored = delta[partners] * delta.new_tensor(MIRROR)
    return (delta - mirrored).pow(2).sum(-1).mean()
