import pytest
import torch
from torch import nn

from shoerecon.model.discriminator import Critic, DiscriminatorConfig


@pytest.mark.parametrize("channels", [3, 4])
def test_shapes_any_size(channels):
    critic = Critic(DiscriminatorConfig(in_channels=channels, base_channels=8, num_layers=3))
    assert critic(torch.rand(3, channels, 32, 32)).shape == (3,)
    assert critic(torch.rand(2, channels, 16, 24)).shape == (2,)


def test_no_batch_norm_and_samples_are_independent():
    """The gradient penalty needs per-sample critics: a sample's score must not depend on its batch mates."""
    for norm in ("none", "layer"):
        critic = Critic(DiscriminatorConfig(base_channels=8, num_layers=3, norm=norm)).train()
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())
        x = torch.rand(4, 4, 16, 16)
        alone = torch.stack([critic(x[i : i + 1])[0] for i in range(4)])
        assert torch.allclose(critic(x), alone, atol=1e-5)
    with pytest.raises(ValueError, match="no batch norm"):
        Critic(DiscriminatorConfig(norm="batch"))


def test_spectral_norm_bounds_each_layer():
    critic = Critic(DiscriminatorConfig(base_channels=8, num_layers=2, spectral_norm=True))
    with torch.no_grad():
        for _ in range(20):  # power iterations run in training-mode forward passes
            critic(torch.rand(2, 4, 16, 16))
    critic.eval()
    convs = [m for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma < 1.05


def test_gradient_reaches_input():
    critic = Critic(DiscriminatorConfig(base_channels=8, num_layers=3))
    x = torch.rand(2, 4, 16, 16, requires_grad=True)
    critic(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_bad_input():
    critic = Critic(DiscriminatorConfig(in_channels=4, num_layers=3))
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        critic(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match=">= 8"):
        critic(torch.rand(2, 4, 4, 4))
