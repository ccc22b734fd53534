"""The input photo's camera as refinement sees it: a look-at camera (azimuth 0, the canonical input view)
whose elevation is free, followed by a small similarity in the image plane.

A user's photo is framed by ``data.preprocess.prepare_input`` (cropped to the shoe, centred, scaled), not
like a training view, so the projection is

    (x, y, z) = Cameras(0, elevation, distance, fov).transform_points_ndc(p)
    (x', y')  = exp(log_scale) R(angle) (x, y) + shift,      z' = z (depth is unchanged)

in NDC (``render.cameras``: +x right, +y up). Every parameter is a plain tensor leaf, so gradients
reach the camera through the renderer; ``PhotoCamera.double()`` gives a float64 copy for gradcheck.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from shoerecon.render.cameras import Cameras


ELEVATION_UNIT = 10.0  # degrees per unit of the elevation parameter


class PhotoCamera(nn.Module):
    """Elevation (degrees, base + ELEVATION_UNIT * d_elevation) and an NDC similarity (log scale, in-plane angle in radians, shift (2,)).

    Args:
        elevation, distance, fov: the look-at camera before refinement (degrees, world units, degrees).
    """

    def __init__(self, elevation: float = 10.0, distance: float = 2.2, fov: float = 30.0) -> None:
        super().__init__()
        self.register_buffer("base", torch.tensor([0.0, float(elevation), float(distance), float(fov)]))
        self.d_elevation = nn.Parameter(torch.zeros(()))
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.angle = nn.Parameter(torch.zeros(()))
        self.shift = nn.Parameter(torch.zeros(2))

    @property
    def elevation(self) -> Tensor:
        """() degrees; the parameter counts in units of ELEVATION_UNIT degrees (similar step sizes for all)."""
        return self.base[1] + ELEVATION_UNIT * self.d_elevation

    def cameras(self) -> Cameras:
        """The look-at part as ``Cameras`` of batch shape (1,) (differentiable in elevation)."""
        b = self.base
        return Cameras(b[0:1], self.elevation[None], b[2:3], b[3:4])

    def similarity(self) -> Tensor:
        """(2, 3) NDC affine [s R | t]."""
        s = torch.exp(self.log_scale)
        c, si = torch.cos(self.angle), torch.sin(self.angle)
        rot = torch.stack([torch.stack([c, -si]), torch.stack([si, c])])
        return torch.cat([s * rot, self.shift[:, None]], dim=1)

    def project(self, points: Tensor) -> Tensor:
        """World points (N, 3) -> (x_ndc, y_ndc, z_view) (N, 3) in the photo."""
        ndc = self.cameras().transform_points_ndc(points[None])[0]
        a = self.similarity()
        xy = ndc[:, :2] @ a[:, :2].t() + a[:, 2]
        return torch.cat([xy, ndc[:, 2:]], dim=-1)

    def position(self) -> Tensor:
        """(3,) camera centre in world space (the similarity acts in the image only)."""
        return self.cameras().position()[0]

    @torch.no_grad()
    def init_from_silhouettes(self, rendered: Tensor, mask: Tensor) -> None:
        """Set the similarity so that the rendered silhouette's bounding box matches the photo mask's in width,
        horizontal centre and bottom (the sole).

        ``prepare_input`` framed the photo by its mask's box, whose long side is the shoe's length; a mask
        cut out of a JPEG on white can lose a white upper or collar (its area and top are unreliable)
        but rarely the toe, heel and sole. scale = mask width / render width, shift puts the scaled render's
        (centre x, bottom y) on the mask's; the current similarity is composed in.

        Args:
            rendered: (1, H, W) silhouette rendered with this camera. mask: (1, H, W) the photo's.
        """
        h, w = mask.shape[-2:]
        s = min(h, w)
        xs = (2 * torch.arange(w, dtype=mask.dtype, device=mask.device) + 1 - w) / s
        ys = (h - 2 * torch.arange(h, dtype=mask.dtype, device=mask.device) - 1) / s

        def box(m: Tensor) -> Optional[tuple[float, float, float]]:
            """(left, right, bottom) NDC edges of the pixels > 0.5, or None when empty."""
            m = m[0] > 0.5
            cols, rows = m.any(0).nonzero()[:, 0], m.any(1).nonzero()[:, 0]
            if len(cols) == 0:
                return None
            half = 1.0 / s  # half a pixel in NDC
            return float(xs[cols[0]]) - half, float(xs[cols[-1]]) + half, float(ys[rows[-1]]) - half

        r, m = box(rendered.to(mask)), box(mask)
        if r is None or m is None:
            return  # nothing to match
        k = (m[1] - m[0]) / max(r[1] - r[0], 1e-6)
        c_r = torch.tensor([(r[0] + r[1]) / 2, r[2]]).to(self.shift)
        c_m = torch.tensor([(m[0] + m[1]) / 2, m[2]]).to(self.shift)
        # new projection q' = k (q - c_r) + c_m composed with the current one (q = s R q0 + t)
        self.log_scale.add_(math.log(k))
        self.shift.copy_(k * self.shift + c_m - k * c_r)
