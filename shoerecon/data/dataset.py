"""A torch Dataset over a turntable folder (synthetic renders or real photos, same code).

Reading one view into tensors (masks, padding, resizing, input framing) is ``data/reading.py`` (``DataConfig``,
``load_view``, ``read_views``, ``read_input`` are re-exported here); decoded views may come from the cache
(``data/cache.py``).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from shoerecon.data.batch import TrainBatch, TurntableShoe
from shoerecon.data.layout import DataError, Rig, list_shoes, mask_files, read_rig, read_splits, shoe_rig, view_files
from shoerecon.data.cache import open_cache
from shoerecon.data.reading import MASK_SOURCES, DataConfig, cut_out, load_view, read_input, read_views  # noqa: F401 (API)


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
        # cached: the shoes read from the cache
        self.cache, self.cached = open_cache(cfg, self.shoe_ids, camera_params=self.rig.cameras.shape[-1])

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
            self.rig = self.rig.as_product()
            self.rigs = {k: r.as_product() for k, r in self.rigs.items()}

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
        """Views resized to image_size: images (V,3,S,S), masks (V,1,S,S), cameras (V,4) or (V,10) (cache or folder)."""
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

    def load_shoe(self, shoe_id: str, views: Sequence[int] | None = None) -> TurntableShoe:
        """Every (or the given) view of a shoe, for evaluation.

        Returns: a ``TurntableShoe`` (TrainBatch's names): ``targets`` (V,3,S,S), ``target_masks`` (V,1,S,S),
        ``target_cameras`` (V,4 or 10), ``target_views`` (V,) long, the prepared ``input`` / ``input_mask`` /
        ``input_camera`` / ``input_transform``, ``shoe_id`` and ``mesh_path`` (str or None).
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
        return TurntableShoe(input=inp, input_mask=inp_mask, input_camera=inp_cam, input_transform=inp_transform,
                             targets=imgs, target_masks=masks, target_cameras=cams,
                             target_views=torch.as_tensor(idx, dtype=torch.long), shoe_id=shoe_id,
                             mesh_path=str(mesh) if mesh.exists() else None)
