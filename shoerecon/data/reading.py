"""A turntable folder's files -> tensors: one view (image, mask, camera) resized to ``data.image_size``, and the
prepared input view. The dataset (``data/dataset.py``) and the view cache (``data/cache.py``) both read through
these functions (so neither imports the other's module to reach them).

Per view: read the image (any mode, any size), get its mask (file, alpha or threshold), pad non-square images to
a square on the background colour (the camera's fov grows to match), resize to ``image_size``. The input view is
additionally framed by ``prepare_input`` (as in predict).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from shoerecon.data.layout import DEFAULT_MAX_PIXELS, DataError, Rig, mask_files, read_image, read_mask, view_files
from shoerecon.data.masks import PHOTO_MASK_METHODS, BackgroundError, photo_mask
from shoerecon.data.preprocess import pad_to_square, prepare_input, resize
from shoerecon.render.cameras import params_after_padding

MASK_SOURCES = ("auto", "file", "alpha", "threshold")


@dataclass
class DataConfig:
    """Where the data is and how a sample is built.

    Attributes:
        root: dataset folder (DESIGN layout). image_size: side of every returned image.
        num_target_views: V target views sampled per item (without replacement).
        input_view: view index used as input; None = rig.json's ``input_view``.
        center_input: frame the input view with ``prepare_input`` (crop to mask, centre, scale to
            ``input_fill``, pad), exactly as predict does; else it is resized like the targets.
        mask_source: auto (mask file, else alpha unless opaque everywhere, else threshold) | file | alpha | threshold.
        mask_method: how a photo without alpha or mask file is cut out (``masks.photo_mask``): product (shop
            photos on white: survives contact shadows, floor reflections and white soles) | threshold.
        mask_threshold / mask_kernel: background distance and morphology kernel of threshold masks.
        min_mask_fraction: a view whose mask covers less of the image is an "empty mask" error.
        on_error: raise | skip (a broken shoe is skipped with one warning).
        background: RGB of the photos' background (white).
        exclude_input_from_targets: never sample the input view as a target.
        split_fractions: train/val/test fractions of the hash split used when splits.json is absent.
        check_images: decode every image when the dataset is built (finds corrupt files up front).
        max_shoes: use only the first N shoes of the split (quick runs).
        max_pixels: images with more pixels are a data error before decoding (decompression bombs).
        cache: read views from the ``shoerecon cache`` arrays (``data/cache.py``): auto (when present and up to
            date; stale shoes are read from the folder, with a warning) | never | require (missing/stale: error).
        cache_dir: the cache folder; None: ``<root>/.shoerecon_cache/s<image_size>``.
    """

    root: str = "data/synthetic"
    image_size: int = 64
    num_target_views: int = 4
    input_view: int | None = None
    center_input: bool = True
    input_fill: float = 0.9
    mask_source: str = "auto"
    mask_method: str = "product"
    mask_threshold: float = 0.08
    mask_kernel: int = 3
    min_mask_fraction: float = 1e-3
    on_error: str = "raise"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exclude_input_from_targets: bool = False
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    check_images: bool = False
    max_shoes: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    cache: str = "auto"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.cache not in ("auto", "never", "require"):
            raise ValueError(f"DataConfig.cache must be one of ('auto', 'never', 'require'), got {self.cache!r}")
        if self.mask_source not in MASK_SOURCES:
            raise ValueError(f"DataConfig.mask_source must be one of {MASK_SOURCES}, got {self.mask_source!r}")
        if self.mask_method not in PHOTO_MASK_METHODS:
            raise ValueError(f"DataConfig.mask_method must be one of {PHOTO_MASK_METHODS}, got {self.mask_method!r}")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"DataConfig.on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if not 0 < self.input_fill <= 1:
            raise ValueError(f"DataConfig.input_fill must be in (0, 1], got {self.input_fill}")


def load_view(path: Path, mask_path: Path | None, cfg: DataConfig, camera: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One view at full resolution, square: image (3, S, S), mask (1, S, S), camera (4,) with the padded fov
    (or (10,) product camera with the padded crop, ``cameras.params_after_padding``).

    Errors (``DataError``) name the file: unreadable image, mask of another size, empty mask.
    """
    rgb, alpha = read_image(path, cfg.max_pixels)
    h, w = rgb.shape[-2:]
    bg = rgb.new_tensor(cfg.background).view(3, 1, 1)
    if alpha is not None:  # straight alpha: composite on the background like a photo on white
        rgb = rgb * alpha + bg * (1 - alpha)
    source = cfg.mask_source
    if source == "auto":
        # An alpha that is opaque everywhere (a photo saved as RGBA) carries no mask: threshold instead.
        has_mask_alpha = alpha is not None and float(alpha.min()) <= 0.99
        source = "file" if mask_path is not None else "alpha" if has_mask_alpha else "threshold"
    if source == "file":
        if mask_path is None:
            raise DataError(f"{path}: mask_source='file' but the shoe has no masks/ folder")
        mask = read_mask(mask_path, (h, w), cfg.max_pixels)
    elif source == "alpha":
        if alpha is None:
            raise DataError(f"{path}: mask_source='alpha' but the image has no alpha channel")
        mask = alpha
    else:
        mask = cut_out(rgb, cfg, path)
    if float((mask > 0.5).float().mean()) < cfg.min_mask_fraction:
        where = mask_path if source == "file" else path
        raise DataError(f"{where}: empty mask (foreground covers < {cfg.min_mask_fraction:.1%} of the image, source={source})")
    camera = params_after_padding(camera, h, w)
    return pad_to_square(rgb, cfg.background), pad_to_square(mask, 0.0), camera


def cut_out(rgb: Tensor, cfg: DataConfig, path: object) -> Tensor:
    """``masks.photo_mask`` of a (3, H, W) photo with ``cfg``'s method -> (1, H, W); a photo that is not on a plain
    white background is a ``DataError`` naming the file (give it an alpha channel or a mask file instead)."""
    try:
        return photo_mask(rgb, cfg.mask_method, cfg.background, cfg.mask_threshold, cfg.mask_kernel, path)
    except BackgroundError as e:
        raise DataError(f"{e}; give the photo an alpha channel or a mask file, or set data.mask_method: threshold "
                        f"with data.background") from e


def read_views(root: Path, shoe_id: str, rig: Rig, indices: Sequence[int], cfg: DataConfig
               ) -> tuple[Tensor, Tensor, Tensor]:
    """Views of a shoe folder resized to image_size: images (V,3,S,S), masks (V,1,S,S), cameras (V,4)."""
    views = view_files(root / shoe_id, rig.num_views)
    masks = mask_files(root / shoe_id, rig.num_views)
    out = [_load_resized(views[i], None if masks is None else masks[i], rig.cameras[i], cfg) for i in indices]
    return tuple(torch.stack(t) for t in zip(*out))  # type: ignore[return-value]


def _load_resized(path: Path, mask_path: Path | None, camera: Tensor, cfg: DataConfig):
    img, mask, cam = load_view(path, mask_path, cfg, camera)
    return resize(img, cfg.image_size), resize(mask, cfg.image_size), cam


def read_input(root: Path, shoe_id: str, rig: Rig, index: int, cfg: DataConfig
               ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The prepared input view of a shoe folder: image (3,S,S), mask (1,S,S), camera (4,), and the (2,3) grid
    affine from the camera's image to the prepared image (identity without ``center_input``)."""
    views = view_files(root / shoe_id, rig.num_views)
    masks = mask_files(root / shoe_id, rig.num_views)
    path, mask_path = views[index], None if masks is None else masks[index]
    if not cfg.center_input:
        return (*_load_resized(path, mask_path, rig.cameras[index], cfg), torch.eye(2, 3))
    img, mask, cam = load_view(path, mask_path, cfg, rig.cameras[index])
    img, mask, transform = prepare_input(img, mask, cfg.image_size, cfg.input_fill, cfg.background,
                                         return_transform=True)
    return img, mask, cam, transform


__all__ = ["MASK_SOURCES", "DataConfig", "load_view", "cut_out", "read_views", "read_input"]
