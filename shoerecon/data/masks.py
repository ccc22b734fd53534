"""Foreground masks: from files, from alpha, or by thresholding against the background with clean-up."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import kornia.morphology as morph
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor


def background_distance(image: Tensor, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:
    """Largest per-channel distance of each pixel to the background colour. (B, 3, H, W) -> (B, 1, H, W)."""
    bg = image.new_tensor(background).view(1, 3, 1, 1)
    return (image - bg).abs().amax(dim=1, keepdim=True)


def fill_holes(mask: Tensor) -> Tensor:
    """Fill enclosed background regions of binary masks (a shoe's silhouette has no holes). (B, 1, H, W) -> same."""
    filled = [torch.from_numpy(ndimage.binary_fill_holes(m[0].cpu().numpy() > 0.5)) for m in mask]
    return torch.stack(filled)[:, None].to(mask)


def outline(mask: Tensor) -> Tensor:
    """Outline pixels (..., H, W) bool of binary-ish masks (..., H, W): inside pixels with a background 4-neighbour
    (pixels beyond the image do not count as background).

    >>> m = torch.zeros(1, 6, 6); m[:, 1:5, 1:5] = 1
    >>> int(outline(m).sum()), bool(outline(m)[0, 2, 2])
    (12, False)
    """
    inside = mask > 0.5
    out = (~inside).float().reshape(-1, 1, *mask.shape[-2:])
    near_out = torch.maximum(F.max_pool2d(out, (3, 1), 1, (1, 0)), F.max_pool2d(out, (1, 3), 1, (0, 1)))
    return inside & (near_out.reshape(mask.shape) > 0.5)


def disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) bool disk structuring element."""
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return xx ** 2 + yy ** 2 <= radius ** 2 + radius


def fill_enclosed(mask: Tensor, radius: int) -> Tensor:
    """Fill the background regions of binary masks (B, 1, H, W) that the outside reaches only through gaps narrower
    than about ``2 * radius`` pixels (a near-white part whose outline has breaks: a white toe cap, a white heel), and
    narrow inlets of the outline alike: dilate by a disk, fill holes, erode by the same disk. The image frame counts
    as outside. ``radius`` 0: plain ``fill_holes``.

    >>> m = torch.zeros(1, 1, 12, 12); m[..., 2:10, 2] = m[..., 2:10, 9] = m[..., 2, 2:10] = m[..., 9, 2:10] = 1
    >>> m[..., 9, 5:7] = 0                                         # a box outline with a 2-pixel gap
    >>> int(fill_holes(m).sum()), int(fill_enclosed(m, 2).sum())
    (26, 64)
    """
    if radius <= 0:
        return fill_holes(mask)
    st, pad = disk(radius), radius + 1
    out = []
    for m in mask:
        m = np.pad(m[0].cpu().numpy() > 0.5, pad)
        closed = ndimage.binary_erosion(ndimage.binary_fill_holes(ndimage.binary_dilation(m, st)), st, border_value=0)
        out.append(torch.from_numpy((closed | m)[pad:-pad, pad:-pad]))
    return torch.stack(out)[:, None].to(mask)


def keep_largest_component(mask: Tensor) -> Tensor:
    """Keep the largest 8-connected component of each binary mask (drops dust and stray shadows). (B,1,H,W)."""
    out = []
    for m in mask:
        labels, n = ndimage.label(m[0].cpu().numpy() > 0.5, structure=np.ones((3, 3)))
        if n > 1:
            sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
            labels = labels == (1 + int(np.argmax(sizes)))
        out.append(torch.from_numpy(labels > 0))
    return torch.stack(out)[:, None].to(mask)


def threshold_mask(
    image: Tensor,
    background: Sequence[float] = (1.0, 1.0, 1.0),
    threshold: float = 0.08,
    kernel_size: int = 3,
    largest_component: bool = True,
) -> Tensor:
    """Foreground mask of photos on a plain background.

    Pixels farther than ``threshold`` from the background colour (any channel) are foreground; a
    morphological opening removes specks (JPEG noise), a closing bridges thin gaps, holes are filled
    and, optionally, only the largest component is kept.

    Args:
        image: (B, 3, H, W) or (3, H, W) in [0, 1].
    Returns:
        float mask of the same leading shape with one channel, values in {0, 1}.

    >>> img = torch.ones(1, 3, 9, 9); img[..., 2:7, 2:7] = 0.2
    >>> threshold_mask(img)[0, 0].sum().item()
    25.0
    """
    squeeze = image.ndim == 3
    x = image[None] if squeeze else image
    fg = (background_distance(x, background) > threshold).to(x.dtype)
    if kernel_size > 1:
        k = x.new_ones(kernel_size, kernel_size)
        fg = morph.closing(morph.opening(fg, k), k)
    fg = fill_holes(fg)
    if largest_component:
        fg = keep_largest_component(fg)
    return fg[0] if squeeze else fg


# ----------------------------------------------------------------------------------------- product photos


class BackgroundError(ValueError):
    """A photo is not on a plain white or near-white background."""


def border_background(image: Tensor, width: float = 0.03, vary: float | None = 0.01, outlier: float = 0.04,
                      rounds: int = 3) -> tuple[Tensor, Tensor, float]:
    """The background (3, H, W) of a (3, H, W) photo from its border (the outer ``width`` frame), the border's
    median colour (3,), and the fraction of border pixels farther than 0.1 from the background (large: the border
    is not a plain background).

    The background is a quadratic surface in x and y fitted to the border, ``rounds`` times to the border pixels
    within ``outlier`` of the last fit (the shoe or its shadow where they reach the frame are left out), when it
    differs from the border's median colour by more than ``vary`` somewhere (a lightbox's vignette, light that
    falls off towards the floor); else that colour. A white shoe in a vignetted photo is brighter than the border,
    but darker than the surface under it. ``vary`` None: always the median colour.

    >>> y, x = torch.meshgrid(torch.linspace(-1, 1, 60), torch.linspace(-1, 1, 80), indexing="ij")
    >>> photo = (1 - 0.06 * (x ** 2 + y ** 2)).expand(3, -1, -1).clone()    # a vignette, nothing else
    >>> bg, colour, busy = border_background(photo)
    >>> round(float(bg[0, 30, 40]), 3), round(float((bg - photo).abs().max()), 3), busy
    (1.0, 0.0, 0.0)
    """
    _, h, w = image.shape
    b = max(1, int(round(width * min(h, w))))
    frame = torch.zeros(h, w, dtype=torch.bool, device=image.device)
    frame[:b], frame[-b:], frame[:, :b], frame[:, -b:] = True, True, True, True
    border = image[:, frame]                                                   # (3, N)
    colour = border.median(dim=1).values
    background = colour.view(3, 1, 1).expand(3, h, w)
    if vary is not None:
        surface = _fit_border_surface(image, frame, colour, outlier, rounds)
        if float((surface - colour.view(3, 1, 1)).abs().max()) > vary:
            background = surface
    off = float(((border - background[:, frame]).abs().amax(0) > 0.1).float().mean())
    return background, colour, off


def _fit_border_surface(image: Tensor, frame: Tensor, colour: Tensor, outlier: float, rounds: int) -> Tensor:
    """Quadratic surface (3, H, W) in [0, 1] fitted to the ``frame`` (H, W) pixels of ``image`` (3, H, W) that stay
    within ``outlier`` of the previous fit (first: of ``colour`` (3,))."""
    _, h, w = image.shape
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h, dtype=torch.float64, device=image.device),
                            torch.linspace(-1, 1, w, dtype=torch.float64, device=image.device), indexing="ij")
    basis = torch.stack([torch.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], -1)   # (H, W, 6)
    a, values = basis[frame], image[:, frame].double().T                               # (N, 6), (N, 3)
    fit, coef = colour.double().expand_as(values), None
    for _ in range(rounds):
        keep = (values - fit).abs().amax(1) <= outlier
        if int(keep.sum()) < 6 * 10:  # too few to fit: keep the last fit
            break
        coef = torch.linalg.lstsq(a[keep], values[keep]).solution                      # (6, 3)
        fit = a @ coef
    if coef is None:
        return colour.view(3, 1, 1).expand(3, h, w)
    return (basis @ coef).permute(2, 0, 1).clamp(0, 1).to(image.dtype)


@dataclass
class ProductMaskConfig:
    """Masks of product photos on white (``product_mask``).

    Attributes:
        min_background: the border colour's every channel must be at least this (else "not on white").
        max_busy_border: at most this fraction of border pixels may differ from the background colour.
        chroma: colour (hue) distance from the background above which a pixel is the shoe (shadows are grey).
        dark: brightness ratio to the background below which a pixel is the shoe (shadows are lighter).
        weak: colour distance above which a pixel may be the shoe when it is enclosed by the shoe's edges, and
            below which the filled shape's rim (blur, a shadow just outside the outline) is background.
        faint: colour distance above which a pixel may join the shoe from it: in a column between two parts of the
            shoe, down to the contact line, or as a faint part (``grow_faint_parts``). Lower than ``weak``: in a photo
            exposed so that a white upper nearly clips to the background's white, most of it is only 0.01-0.02 from
            the background (``benchmarks/photo_lighting.py``, 5 shoes, 4% over-exposed: mask IoU 0.835 -> 0.890;
            plain tt320 / ttmix / tt48 0.9782 / 0.9782 / 0.9800 -> 0.9777 / 0.9778 / 0.9795).
        edge_low, edge_high: canny hysteresis thresholds (image gradient) of the outline edges: a white
            sole on a white floor is found by its sharp outline (soft shadows and faded reflections have none).
        shadow_chroma, shadow_dark: a grey (chroma below) pixel brighter than ``shadow_dark`` times the
            background may be shadow or reflection: peeled from below while it darkens towards the shoe.
        shadow_step: a soft shadow darkens by less than this (relative to the background) over 2 pixels; a larger
            fall towards the shoe is a sharp outline (a grey sole's lower edge) and stops the peel there.
        plateau_step, plateau_rows: a smaller fall than ``shadow_step`` stops the peel too where the ``plateau_rows``
            rows under it are flat (``sharp_fall``): a grey sole on the flat middle of its own shadow (front and back
            views) is only a little darker than the shadow. None (default): only ``shadow_step``. 0.035 measured
            mixed (mask IoU, 36 views each): a grey sole on its flat shadow 0.943 -> 0.977 (tt320 sku_00004), but
            JPEG's 8 x 8 blocks turn a soft shadow into flat steps that stop the peel too (ttmix sku_00008 0.981 ->
            0.976, tt320 sku_00018 0.977 -> 0.968).
        peel_width: peeled gaps narrower than this many columns between kept pixels of a row stay (a shadow under the
            shoe is as wide as the shoe; a column that the peel took through a grey sole between columns where it
            stopped is not).
        gap: breaks in the shoe's outline up to about twice this many pixels wide are closed before the holes are
            filled (``fill_enclosed``): where a soft shadow beside a white sole or toe cap darkens to the white's own
            brightness the outline has no edge for a few pixels, and through that break the whole white part (often
            with the white upper joined to it) would count as background. 0: only the ``kernel`` closing.
        kernel: closing kernel that joins edges and seeds. min_component: keep components with at least this
            fraction of the largest one's area (a pair of shoes, a detached heel tab).
        contact_step: a near-white band under the shoe (a white sole, a cream toe) joins the mask down to the
            contact line when it is at least this much brighter than that line (``extend_to_contact_line``).
        contact_reach: how far below the shoe's lowest pixel the band may reach, as a fraction of the shoe's height.
        grow, grow_contrast, grow_sharp, grow_radius: ``grow_faint_parts`` (near-white uppers with a broken outline)
            and its settings.
        grow_enclosed: a faint part with too few edges on its outline still joins when the shoe holds at least this
            fraction of its border (a white heel whose back meets the white background with no edge at all).
            None: the edges alone decide. 0.7 measured (mask IoU against exact alpha, 36 views each): tt320
            sku_00018 0.9766 -> 0.9824 (its view 24: 0.77 -> 0.96), tt48 sku_00047 0.9709 -> 0.9716, the other 86
            shoes of tt320, ttmix and tt48 unchanged.
        reference_size: when set, the pixel sizes here (kernel, grow_radius, the canny and shadow blurs) are for
            photos whose shorter side has this many pixels and grow with larger photos. None (default): as given;
            on synthetic 800 x 600 shop photos fixed sizes measured better (mask IoU 0.99 on a near-white shoe's
            four views where scaling from 240 lost one view's upper: 0.61; not yet looked into).
        uneven_border: when a smooth surface fitted to the border differs from the border's median colour by more
            than this somewhere, it is the background (``border_background``: a lightbox's vignette, light falling
            off towards the floor), else that one colour. Measured (mask IoU, 5 shoes x 36 views of tt320 re-lit with a
            vignette and a darker floor): 0.05 / 0.12 / 0.20 light fall-off at the corners 0.940 / 0.805 / 0.935
            with one colour, 0.972 / 0.972 / 0.973 with the surface (0.973 unlit); the plain white sets tt320,
            ttmix, tt48 0.9780 / 0.9782 / 0.9799 -> 0.9782 / 0.9782 / 0.9800. None: always one colour.
    """

    min_background: float = 0.75
    max_busy_border: float = 0.3
    chroma: float = 0.1
    dark: float = 0.62
    weak: float = 0.025
    faint: float = 0.012
    edge_low: float = 0.06
    edge_high: float = 0.14
    kernel: int = 3
    min_component: float = 0.2
    shadow_chroma: float = 0.06
    shadow_dark: float = 0.42
    shadow_step: float = 0.1
    peel_width: int = 5
    gap: int = 3
    plateau_step: float | None = None
    plateau_rows: int = 3
    contact_step: float = 0.08
    contact_reach: float = 0.4
    grow: bool = True
    grow_contrast: float = 0.5
    grow_sharp: float = 0.5
    grow_radius: int = 2
    grow_enclosed: float | None = 0.7
    reference_size: int | None = None
    uneven_border: float | None = 0.01


def product_mask(image: Tensor, cfg: ProductMaskConfig | None = None, path: object = "image") -> Tensor:
    """Foreground mask of one product photo on a white or near-white background, robust to soft shadows, floor
    reflections and white soles.

    The background comes from the photo's border: one colour, or a smooth surface where the light falls off
    (``border_background``). Seeds are pixels clearly unlike it (coloured, or much darker than a shadow gets); sharp
    outline edges (canny) joined to the seeds enclose what colour cannot tell apart (a white sole); the
    closed shape is hole-filled, across breaks of the outline narrower than ``2 * gap`` (``fill_enclosed``); a
    white sole with a soft outline is grown down to its contact line; faint parts
    with a broken but mostly sharp outline join (``grow_faint_parts``: a near-white upper on white); grey pixels
    that darken towards the shoe from below (shadow, reflection) are peeled off; small components are dropped.
    Pixel sizes are fixed unless ``ProductMaskConfig.reference_size`` is set.

    Args:
        image: (3, H, W) in [0, 1]. path: named in the error.
    Returns:
        (1, H, W) float mask in {0, 1}.
    Raises:
        BackgroundError: the border is not a plain near-white background.
    """
    import kornia

    cfg = cfg or ProductMaskConfig()
    bg, colour, busy = border_background(image, vary=cfg.uneven_border)
    if float(colour.min()) < cfg.min_background or busy > cfg.max_busy_border:
        raise BackgroundError(
            f"{path}: not on a white background (border colour {[round(float(c), 2) for c in colour]}, "
            f"{busy:.0%} of the border differs from it)")
    x = image[None]
    bgv = bg[None].clamp_min(1e-3)
    ratio = x / bgv                               # shading: a grey shadow scales all channels alike
    bright = ratio.mean(1, keepdim=True)
    chroma = (ratio - bright).abs().amax(1, keepdim=True)
    dist = (x - bgv).abs().amax(1, keepdim=True)
    seeds = ((chroma > cfg.chroma) | (bright < cfg.dark)).to(x.dtype)
    scale = 1.0 if cfg.reference_size is None else max(1.0, min(image.shape[-2:]) / cfg.reference_size)

    def px(n: float) -> int:  # a pixel size at the reference size -> at this photo's
        return max(1, int(n * scale + 0.5))

    sigma = 0.8 * scale
    edges = canny_edges(x, cfg.edge_low, cfg.edge_high, kernel_size=2 * px(1) + 1, sigma=sigma)
    weak = (dist > cfg.weak).to(x.dtype)
    faint = (dist > cfg.faint).to(x.dtype)
    k = x.new_ones(2 * px(cfg.kernel // 2) + 1, 2 * px(cfg.kernel // 2) + 1)
    # Edges count only where the pixel differs from the background at all (JPEG ringing on white does not).
    shape = morph.closing(torch.maximum(seeds, edges * morph.dilation(weak, k)), k)
    # A near-white part's outline has breaks (soft shadow beside it, a highlight): close them for the filling only.
    shape = fill_enclosed(shape, px(cfg.gap) if cfg.gap > 0 else 0)
    shape = keep_components(shape, cfg.min_component)
    # The filled shape's weak rim (blur, shadow just outside the outline) follows the colour distance; its inside
    # stays (a near-white part inside the outline is the shoe however faint).
    inner = morph.erosion(shape, x.new_ones(2 * px(2) + 1, 2 * px(2) + 1))
    shape = shape * torch.maximum(torch.maximum(weak, seeds), inner)
    # A white sole with a soft outline is neither a seed nor enclosed by edges: take it back column by column,
    # from the shoe's lowest pixel down to the contact line (the darkest row of what differs from the floor).
    shape = extend_to_contact_line(shape, faint, bright, cfg.contact_step, cfg.contact_reach)
    # A near-white upper on white has a faint, broken outline that the closing cannot join: take back the faint
    # parts that hang above the shoe and whose outline is sharp (a shadow's is soft).
    if cfg.grow:
        shape = grow_faint_parts(shape, dist, edges, cfg.faint, cfg.grow_contrast, cfg.grow_sharp, px(cfg.grow_radius),
                                 cfg.grow_enclosed)
    # Peel shadow and reflection: grey, not too dark pixels reachable from the bottom through such pixels,
    # darkening towards the shoe. A white sole is as grey, but brighter than the contact shadow under it; a grey
    # sole may be darker than that shadow, but its lower edge is a sharp step where a shadow darkens gently.
    grey = (chroma < cfg.shadow_chroma) & (bright > cfg.shadow_dark)
    smooth = kornia.filters.box_blur(bright, (2 * px(1) + 1, 1))
    step = sharp_fall(bright, px(2), cfg.shadow_step, PEEL_NOISE, cfg.plateau_step, px(cfg.plateau_rows))
    shape = peel_from_outside(shape, grey.to(x.dtype), smooth, PEEL_NOISE, outline=step, min_width=px(cfg.peel_width))
    shape = fill_holes(morph.opening(shape, k))
    return keep_components(shape, cfg.min_component)[0]


def grow_faint_parts(mask: Tensor, dist: Tensor, edges: Tensor, faint: float, contrast: float, sharp: float,
                     radius: int, enclosed: float | None = None) -> Tensor:
    """Binary masks (B, 1, H, W) plus the faint parts of the shoe connected to them (a near-white upper on white,
    whose outline is too broken for edges and closing to enclose).

    Candidates are pixels farther than ``faint`` from the background colour (``dist``: (B, 1, H, W)) that have mask
    pixels at or below them in their column (a shadow lies on the floor beside and under the shoe, a collar stands
    above its sole). Near the outside (within ``radius`` of a non-candidate pixel) a candidate must also be at least
    ``contrast`` times the largest distance within ``radius`` (the half-coverage point of an outline: the blur and
    JPEG halo beyond a dark shoe's outline is faint next to the shoe). The candidates connected to the mask join it,
    except connected parts whose outline (their pixels next to the outside) lies within ``radius`` of an ``edges``
    pixel for less than a ``sharp`` fraction: a shoe's outline is sharp, a shadow's soft; unless the mask holds them
    on at least an ``enclosed`` fraction of their border (``drop_soft_outlined``).

    >>> m = torch.zeros(1, 1, 12, 12); m[..., 8:11, 2:10] = 1                        # the sole, found
    >>> d = torch.zeros(1, 1, 12, 12); d[..., 3:8, 3:9] = 0.05; d[..., 8:11, 2:10] = 0.06  # a faint upper on it
    >>> e = torch.zeros(1, 1, 12, 12); e[..., 3, 3:9] = 1; e[..., 3:8, 3] = 1; e[..., 3:8, 8] = 1  # its outline
    >>> grow_faint_parts(m, d, e, 0.025, 0.5, 0.5, 1)[0, 0, 3:8, 3:9].sum().item()   # joins
    30.0
    >>> grow_faint_parts(m, d, e * 0, 0.025, 0.5, 0.5, 1)[0, 0, 3:8, 3:9].sum().item()   # no outline: a shadow
    0.0
    """
    cand = dist > faint
    local = F.max_pool2d(dist, 2 * radius + 1, 1, radius)
    inner = -F.max_pool2d(-cand.to(dist.dtype), 2 * radius + 1, 1, radius) > 0.5
    over = torch.cummax((mask > 0.5).flip(-2).to(torch.uint8), dim=-2).values.flip(-2).bool()
    cand = cand & over & (inner | (dist >= contrast * local))
    return drop_soft_outlined(mask, grow_into(mask, cand.to(mask.dtype)), edges, sharp, radius, enclosed)


def grow_into(mask: Tensor, candidate: Tensor) -> Tensor:
    """Binary masks (B, 1, H, W) plus the ``candidate`` pixels 8-connected to them through candidate pixels."""
    out = []
    for m, c in zip(mask, candidate):
        m, c = m[0].cpu().numpy() > 0.5, c[0].cpu().numpy() > 0.5
        labels, _ = ndimage.label(m | c, structure=np.ones((3, 3)))
        out.append(torch.from_numpy(np.isin(labels, np.unique(labels[m])) & (labels > 0)))
    return torch.stack(out)[:, None].to(mask)


def drop_soft_outlined(mask: Tensor, grown: Tensor, edges: Tensor, sharp: float, tolerance: int = 1,
                       enclosed: float | None = None) -> Tensor:
    """``grown`` (B, 1, H, W) without the connected parts it added to ``mask`` whose outline (their pixels next to the
    outside) lies within ``tolerance`` pixels of ``edges`` for less than a ``sharp`` fraction: a shoe's outline is
    sharp, a shadow's soft.

    With ``enclosed``, a part also stays when at least that fraction of its border pixels (next to the outside or to
    ``mask``) touch ``mask``: a white heel or collar on white has no edge where it meets the background, but the shoe
    holds it on most sides, where a shadow hangs off the shoe on one side and meets the floor on the others.

    >>> m = torch.zeros(1, 1, 10, 10); m[..., 1:9, 1] = m[..., 1, 1:9] = m[..., 8, 1:9] = 1   # the shoe, open right
    >>> g = m.clone(); g[..., 2:8, 2:9] = 1                                  # a white part in the opening, no edges
    >>> e = torch.zeros_like(m)
    >>> int(drop_soft_outlined(m, g, e, 0.5).sum() - m.sum())                 # no edges: dropped
    0
    >>> int(drop_soft_outlined(m, g, e, 0.5, 1, enclosed=0.6).sum() - m.sum())  # held on 3 sides: stays
    42
    """
    out = []
    for m, g, e in zip(mask, grown, edges):
        m, g, e = m[0].cpu().numpy() > 0.5, g[0].cpu().numpy() > 0.5, e[0].cpu().numpy() > 0.5
        added = g & ~m
        labels, n = ndimage.label(added, structure=np.ones((3, 3)))
        if n:
            rim = added & ndimage.binary_dilation(~g, np.ones((3, 3)))
            near = ndimage.binary_dilation(e, np.ones((2 * tolerance + 1,) * 2))
            idx = np.arange(1, n + 1)
            rim_px = ndimage.sum_labels(rim, labels, idx)
            soft = ndimage.sum_labels(near & rim, labels, idx) / np.maximum(rim_px, 1) < sharp
            if enclosed is not None:
                held = ndimage.sum_labels(added & ndimage.binary_dilation(m, np.ones((3, 3))), labels, idx)
                soft &= held < enclosed * np.maximum(held + rim_px, 1)
            g = g & ~np.isin(labels, idx[soft])
        out.append(torch.from_numpy(g))
    return torch.stack(out)[:, None].to(mask)


def fill_column_gaps(mask: Tensor, candidate: Tensor) -> Tensor:
    """Binary masks (B, 1, H, W) with each column's gaps between two mask pixels filled by the ``candidate`` pixels
    there, below the top third of the mask's rows (a white midsole between the upper and a dark outsole; the top
    third has real background gaps that blur makes unlike the background: between a pull tab and the collar)."""
    on = mask > 0.5
    above = torch.cummax(on.to(torch.uint8), dim=-2).values.bool()
    below = torch.cummax(on.flip(-2).to(torch.uint8), dim=-2).values.flip(-2).bool()
    rows = torch.arange(mask.shape[-2], device=mask.device).view(1, 1, -1, 1)
    top = torch.where(on.any(-1, keepdim=True), rows, mask.shape[-2]).amin(-2, keepdim=True)
    bottom = torch.where(on.any(-1, keepdim=True), rows, -1).amax(-2, keepdim=True)
    lower = 3 * rows >= 2 * top + bottom
    return (on | (above & below & lower & (candidate > 0.5))).to(mask.dtype)


def _grow_to_contact(mask: Tensor, candidate: Tensor, brightness: Tensor, step: float, reach: float) -> Tensor:
    """One (H, W) bool mask grown down each column to its contact line (``extend_to_contact_line``) -> (H, W) bool."""
    out = mask.clone()
    rows = torch.nonzero(mask.any(1)).flatten()
    if len(rows) == 0:
        return out
    height = mask.shape[0]
    limit = int(reach * (int(rows[-1]) - int(rows[0]) + 1)) + 1
    for x in torch.nonzero(mask.any(0)).flatten().tolist():
        lowest = int(torch.nonzero(mask[:, x]).flatten()[-1])
        end = lowest + 1
        while end < min(height, lowest + 1 + limit) and candidate[end, x]:
            end += 1
        if end == lowest + 1:
            continue
        run = brightness[lowest + 1:end, x]
        line = int(run.argmin())
        if float(run[:line + 1].max()) >= float(run[line]) + step:
            out[lowest + 1:lowest + 2 + line, x] = True
    return out


def extend_to_contact_line(mask: Tensor, candidate: Tensor, brightness: Tensor, step: float, reach: float) -> Tensor:
    """Grow binary masks (B, 1, H, W) over a white sole: fill each column's gaps between parts of the mask with the
    ``candidate`` pixels there, then grow downwards over a bright band that sits on a darker contact line.

    In each column where the mask has pixels, follow the ``candidate`` pixels (anything unlike the background)
    down from the mask's lowest pixel, at most ``reach`` x the mask's height; the darkest row of that run is the
    contact line between the shoe and the floor (the contact shadow is darkest there, the floor's shadow and
    reflection fade below it). When the run starts at least ``step`` brighter than that line (a white sole or a
    cream toe above the contact shadow), the pixels down to the line join the mask; a run that starts dark (the
    floor's shadow right under a coloured sole) adds nothing. A 3 x 3 closing then evens out single columns.

    >>> m = torch.zeros(1, 1, 8, 3); m[..., :3, :] = 1                  # the upper
    >>> b = torch.ones(1, 1, 8, 3); b[..., 3:5, :] = 0.93; b[..., 5, :] = 0.6; b[..., 6, :] = 0.8  # sole, contact, shadow
    >>> extend_to_contact_line(m, (b < 0.99).float(), b, 0.08, 1.0)[0, 0, :, 1].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    """
    mask = fill_column_gaps(mask, candidate)
    out = torch.stack([_grow_to_contact(m[0] > 0.5, c[0] > 0.5, b[0], step, reach)[None]
                       for m, c, b in zip(mask, candidate, brightness)]).to(mask.dtype)
    return torch.maximum(mask, morph.closing(out, out.new_ones(3, 3)))


def sharp_fall(brightness: Tensor, gap: int, step: float, flat: float, plateau_step: float | None = None,
               plateau: int = 3) -> Tensor:
    """Pixels (B, 1, H, W) bool at least ``step`` darker than the pixel ``gap`` rows below them and at most ``flat``
    brighter than the pixel above: the lower outline of something flat and darker than the floor under it (a grey
    sole). A soft shadow darkens towards the shoe by less than ``step`` over ``gap`` pixels; a steep one (a small
    photo, the half-covered pixel under a dark sole) keeps darkening above. brightness: (B, 1, H, W); rows beyond
    the image compare with the nearest row.

    With ``plateau_step``, a smaller fall of at least ``plateau_step`` also counts where the ``plateau`` rows below
    it stay within ``flat`` of the row ``gap`` below: a grey sole standing on the flat middle of its own shadow (a
    front or back view) is only a little darker than that shadow, but the step is sharp and nothing changes below
    it, where a soft shadow keeps brightening away from the shoe.

    >>> b = torch.tensor([0.6, 0.6, 0.6, 0.65, 0.65, 0.65, 0.65, 0.65]).view(1, 1, 8, 1)  # a sole on a flat shadow
    >>> sharp_fall(b, 2, 0.1, 0.03)[0, 0, :, 0].nonzero().flatten().tolist()
    []
    >>> sharp_fall(b, 2, 0.1, 0.03, plateau_step=0.035)[0, 0, :, 0].nonzero().flatten().tolist()
    [1, 2]
    """
    below = _shift_up(brightness, gap)
    above = torch.cat([brightness[..., :1, :], brightness[..., :-1, :]], dim=-2)
    fall = below - brightness
    sharp = fall >= step
    if plateau_step is not None:
        spread = torch.stack([(_shift_up(brightness, gap + k) - below).abs() for k in range(1, plateau + 1)]).amax(0)
        sharp = sharp | ((fall >= plateau_step) & (spread <= flat))
    return sharp & (above >= brightness - flat)


def _shift_up(x: Tensor, rows: int) -> Tensor:
    """(B, C, H, W) -> same: each pixel gets the value ``rows`` rows below it (the last row repeats past the image)."""
    rows = min(rows, x.shape[-2])
    return torch.cat([x[..., rows:, :], x[..., -1:, :].expand_as(x[..., :rows, :])], dim=-2)


PEEL_NOISE = 0.03  # brightness noise (JPEG) that the shadow peel counts as neither brighter nor darker


def peel_from_outside(mask: Tensor, peelable: Tensor, brightness: Tensor, tolerance: float = PEEL_NOISE,
                      outline: Tensor | None = None, min_width: int = 1) -> Tensor:
    """Remove from binary masks (B, 1, H, W) the floor's shadow and reflection: scanning each column up from the
    bottom row, through pixels that are outside the mask or ``peelable`` and no brighter than the darkest one
    passed so far (+ ``tolerance``), and not ``outline`` pixels of the mask (B, 1, H, W bool, e.g. ``sharp_fall``).
    A contact shadow darkens towards the shoe; a white sole is brighter than the shadow it stands in, a grey sole
    starts with a sharp step, so the scan stops at either. Peeled gaps narrower than ``min_width`` columns between
    kept pixels of a row stay: per-column scans that pass a sole in a few columns leave streaks, a shadow under the
    shoe is as wide as the shoe, and beyond its ends it has kept pixels on one side only.
    brightness: (B, 1, H, W) relative to the background.

    >>> m = torch.zeros(1, 1, 8, 5); m[..., :6, :] = 1                   # the mask takes in a shadow
    >>> b = torch.tensor([0.6, 0.6, 0.6, 0.86, 0.9, 0.95, 0.97, 1.0]).view(1, 1, 8, 1).expand(1, 1, 8, 5)
    >>> grey = torch.ones_like(m)                                         # a grey sole on a soft shadow
    >>> peel_from_outside(m, grey, b)[0, 0, :, 0].tolist()                # the sole is darker still: all peeled
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    >>> peel_from_outside(m, grey, b, outline=sharp_fall(b, 2, 0.1, 0.03))[0, 0, :, 0].tolist()  # its edge stops it
    [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    m = mask > 0.5
    free = ~m | (peelable > 0.5)
    if outline is not None:
        free = free & ~(m & outline)
    reached = torch.zeros_like(m)
    run = torch.ones_like(free[..., -1, :])
    darkest = torch.full_like(brightness[..., -1, :], float("inf"))
    for r in range(m.shape[-2] - 1, -1, -1):
        b = brightness[..., r, :]
        run = run & (free[..., r, :] & ((~m[..., r, :]) | (b <= darkest + tolerance)))
        darkest = torch.where(run, torch.minimum(darkest, b), darkest)
        reached[..., r, :] = run
    kept = (m & ~reached).to(mask.dtype)
    if min_width > 1:  # a gap narrower than min_width between kept pixels of a row is a streak: it stays
        kept = morph.closing(kept, kept.new_ones(1, min_width)) * m
    return kept


def keep_components(mask: Tensor, min_fraction: float) -> Tensor:
    """Keep the 8-connected components of binary masks (B, 1, H, W) with at least ``min_fraction`` of the largest's area."""
    out = []
    for m in mask:
        labels, n = ndimage.label(m[0].cpu().numpy() > 0.5, structure=np.ones((3, 3)))
        if n > 1:
            sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
            keep = np.flatnonzero(sizes >= min_fraction * sizes.max()) + 1
            labels = np.isin(labels, keep)
        out.append(torch.from_numpy(labels > 0))
    return torch.stack(out)[:, None].to(mask)


PHOTO_MASK_METHODS = ("product", "threshold")


def is_grayscale(image: Tensor, tolerance: float = 2 / 255) -> bool:
    """Whether a (3, H, W) image has (almost) equal channels everywhere (a grayscale photo read as RGB)."""
    return float((image - image.mean(0, keepdim=True)).abs().max()) <= tolerance


def photo_mask(
    image: Tensor,
    method: str = "product",
    background: Sequence[float] = (1.0, 1.0, 1.0),
    threshold: float = 0.08,
    kernel_size: int = 3,
    path: object = "image",
) -> Tensor:
    """The mask of a photo that came without one (no alpha, no mask file): the one entry point of the dataset and
    ``predict``, so training views and user photos are cut out alike.

    ``product`` (default): ``product_mask``, made for shop photos on white (soft contact shadows, floor
    reflections and white soles, where a plain threshold loses the sole or keeps the shadow).
    ``threshold``: ``threshold_mask`` against ``background`` (any plain background colour, no shadows); also what
    ``product`` does with a grayscale photo, where every pixel is as grey as a shadow.

    Args:
        image: (3, H, W) in [0, 1]. path: named in errors.
    Returns:
        (1, H, W) float mask in {0, 1}.
    Raises:
        BackgroundError: ``product`` on a photo whose border is not a plain near-white background.
    """
    if method == "product" and not is_grayscale(image):
        return product_mask(image, path=path)
    if method == "product":  # no colour at all: product_mask's shadow test (grey = maybe shadow) would peel the shoe
        return threshold_mask(image, background, threshold, kernel_size)
    if method == "threshold":
        return threshold_mask(image, background, threshold, kernel_size)
    raise ValueError(f"unknown photo mask method {method!r}; valid: {', '.join(PHOTO_MASK_METHODS)}")


def canny_edges(image: Tensor, low: float, high: float, kernel_size: int = 5, sigma: float = 1.0) -> Tensor:
    """Canny edges (B, 1, H, W) in {0, 1} of images (B, C, H, W): ``kornia.filters.canny`` with its hysteresis done
    by connected components.

    kornia grows the strong edges into the weak ones one 3 x 3 step at a time until nothing changes (140 steps on a
    1024 x 768 photo: 90% of an import, 5-16 CPU s a photo). Keeping every 8-connected component of weak edges
    that holds a strong pixel is the same set in one pass (tests/data/test_canny.py checks it against
    kornia's).

    >>> x = torch.zeros(1, 1, 16, 16); x[..., 4:12, 4:12] = 1
    >>> e = canny_edges(x, 0.1, 0.2)
    >>> bool(e[0, 0, 8, 3:5].any()), bool(e[0, 0, 8, 8])  # the square's outline, not its inside
    (True, False)
    """
    import kornia

    _, graded = kornia.filters.canny(image, low, high, kernel_size=kernel_size, sigma=(sigma, sigma), hysteresis=False)
    out = []
    for g in graded[:, 0].cpu().numpy():  # 0: none, 0.5: weak, 1: strong (kornia's labels)
        labels, n = ndimage.label(g > 0, structure=np.ones((3, 3), dtype=bool))
        keep = np.zeros(n + 1, dtype=bool)
        keep[np.unique(labels[g >= 1])] = True
        keep[0] = False
        out.append(torch.from_numpy(keep[labels]))
    return torch.stack(out)[:, None].to(device=image.device, dtype=image.dtype)
