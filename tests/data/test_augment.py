import pytest
import torch

from shoerecon.data.augment import AugmentConfig, InputAugment, augment_input_batch

S = 32


def square_scene(batch=4, side=8, colour=(0.8, 0.2, 0.1)):
    """A coloured square centred on white, and its mask."""
    mask = torch.zeros(batch, 1, S, S)
    lo = (S - side) // 2
    mask[:, :, lo : lo + side, lo : lo + side] = 1
    c = torch.tensor(colour).view(1, 3, 1, 1)
    image = 1 + mask * (c - 1)
    return image, mask


def make(**kw):
    return InputAugment(AugmentConfig(enabled=True, **kw)).train()


def test_off_is_identity():
    image, mask = square_scene()
    out = InputAugment(AugmentConfig(enabled=False)).train()(image, mask)
    assert out[0] is image and out[1] is mask
    out = make().eval()(image, mask)  # evaluation mode never augments
    assert out[0] is image and out[1] is mask


def test_shapes_and_range():
    image, mask = square_scene()
    out, out_mask = make()(image, mask, generator=torch.Generator().manual_seed(1))
    assert out.shape == image.shape and out_mask.shape == mask.shape
    assert out.dtype == image.dtype
    assert out.min() >= 0 and out.max() <= 1 and out_mask.min() >= 0 and out_mask.max() <= 1 + 1e-6


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_image_and_mask_move_together(p):
    """Without colour jitter, image = white + mask * (colour - white) must hold after the warp as before it,
    also when only some samples are transformed (p < 1)."""
    image, mask = square_scene(batch=8)
    aug = make(brightness=0, contrast=0, saturation=0, hue=0, p=p)
    out, out_mask = aug(image, mask, generator=torch.Generator().manual_seed(2))
    c = torch.tensor((0.8, 0.2, 0.1)).view(1, 3, 1, 1)
    assert torch.allclose(out, 1 + out_mask * (c - 1), atol=1e-5)
    moved = ~torch.isclose(out_mask, mask).flatten(1).all(1)
    assert moved.any()
    if p < 1:
        assert not moved.all()  # some samples kept as they were


def test_background_stays_white():
    image, mask = square_scene()
    out, out_mask = make(brightness=0.5, contrast=0.5)(image, mask, generator=torch.Generator().manual_seed(3))
    background = (out_mask < 1e-6).expand_as(out)
    assert background.any()
    assert torch.allclose(out[background], torch.ones(()), atol=1e-6)
    shoe = (out_mask > 0.999).expand_as(out)
    assert (out[shoe] < 0.99).any()  # the shoe is not white


def test_affine_within_configured_ranges():
    """Area ratio within scale^2 bounds and centroid shift within the translate bound, over many draws."""
    image, mask = square_scene(batch=64)
    aug = make(scale=(0.8, 1.2), translate=0.1)
    _, out_mask = aug(image, mask, generator=torch.Generator().manual_seed(4))
    area = out_mask.sum((1, 2, 3)) / mask.sum((1, 2, 3))
    assert area.min() > 0.8**2 - 0.05 and area.max() < 1.2**2 + 0.05
    assert area.max() - area.min() > 0.3  # scales do vary
    ys, xs = torch.meshgrid(torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij")
    cx = (out_mask[:, 0] * xs).sum((1, 2)) / out_mask[:, 0].sum((1, 2))
    cy = (out_mask[:, 0] * ys).sum((1, 2)) / out_mask[:, 0].sum((1, 2))
    centre = (S - 1) / 2
    assert (cx - centre).abs().max() <= 0.1 * S + 0.5 and (cy - centre).abs().max() <= 0.1 * S + 0.5
    assert (cx - centre).abs().max() > 1.0  # shifts do happen


def test_deterministic_under_generator_and_global_rng_untouched():
    image, mask = square_scene()
    aug = make()
    torch.manual_seed(123)
    a = aug(image, mask, generator=torch.Generator().manual_seed(7))
    after_a = torch.rand(3)
    torch.manual_seed(123)
    b = aug(image, mask, generator=torch.Generator().manual_seed(7))
    after_b = torch.rand(3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(after_a, expected) and torch.equal(after_b, expected)
    c = aug(image, mask, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(a[0], c[0])


def test_batch_helper_touches_the_input_only():
    image, mask = square_scene(batch=2)
    targets, camera = torch.rand(2, 3, 3, S, S), torch.zeros(2, 4)
    batch = {"input": image, "input_mask": mask, "targets": targets, "input_camera": camera}
    out = augment_input_batch(batch, make(), generator=torch.Generator().manual_seed(0))
    assert out["targets"] is batch["targets"] and out["input_camera"] is batch["input_camera"]
    assert not torch.equal(out["input"], image)
    assert batch["input"] is image  # the original dict is not modified


def test_bad_config_errors():
    with pytest.raises(ValueError, match="augment.scale"):
        InputAugment(AugmentConfig(scale=(1.2, 0.8)))
    with pytest.raises(ValueError, match="mask"):
        make()(torch.ones(2, 3, S, S), torch.ones(2, 1, S + 1, S))


def _blob(center_grid: torch.Tensor, size: int, sigma: float = 0.04) -> torch.Tensor:
    """(1, 1, size, size) Gaussian blob centred at grid coordinates (x, y) (align_corners=False)."""
    coords = (2 * torch.arange(size) + 1) / size - 1
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    return torch.exp(-((xx - center_grid[0]) ** 2 + (yy - center_grid[1]) ** 2) / (2 * sigma**2))[None, None]


def _centroid_grid(weight: torch.Tensor) -> torch.Tensor:
    size = weight.shape[-1]
    coords = (2 * torch.arange(size) + 1) / size - 1
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    w = weight[0, 0]
    return torch.stack([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


def test_input_transform_follows_the_affine_draw():
    """A point at grid g of the camera's image shows up at input_transform @ g in the augmented input."""
    from shoerecon.data.preprocess import crop_grid_affine

    size, point = 64, torch.tensor([0.3, -0.2])
    crop = crop_grid_affine(top=8, left=4, side=48, height=size, width=size)
    blob_in_input = _blob(crop[:, :2] @ point + crop[:, 2], size)  # the dataset's crop already applied
    batch = {"input": (1 - blob_in_input).expand(2, 3, size, size).clone(),
             "input_mask": (blob_in_input > 0.05).float().expand(2, 1, size, size).clone(),
             "input_transform": crop.expand(2, 2, 3).clone()}
    aug = InputAugment(AugmentConfig(enabled=True, brightness=0, contrast=0, saturation=0, hue=0)).train()
    out = augment_input_batch(batch, aug, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(out["input_transform"], batch["input_transform"])
    for i in range(2):
        expected = out["input_transform"][i, :, :2] @ point + out["input_transform"][i, :, 2]
        seen = _centroid_grid(1 - out["input"][i:i + 1, :1])
        assert torch.allclose(seen, expected, atol=1.5 / size), (seen, expected)
