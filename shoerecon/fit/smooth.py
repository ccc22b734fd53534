"""Smooth residual parameterisation ("large steps", Nicolet et al. 2021): the shape residual is
``delta = (I + lambda L)^-1 u`` with L the combinatorial graph Laplacian (D - A) of the mesh.

Silhouette gradients touch only contour vertices; optimising u instead of delta spreads every update
smoothly over the surface, so Adam's per-coordinate steps do not crumple the mesh. The template has ~1.3k
vertices, so the inverse is a small dense matrix computed once per topology (a matmul per step).
"""
from __future__ import annotations

import torch
from torch import Tensor

from shoerecon.geometry.laplacian import mesh_edges


def graph_laplacian(faces: Tensor, num_verts: int, dtype=torch.float64) -> Tensor:
    """Dense combinatorial Laplacian D - A (N, N) of the mesh's unique edges.

    >>> graph_laplacian(torch.tensor([[0, 1, 2]]), 3).tolist()
    [[2.0, -1.0, -1.0], [-1.0, 2.0, -1.0], [-1.0, -1.0, 2.0]]
    """
    e = mesh_edges(faces)
    lap = torch.zeros(num_verts, num_verts, dtype=dtype, device=faces.device)
    lap[e[:, 0], e[:, 1]] = -1.0
    lap[e[:, 1], e[:, 0]] = -1.0
    lap -= torch.diag(lap.sum(1))
    return lap


def smoothing_operator(faces: Tensor, num_verts: int, strength: float) -> Tensor:
    """(I + strength L)^-1 as a dense (N, N) float64 matrix (strength 0: identity)."""
    eye = torch.eye(num_verts, dtype=torch.float64, device=faces.device)
    if strength <= 0:
        return eye
    return torch.linalg.inv(eye + strength * graph_laplacian(faces, num_verts))


class UniformAdam:
    """Adam whose step is normalised by the largest second moment over the whole tensor instead of per
    coordinate (Nicolet et al.'s "uniform Adam"): coordinates with weak gradients (e.g. depth, which a side
    view barely constrains) are not blown up to full-size steps.

    >>> x = torch.zeros(2, requires_grad=True)
    >>> opt = UniformAdam(x, lr=0.1)
    >>> x.grad = torch.tensor([1.0, 0.01]); opt.step()
    >>> [round(v, 4) for v in x.tolist()]
    [-0.1, -0.001]
    """

    def __init__(self, param: Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        g = self.param.grad
        if g is None:
            return
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        m_hat = self.m / (1 - b1 ** self.t)
        v_max = float(self.v.max()) / (1 - b2 ** self.t)
        self.param.sub_(self.lr * m_hat / (v_max ** 0.5 + self.eps))
