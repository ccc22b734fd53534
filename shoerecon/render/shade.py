"""Shading: SoftRas silhouettes, UV texture sampling, softmax (soft) and hard RGB blending.

Each op comes twice:
- a *dense* version on pytorch3d fragments (N, H, W, K), written as pytorch3d writes it: the reference
  the tests compare with (the Renderer never runs it: dense (N, H, W, K) temporaries cost ~2x the
  packed path's memory at K = 50);
- a *packed* version on ``PackedFragments`` (occupied slots only, segment sums over pixels) that the
  Renderer uses: the same numbers at a cost that grows with covered slots instead of N H W K.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.render.rasterize import Fragments, PackedFragments

BLEND_EPS = 1e-10  # pytorch3d's softmax_rgb_blend epsilon


# ------------------------------------------------------------------------------------------ dense
def sigmoid_silhouette(fragments: Fragments, sigma: float) -> Tensor:
    """SoftRas silhouette 1 - prod_k (1 - sigmoid(-dist_k / sigma)). -> (N, H, W).

    >>> d = torch.tensor([[[[-1e-3, 1.0]]]])
    >>> frags = Fragments(torch.tensor([[[[0, -1]]]]), d, d[..., None].expand(-1, -1, -1, -1, 3), d)
    >>> round(sigmoid_silhouette(frags, 1e-4).item(), 4)
    1.0
    """
    prob = torch.sigmoid(-fragments.dists / sigma) * (fragments.pix_to_face >= 0)
    return 1.0 - torch.prod(1.0 - prob, dim=-1)


def softmax_rgb_blend(
    colors: Tensor,
    fragments: Fragments,
    sigma: float,
    gamma: float,
    znear: float,
    zfar: float,
    background: Sequence[float] = (1.0, 1.0, 1.0),
) -> Tensor:
    """pytorch3d's softmax_rgb_blend. colors (N, H, W, K, 3) -> RGBA (N, H, W, 4)."""
    mask = fragments.pix_to_face >= 0
    bg = colors.new_tensor(background)
    prob = torch.sigmoid(-fragments.dists / sigma) * mask
    alpha = torch.prod(1.0 - prob, dim=-1)
    z_inv = (zfar - fragments.zbuf) / (zfar - znear) * mask
    z_inv_max = torch.max(z_inv, dim=-1).values[..., None].clamp(min=BLEND_EPS)
    weights = prob * torch.exp((z_inv - z_inv_max) / gamma)
    delta = torch.exp((BLEND_EPS - z_inv_max) / gamma).clamp(min=BLEND_EPS)
    denom = weights.sum(dim=-1, keepdim=True) + delta
    rgb = ((weights[..., None] * colors).sum(dim=-2) + delta * bg) / denom
    return torch.cat([rgb, (1.0 - alpha)[..., None]], dim=-1)


def hard_rgb_blend(colors: Tensor, fragments: Fragments, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:
    """Nearest face's colour, background elsewhere; alpha = coverage. colors (N, H, W, K, 3) -> (N, H, W, 4)."""
    covered = fragments.pix_to_face[..., :1] >= 0
    rgb = torch.where(covered, colors[..., 0, :], colors.new_tensor(background))
    return torch.cat([rgb, covered.to(colors.dtype)], dim=-1)


def interpolate_face_attributes(pix_to_face: Tensor, bary_coords: Tensor, face_attrs: Tensor) -> Tensor:
    """Barycentric interpolation. pix_to_face (N, H, W, K), bary (N, H, W, K, 3), face_attrs (F_packed, 3, D)
    -> (N, H, W, K, D), zero where pix_to_face < 0."""
    mask = pix_to_face >= 0
    attrs = face_attrs[pix_to_face.clamp_min(0)]  # (N, H, W, K, 3, D)
    return (bary_coords[..., None] * attrs).sum(-2) * mask[..., None]


def uv_to_grid(uv: Tensor) -> Tensor:
    """UV (..., 2) in [0, 1], v up, to grid_sample coordinates (align_corners=False): (2u - 1, 1 - 2v)."""
    return torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], dim=-1)


def sample_texture_dense(
    fragments: Fragments, texture: Tensor, uvs: Tensor, uv_faces: Tensor, renders_per_texture: int = 1
) -> Tensor:
    """Bilinear UV texture colours of every slot. texture (B, C, Ht, Wt), uvs (T, 2), uv_faces (F, 3);
    images n = b * renders_per_texture + v use texture b; packed faces are n * F + f.
    -> (N, H, W, K, C), zero at empty slots."""
    n_faces = uv_faces.shape[0]
    p2f = fragments.pix_to_face
    face_uv = uvs[uv_faces]  # (F, 3, 2)
    uv = interpolate_face_attributes(torch.where(p2f >= 0, p2f % n_faces, -1), fragments.bary_coords, face_uv)
    n, h, w, k, _ = uv.shape
    grid = uv_to_grid(uv).reshape(texture.shape[0], renders_per_texture * h * w * k, 1, 2)
    cols = F.grid_sample(texture, grid, mode="bilinear", padding_mode="border", align_corners=False)
    cols = cols[..., 0].permute(0, 2, 1).reshape(n, h, w, k, texture.shape[1])
    return cols * (p2f >= 0)[..., None]


# ----------------------------------------------------------------------------------------- packed
class _SegmentSum(torch.autograd.Function):
    """index_add into zeros that keeps only the index for backward (autograd's index_add also keeps the
    (M, ...) source); the same gradient, grad.index_select(0, index)."""

    @staticmethod
    def forward(ctx, values: Tensor, index: Tensor, size: int) -> Tensor:
        ctx.save_for_backward(index)
        return values.new_zeros((size, *values.shape[1:])).index_add_(0, index, values)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (index,) = ctx.saved_tensors
        return grad.index_select(0, index), None, None


def _segment_sum(values: Tensor, index: Tensor, size: int) -> Tensor:
    """Sum values (M, ...) into size bins by index (M,). -> (size, ...)."""
    return _SegmentSum.apply(values, index, size)


class _FaceUV(torch.autograd.Function):
    """Per-slot UV = bary (1 x 3) @ corner UVs (3 x 2) of the slot's face; backward gathers the corners again
    rather than keeping the (M, 3, 2) gather (the same bmm as autograd's, so the same gradient)."""

    @staticmethod
    def forward(ctx, bary: Tensor, table: Tensor, face: Tensor) -> Tensor:
        ctx.save_for_backward(table, face)
        return torch.bmm(bary[:, None, :], table[face % table.shape[0]])[:, 0]

    @staticmethod
    def backward(ctx, grad: Tensor):
        table, face = ctx.saved_tensors
        corners = table[face % table.shape[0]]
        return torch.bmm(grad[:, None, :], corners.transpose(1, 2))[:, 0], None, None


def packed_silhouette(frags: PackedFragments, sigma: float) -> Tensor:
    """SoftRas silhouette from packed fragments. -> (N, H, W).

    log(1 - sigmoid(-d / sigma)) = logsigmoid(d / sigma) keeps the product stable as a sum of logs.
    """
    n, h, w, _ = frags.shape
    log_keep = _segment_sum(F.logsigmoid(frags.dists / sigma), frags.pix, n * h * w)
    return (1.0 - torch.exp(log_keep)).view(n, h, w)


def packed_face_uv(frags: PackedFragments, uvs: Tensor, uv_faces: Tensor) -> Tensor:
    """UV of every occupied slot: (M, 2)."""
    table = uvs[uv_faces]  # (F, 3, 2), then one row gather per slot: (M, 3, 2)
    if uvs.requires_grad:
        return torch.bmm(frags.bary[:, None, :], table[frags.face % uv_faces.shape[0]])[:, 0]
    return _FaceUV.apply(frags.bary, table, frags.face)  # batched 1x3 @ 3x2: faster than mul + sum(-2)


def packed_sample_texture(
    frags: PackedFragments, texture: Tensor, uvs: Tensor, uv_faces: Tensor, renders_per_texture: int = 1
) -> Tensor:
    """Bilinear texture colours of every occupied slot. texture (B, C, Ht, Wt), uvs (T, 2), uv_faces (F, 3);
    image n uses texture n // renders_per_texture. -> (M, C)."""
    uv = packed_face_uv(frags, uvs.to(frags.bary.dtype), uv_faces)
    n, h, w, _ = frags.shape
    tex_of_slot = frags.pix // (h * w) // renders_per_texture
    # Slots are sorted by pixel, so each texture's slots are one contiguous run.
    counts = torch.bincount(tex_of_slot, minlength=texture.shape[0]).tolist()
    out = []
    for b, run in enumerate(torch.split(uv, counts)):
        if run.shape[0] == 0:
            continue
        grid = uv_to_grid(run).view(1, 1, -1, 2)
        out.append(F.grid_sample(texture[b : b + 1], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0].t())
    return torch.cat(out) if out else uv.new_zeros(0, texture.shape[1])


def packed_softmax_rgb_blend(
    colors: Tensor,
    frags: PackedFragments,
    sigma: float,
    gamma: float,
    znear: float,
    zfar: float,
    background: Sequence[float] = (1.0, 1.0, 1.0),
) -> Tensor:
    """``softmax_rgb_blend`` on packed slots. colors (M, 3) -> RGBA (N, H, W, 4).

    Slots are sorted by depth, so the pixel's largest z_inv (pytorch3d's max over K) is rank 0's, or
    below eps either way when it is not positive.
    """
    n, h, w, _ = frags.shape
    size = n * h * w
    z_inv = (zfar - frags.zbuf) / (zfar - znear)
    first = frags.rank == 0
    z_inv_max = colors.new_full((size,), BLEND_EPS).index_put((frags.pix[first],), z_inv[first].clamp(min=BLEND_EPS))
    log_keep = _segment_sum(F.logsigmoid(frags.dists / sigma), frags.pix, size)
    prob = torch.sigmoid(-frags.dists / sigma)
    weights = prob * torch.exp((z_inv - z_inv_max[frags.pix]) / gamma)
    delta = torch.exp((BLEND_EPS - z_inv_max) / gamma).clamp(min=BLEND_EPS)
    denom = _segment_sum(weights, frags.pix, size) + delta
    bg = colors.new_tensor(background)
    rgb = (_segment_sum(weights[:, None] * colors, frags.pix, size) + delta[:, None] * bg) / denom[:, None]
    return torch.cat([rgb, (1.0 - torch.exp(log_keep))[:, None]], dim=-1).view(n, h, w, 4)


def packed_hard_rgb_blend(colors: Tensor, frags: PackedFragments, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:
    """``hard_rgb_blend`` on packed slots. colors (M, 3) -> RGBA (N, H, W, 4)."""
    n, h, w, _ = frags.shape
    first = frags.rank == 0
    rgba = torch.cat([colors.new_tensor(background), colors.new_zeros(1)]).repeat(n * h * w, 1)
    front = torch.cat([colors[first], colors.new_ones(int(first.sum()), 1)], dim=-1)
    return rgba.index_put((frags.pix[first],), front).view(n, h, w, 4)
