import pytest
import torch
from torch.autograd import gradcheck

from shoerecon.losses.flow_smooth import FlowSmoothConfig, flow_smoothness_loss, texel_chart_labels


def naive_loss(flow, mask, labels, order, penalty):
    """Loops over every stencil of every texel: obviously the definition."""
    b, h, w, _ = flow.shape
    total, count = 0.0, 0.0
    for n in range(b):
        for i in range(h):
            for j in range(w):
                for di, dj in ((1, 0), (0, 1)):
                    cells = [(i + k * di, j + k * dj) for k in range(order + 1)]
                    if any(r >= h or c >= w for r, c in cells):
                        continue
                    wt = 1.0
                    for r, c in cells:
                        wt *= float(mask[r, c])
                    if labels is not None and len({int(labels[r, c]) for r, c in cells}) > 1:
                        wt = 0.0
                    vals = [flow[n, r, c] for r, c in cells]
                    d = vals[1] - vals[0] if order == 1 else vals[2] - 2 * vals[1] + vals[0]
                    p = d.norm() if penalty == "l1" else (d**2).sum()
                    total += wt * float(p)
                    count += wt
    return total / count if count else 0.0


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_matches_naive_loops(order, penalty):
    g = torch.Generator().manual_seed(order)
    flow = torch.rand(2, 6, 5, 2, dtype=torch.float64, generator=g)
    mask = (torch.rand(6, 5, generator=g) > 0.3).double()
    labels = torch.randint(0, 2, (6, 5), generator=g)
    cfg = FlowSmoothConfig(order=order, penalty=penalty)
    for lab in (None, labels):
        got = flow_smoothness_loss(flow, mask, lab, cfg).item()
        assert got == pytest.approx(naive_loss(flow, mask, lab, order, penalty), rel=1e-9)


def test_constant_and_affine_flows():
    j, i = torch.meshgrid(torch.arange(8.0, dtype=torch.float64), torch.arange(8.0, dtype=torch.float64), indexing="xy")
    affine = torch.stack([0.1 * j + 0.05 * i, -0.02 * j + 0.2 * i], -1)[None]
    assert flow_smoothness_loss(torch.full((1, 8, 8, 2), 0.3)).item() < 1e-9
    assert flow_smoothness_loss(affine, cfg=FlowSmoothConfig(order=2)).item() < 1e-9  # order 2: affine is free
    assert flow_smoothness_loss(affine, cfg=FlowSmoothConfig(order=1)).item() > 0.05


def test_unused_texels_do_not_count():
    flow = torch.zeros(1, 6, 6, 2)
    flow[:, :, 3:] = torch.rand(1, 6, 3, 2) * 5  # wild flow in unused texels
    mask = torch.zeros(6, 6)
    mask[:, :3] = 1
    assert flow_smoothness_loss(flow, mask).item() == 0
    assert flow_smoothness_loss(flow).item() > 0


def test_gradcheck():
    flow = torch.rand(1, 4, 5, 2, dtype=torch.float64).requires_grad_(True)
    mask = torch.rand(4, 5, dtype=torch.float64)
    assert gradcheck(lambda f: flow_smoothness_loss(f, mask, cfg=FlowSmoothConfig(penalty="charbonnier")), (flow,))


def test_chart_labels_from_uv_layout():
    # Two separate UV triangles (two charts) in the left and right halves.
    uvs = torch.tensor([[0.05, 0.05], [0.45, 0.05], [0.05, 0.95], [0.55, 0.05], [0.95, 0.05], [0.55, 0.95]])
    uv_faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    labels, mask = texel_chart_labels(uvs, uv_faces, 16)
    assert labels.shape == (16, 16) and set(labels.unique().tolist()) == {-1, 0, 1}
    assert (labels[:, :8] != 1).all() and (labels[:, 8:] != 0).all()
    assert torch.equal(mask, (labels >= 0).float())


def test_bad_input():
    with pytest.raises(ValueError, match="order"):
        flow_smoothness_loss(torch.zeros(1, 4, 4, 2), cfg=FlowSmoothConfig(order=3))
    with pytest.raises(ValueError, match="flow must be"):
        flow_smoothness_loss(torch.zeros(1, 2, 4, 4))
