"""Renderer: B meshes (same topology) x V cameras each -> RGBA images (B, V, 4, H, W).

cameras -> NDC -> rasterise (backend) -> texture sampling -> soft or hard blending.

Mixed precision: the whole renderer runs in float32 with autocast switched off, whatever the caller's autocast
or input dtype (half/bfloat16 verts and textures are upcast; the output is float32). Under autocast the camera
transform (a matmul) would otherwise run in bfloat16/float16, and with it the NDC depths the rasteriser sorts
(8 mantissa bits cannot order faces ~1e-3 apart at depth ~2), the edge functions that give barycentrics (they
subtract nearly equal products) and the softmax blend's exp((zfar - z) / gamma). float64 inputs
(gradchecks) stay float64.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor, nn

from shoerecon.geometry.mesh import Meshes
from shoerecon.render.backends import get_rasterizer
from shoerecon.render.cameras import Cameras
from shoerecon.render.rasterize import Fragments, PackedFragments, RasterSettings, blur_radius_from_sigma
from shoerecon.render.shade import packed_hard_rgb_blend, packed_sample_texture, packed_softmax_rgb_blend


@dataclass
class RendererConfig:
    """Renderer settings (the ``render:`` config section): the rasteriser's (``raster_settings()`` gives them as
    one ``RasterSettings``) and the shader's.

    image_size: int, or [H, W] for non-square images. faces_per_pixel: K.
    sigma: SoftRas silhouette / blend sharpness (NDC**2). gamma: softmax blend depth temperature.
    blur_radius: NDC distance within which outside faces still count; None derives it from sigma
        (sqrt(log(1/1e-4 - 1) * sigma), where the silhouette probability falls to 1e-4) for
        blend="soft" and uses 0 for blend="hard" (exact coverage).
    blend: "soft" (pytorch3d softmax_rgb_blend) | "hard" (nearest face, alpha = coverage).
    background: RGB of empty pixels. znear/zfar: blend depth range; faces with a vertex at
        z <= max(znear, cameras.znear) are clipped (clip_near) or not rasterised.
    clip_barycentrics: None clips when blur_radius > 0 (pytorch3d's MeshRasterizer default).
    clip_near: faces crossing the near plane are cut to their part in front of it (pytorch3d's
        z_clip_value; render/clip.py) instead of skipped: cameras close to or inside the object.
    backend: "torch" | "pytorch3d".
    """
    image_size: Union[int, tuple[int, int]] = 64
    faces_per_pixel: int = 8
    sigma: float = 1e-4
    gamma: float = 1e-4
    blur_radius: Optional[float] = None
    blend: str = "soft"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    znear: float = 0.01
    zfar: float = 100.0
    cull_backfaces: bool = False
    perspective_correct: bool = True
    clip_barycentrics: Optional[bool] = None
    clip_near: bool = True
    backend: str = "torch"

    def __post_init__(self) -> None:
        if self.blend not in ("soft", "hard"):
            raise ValueError(f"RendererConfig.blend must be 'soft' or 'hard', got {self.blend!r}")
        if self.faces_per_pixel < 1:
            raise ValueError(f"RendererConfig.faces_per_pixel must be >= 1, got {self.faces_per_pixel}")
        if len(self.background) != 3:
            raise ValueError(f"RendererConfig.background must be 3 floats, got {self.background!r}")

    def hard(self, **overrides) -> "RendererConfig":
        """This config as the hard renderer (nearest face, exact coverage: blend "hard", K = 1, blur 0) of
        validation, previews, exports checks and evaluation; ``overrides``: other fields to change.

        >>> RendererConfig(image_size=32, sigma=1e-5).hard(background=(0.0, 0.0, 0.0)).faces_per_pixel
        1
        """
        return dataclasses.replace(self, blend="hard", faces_per_pixel=1, blur_radius=None, **overrides)

    def resolved_blur_radius(self) -> float:
        if self.blur_radius is not None:
            return float(self.blur_radius)
        return blur_radius_from_sigma(self.sigma) if self.blend == "soft" else 0.0

    def resolved_clip(self) -> bool:
        return self.resolved_blur_radius() > 0 if self.clip_barycentrics is None else bool(self.clip_barycentrics)

    def raster_settings(self, **overrides) -> RasterSettings:
        """The rasteriser's part of this config (blur radius and barycentric clipping resolved); ``overrides``:
        RasterSettings fields to change (the Renderer raises ``znear`` to the cameras' near plane).

        >>> RendererConfig(image_size=32, blend="hard").raster_settings(znear=0.5)
        RasterSettings(image_size=32, faces_per_pixel=8, blur_radius=0.0, cull_backfaces=False, \
perspective_correct=True, clip_barycentrics=False, znear=0.5, clip_near=True)
        """
        settings = RasterSettings(self.image_size, self.faces_per_pixel, self.resolved_blur_radius(),
                                  self.cull_backfaces, self.perspective_correct, self.resolved_clip(), self.znear,
                                  self.clip_near)
        return settings.replace(**overrides) if overrides else settings


def _check_inputs(verts: Tensor, faces: Tensor, cameras: Cameras) -> Cameras:
    if verts.ndim != 3 or verts.shape[-1] != 3:
        raise ValueError(f"Renderer: verts must be (B, N, 3), got {tuple(verts.shape)}")
    if faces.ndim != 2 or faces.shape[-1] != 3 or faces.dtype != torch.long:
        raise ValueError(f"Renderer: faces must be (F, 3) long, got {tuple(faces.shape)} {faces.dtype}")
    if len(cameras.shape) == 1:  # one set of V cameras for every mesh
        cameras = Cameras.from_tensor(cameras.to_tensor().expand(verts.shape[0], -1, -1), znear=cameras.znear)
    if len(cameras.shape) != 2 or cameras.shape[0] != verts.shape[0]:
        raise ValueError(f"Renderer: cameras must have batch shape (B, V) = ({verts.shape[0]}, V), got {tuple(cameras.shape)}")
    return cameras


def as_meshes(*args, **kwargs) -> tuple[Meshes, Cameras]:
    """The (meshes, cameras) of a Renderer call in either form: ``(meshes, cameras)`` or the tensor form
    ``(verts, faces, cameras, texture=None, uvs=None, uv_faces=None)`` (uvs are ignored without a texture)."""
    if args and isinstance(args[0], Meshes):
        return _call_args(("meshes", "cameras"), args, kwargs)
    if "meshes" in kwargs:
        return _call_args(("meshes", "cameras"), args, kwargs)
    verts, faces, cameras, texture, uvs, uv_faces = _call_args(
        ("verts", "faces", "cameras", "texture", "uvs", "uv_faces"), args, kwargs, required=3)
    if texture is not None and (uvs is None or uv_faces is None):
        raise ValueError("Renderer: a texture needs uvs and uv_faces")
    textured = texture is not None
    return Meshes(verts, faces, uvs if textured else None, uv_faces if textured else None, texture), cameras


def _call_args(names: tuple[str, ...], args: tuple, kwargs: dict, required: int = 2) -> tuple:
    if len(args) > len(names) or set(kwargs) - set(names[len(args):]):
        raise TypeError(f"Renderer: call it as renderer({', '.join(names)}); got {len(args)} positional "
                        f"arguments and {sorted(kwargs)}")
    values = list(args) + [kwargs.get(n) for n in names[len(args):]]
    missing = [n for n, v in zip(names[:required], values) if v is None]
    if missing:
        raise TypeError(f"Renderer: missing {', '.join(missing)}")
    return tuple(values)


def _at_least_fp32(x: Tensor) -> Tensor:
    return x.float() if x.is_floating_point() and x.element_size() < 4 else x


def full_precision(fn):
    """Run a renderer method with autocast off and its half/bfloat16 tensor arguments (and the float tensors of
    ``Meshes`` arguments) upcast to float32."""
    import functools

    def upcast(a):
        if isinstance(a, Tensor):
            return _at_least_fp32(a)
        return a.apply(_at_least_fp32) if isinstance(a, Meshes) else a

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        args = [upcast(a) for a in args]
        kwargs = {k: upcast(a) for k, a in kwargs.items()}
        tensors = [a.verts if isinstance(a, Meshes) else a for a in (*args, *kwargs.values())]
        device = next((a.device.type for a in tensors if isinstance(a, Tensor)), "cpu")
        with torch.autocast(device_type=device, enabled=False):
            return fn(self, *args, **kwargs)
    return wrapper


class Renderer(nn.Module):
    """Differentiable mesh renderer (no parameters; all settings in ``RendererConfig``).

    >>> from shoerecon.geometry.primitives import ico_sphere
    >>> m = ico_sphere(1)
    >>> cams = Cameras.turntable(2).reshape(1, 2)
    >>> from shoerecon.geometry.mesh import Meshes
    >>> Renderer(RendererConfig(image_size=16))(Meshes.from_mesh(m), cams).shape
    torch.Size([1, 2, 4, 16, 16])
    """
    def __init__(self, cfg: RendererConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or RendererConfig()

    @full_precision
    def rasterize_packed(self, verts: Tensor, faces: Tensor, cameras: Cameras) -> PackedFragments:
        """verts (B, N, 3), faces (F, 3), cameras (B, V) -> packed fragments of N_img = B * V images,
        image n = b * V + v, packed faces n * F + f."""
        cameras = _check_inputs(verts, faces, cameras)
        b, v = cameras.shape
        cameras = cameras.to(device=verts.device, dtype=verts.dtype)
        verts_ndc = cameras.transform_points_ndc(verts[:, None]).reshape(b * v, verts.shape[1], 3)
        settings = self.cfg.raster_settings(znear=max(self.cfg.znear, cameras.znear))
        return get_rasterizer(self.cfg.backend)(verts_ndc, faces.to(verts.device), settings)

    def rasterize(self, verts: Tensor, faces: Tensor, cameras: Cameras) -> Fragments:
        """Dense pytorch3d fragments (B * V, H, W, K) of the batch (a conversion of ``rasterize_packed`` for
        callers holding pytorch3d-style code; the forward pass never builds them)."""
        return self.rasterize_packed(verts, faces, cameras).to_dense()

    @full_precision
    def forward(self, *args, **kwargs) -> Tensor:
        """Render RGBA, as pytorch3d's ``MeshRenderer``: ``renderer(meshes, cameras)``.

        Args:
            meshes: ``geometry.Meshes``, B meshes of one topology: verts (B, N, 3) world space, faces (F, 3)
                long, and a texture (B, 3, Ht, Wt) with uvs (T, 2) and uv_faces (F, 3), or none (white).
                (``Meshes.from_topology(template, verts, texture)``; ``Meshes.from_mesh(mesh)``.)
            cameras: batch shape (B, V) (or (V,), shared by the meshes).
            The tensor form ``renderer(verts, faces, cameras, texture=None, uvs=None, uv_faces=None)`` is the
            same call (kept for the low-level tests and benchmarks).
        Returns:
            (B, V, 4, H, W): RGB and alpha (soft silhouette for blend="soft", coverage for "hard").
        """
        meshes, cameras = as_meshes(*args, **kwargs)
        frags = self.rasterize_packed(meshes.verts, meshes.faces, cameras)
        b = len(meshes)
        n, h, w, _ = frags.shape
        return self.shade(frags, meshes).view(b, n // b, h, w, 4).permute(0, 1, 4, 2, 3)

    def shade(self, frags: PackedFragments, meshes: Meshes) -> Tensor:
        """Colours of the fragments of ``meshes`` (as rasterised by ``rasterize_packed``: N_img = B * V images)
        blended per pixel -> (N_img, H, W, 4) RGBA."""
        verts = meshes.verts
        if meshes.texture is None:
            colors = frags.bary.new_ones(frags.bary.shape[0], 3)
        else:
            colors = packed_sample_texture(frags, meshes.texture.to(verts.dtype), meshes.uvs.to(verts),
                                           meshes.uv_faces.to(verts.device), frags.shape[0] // len(meshes))
        cfg = self.cfg
        if cfg.blend == "soft":
            return packed_softmax_rgb_blend(colors, frags, cfg.sigma, cfg.gamma, cfg.znear, cfg.zfar, cfg.background)
        return packed_hard_rgb_blend(colors, frags, cfg.background)
