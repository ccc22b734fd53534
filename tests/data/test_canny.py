"""The import's canny edges (data.masks.canny_edges) against kornia's own iterative hysteresis (the oracle)."""
import kornia
import pytest
import torch
import torch.nn.functional as F

from shoerecon.data.masks import canny_edges


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_canny_edges_equal_kornias_hysteresis(seed):
    gen = torch.Generator().manual_seed(seed)
    x = F.avg_pool2d(torch.rand(2, 3, 40, 56, generator=gen), 3, 1, 1)  # smooth noise: many weak chains
    for low, high, k, sigma in ((0.05, 0.12, 5, 1.2), (0.02, 0.2, 3, 0.8)):
        want = kornia.filters.canny(x, low, high, kernel_size=k, sigma=(sigma, sigma))[1]
        got = canny_edges(x, low, high, kernel_size=k, sigma=sigma)
        assert got.shape == want.shape and got.dtype == x.dtype
        assert torch.equal(got, want)
        assert 0 < int(got.sum()) < got.numel() // 2


def test_canny_edges_keep_weak_chains_only_when_they_touch_a_strong_edge():
    x = torch.zeros(1, 1, 24, 40)
    x[..., 4:20, 4:16] = 1.0    # a strong step
    x[..., 4:20, 24:36] = 0.08  # a faint step, on its own
    edges = canny_edges(x, 0.05, 0.3)
    assert edges[..., :, :20].sum() > 0
    assert edges[..., :, 21:].sum() == 0
    assert torch.equal(edges, kornia.filters.canny(x, 0.05, 0.3)[1])
