import torch
from torch import nn

from shoerecon.losses.adversarial import WGANGP, AdversarialConfig, critic_loss, generator_loss, gradient_penalty
from shoerecon.model.discriminator import Critic, DiscriminatorConfig


class LinearCritic(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w everywhere, so the penalty is lambda (||w|| - 1)^2 exactly."""

    def __init__(self, shape, norm):
        super().__init__()
        w = torch.randn(shape, dtype=torch.float64)
        self.w = nn.Parameter(w / w.norm() * norm)
        self.b = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1) + self.b


def images(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(n, 3, 8, 8, dtype=torch.float64, generator=g) for _ in range(2))


def test_gradient_penalty_zero_for_unit_gradient_linear_critic():
    real, fake = images()
    assert gradient_penalty(LinearCritic((3, 8, 8), 1.0), real, fake).item() < 1e-20


def test_gradient_penalty_matches_analytic_value_otherwise():
    real, fake = images()
    for norm in (0.5, 3.0):
        gp = gradient_penalty(LinearCritic((3, 8, 8), norm), real, fake, gp_lambda=10.0)
        assert torch.isclose(gp, torch.tensor(10.0 * (norm - 1) ** 2, dtype=torch.float64))


def test_gradient_penalty_is_differentiable_for_the_critic():
    real, fake = images()
    critic = LinearCritic((3, 8, 8), 2.0)
    gradient_penalty(critic, real, fake).backward()
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    expected = 20 * (2.0 - 1) * critic.w.detach() / 2.0
    assert torch.allclose(critic.w.grad, expected)


def test_gradient_penalty_positive_for_a_conv_critic_and_reproducible():
    real, fake = images()
    critic = Critic(DiscriminatorConfig(in_channels=3, base_channels=8, num_layers=2)).double()
    a = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    b = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert a.item() > 0 and torch.equal(a, b)


def test_loss_values():
    real_scores, fake_scores = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert critic_loss(real_scores, fake_scores).item() == -2.5
    assert generator_loss(fake_scores).item() == 0.5


def test_gradient_flows_to_fake_in_generator_step_only():
    critic = Critic(DiscriminatorConfig(in_channels=3, base_channels=8, num_layers=2)).double()
    gan = WGANGP(critic, AdversarialConfig(drift=1e-3))
    real, fake = images()
    fake = fake.requires_grad_(True)
    out = gan.critic_objective(real, fake)
    out["total"].backward()
    assert fake.grad is None  # the critic step does not train the generator
    assert all(p.grad is not None for p in critic.parameters())
    gan.generator_objective(fake).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_critic_learns_to_separate():
    """A few WGAN-GP critic steps: real (bright) images end up scored above fake (dark) ones."""
    torch.manual_seed(0)
    critic = Critic(DiscriminatorConfig(in_channels=3, base_channels=8, num_layers=2))
    gan = WGANGP(critic, AdversarialConfig(lr=1e-3))
    opt = gan.make_optimizer()
    real = 0.7 + 0.3 * torch.rand(8, 3, 8, 8)
    fake = 0.3 * torch.rand(8, 3, 8, 8)
    for _ in range(30):
        opt.zero_grad()
        out = gan.critic_objective(real, fake)
        out["total"].backward()
        opt.step()
    assert out["w_distance"] > 0.5
    assert critic(real).mean() > critic(fake).mean()
