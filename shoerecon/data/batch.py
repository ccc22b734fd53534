"""The training batch: one typed structure from the dataset through augmentation, the losses and the trainer.

``TrainBatch`` is a dataclass with the shapes documented below; ``TurntableDataset`` returns one per shoe (no
leading B), the DataLoader's default collate stacks them into one (torch collates mutable mappings by copying
the first item and updating its fields). It is also a mutable mapping over its fields (``batch["input"]`` is
``batch.input``), so code and tests written against the plain-dict batch keep working; unknown keys are errors.
``TurntableShoe`` is the same structure for every view of one shoe (evaluation), with the shoe's mesh file.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Union

import torch
from torch import Tensor


@dataclass
class TrainBatch(MutableMapping):
    """A batch of B shoes, each with its input view and V target views (an item: the same without B).

    Attributes:
        input: (B, 3, H, W) the framed input view in [0, 1] (augmented when ``augment.enabled``).
        input_mask: (B, 1, H, W) its mask in [0, 1].
        input_camera: (B, 4) the input view's camera (azimuth, elevation, distance, fov).
        input_transform: (B, 2, 3) affine map from the input camera's image grid to the network input's grid
            (the framing crop, composed with augmentation).
        targets: (B, V, 3, H, W) target views in [0, 1]. target_masks: (B, V, 1, H, W).
        target_cameras: (B, V, 4). target_views: (B, V) long, their indices in the rig.
        shoe_id: B shoe ids (one str for an item).
    """

    input: Tensor
    input_mask: Tensor
    input_camera: Tensor
    input_transform: Tensor
    targets: Tensor
    target_masks: Tensor
    target_cameras: Tensor
    target_views: Tensor
    shoe_id: Union[str, list[str], None] = None

    # ---------------------------------------------------------------- mapping view of the fields
    def _check_key(self, key: str) -> None:
        if key not in _field_names(type(self)):
            raise KeyError(f"{type(self).__name__} has no field {key!r}; fields: {', '.join(_field_names(type(self)))}")

    def __getitem__(self, key: str) -> Any:
        self._check_key(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_key(key)
        setattr(self, key, value)

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"{type(self).__name__} fields cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(_field_names(type(self)))

    def __len__(self) -> int:
        return len(_field_names(type(self)))

    def to(self, device: Optional[Union[str, torch.device]] = None, non_blocking: bool = False) -> "TrainBatch":
        """A copy with every tensor on ``device``."""
        moved = {k: v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v for k, v in self.items()}
        return dataclasses.replace(self, **moved)

    def copy(self) -> "TrainBatch":
        return copy.copy(self)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@dataclass
class TurntableShoe(TrainBatch):
    """Every (or the asked) view of one shoe, for evaluation (``TurntableDataset.load_shoe``): a TrainBatch item
    (no leading B) whose V target views are the asked views in their order, plus the shoe's ground-truth mesh.

    Attributes:
        TrainBatch's (``targets`` (V, 3, H, W), ``target_masks`` (V, 1, H, W), ``target_cameras`` (V, 4 or 10),
        ``target_views`` (V,) long, the prepared ``input`` view ...), and
        mesh_path: the shoe's mesh.glb (str) or None.
    """

    mesh_path: Optional[str] = None


__all__ = ["TrainBatch", "TurntableShoe"]
