import numpy as np
import pytest
import scipy.linalg
import torch
from torch.autograd import gradcheck

from shoerecon.losses.fid import (
    FeatureStats,
    FIDConfig,
    FIDLoss,
    InceptionPoolFeatures,
    frechet_distance_features,
    frechet_distance_to_stats,
    load_inception_state,
    trace_sqrt_product,
)


def random_features(n, d, seed, shift=0.0):
    g = np.random.default_rng(seed)
    mix = g.normal(size=(d, d))  # correlated features
    return g.normal(size=(n, d)) @ mix + shift


def scipy_fid(f1, f2):
    """The textbook reference: float64 covariances and scipy.linalg.sqrtm of the product."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    tr_sqrt = np.trace(covmean).real
    return ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt, tr_sqrt


def symmetric_trace_sqrt(f1, f2):
    """Second reference for rank-deficient covariances: tr sqrt(sqrt(S1) S2 sqrt(S1)) with numpy eigh."""
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()


def test_trace_term_matches_scipy_sqrtm_full_rank():
    f1, f2 = random_features(40, 10, 0), random_features(50, 10, 1, shift=0.5)
    ref_fid, ref_tr = scipy_fid(f1, f2)
    got = trace_sqrt_product(torch.tensor(f1), torch.tensor(f2)).item()
    assert got == pytest.approx(ref_tr, rel=1e-9)
    assert frechet_distance_features(torch.tensor(f1), torch.tensor(f2)).item() == pytest.approx(ref_fid, rel=1e-8)


def test_trace_term_small_batches_rank_deficient():
    """n << d, as in training: S1, S2 are singular. Check against the symmetric-eigh reference."""
    f1, f2 = random_features(8, 32, 2), random_features(6, 32, 3, shift=0.2)
    got = trace_sqrt_product(torch.tensor(f1), torch.tensor(f2)).item()
    assert got == pytest.approx(symmetric_trace_sqrt(f1, f2), rel=1e-7)


def test_fid_float32_inputs_are_accurate():
    f1, f2 = random_features(40, 10, 4), random_features(40, 10, 5, shift=1.0)
    ref, _ = scipy_fid(f1, f2)
    got = frechet_distance_features(torch.tensor(f1, dtype=torch.float32), torch.tensor(f2, dtype=torch.float32))
    assert got.item() == pytest.approx(ref, rel=1e-5)


def test_stats_form_equals_feature_form():
    f1, f2 = torch.tensor(random_features(12, 20, 6)), torch.tensor(random_features(30, 20, 7, shift=0.3))
    stats = FeatureStats.from_features(f2)
    expected = frechet_distance_features(f1, f2).item()
    assert frechet_distance_to_stats(f1, stats).item() == pytest.approx(expected, rel=1e-8)


def test_identical_sets_give_zero_and_shift_gives_its_square():
    f = torch.tensor(random_features(10, 6, 8))
    assert abs(frechet_distance_features(f, f).item()) < 1e-8
    shift = torch.tensor([1.0, -2.0, 0, 0, 0, 0.5], dtype=torch.float64)
    assert frechet_distance_features(f, f + shift).item() == pytest.approx(float((shift**2).sum()), rel=1e-8)


@pytest.mark.parametrize("n1,n2,d", [(5, 6, 3), (4, 4, 6)])
def test_gradcheck_feature_form(n1, n2, d):
    g = torch.Generator().manual_seed(n1 + d)
    f1 = torch.randn(n1, d, dtype=torch.float64, generator=g).requires_grad_(True)
    f2 = (torch.randn(n2, d, dtype=torch.float64, generator=g) + 0.5).requires_grad_(True)
    assert gradcheck(frechet_distance_features, (f1, f2), atol=1e-6)


def test_gradcheck_stats_form():
    g = torch.Generator().manual_seed(0)
    stats = FeatureStats.from_features(torch.randn(20, 4, dtype=torch.float64, generator=g))
    f = torch.randn(5, 4, dtype=torch.float64, generator=g).requires_grad_(True)
    assert gradcheck(lambda x: frechet_distance_to_stats(x, stats), (f,), atol=1e-6)


@pytest.fixture(scope="module")
def fid_random():
    torch.manual_seed(0)
    return FIDLoss(FIDConfig(pretrained=False, resize=75))


def test_fid_loss_random_inception(fid_random):
    g = torch.Generator().manual_seed(0)
    real = torch.rand(3, 3, 32, 32, generator=g)
    fake = torch.rand(3, 4, 32, 32, generator=g).requires_grad_(True)  # RGBA renders work
    loss = fid_random(fake, real)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert fake.grad[:, :3].abs().sum() > 0
    assert all(p.grad is None for p in fid_random.parameters())  # Inception stays frozen
    same = fid_random(real, real)
    assert abs(same.item()) < 1e-3 * loss.item()


def test_loading_code_reads_a_local_state_dict(tmp_path, fid_random):
    import torchvision

    torch.manual_seed(1)
    # With the auxiliary classifier, like the real file.
    full = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True).eval()
    path = tmp_path / "inception.pth"
    torch.save(full.state_dict(), path)
    feats = InceptionPoolFeatures(FIDConfig(pretrained=True, weights=str(path), resize=75))
    x = torch.rand(2, 3, 75, 75)
    full.fc = torch.nn.Identity()
    with torch.no_grad():
        # relative: the features are ~1e6 here, and channels-last convolutions sum in another order
        a, b = feats(x), full(x * 2 - 1)
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


def test_missing_or_bad_weights_errors(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth.*never downloads.*download.pytorch.org"):
        load_inception_state(str(missing))
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="bad.pth.*not a torchvision Inception-v3"):
        load_inception_state(str(bad))
    with pytest.raises(ValueError, match="resize"):
        InceptionPoolFeatures(FIDConfig(pretrained=False, resize=32))


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance_features(torch.randn(1, 4), torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"\(n1, d\)"):
        frechet_distance_features(torch.randn(3, 4), torch.randn(5, 3))


def test_random_backbone_features_keep_their_scale():
    """Frozen BN + torchvision's init blew random features up to ~1e6 (FID ~1e14); the random mode must stay O(1)."""
    torch.manual_seed(0)
    feats = InceptionPoolFeatures(FIDConfig(pretrained=False, resize=75))(torch.rand(4, 3, 64, 64))
    assert torch.isfinite(feats).all() and 1e-4 < float(feats.abs().mean()) < 10
