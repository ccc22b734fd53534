import numpy as np
import pytest
import torch

from shoerecon.data.masks import threshold_mask
from shoerecon.data.preprocess import crop_square, mask_bbox, pad_to_square, prepare_input, resize
from shoerecon.render.cameras import fov_after_padding


def _blob(h=40, w=60, top=10, left=15, bh=12, bw=30, colour=(0.2, 0.4, 0.6)):
    img = torch.ones(3, h, w)
    img[:, top : top + bh, left : left + bw] = torch.tensor(colour).view(3, 1, 1)
    return img


def test_pad_to_square_keeps_content_centred_on_background():
    img = torch.rand(3, 5, 9)
    out = pad_to_square(img, (0.1, 0.2, 0.3))
    assert out.shape == (3, 9, 9)
    assert torch.equal(out[:, 2:7], img)
    assert torch.allclose(out[:, :2], torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1).expand(3, 2, 9))
    assert torch.equal(pad_to_square(img.transpose(1, 2), 1.0)[:, :, 2:7], img.transpose(1, 2))


def test_padding_with_fov_after_padding_matches_a_square_render():
    """Oracle: a non-square render padded to square == a square render with the adjusted fov."""
    pytest.importorskip("shoerecon.render.renderer")
    from shoerecon.data.synthetic import ShoeParams, SynthConfig, shoe_mesh
    from shoerecon.render.cameras import Cameras
    from shoerecon.render.renderer import Renderer, RendererConfig

    mesh = shoe_mesh(ShoeParams.mean(), SynthConfig(edge_length=0.06), textured=False)
    cam = torch.tensor([[[20.0, 10.0, 2.2, 30.0]]])
    wide = Renderer(RendererConfig(image_size=(36, 48), faces_per_pixel=1, blend="hard"))(mesh.verts[None], mesh.faces, Cameras.from_tensor(cam))[0, 0]
    cam_sq = cam.clone()
    cam_sq[..., 3] = fov_after_padding(30.0, 36, 48)
    square = Renderer(RendererConfig(image_size=48, faces_per_pixel=1, blend="hard"))(mesh.verts[None], mesh.faces, Cameras.from_tensor(cam_sq))[0, 0]
    padded = pad_to_square(wide[3:], 0.0)
    disagree = (padded != square[3:]).float().mean().item()
    assert disagree < 0.005
    wrong = Renderer(RendererConfig(image_size=48, faces_per_pixel=1, blend="hard"))(mesh.verts[None], mesh.faces, Cameras.from_tensor(cam))[0, 0]
    assert (padded != wrong[3:]).float().mean().item() > 5 * max(disagree, 1e-3)


def test_prepare_input_centres_and_scales():
    out, m = prepare_input(_blob(), size=32, fill=0.8)
    r0, r1, c0, c1 = mask_bbox(m)
    assert abs((c1 - c0) - 0.8 * 32) <= 1 and abs((c0 + c1) / 2 - 16) <= 1 and abs((r0 + r1) / 2 - 16) <= 1
    assert torch.allclose(out[:, 0, 0], torch.ones(3))
    assert torch.allclose(out[:, 16, 16], torch.tensor([0.2, 0.4, 0.6]), atol=1e-5)


def test_prepare_input_is_translation_invariant():
    """Property: where the shoe sits in the photo does not change what the network sees."""
    a = prepare_input(_blob(top=3, left=2), size=24)
    for top, left in [(20, 25), (10, 15), (28, 30)]:
        b = prepare_input(_blob(top=top, left=left), size=24)
        assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)


def test_prepare_input_handles_shoes_touching_the_border_and_given_masks():
    img = _blob(top=0, left=0, bh=10, bw=60)
    mask = torch.zeros(1, 40, 60)
    mask[:, 0:10, 0:60] = 1
    out, m = prepare_input(img, mask, size=20, fill=1.0)
    assert m.sum().item() == pytest.approx(20 * 20 * 10 / 60, rel=0.15)
    with pytest.raises(ValueError, match="empty"):
        prepare_input(img, torch.zeros(1, 40, 60))


def test_crop_square_pads_outside_with_value():
    img = torch.arange(16.0).view(1, 4, 4)
    out = crop_square(img, -1, 2, 3, -5.0)
    ref = np.full((3, 3), -5.0)
    ref[1:, :2] = img[0, 0:2, 2:4].numpy()
    assert np.array_equal(out[0].numpy(), ref)


def test_threshold_mask_cleans_up():
    img = _blob()
    rng = np.random.default_rng(0)
    noisy = img + torch.from_numpy(rng.normal(0, 0.01, img.shape)).float()  # JPEG-like noise
    noisy[:, 2, 2] = 0.0                                                      # a speck of dust
    noisy[:, 15:17, 30:32] = 1.0                                              # a white logo inside the shoe
    m = threshold_mask(noisy.clamp(0, 1))[0]
    ref = torch.zeros(40, 60)
    ref[10:22, 15:45] = 1
    assert torch.equal(m, ref)


def test_resize_preserves_mean_and_range():
    x = torch.rand(1, 64, 64)
    y = resize(x, 16)
    assert y.shape == (1, 16, 16) and 0 <= y.min() and y.max() <= 1
    assert abs(y.mean().item() - x.mean().item()) < 0.01
