"""TrainBatch: the dataset's items, collated batches and augmented batches are one typed structure."""
import pytest
import torch
from torch.utils.data import DataLoader

from shoerecon.data import DataConfig, TurntableDataset
from shoerecon.data.augment import AugmentConfig, InputAugment, augment_input_batch
from shoerecon.data.batch import TrainBatch, TurntableShoe


def test_items_collate_into_a_typed_batch(tiny_dataset):
    ds = TurntableDataset(DataConfig(root=str(tiny_dataset), image_size=24, num_target_views=2), split="all", seed=1)
    item = ds[0]
    assert isinstance(item, TrainBatch) and item.input is item["input"] and item.shoe_id == "shoe_00000"
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert isinstance(batch, TrainBatch)
    assert batch.input.shape == (2, 3, 24, 24) and batch.targets.shape == (2, 2, 3, 24, 24)
    assert batch.target_cameras.shape == (2, 2, 4) and batch.input_transform.shape == (2, 2, 3)
    assert batch.shoe_id == ["shoe_00000", "shoe_00001"]
    torch.testing.assert_close(batch.input[1], ds[1].input)  # collation stacks, nothing else
    moved = batch.to("cpu")
    assert isinstance(moved, TrainBatch) and moved is not batch and torch.equal(moved.targets, batch.targets)

    augment = InputAugment(AugmentConfig(enabled=True)).train()
    out = augment_input_batch(batch, augment, torch.Generator().manual_seed(0))
    assert isinstance(out, TrainBatch) and out.targets is batch.targets  # targets untouched, input replaced
    assert out.input is not batch.input and batch.input is batch["input"]  # the original is not modified


def test_mapping_access_is_limited_to_the_fields():
    b = TrainBatch(*(torch.zeros(1) for _ in range(8)))
    assert set(b) == {"input", "input_mask", "input_camera", "input_transform", "targets", "target_masks",
                      "target_cameras", "target_views", "shoe_id"}
    assert b.get("input_camera") is b.input_camera and "targets" in b
    b["input"] = torch.ones(1)
    assert b.input.item() == 1.0
    with pytest.raises(KeyError, match="no field 'images'.*fields: input, input_mask"):
        b["images"]
    with pytest.raises(KeyError, match="no field"):
        b["inptu"] = torch.ones(1)


def test_load_shoe_gives_the_batch_names_for_every_asked_view(tiny_dataset):
    ds = TurntableDataset(DataConfig(root=str(tiny_dataset), image_size=24), split="all")
    shoe = ds.load_shoe("shoe_00001", views=[3, 1])
    assert isinstance(shoe, TurntableShoe) and isinstance(shoe, TrainBatch)
    assert shoe.target_views.tolist() == [3, 1] and shoe.targets.shape == (2, 3, 24, 24)
    assert shoe.target_masks.shape == (2, 1, 24, 24) and shoe.target_cameras.shape == (2, 4)
    assert shoe.input.shape == (3, 24, 24) and shoe.shoe_id == "shoe_00001" and shoe.mesh_path.endswith("mesh.glb")
    item_names = set(ds[0])
    assert set(shoe) == item_names | {"mesh_path"}  # the training item's names, plus the mesh
    with pytest.raises(KeyError, match="TurntableShoe has no field 'images'"):
        shoe["images"]
    torch.testing.assert_close(shoe.targets[0], ds.load_shoe("shoe_00001", views=[3]).targets[0])
