"""Product-photo renders of a textured shoe mesh (issue 10, appearance).

``render_photo`` draws every view with the project's renderer (hard nearest face, back faces
culled, supersampled so alpha is the exact pixel coverage) and, with lighting, shades each pixel
from the rasteriser's fragments: the vertex normals and positions are interpolated with the
fragments' (perspective-correct) barycentrics, the albedo and gloss are sampled from the texture
as the renderer samples it, and ``lighting.shade`` lights them in camera space.

The optional contact shadow darkens the *background* only: the shoe is mirrored under the ground
plane and squashed to a sliver (``shadow_depth`` of its height), rasterised, blurred and used to
dim the white background where the shoe does not cover it. Alpha is never touched: it stays the
exact coverage of the shoe (white soles on white are the hard case for threshold masks).

Output: straight (un-premultiplied) RGB + alpha; where alpha is 0 the RGB is the background (white,
darker in the shadow). ``composite`` gives the photo a camera would take (the RGB to write when a
dataset stores photos and masks separately); compositing on plain white drops the shadow.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from shoerecon.data.synth.lighting import LightingParams, shade
from shoerecon.geometry.mesh import Mesh, Meshes
from shoerecon.render.cameras import Cameras
from shoerecon.render.renderer import Renderer, RendererConfig
from shoerecon.render.shade import packed_sample_texture

WHITE = (1.0, 1.0, 1.0)


def _unpremultiply(prem: Tensor, alpha: Tensor, background: Tensor) -> Tensor:
    """Straight RGB from premultiplied RGB; the background where nothing is covered."""
    return torch.where(alpha > 1e-6, prem / alpha.clamp_min(1e-6), background)


def _render_unlit(mesh: Mesh, cameras: Tensor, image_size: int, supersample: int, chunk: int) -> Tensor:
    """The flat look of ``data/synthetic.render_turntable`` (the texture as it is), op for op."""
    big = image_size * supersample
    # The mesh is closed, so culling back faces changes no pixel of a K=1 hard render and is ~4x faster.
    renderer = Renderer(RendererConfig(image_size=big, faces_per_pixel=1, blend="hard", background=WHITE, cull_backfaces=True))
    out = []
    for start in range(0, cameras.shape[0], chunk):
        cams = Cameras.from_tensor(cameras[start : start + chunk][None])
        with torch.no_grad():
            out.append(renderer(Meshes.from_mesh(mesh), cams)[0])
    rgba = torch.cat(out)
    if supersample > 1:
        rgba = F.avg_pool2d(rgba, supersample)
    alpha = rgba[:, 3:].clamp(0, 1)
    premult = rgba[:, :3] - (1.0 - alpha)  # the renderer composites on white
    rgb = torch.where(alpha > 1e-6, premult / alpha.clamp_min(1e-6), torch.ones_like(premult))
    return torch.cat([rgb.clamp(0, 1), alpha], dim=1)


def _shade_views(
    mesh: Mesh, cams: Cameras, renderer: Renderer, texture: Tensor, normals: Tensor, lighting: LightingParams
) -> tuple[Tensor, Tensor]:
    """Shaded colour and coverage of V views at the renderer's size. cams (1, V) -> rgb (V, 3, H, W), cov (V, 1, H, W)."""
    frags = renderer.rasterize_packed(mesh.verts[None], mesh.faces, cams)
    n, h, w, _ = frags.shape
    first = frags.rank == 0  # K = 1, but keep only nearest faces should K ever grow
    cols = packed_sample_texture(frags, texture[None], mesh.uvs.to(texture), mesh.uv_faces, n)[first]
    face = frags.face[first] % mesh.faces.shape[0]
    bary = frags.bary[first]
    corners = mesh.faces[face]  # (M, 3)
    nrm = F.normalize(torch.einsum("mk,mkc->mc", bary, normals[corners]), dim=-1)
    pos = torch.einsum("mk,mkc->mc", bary, mesh.verts[corners].to(bary))
    pix = frags.pix[first]
    view = pix // (h * w)
    rot = cams.rotation()[0].to(bary)[view]  # (M, 3, 3) world -> camera rows
    to_cam = F.normalize(cams.position()[0].to(bary)[view] - pos, dim=-1)
    n_cam = torch.einsum("mij,mj->mi", rot, nrm)
    v_cam = torch.einsum("mij,mj->mi", rot, to_cam)
    gloss = cols[:, 3:4] if cols.shape[1] > 3 else None
    rgb = shade(cols[:, :3], n_cam, v_cam, gloss, lighting)
    image = rgb.new_ones(n * h * w, 3).index_put((pix,), rgb)
    cov = rgb.new_zeros(n * h * w, 1).index_put((pix,), rgb.new_ones(pix.shape[0], 1))
    return image.view(n, h, w, 3).permute(0, 3, 1, 2), cov.view(n, h, w, 1).permute(0, 3, 1, 2)


def contact_shadow(mesh: Mesh, cams: Cameras, image_size: int, lighting: LightingParams) -> Tensor:
    """Darkening of the background under the sole: (V, 1, S, S) in [0, shadow_strength] for cams (1, V).

    The shoe mirrored under its lowest point and squashed by ``shadow_depth`` is a sliver that
    covers the footprint and reaches a little below the sole whatever the elevation; blurred
    by ``shadow_softness`` of the image side it reads as a soft contact shadow.
    """
    verts = mesh.verts.clone()
    ground = verts[:, 1].min()
    verts[:, 1] = ground - (verts[:, 1] - ground) * lighting.shadow_depth
    renderer = Renderer(RendererConfig(image_size=image_size, faces_per_pixel=1, blend="hard", background=WHITE, cull_backfaces=False))
    sliver = renderer(Meshes(verts[None], mesh.faces), cams)[0, :, 3:]  # (V, 1, S, S) coverage
    # Two scales: a tight, dark contact line right under the sole and the wide soft penumbra around it.
    wide = _gaussian_blur(sliver, max(lighting.shadow_softness * image_size, 0.5))
    tight = _gaussian_blur(sliver, max(lighting.shadow_softness * image_size / 4, 0.5))
    return lighting.shadow_strength * (0.6 * wide + 0.4 * tight).clamp(0, 1)


def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (N, 1, H, W) with zero padding (nothing outside the image casts a shadow)."""
    radius = int(3 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0)), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius)), k.view(1, 1, -1, 1))


def render_photo(
    mesh: Mesh,
    cameras: Tensor,
    image_size: int,
    supersample: int = 1,
    lighting: LightingParams | None = None,
    gloss: Tensor | None = None,
    chunk: int = 12,
    with_background: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Render a closed, textured mesh like a product photo on white.

    Args:
        mesh: closed, outward faces, with ``texture`` (3, T, T) = albedo, uvs and uv_faces.
        cameras: (V, 4) (azimuth, elevation, distance, fov) rows.
        image_size: S. supersample: render at k * S and box-filter (alpha = covered fraction).
        lighting: None = the flat, unlit look (the texture as it is, ``render_turntable``'s output
            exactly); else shaded with these lights and, if ``shadow_strength`` > 0, a contact shadow.
        gloss: (1, T, T) or (T, T) in [0, 1], the texture's specular weight; None = 1 everywhere.
        chunk: views rasterised at a time (memory).
        with_background: also return the background each view is seen against.
    Returns:
        (V, 4, S, S): straight RGB in [0, 1] (the background where alpha is 0) and alpha = exact
        coverage; with ``with_background`` also (V, 3, S, S) background (see ``composite``).
    """
    if mesh.texture is None:
        raise ValueError("render_photo: the mesh has no texture (albedo)")
    if cameras.ndim != 2 or cameras.shape[-1] != 4:
        raise ValueError(f"render_photo: cameras must be (V, 4), got {tuple(cameras.shape)}")
    if lighting is None:
        rgba = _render_unlit(mesh, cameras, image_size, supersample, chunk)
        return (rgba, torch.ones_like(rgba[:, :3])) if with_background else rgba
    texture = mesh.texture.float()
    if gloss is not None:
        gloss = gloss.float().reshape(1, *gloss.shape[-2:])
        if gloss.shape[-2:] != texture.shape[-2:]:
            raise ValueError(f"render_photo: gloss {tuple(gloss.shape)} must match the texture's size {tuple(texture.shape[-2:])}")
        texture = torch.cat([texture, gloss])
    big = image_size * supersample
    renderer = Renderer(RendererConfig(image_size=big, faces_per_pixel=1, blend="hard", background=WHITE, cull_backfaces=True))
    normals = mesh.vertex_normals().float()
    mesh = Mesh(mesh.verts.float(), mesh.faces, mesh.uvs, mesh.uv_faces, texture)
    rgbs, alphas, backs = [], [], []
    with torch.no_grad():
        for start in range(0, cameras.shape[0], chunk):
            cams = Cameras.from_tensor(cameras[start : start + chunk][None].float())
            rgb, cov = _shade_views(mesh, cams, renderer, texture, normals, lighting)
            bg = torch.ones_like(rgb)
            if lighting.shadow_strength > 0:
                dark = contact_shadow(mesh, cams, image_size, lighting)
                bg = bg * (1 - F.interpolate(dark, size=(big, big), mode="bilinear", align_corners=False))
            if supersample > 1:
                alpha = F.avg_pool2d(cov, supersample)
                prem = F.avg_pool2d(rgb * cov, supersample)
                bg_small = F.avg_pool2d(bg, supersample)
            else:
                alpha, prem, bg_small = cov, rgb * cov, bg
            rgbs.append(_unpremultiply(prem, alpha, bg_small).clamp(0, 1))
            alphas.append(alpha.clamp(0, 1))
            backs.append(bg_small)
    rgba = torch.cat([torch.cat(rgbs), torch.cat(alphas)], dim=1)
    return (rgba, torch.cat(backs)) if with_background else rgba


def composite(rgba: Tensor, background: Tensor | None = None) -> Tensor:
    """The photo: straight RGB over the background. rgba (..., 4, H, W), background (..., 3, H, W) or None = white
    -> (..., 3, H, W)."""
    rgb, alpha = rgba[..., :3, :, :], rgba[..., 3:, :, :]
    bg = torch.ones_like(rgb) if background is None else background
    return rgb * alpha + bg * (1 - alpha)
