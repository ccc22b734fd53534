"""Cameras: the one place where shoerecon's camera conventions are written down.

World
    +Y is up, the shoe's length runs along X with the toe at +X, the sole near the bottom. For a
    right shoe the lateral (outer) side faces +Z.

Camera placement (look-at, as pytorch3d's ``look_at_view_transform``)
    A camera sits at ``distance * (cos(elev) sin(azim), sin(elev), cos(elev) cos(azim))`` around
    ``at`` (the origin), looks at ``at`` and keeps world +Y up. Angles are in degrees. So azimuth 0
    looks at the lateral side from +Z (toe to the image's right: the canonical input view),
    azimuth 90 looks at the toe from +X, azimuth 180 at the medial side. A turntable is a list
    of azimuths at one elevation and distance.

View space
    x to the image's right, y to the image's top, z = depth along the viewing direction (positive
    in front of the camera). zbuf holds this z. The frame is left-handed (det R = -1), which makes
    NDC identical to OpenGL's: a face that is counter-clockwise seen from outside in world space is
    counter-clockwise (positive signed area, x right / y up) in NDC when it faces the camera.

NDC and pixels
    ``x_ndc = x / (z tan(fov/2))``, ``y_ndc = y / (z tan(fov/2))``: +x_ndc is the image's right,
    +y_ndc its top. fov spans the shorter image side, which covers [-1, 1]; the longer side
    covers [-W/S, W/S] (S = min(H, W)). Pixel (row i, col j) has its centre at
    ``x = (2j + 1 - W) / S``, ``y = (H - 2i - 1) / S``: row 0 is the top row.
    Note: pytorch3d's NDC has +x to the *left*; the pytorch3d backend flips x.

Product photos (optional, ``Cameras.crop`` / ``Cameras.translation``)
    Shop turntables re-centre and re-zoom every view on the shoe, and the shoe does not sit on the
    turntable's axis. Two optional terms on top of the look-at camera express this:

    * object pose: ``translation`` (..., 3) is where the shoe's origin sits relative to the
      look-at point, in the shoe's own frame (the offset turns with the turntable). A shoe point p
      is seen where the plain camera sees ``p + translation``. The rest of the pose lives in the
      azimuths: view i of a turntable is at ``start_azimuth + direction * i * 360 / V``
      (``Cameras.turntable``; direction -1 = the table turns the other way).
    * crop similarity: ``crop`` (..., 3) = (shift_x, shift_y, zoom) maps the plain camera's NDC to
      the photo's: ``ndc' = zoom * ndc + shift`` (zoom 2 shows half the field, twice as large; shift
      is in NDC units of the final image, +x right, +y up). Cropping the plain image to the window
      with NDC centre c and half-size h (then resizing it to the full image) is
      ``zoom = 1 / h, shift = -c / h``.

    Without them (None, the default) a camera is exactly the plain look-at camera. As a tensor a
    camera is (..., 4) = (azimuth, elevation, distance, fov) or, with the terms, (..., 10) =
    (azimuth, elevation, distance, fov, shift_x, shift_y, zoom, tx, ty, tz).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import Tensor

ZNEAR_DEFAULT = 0.01
LOOK_AT_PARAMS = ("azimuth", "elevation", "distance", "fov")
CROP_PARAMS = ("shift_x", "shift_y", "zoom")
POSE_PARAMS = ("tx", "ty", "tz")
ALL_PARAMS = LOOK_AT_PARAMS + CROP_PARAMS + POSE_PARAMS
IDENTITY_CROP = (0.0, 0.0, 1.0)

Number = Union[float, Tensor]


def camera_position(azimuth: Tensor, elevation: Tensor, distance: Tensor) -> Tensor:
    """Camera centres in world space.

    Args:
        azimuth, elevation: (...) degrees. distance: (...).
    Returns:
        (..., 3) positions.
    """
    az, el = torch.deg2rad(azimuth), torch.deg2rad(elevation)
    return torch.stack(
        [distance * torch.cos(el) * torch.sin(az), distance * torch.sin(el), distance * torch.cos(el) * torch.cos(az)],
        dim=-1,
    )


def look_at_rotation(position: Tensor, at: Tensor | None = None, up: Tensor | None = None) -> Tensor:
    """World-to-view rotation whose rows are the view axes (right, up, forward) in world space.

    Args:
        position: (..., 3) camera centres. at: (3,) or (..., 3) look-at point, default origin.
        up: (3,) world up, default +Y.
    Returns:
        (..., 3, 3) rotation R with ``x_view = R @ (p - position)``.
    """
    at = torch.zeros_like(position) if at is None else at.to(position).expand_as(position)
    up = position.new_tensor([0.0, 1.0, 0.0]) if up is None else up.to(position)
    forward = torch.nn.functional.normalize(at - position, dim=-1)
    right = torch.linalg.cross(forward, up.expand_as(forward), dim=-1)
    # Looking straight up or down: any right vector orthogonal to forward will do.
    degenerate = right.norm(dim=-1, keepdim=True) < 1e-6
    right = torch.where(degenerate, position.new_tensor([1.0, 0.0, 0.0]).expand_as(right), right)
    right = torch.nn.functional.normalize(right, dim=-1)
    true_up = torch.linalg.cross(right, forward, dim=-1)
    return torch.stack([right, true_up, forward], dim=-2)


def pixel_centers_ndc(height: int, width: int, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """NDC coordinates of pixel centres.

    Returns:
        x (W,) increasing left to right, y (H,) decreasing top to bottom.

    >>> x, y = pixel_centers_ndc(2, 2)
    >>> x.tolist(), y.tolist()
    ([-0.5, 0.5], [0.5, -0.5])
    """
    s = min(height, width)
    x = (2 * torch.arange(width, device=device, dtype=dtype) + 1 - width) / s
    y = (height - 2 * torch.arange(height, device=device, dtype=dtype) - 1) / s
    return x, y


def ndc_to_pixel(xy_ndc: Tensor, height: int, width: int) -> Tensor:
    """NDC (..., 2) to continuous pixel coordinates (col, row); pixel centres sit at integers."""
    s = min(height, width)
    col = (xy_ndc[..., 0] * s + width - 1) / 2
    row = (height - 1 - xy_ndc[..., 1] * s) / 2
    return torch.stack([col, row], dim=-1)


@dataclass
class Cameras:
    """A batch of look-at perspective cameras of any batch shape (...), e.g. (B, V).

    Attributes:
        azimuth, elevation: (...) degrees. distance: (...). fov: (...) degrees, over the shorter side.
        znear: faces with a vertex closer than this are not rasterised.
        crop: None or (..., 3) (shift_x, shift_y, zoom), the photo's crop (module docstring).
        translation: None or (..., 3), the shoe's offset from the look-at point in its own frame.
            Giving one of crop/translation gives the other its identity (a "product-photo" camera).
    """

    azimuth: Tensor
    elevation: Tensor
    distance: Tensor
    fov: Tensor
    znear: float = ZNEAR_DEFAULT
    crop: Tensor | None = None
    translation: Tensor | None = None

    def __post_init__(self) -> None:
        shape = torch.broadcast_shapes(self.azimuth.shape, self.elevation.shape, self.distance.shape, self.fov.shape)
        ref = self.azimuth if self.azimuth.is_floating_point() else torch.as_tensor(self.azimuth, dtype=torch.float32)
        self.azimuth, self.elevation, self.distance, self.fov = (
            torch.as_tensor(t, dtype=ref.dtype, device=ref.device).expand(shape)
            for t in (self.azimuth, self.elevation, self.distance, self.fov)
        )
        if self.crop is None and self.translation is None:
            return
        crop = ref.new_tensor(IDENTITY_CROP) if self.crop is None else torch.as_tensor(self.crop).to(ref)
        trans = ref.new_zeros(3) if self.translation is None else torch.as_tensor(self.translation).to(ref)
        if crop.shape[-1:] != (3,) or trans.shape[-1:] != (3,):
            raise ValueError(f"Cameras.crop and .translation need a last dimension of 3, got {tuple(crop.shape)} and {tuple(trans.shape)}")
        self.crop, self.translation = crop.expand(*shape, 3), trans.expand(*shape, 3)

    @property
    def is_product(self) -> bool:
        """Whether the camera has the crop/pose terms (its tensor form is (..., 10), else (..., 4))."""
        return self.crop is not None

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_tensor(cls, params: Tensor, znear: float = ZNEAR_DEFAULT) -> "Cameras":
        """From a (..., 4) tensor of (azimuth_deg, elevation_deg, distance, fov_deg) or a (..., 10) one that adds
        (shift_x, shift_y, zoom, tx, ty, tz) (see ``ALL_PARAMS``)."""
        if params.shape[-1] == 4:
            return cls(*params.unbind(-1), znear=znear)
        if params.shape[-1] == len(ALL_PARAMS):
            return cls(*params[..., :4].unbind(-1), znear=znear, crop=params[..., 4:7], translation=params[..., 7:10])
        raise ValueError(f"camera parameters need a last dimension of 4 or {len(ALL_PARAMS)} {ALL_PARAMS}, "
                         f"got shape {tuple(params.shape)}")

    @classmethod
    def turntable(
        cls,
        num_views: int = 36,
        elevation: float = 10.0,
        distance: float = 2.2,
        fov: float = 30.0,
        start_azimuth: float = 0.0,
        device=None,
        direction: int = 1,
        translation: Sequence[float] | None = None,
        crop: Tensor | None = None,
    ) -> "Cameras":
        """``num_views`` cameras evenly spaced in azimuth: view i at ``start_azimuth + direction * i * 360 / num_views``.

        Shape (num_views,). ``translation`` (3,) (the shoe's offset) and ``crop`` (num_views, 3) or (3,) make
        product-photo cameras; without them the cameras are plain look-at ones.
        """
        if direction not in (1, -1):
            raise ValueError(f"turntable direction must be 1 or -1, got {direction!r}")
        step = torch.arange(num_views, device=device, dtype=torch.float32) * (360.0 / num_views)
        az = start_azimuth + (step if direction == 1 else -step)
        full = lambda v: torch.full_like(az, float(v))  # noqa: E731
        trans = None if translation is None else torch.as_tensor(translation, dtype=torch.float32, device=device)
        return cls(az, full(elevation), full(distance), full(fov), crop=crop, translation=trans)

    def to_tensor(self) -> Tensor:
        """(..., 4) of (azimuth, elevation, distance, fov); (..., 10) with the crop/pose terms (``ALL_PARAMS``)."""
        look_at = torch.stack([self.azimuth, self.elevation, self.distance, self.fov], dim=-1)
        if not self.is_product:
            return look_at
        return torch.cat([look_at, self.crop, self.translation], dim=-1)

    @property
    def shape(self) -> torch.Size:
        return self.azimuth.shape

    @property
    def device(self) -> torch.device:
        return self.azimuth.device

    def to(self, device=None, dtype=None) -> "Cameras":
        return Cameras.from_tensor(self.to_tensor().to(device=device, dtype=dtype), znear=self.znear)

    def reshape(self, *shape: int) -> "Cameras":
        params = self.to_tensor()
        return Cameras.from_tensor(params.reshape(*shape, params.shape[-1]), znear=self.znear)

    def __getitem__(self, index) -> "Cameras":
        return Cameras.from_tensor(self.to_tensor()[index], znear=self.znear)

    # ---------------------------------------------------------------- transforms
    def position(self) -> Tensor:
        """(..., 3) camera centres in world space."""
        return camera_position(self.azimuth, self.elevation, self.distance)

    def rotation(self) -> Tensor:
        """(..., 3, 3) world-to-view rotation (rows: right, up, forward)."""
        return look_at_rotation(self.position())

    def focal(self) -> Tensor:
        """(...) NDC focal length 1 / tan(fov / 2)."""
        return 1.0 / torch.tan(torch.deg2rad(self.fov) / 2)

    def world_to_view(self, points: Tensor) -> Tensor:
        """World points (..., N, 3) to view space (..., N, 3), broadcasting over the camera batch shape.

        With a ``translation`` the points are first moved by it (the shoe's offset from the look-at point)."""
        R, t = self.rotation(), self.position()
        if self.translation is not None:
            t = t - self.translation
        return torch.einsum("...ij,...nj->...ni", R, points - t.unsqueeze(-2))

    def view_to_ndc(self, points_view: Tensor) -> Tensor:
        """View points (..., N, 3) to (x_ndc, y_ndc, z_view) (..., N, 3). No clipping: callers drop z <= znear."""
        f = self.focal()[..., None, None]
        z = points_view[..., 2:3]
        # Guard the division only; faces with z <= znear are excluded by the rasteriser anyway.
        z_safe = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)
        xy = f * points_view[..., :2] / z_safe
        if self.crop is not None:  # the photo's crop: ndc' = zoom * ndc + shift
            xy = self.crop[..., None, 2:3] * xy + self.crop[..., None, :2]
        return torch.cat([xy, z], dim=-1)

    def transform_points_ndc(self, points: Tensor) -> Tensor:
        """World points (..., N, 3) to (x_ndc, y_ndc, z_view) (..., N, 3)."""
        return self.view_to_ndc(self.world_to_view(points))

    def project_to_pixels(self, points: Tensor, height: int, width: int) -> Tensor:
        """World points (..., N, 3) to continuous pixel coordinates (col, row) (..., N, 2)."""
        return ndc_to_pixel(self.transform_points_ndc(points)[..., :2], height, width)


def stack_cameras(cameras: Sequence[Cameras], dim: int = 0) -> Cameras:
    """Stack cameras of equal batch shape along a new dimension (product cameras if any is one)."""
    product = any(c.is_product for c in cameras)
    params = [product_params(c.to_tensor()) if product else c.to_tensor() for c in cameras]
    return Cameras.from_tensor(torch.stack(params, dim=dim), znear=cameras[0].znear)


def product_params(params: Tensor) -> Tensor:
    """Camera parameters (..., 4) or (..., 10) as (..., 10): plain cameras get the identity crop and no offset."""
    if params.shape[-1] == len(ALL_PARAMS):
        return params
    if params.shape[-1] != 4:
        raise ValueError(f"camera parameters need a last dimension of 4 or {len(ALL_PARAMS)}, got {tuple(params.shape)}")
    extra = params.new_tensor(IDENTITY_CROP + (0.0, 0.0, 0.0)).expand(*params.shape[:-1], 6)
    return torch.cat([params, extra], dim=-1)


def params_after_padding(params: Tensor, height: int, width: int) -> Tensor:
    """Camera parameters (4,) or (10,) of an (H, W) image once centre-padded to a square of max(H, W).

    Plain cameras get a wider fov (``fov_after_padding``); product cameras keep the fov and scale the crop
    (zoom and shift by min/max), since NDC units shrink by that ratio and the shift must follow.
    """
    params = params.clone()
    if height == width:
        return params
    if params.shape[-1] == 4:
        params[..., 3] = fov_after_padding(params[..., 3], height, width)
    else:
        params[..., 4:7] *= min(height, width) / max(height, width)
    return params


def fov_after_padding(fov: Number, height: int, width: int) -> Number:
    """The fov (degrees, over the shorter side) of an (H, W) image once centre-padded to a square of max(H, W).

    Padding keeps the focal length in pixels; the shorter side grows from min(H, W) to max(H, W).

    >>> round(fov_after_padding(30.0, 600, 800), 4)
    39.3201
    """
    ratio = max(height, width) / min(height, width)
    if isinstance(fov, Tensor):
        return torch.rad2deg(2 * torch.atan(torch.tan(torch.deg2rad(fov) / 2) * ratio))
    return math.degrees(2 * math.atan(math.tan(math.radians(fov) / 2) * ratio))
