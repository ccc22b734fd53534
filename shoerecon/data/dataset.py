"""A torch Dataset over a turntable folder (synthetic renders or real photos, same code).

Per shoe and view: read the image (any mode, any size), get its mask (file, alpha or threshold),
pad non-square images to a square on the background colour (the camera's fov grows to match),
resize to ``image_size``. The input view is additionally framed by ``prepare_input`` (as in predict).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from shoerecon.data.batch import TrainBatch
from shoerecon.data.layout import (
    DEFAULT_MAX_PIXELS,
    DataError,
    Rig,
    list_shoes,
    mask_files,
    read_image,
    read_mask,
    read_rig,
    read_splits,
    shoe_rig,
    view_files,
)
from shoerecon.data.masks import PHOTO_MASK_METHODS, BackgroundError, photo_mask
from shoerecon.data.preprocess import pad_to_square, prepare_input, resize
from shoerecon.render.cameras import params_after_padding, product_params

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


class TurntableDataset(torch.utils.data.Dataset):
    """Items of one split: the input view and ``num_target_views`` random target views of a shoe.

    Item dict: "shoe_id" str, "input" (3,H,W), "input_mask" (1,H,W), "input_camera" (4,) or (10,) (the
    rig camera of the uncropped view), "input_transform" (2,3) (grid coordinates of that camera's
    image -> the input's, see ``preprocess.crop_grid_affine``), "targets" (V,3,H,W), "target_masks" (V,1,H,W),
    "target_cameras" (V,4) (or (V,10): product cameras, when any shoe of the dataset has them), "target_views" (V,) long. Target views are drawn from a generator
    seeded by (seed, epoch, index): reproducible, different per item and per ``set_epoch``.
    """

    def __init__(self, cfg: DataConfig, split: str = "train", seed: int = 0) -> None:
        self.cfg, self.split, self.seed, self.epoch = cfg, split, seed, 0
        self.root = Path(cfg.root)
        rig_path = self.root / "rig.json"
        self.rig = read_rig(rig_path)
        shoes = list_shoes(self.root)
        if not shoes:
            raise DataError(f"{self.root}: no shoe folders (expected <shoe_id>/views/*.png)")
        splits = read_splits(self.root, shoes, cfg.split_fractions)
        if split not in splits and split != "all":
            raise ValueError(f"split must be one of {list(splits) + ['all']}, got {split!r}")
        ids = shoes if split == "all" else splits[split]
        self.bad: set[str] = set()
        self.rigs: dict[str, Rig] = {}
        self.shoe_ids = [s for s in ids if self._check_shoe(s)]
        if cfg.max_shoes is not None:
            self.shoe_ids = self.shoe_ids[: cfg.max_shoes]
        if not self.shoe_ids:
            raise DataError(f"{self.root}: split {split!r} has no usable shoes")
        self._unify_camera_params()
        from shoerecon.data.cache import open_cache

        if self.rig.is_product:  # the cache holds plain (V, 4) cameras: calibrated product cameras are read from the folder
            if cfg.cache == "require":
                raise DataError(f"{self.root}: data.cache is 'require' but the data cache cannot hold product-photo "
                                "cameras (crop/offset from cameras.json); use cache: auto or never")
            self.cache, self.cached = None, set()
        else:
            self.cache, self.cached = open_cache(cfg, self.shoe_ids)  # cached: the shoes read from the cache

    # ------------------------------------------------------------------ validation
    def _fail(self, shoe_id: str, err: DataError) -> None:
        if self.cfg.on_error == "raise":
            raise err
        if shoe_id not in self.bad:
            warnings.warn(f"skipping shoe {shoe_id!r}: {err}", stacklevel=3)
            self.bad.add(shoe_id)

    def _check_shoe(self, shoe_id: str) -> bool:
        try:
            rig = shoe_rig(self.root, shoe_id, self.rig)
            views = view_files(self.root / shoe_id, rig.num_views)
            masks = mask_files(self.root / shoe_id, rig.num_views)
            self.input_index(rig)
            if self.cfg.check_images:
                for i, v in enumerate(views):
                    load_view(v, None if masks is None else masks[i], self.cfg, rig.cameras[i])
        except DataError as e:
            self._fail(shoe_id, e)
            return False
        self.rigs[shoe_id] = rig
        return True

    def _unify_camera_params(self) -> None:
        """One camera tensor width per dataset so items collate: all (V, 4) unless a shoe has product cameras."""
        if any(r.is_product for r in self.rigs.values()) or self.rig.is_product:
            self.rig = Rig(product_params(self.rig.cameras), self.rig.input_view)
            self.rigs = {k: Rig(product_params(r.cameras), r.input_view) for k, r in self.rigs.items()}

    def input_index(self, rig: Rig) -> int:
        i = rig.input_view if self.cfg.input_view is None else self.cfg.input_view
        if not 0 <= i < rig.num_views:
            raise DataError(f"{self.root}: input_view {i} is outside the rig's {rig.num_views} views")
        return i

    # ------------------------------------------------------------------ loading
    def set_epoch(self, epoch: int) -> None:
        """Draw other target views next epoch (still reproducible)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.shoe_ids)

    def _views(self, shoe_id: str, indices: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
        """Views resized to image_size: images (V,3,S,S), masks (V,1,S,S), cameras (V,4) (cache or folder)."""
        if shoe_id in self.cached:
            v = self.cache.views(shoe_id, indices)
            return v.images, v.masks, v.cameras
        return read_views(self.root, shoe_id, self.rigs[shoe_id], indices, self.cfg)

    def _input(self, shoe_id: str, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The prepared input view (``read_input``), from the cache when it holds it."""
        if shoe_id in self.cached and index == self.input_index(self.rigs[shoe_id]):
            return self.cache.input(shoe_id)
        return read_input(self.root, shoe_id, self.rigs[shoe_id], index, self.cfg)

    def sample_targets(self, index: int, num_views: int, input_view: int) -> Tensor:
        """(V,) long target views of item ``index``, from a generator seeded by (seed, epoch, index)."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        pool = [v for v in range(num_views) if not (self.cfg.exclude_input_from_targets and v == input_view)]
        k = self.cfg.num_target_views
        if k > len(pool):
            raise ValueError(f"num_target_views={k} but only {len(pool)} views are available")
        return torch.as_tensor(np.sort(rng.choice(pool, size=k, replace=False)), dtype=torch.long)

    def __getitem__(self, index: int) -> TrainBatch:
        for attempt in range(len(self.shoe_ids)):
            shoe_id = self.shoe_ids[(index + attempt) % len(self.shoe_ids)]
            if shoe_id in self.bad:
                continue
            try:
                return self._item(index, shoe_id)
            except DataError as e:
                self._fail(shoe_id, e)
        raise DataError(f"{self.root}: every shoe of split {self.split!r} failed to load")

    def _item(self, index: int, shoe_id: str) -> TrainBatch:
        rig = self.rigs[shoe_id]
        input_view = self.input_index(rig)
        targets = self.sample_targets(index, rig.num_views, input_view)
        inp, inp_mask, inp_cam, inp_transform = self._input(shoe_id, input_view)
        imgs, masks, cams = self._views(shoe_id, targets.tolist())
        return TrainBatch(input=inp, input_mask=inp_mask, input_camera=inp_cam, input_transform=inp_transform,
                          targets=imgs, target_masks=masks, target_cameras=cams, target_views=targets,
                          shoe_id=shoe_id)

    def load_shoe(self, shoe_id: str, views: Sequence[int] | None = None) -> dict:
        """Every (or the given) view of a shoe, for evaluation.

        Returns: "shoe_id", "images" (V,3,S,S), "masks" (V,1,S,S), "cameras" (V,4), "views" (V,) long,
        "input"/"input_mask"/"input_camera" (the prepared input view), "mesh_path" (str or None).
        """
        if shoe_id not in self.rigs:
            if shoe_id in self.bad:
                raise DataError(f"{self.root / shoe_id}: this shoe was skipped because it is broken")
            if not (self.root / shoe_id / "views").is_dir():
                raise DataError(f"{self.root / shoe_id}: no such shoe (no views/ folder)")
            self._check_shoe(shoe_id)
            self._unify_camera_params()
        rig = self.rigs[shoe_id]
        idx = list(range(rig.num_views)) if views is None else [int(v) for v in views]
        bad = [v for v in idx if not 0 <= v < rig.num_views]
        if bad:
            raise DataError(f"{self.root / shoe_id}: views {bad} outside the rig's {rig.num_views} views")
        imgs, masks, cams = self._views(shoe_id, idx)
        inp, inp_mask, inp_cam, inp_transform = self._input(shoe_id, self.input_index(rig))
        mesh = self.root / shoe_id / "mesh.glb"
        return {
            "shoe_id": shoe_id, "images": imgs, "masks": masks, "cameras": cams,
            "views": torch.as_tensor(idx, dtype=torch.long), "input": inp, "input_mask": inp_mask,
            "input_camera": inp_cam, "input_transform": inp_transform,
            "mesh_path": str(mesh) if mesh.exists() else None,
        }
