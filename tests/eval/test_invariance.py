"""Input perturbations move/zoom content by the stated amounts; invariance Chamfer on stand-in models with known answers."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from shoerecon.eval.invariance import InvarianceConfig, invariance_chamfer, perturbations, rescale_image, shift_image


def dark_box(size=50, top=15, left=15, h=20, w=20, background=1.0):
    img = torch.full((1, 3, size, size), background)
    img[..., top:top + h, left:left + w] = 0.0
    return img


def box_extent(img):
    on = (img[0, 0] < 0.5)
    rows, cols = on.any(1).nonzero()[:, 0], on.any(0).nonzero()[:, 0]
    return rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()


def test_identity_perturbations_change_nothing():
    img = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(rescale_image(img, 1.0), img, atol=1e-6, rtol=0)
    torch.testing.assert_close(shift_image(img, 0.0, 0.0), img, atol=1e-6, rtol=0)


def test_rescale_zooms_about_the_centre():
    img = dark_box()  # 20 px box centred in 50 px
    r0, r1, c0, c1 = box_extent(rescale_image(img, 0.8))
    assert (r1 - r0 + 1, c1 - c0 + 1) == (16, 16) and (r0 + r1) / 2 == pytest.approx(24.5)
    r0, r1, c0, c1 = box_extent(rescale_image(img, 1.2))
    assert (r1 - r0 + 1) in (24, 25) and (r0 + r1) / 2 == pytest.approx(24.5)


def test_shift_moves_by_the_fraction_of_the_side_and_fills_background():
    img = dark_box()
    assert box_extent(shift_image(img, 0.08, 0.0)) == (15, 34, 19, 38)   # 4 px right
    assert box_extent(shift_image(img, 0.0, -0.08)) == (11, 30, 15, 34)  # 4 px up
    bg = (0.2, 0.4, 0.6)
    out = shift_image(torch.rand(1, 3, 10, 10), 0.5, 0.0, bg)
    torch.testing.assert_close(out[0, :, :, :5], torch.tensor(bg).view(3, 1, 1).expand(3, 10, 5))


class CentroidModel(nn.Module):
    """Stand-in network: a unit quad in the y-z plane, moved along x by the dark pixels' centroid (normalised x)."""

    def __init__(self, sensitive: bool = True):
        super().__init__()
        self.sensitive = sensitive
        self.register_buffer("verts", torch.tensor([[0.0, -0.5, -0.5], [0, 0.5, -0.5], [0, 0.5, 0.5], [0, -0.5, 0.5]]))
        self.register_buffer("faces", torch.tensor([[0, 1, 2], [0, 2, 3]]))

    def forward(self, image):
        w = image.shape[-1]
        x = (2 * torch.arange(w) + 1 - w) / w
        dark = (1 - image.mean(1)).clamp_min(0)
        cx = (dark.sum(1) * x).sum(-1) / dark.sum((1, 2))
        move = torch.zeros(image.shape[0], 1, 3)
        if self.sensitive:
            move[:, 0, 0] = cx
        return SimpleNamespace(verts=self.verts + move)


def test_invariance_of_a_framing_insensitive_model_is_zero():
    out = invariance_chamfer(CentroidModel(sensitive=False), dark_box(), InvarianceConfig(num_points=500))
    assert set(out) == set(perturbations(InvarianceConfig()))
    assert all(v.abs().max().item() == 0.0 for v in out.values())


def test_invariance_measures_a_known_translation():
    # Shifting the input by 8 % of the width moves the centroid by 0.16 (normalised), and the quad by 0.16 along
    # its normal: Chamfer = 2 * 0.16^2. A vertical shift or a zoom about a centred box moves nothing.
    out = invariance_chamfer(CentroidModel(), dark_box(), InvarianceConfig(num_points=500))
    assert out["shift_x+0.08"].item() == pytest.approx(2 * 0.16**2, rel=1e-3)
    assert out["shift_x-0.08"].item() == pytest.approx(2 * 0.16**2, rel=1e-3)
    for name in ("shift_y+0.08", "shift_y-0.08", "scale_0.8", "scale_1.2"):
        assert out[name].item() == pytest.approx(0.0, abs=1e-8), name
    # An off-centre box: zooming by 0.8 moves its centroid from c to 0.8 c.
    off = dark_box(left=25, w=10)  # centre at column 29.5 -> x = (2 * 29.5 + 1 - 50) / 50 = 0.2
    out = invariance_chamfer(CentroidModel(), off, InvarianceConfig(num_points=500, shifts=()))
    assert out["scale_0.8"].item() == pytest.approx(2 * (0.2 * 0.2) ** 2, rel=0.02)
