import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from shoerecon.model.variance import (
    VarianceConfig,
    VarianceHead,
    VarianceSampler,
    positive_from_log,
    sample_texture_with_variance,
)


def flat_colour_case(dtype=torch.float64):
    """The paper's failure case: a flat-coloured region, flow pointing into it, a target of another colour."""
    image = torch.ones(1, 3, 16, 16, dtype=dtype)
    image[:, :, 4:12, 4:12] = torch.tensor([0.2, 0.4, 0.6], dtype=dtype).view(1, 3, 1, 1)  # the flat region
    # 2x2 texels whose flow lands well inside the flat square (pixels 6..9 -> NDC about -0.2..0.2).
    flow = torch.tensor([[[[-0.13, -0.07], [0.11, -0.09]], [[-0.05, 0.12], [0.08, 0.06]]]], dtype=dtype)
    target = torch.tensor([0.9, 0.1, 0.1], dtype=dtype).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    # A non-constant I_var: a smooth horizontal ramp around 1.
    xs = torch.linspace(-1, 1, 16, dtype=dtype)
    variance = (1 + 0.3 * xs).view(1, 1, 1, 16).expand(1, 1, 16, 16).contiguous()
    return image, flow, target, variance


def flow_grad(mode, variance):
    image, flow, target, _ = flat_colour_case()
    flow = flow.clone().requires_grad_(True)
    texture = sample_texture_with_variance(image, flow, variance, mode)
    ((texture - target) ** 2).sum().backward()
    return flow.grad


def test_flat_colour_flow_gradient_vanishes_without_variance():
    _, _, _, variance = flat_colour_case()
    assert flow_grad("none", None).abs().max() == 0
    assert flow_grad("multiply", torch.ones_like(variance)).abs().max() == 0  # a constant I_var does not help


@pytest.mark.parametrize("mode", ["multiply", "gradient_only"])
def test_flat_colour_flow_gradient_nonzero_with_variance(mode):
    _, _, _, variance = flat_colour_case()
    g = flow_grad(mode, variance)
    assert g[..., 0].abs().min() > 1e-3  # every texel gets an x-gradient (the ramp runs along x)


def test_flow_gradient_matches_analytic_formula():
    """Inside the flat region d texture / d x = colour * d I_var / dx; check against that by hand."""
    image, flow, target, variance = flat_colour_case()
    g = flow_grad("multiply", variance)
    colour = torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64)
    # I_var(x_ndc) = 1 + 0.3 * x_pixel_linspace; with align_corners=False, pixel j's centre is at x_ndc = (2j+1)/16-1
    # and the linspace value at pixel j is -1 + 2j/15, so d I_var / d x_ndc = 0.3 * (2/15) / (2/16) = 0.32.
    dvar_dx = 0.3 * (2 / 15) / (2 / 16)
    texture = sample_texture_with_variance(image, flow, variance, "multiply")
    expected = (2 * (texture - target) * colour.view(1, 3, 1, 1) * dvar_dx).sum(1)
    assert torch.allclose(g[..., 0], expected, atol=1e-10)
    assert g[..., 1].abs().max() < 1e-12  # I_var is constant along y


def test_gradient_only_value_is_plain_and_gradient_is_multiply():
    image, flow, target, variance = flat_colour_case()
    image = torch.rand_like(image)  # a generic image this time
    out = {}
    for mode in ("none", "multiply", "gradient_only"):
        f = flow.clone().requires_grad_(True)
        v = variance.clone().requires_grad_(True)
        tex = sample_texture_with_variance(image, f, v if mode != "none" else None, mode)
        ((tex - target) ** 2).sum().backward()
        out[mode] = (tex.detach(), f.grad, v.grad)
    assert torch.equal(out["gradient_only"][0], out["none"][0])
    assert not torch.allclose(out["multiply"][0], out["none"][0])
    # Same loss gradient on the flow as "multiply" would give at the same upstream gradient:
    f = flow.clone().requires_grad_(True)
    tex_plain = sample_texture_with_variance(image, flow, None, "none")
    with_var = F.grid_sample(image * variance, f, padding_mode="border", align_corners=False)
    with_var.backward(2 * (tex_plain - target))
    assert torch.allclose(out["gradient_only"][1], f.grad, atol=1e-12)


def test_gradcheck_multiply():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 2, 5, 6, dtype=torch.float64, generator=g).requires_grad_(True)
    flow = (torch.rand(1, 3, 3, 2, dtype=torch.float64, generator=g) * 1.6 - 0.8).requires_grad_(True)
    var = (0.5 + torch.rand(1, 1, 5, 6, dtype=torch.float64, generator=g)).requires_grad_(True)
    assert gradcheck(lambda i, f, v: sample_texture_with_variance(i, f, v, "multiply"), (image, flow, var))


def test_gradcheck_gradient_only_image_path():
    """In gradient_only the value depends on the image only through the plain path: a true gradient."""
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 2, 5, 6, dtype=torch.float64, generator=g).requires_grad_(True)
    flow = torch.rand(1, 3, 3, 2, dtype=torch.float64, generator=g) * 1.6 - 0.8
    var = 0.5 + torch.rand(1, 1, 5, 6, dtype=torch.float64, generator=g)
    assert gradcheck(lambda i: sample_texture_with_variance(i, flow, var, "gradient_only"), (image,))


def test_head_starts_at_one_and_stays_positive():
    head = VarianceHead(8, VarianceConfig(hidden_channels=16, max_log=2.0))
    feats = torch.randn(3, 8, 6, 6)
    var = head(feats, size=(24, 20))
    assert var.shape == (3, 1, 24, 20) and torch.equal(var, torch.ones_like(var))
    with torch.no_grad():
        head.out.weight.normal_(0, 100.0)
    var = head(feats)
    assert var.shape == (3, 1, 6, 6)
    assert var.min() >= torch.exp(torch.tensor(-2.0)) - 1e-6 and var.max() <= torch.exp(torch.tensor(2.0)) + 1e-5
    assert var.min() > 0
    raw = torch.linspace(-50, 50, 11, dtype=torch.float64)
    assert torch.allclose(positive_from_log(raw, 3.0).log(), 3.0 * torch.tanh(raw / 3.0))


def test_head_trains():
    """The zero-initialised output still receives gradient (through its weights), so I_var can leave 1."""
    sampler = VarianceSampler(4, VarianceConfig(mode="multiply", hidden_channels=8))
    image = torch.rand(2, 3, 8, 8)
    flow = torch.rand(2, 4, 4, 2) * 2 - 1
    texture, var = sampler(torch.randn(2, 4, 8, 8), image, flow)
    assert texture.shape == (2, 3, 4, 4) and var.shape == (2, 1, 8, 8)
    texture.sum().backward()
    assert sampler.head.out.weight.grad.abs().sum() > 0


def test_bad_input():
    image = torch.rand(1, 3, 8, 8)
    flow = torch.zeros(1, 4, 4, 2)
    with pytest.raises(ValueError, match="valid modes: none, multiply, gradient_only"):
        sample_texture_with_variance(image, flow, None, "add")
    with pytest.raises(ValueError, match="needs a variance map"):
        sample_texture_with_variance(image, flow, None, "multiply")
    with pytest.raises(ValueError, match="variance"):
        sample_texture_with_variance(image, flow, torch.ones(1, 1, 4, 4), "multiply")
    assert VarianceSampler(4, VarianceConfig(mode="none")).head is None
