"""Product-photo lighting and framing (issue 10, appearance).

Shading happens in camera (view) space as ``render/cameras.py`` defines it: x to the image's
right, y to its top, z forward (away from the camera). A direction *toward* the camera is
therefore (0, 0, -1). Lights are directions toward the light, fixed relative to the camera (a
studio rig moves with the camera, so every view of a turntable is lit the same way):

    rgb = albedo * (ambient * sky(n) + sum_l I_l max(n . L_l, 0))
          + specular * gloss * sum_l I_l max(n . H_l, 0) ^ shininess        (Blinn-Phong, white highlights)

with ``sky(n) = 1 - ambient_falloff * (1 - n_y) / 2`` (surfaces facing down see less of the
studio's bounce light), H_l the half vector of L_l and the direction to the camera. The key light
sits near the camera, a little above and to one side; the fill light on the other side, weaker.
Intensities are drawn so that a white surface facing the camera receives about 1 (``exposure``).

Exposure (``expose``): product photography blows the separately lit background out to pure white
while the shoe stays below it, so white leather and rubber read about 225-250 of 255, shaded, and a
cut-out can find them. The radiance passes a highlight shoulder: unchanged up to a knee, then rolled
off smoothly (slope 1 at the knee, strictly increasing, so shading survives) toward ``1 - headroom``,
which it never exceeds. ``headroom`` is drawn per shoe; ``headroom = shoulder = 0`` is the old look
(a hard clip at 1: white parts merge with the background).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

#: Sampling ranges of ``LightingParams`` (tests check samples stay inside).
LIGHTING_RANGES: dict[str, tuple[float, float]] = {
    "ambient": (0.3, 0.5),
    "ambient_falloff": (0.2, 0.55),
    "key_azimuth": (-35.0, 35.0),     # degrees, + = light to the camera's right
    "key_elevation": (15.0, 45.0),    # degrees above the camera
    "fill_azimuth": (40.0, 80.0),     # degrees, on the side opposite the key
    "fill_elevation": (-5.0, 25.0),
    "fill_ratio": (0.15, 0.45),       # fill intensity / key intensity
    "exposure": (1.0, 1.12),          # ambient + key + fill seen by a surface facing the camera
    "specular": (0.08, 0.4),
    "shininess": (12.0, 60.0),
    "shadow_strength": (0.0, 0.4),    # darkening of the background right under the sole
    "shadow_softness": (0.01, 0.035), # Gaussian sigma of the shadow, as a fraction of the image side
    "shadow_depth": (0.04, 0.12),     # how far the shadow reaches below the sole, as a fraction of the shoe's height
    "fill": (0.7, 0.9),               # fraction of the image width the shoe spans at view 0
    "headroom": (0.02, 0.12),         # the shoe's radiance stays this far below the white background (drawn last)
}


@dataclass
class LightingParams:
    """One shoe's studio lighting (angles in degrees, relative to the camera; see the module docstring).

    Attributes:
        ambient: ambient term (before ``exposure`` scaling). ambient_falloff: how much less ambient
            light reaches surfaces facing down (0 = uniform).
        key_azimuth / key_elevation: direction of the key light; fill_azimuth is mirrored to the
            other side of the key. fill_ratio: fill intensity over key intensity.
        exposure: the total light a camera-facing surface receives (sets the key intensity).
        specular, shininess: Blinn-Phong highlight weight (times the gloss map) and exponent.
        shadow_strength, shadow_softness, shadow_depth: the soft contact shadow on the background.
        fill: fraction of the image width the shoe spans at view 0 (use with ``framing_distance``).
        headroom, shoulder: the exposure (``expose``): shoe radiance rolls off from ``1 - headroom - shoulder``
            toward ``1 - headroom`` (the background is 1); both 0 = the old hard clip at 1.
    """

    ambient: float = 0.4
    ambient_falloff: float = 0.35
    key_azimuth: float = -20.0
    key_elevation: float = 30.0
    fill_azimuth: float = 60.0
    fill_elevation: float = 10.0
    fill_ratio: float = 0.3
    exposure: float = 1.05
    specular: float = 0.2
    shininess: float = 30.0
    shadow_strength: float = 0.25
    shadow_softness: float = 0.02
    shadow_depth: float = 0.08
    fill: float = 0.8
    headroom: float = 0.06
    shoulder: float = 0.12

    def __post_init__(self) -> None:
        for name in ("ambient", "ambient_falloff", "fill_ratio", "exposure", "specular", "shadow_strength", "shadow_softness",
                     "shadow_depth", "headroom", "shoulder"):
            if getattr(self, name) < 0:
                raise ValueError(f"LightingParams.{name} must be >= 0, got {getattr(self, name)}")
        if self.headroom + self.shoulder >= 1:
            raise ValueError(f"LightingParams: headroom + shoulder must be < 1, got {self.headroom} + {self.shoulder}")
        if not 0 < self.fill <= 1:
            raise ValueError(f"LightingParams.fill must be in (0, 1], got {self.fill}")
        if self.shininess <= 0:
            raise ValueError(f"LightingParams.shininess must be > 0, got {self.shininess}")

    def light_dirs(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Unit directions toward the key and the fill light in camera space."""
        side = -1.0 if self.key_azimuth >= 0 else 1.0
        return _dir(self.key_azimuth, self.key_elevation), _dir(side * self.fill_azimuth, self.fill_elevation)

    def intensities(self) -> tuple[float, float]:
        """(key, fill) intensities such that a surface facing the camera receives ``exposure`` in total."""
        key_dir, fill_dir = self.light_dirs()
        # n = (0, 0, -1): n . L = -L_z.
        per_key = max(-key_dir[2], 0.0) + self.fill_ratio * max(-fill_dir[2], 0.0)
        ambient = self.ambient * (1 - self.ambient_falloff / 2)  # the sky term at a horizontal normal
        key = max(self.exposure - ambient, 0.0) / max(per_key, 1e-6)
        return key, key * self.fill_ratio


def _dir(azimuth: float, elevation: float) -> tuple[float, float, float]:
    az, el = math.radians(azimuth), math.radians(elevation)
    return (math.sin(az) * math.cos(el), math.sin(el), -math.cos(az) * math.cos(el))


def sample_lighting(rng: np.random.Generator, headroom_rng: np.random.Generator | None = None) -> LightingParams:
    """Draw one shoe's lighting: every parameter uniform in ``LIGHTING_RANGES`` (in its order, so parameters added
    at the end leave the earlier draws of a seed unchanged), the key on a random side.

    ``headroom`` (added last) comes from ``headroom_rng`` when given, else from ``rng`` after the others:
    ``synthetic.make_shoe`` gives it its own stream, so what it draws from ``rng`` after the lighting (the flat
    look's paint) is what it was before the exposure existed.
    """
    streams = {"headroom": headroom_rng or rng}
    values = {k: float(streams.get(k, rng).uniform(lo, hi)) for k, (lo, hi) in LIGHTING_RANGES.items()}
    return LightingParams(**values)


def shade(
    albedo: Tensor,
    normal: Tensor,
    view_dir: Tensor,
    gloss: Tensor | None,
    params: LightingParams,
) -> Tensor:
    """Blinn-Phong studio shading in camera space (any leading shape ``...``; differentiable, no clamping of inputs).

    Args:
        albedo: (..., 3) in [0, 1].
        normal: (..., 3) unit normals in camera space (x right, y up, z forward).
        view_dir: (..., 3) unit directions from the surface point toward the camera (camera space).
        gloss: (...) or (..., 1) specular weight in [0, 1]; None = 1.
        params: the lights.
    Returns:
        (..., 3) RGB in [0, 1 - headroom] after ``expose`` (the old look, headroom = shoulder = 0: clamped to [0, 1]).
    """
    key_dir, fill_dir = params.light_dirs()
    key_i, fill_i = params.intensities()
    ambient = params.ambient * (1 - params.ambient_falloff * (1 - normal[..., 1:2]) / 2)
    diffuse = ambient
    spec = torch.zeros_like(albedo[..., :1])
    for d, intensity in ((key_dir, key_i), (fill_dir, fill_i)):
        light = normal.new_tensor(d)
        diffuse = diffuse + intensity * (normal * light).sum(-1, keepdim=True).clamp_min(0)
        half = torch.nn.functional.normalize(view_dir + light, dim=-1)
        facing = ((normal * light).sum(-1, keepdim=True) > 0).to(normal.dtype)  # no highlight on the unlit side
        spec = spec + intensity * facing * (normal * half).sum(-1, keepdim=True).clamp_min(0).pow(params.shininess)
    g = 1.0 if gloss is None else (gloss if gloss.ndim == albedo.ndim else gloss[..., None])
    return expose(albedo * diffuse + params.specular * g * spec, params.headroom, params.shoulder)


def expose(radiance: Tensor, headroom: float, shoulder: float) -> Tensor:
    """Product-photo exposure of shaded radiance (any shape; differentiable): pixel values in [0, 1 - headroom].

    With ``top = 1 - headroom`` and ``knee = top - shoulder``: values up to the knee are kept, values above it
    become ``knee + shoulder * (1 - exp(-(x - knee) / shoulder))`` (slope 1 at the knee, strictly increasing, tends
    to ``top``). ``shoulder = 0`` clips at ``top``; ``headroom = shoulder = 0`` is a plain clamp to [0, 1].

    >>> expose(torch.tensor([0.5, 0.82, 10.0]), 0.06, 0.12)
    tensor([0.5000, 0.8200, 0.9400])
    """
    top = 1.0 - headroom
    x = radiance.clamp_min(0)
    if shoulder <= 0:
        return x.clamp_max(top)
    knee = top - shoulder
    rolled = knee + shoulder * (1 - torch.exp(-(x - knee).clamp_min(0) / shoulder))
    return torch.where(x > knee, rolled, x)


def framing_distance(
    verts: Tensor,
    fov_deg: float,
    elevation_deg: float,
    fill: float,
    max_extent: float | None = 0.98,
    num_azimuths: int = 36,
) -> float:
    """Camera distance at which the shoe spans ``fill`` of the image width at view 0 (azimuth 0, the side view).

    The cameras are ``render/cameras.py``'s look-at cameras around the origin; the width is the
    NDC extent (max - min) / 2 of the projected vertices, so it is exact under perspective.
    With ``max_extent`` the camera backs off, if needed, until no vertex of any of ``num_azimuths``
    turntable views lands beyond ``max_extent`` of the image half-size (a long shoe seen at 45
    degrees must stay inside the frame).

    Args:
        verts: (V, 3) world-space vertices (the shoe roughly centred at the origin).
        fov_deg, elevation_deg: of the turntable. fill: in (0, 1].
    Returns:
        the distance (float).
    """
    from shoerecon.render.cameras import Cameras

    if not 0 < fill <= 1:
        raise ValueError(f"framing_distance: fill must be in (0, 1], got {fill}")
    v = verts.detach().double().reshape(-1, 3)
    radius = float(v.norm(dim=-1).max())
    cam = lambda az, d: Cameras.from_tensor(torch.tensor([[az, elevation_deg, d, fov_deg]], dtype=torch.float64))  # noqa: E731

    def width(d: float) -> float:
        x = cam(0.0, d).transform_points_ndc(v[None])[0, :, 0]
        return float(x.max() - x.min()) / 2

    def worst(d: float) -> float:
        az = torch.arange(num_azimuths, dtype=torch.float64) * 360.0 / num_azimuths
        cams = Cameras.from_tensor(torch.stack([az, torch.full_like(az, elevation_deg), torch.full_like(az, d), torch.full_like(az, fov_deg)], -1))
        return float(cams.transform_points_ndc(v[None].expand(num_azimuths, -1, -1))[..., :2].abs().max())

    def solve(f, target: float) -> float:
        # f decreases with the distance once the camera is outside the bounding sphere: bisection.
        lo, hi = radius * 1.05 + 1e-3, radius * 1.05 + 1e-3
        while f(hi) > target:
            hi *= 2
        if f(lo) <= target:
            return lo
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) > target else (lo, mid)
        return hi

    d = solve(width, fill)
    if max_extent is not None and worst(d) > max_extent:
        d = solve(worst, max_extent)
    return d


def bake_shading(
    albedo: np.ndarray, normal: np.ndarray, light: tuple[float, float, float] = (0.25, 1.0, 0.45), ambient: float = 0.62
) -> np.ndarray:
    """The old generator's look: soft, view-independent shading baked into the texture (for unlit renders).

    ``albedo * (ambient + (1 - ambient) * max(n . l, 0))`` with a world-space light direction, so every
    view of an unlit render agrees with the network's own (unlit) renderer.

    Args:
        albedo: (T, T, 3) in [0, 1]. normal: (T, T, 3) unit world normals (``TexelGBuffer.normal``; zero
            where no chart covers the texel: those take the nearest covered texel's shade).
    Returns:
        (T, T, 3) float32 in [0, 1].
    """
    light_dir = np.asarray(light, dtype=np.float64)
    light_dir = light_dir / np.linalg.norm(light_dir)
    shade_ = ambient + (1 - ambient) * np.clip(normal.astype(np.float64) @ light_dir, 0, 1)
    empty = np.linalg.norm(normal, axis=-1) < 0.5  # texels outside every chart: take their nearest chart texel's shade
    if empty.any() and not empty.all():
        from scipy import ndimage

        idx = ndimage.distance_transform_edt(empty, return_distances=False, return_indices=True)
        shade_ = shade_[idx[0], idx[1]]
    return np.clip(albedo * shade_[..., None], 0, 1).astype(np.float32)
