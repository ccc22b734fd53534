"""Image L2, silhouette IoU and flow-mask losses: properties, hand-computed values and gradcheck."""
import pytest
import torch

from shoerecon.losses import flow_mask_loss, image_l2_loss, silhouette_iou_loss, soft_iou


def test_image_l2_zero_for_identical_and_hand_value():
    x = torch.rand(2, 3, 3, 8, 8)
    assert image_l2_loss(x, x) == 0
    y = x.clone()
    y[0, 0, :, 0, 0] += 0.5  # 3 channel values off by 0.5 among 2*3*3*64
    torch.testing.assert_close(image_l2_loss(x, y), torch.tensor(3 * 0.25 / (2 * 3 * 3 * 64)))


def test_image_l2_masked_ignores_outside_and_averages_inside():
    x, y = torch.zeros(1, 2, 3, 4, 4), torch.zeros(1, 2, 3, 4, 4)
    mask = torch.zeros(1, 2, 1, 4, 4)
    mask[:, :, :, :2, :] = 1  # 16 of 32 pixels
    y[..., 2:, :] = 1.0  # errors only outside the mask
    assert image_l2_loss(x, y, mask) == 0
    y[0, 0, :, 0, 0] = 2.0  # one masked pixel, 3 channels, error 4 each
    torch.testing.assert_close(image_l2_loss(x, y, mask), torch.tensor(3 * 4.0 / (3 * 16)), rtol=1e-6, atol=0)


def test_silhouette_iou_identical_disjoint_and_partial():
    m = torch.zeros(2, 3, 1, 8, 8)
    m[..., :4, :] = 1
    assert silhouette_iou_loss(m, m).item() == pytest.approx(0.0, abs=1e-6)
    assert silhouette_iou_loss(m, 1 - m).item() == pytest.approx(1.0, abs=1e-6)
    half = torch.zeros_like(m)
    half[..., :2, :] = 1  # intersection 16, union 32
    assert silhouette_iou_loss(half, m).item() == pytest.approx(0.5, abs=1e-6)
    assert soft_iou(half, m).shape == (2, 3)


def test_silhouette_iou_is_per_image_mean():
    a = torch.zeros(2, 1, 1, 4, 4)
    b = torch.zeros(2, 1, 1, 4, 4)
    a[0, ..., :2, :] = 1; b[0, ..., :2, :] = 1  # image 0 perfect (loss 0) # noqa: E702
    a[1, ..., 0, 0] = 1; b[1, ..., 3, 3] = 1  # image 1 disjoint (loss 1) # noqa: E702
    assert silhouette_iou_loss(a, b).item() == pytest.approx(0.5, abs=1e-6)  # not the pooled IoU (8/10)


def test_flow_loss_inside_outside_and_uv_mask():
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :, :4] = 1  # left half of the image
    flow = torch.zeros(1, 4, 4, 2)
    flow[..., 0] = -0.5  # x = -0.5: inside the left half
    assert flow_mask_loss(flow, mask).item() == pytest.approx(0.0, abs=1e-6)
    flow[..., 0] = 0.5  # right half: outside
    assert flow_mask_loss(flow, mask).item() == pytest.approx(1.0, abs=1e-6)
    flow[:, :, :2, 0] = -0.5  # texel columns 0-1 inside, 2-3 outside
    assert flow_mask_loss(flow, mask).item() == pytest.approx(0.5, abs=1e-6)
    uv_mask = torch.zeros(4, 4)
    uv_mask[:, :2] = 1  # only the texels that sample inside are used
    assert flow_mask_loss(flow, mask, uv_mask).item() == pytest.approx(0.0, abs=1e-6)
    uv_mask[:, :3] = 1  # 4 of 12 used texels miss
    assert flow_mask_loss(flow, mask, uv_mask).item() == pytest.approx(1 / 3, abs=1e-6)


def test_flow_loss_outside_image_counts_as_miss():
    mask = torch.ones(1, 1, 8, 8)
    flow = torch.full((1, 2, 2, 2), 3.0)  # far outside: zero padding
    assert flow_mask_loss(flow, mask).item() == pytest.approx(1.0)


def test_gradcheck_image_silhouette_flow():
    d = torch.float64
    x = torch.rand(1, 2, 3, 4, 4, dtype=d, requires_grad=True)
    y = torch.rand(1, 2, 3, 4, 4, dtype=d)
    m = torch.rand(1, 2, 1, 4, 4, dtype=d)
    assert torch.autograd.gradcheck(lambda a: image_l2_loss(a, y), (x,))
    assert torch.autograd.gradcheck(lambda a: image_l2_loss(a, y, m), (x,))
    alpha = torch.rand(1, 2, 1, 4, 4, dtype=d, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: silhouette_iou_loss(a, m), (alpha,))
    flow = (torch.rand(1, 3, 3, 2, dtype=d) * 1.6 - 0.8).requires_grad_(True)
    in_mask = torch.rand(1, 1, 5, 5, dtype=d)
    uv = torch.rand(3, 3, dtype=d)
    assert torch.autograd.gradcheck(lambda f: flow_mask_loss(f, in_mask, uv), (flow,))
