"""WGAN-GP losses (Gulrajani et al. 2017) for renders against real views (v2).

Critic:    L_D = E[D(fake)] - E[D(real)] + lambda * E[(||grad_x D(x_hat)||_2 - 1)^2],
           x_hat = eps * real + (1 - eps) * fake, eps ~ U(0, 1) per sample, lambda = 10.
Generator: L_G = -E[D(fake)].
Optional drift term (Karras et al. 2018) drift * E[D(real)^2] keeps the scores near 0.

As a training term (``losses.adversarial``) it judges the renders from random azimuths (``ctx.novel``): the
critic (its own Adam, in :class:`CriticModule`) takes ``critic_steps`` updates on real views vs the detached
renders first, then the generator term is taken. Critic gradients are averaged over processes by hand
(DistributedDataParallel and the gradient penalty's double backward do not mix).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from shoerecon.losses.registry import LossContext, TermConfig, register_loss
from shoerecon.model.discriminator import Critic, DiscriminatorConfig


@dataclass
class AdversarialConfig(TermConfig):
    """WGAN-GP: the generator term's weight (0 = no GAN at all) and the critic's options.

    Attributes:
        gp_lambda: gradient-penalty weight (10 in the paper).
        drift: weight of E[D(real)^2] in the critic loss (0 = off).
        critic_steps: critic updates per generator update.
        critic_every: update the critic only on every k-th training step (1 = every step, the method as
            published). A speed trade: the critic's update with its gradient penalty costs ~1.5 v1 steps on
            CPU at 64 px; with k > 1 the generator meets a critic up to k - 1 steps stale.
        lr, betas: the critic's Adam (the paper: 1e-4, (0, 0.9)).
        critic: the critic's architecture.
    """
    weight: float = 0.0
    gp_lambda: float = 10.0
    drift: float = 0.0
    critic_steps: int = 1
    critic_every: int = 1
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)
    critic: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.critic_steps < 1 or self.critic_every < 1:
            raise ValueError(f"losses.adversarial.critic_steps and critic_every must be >= 1, got "
                             f"{self.critic_steps}, {self.critic_every}")


def critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Wasserstein critic loss E[D(fake)] - E[D(real)]. (B,), (B',) -> ().

    >>> critic_loss(torch.tensor([2.0, 4.0]), torch.tensor([1.0])).item()
    -2.0
    """
    return fake_scores.mean() - real_scores.mean()


def generator_loss(fake_scores: Tensor) -> Tensor:
    """-E[D(fake)]. (B,) -> ()."""
    return -fake_scores.mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    gp_lambda: float = 10.0,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """lambda * E[(||grad D(x_hat)|| - 1)^2] on random interpolates of real and (detached) fake images.

    Args:
        critic: (B, C, H, W) -> (B,). real, fake: (B, C, H, W). generator: for eps (reproducible draws).
    Returns:
        () scalar, differentiable w.r.t. the critic's parameters (create_graph=True).
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), generator=generator, dtype=real.dtype,
                     device="cpu" if generator is not None else real.device).to(real.device)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return gp_lambda * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class WGANGP(nn.Module):
    """Critic + losses. ``critic_objective(real, fake)`` for the critic's step, ``generator_objective(fake)``
    for the generator's (gradient flows into ``fake``). Images (B, C, H, W) in [0, 1]."""

    def __init__(self, critic: nn.Module, cfg: AdversarialConfig | None = None):
        super().__init__()
        self.critic = critic
        self.cfg = cfg or AdversarialConfig()

    def critic_objective(
        self, real: Tensor, fake: Tensor, generator: Optional[torch.Generator] = None
    ) -> dict[str, Tensor]:
        """{"wasserstein", "gp", "total", "w_distance"}; the fake images are detached (critic step only).

        real (N, C, H, W) and fake (M, C, H, W) may differ in count: the penalty pairs the first min(N, M).
        """
        # one critic call for both sets (no batch statistics in the critic, so the same scores, fewer passes)
        if real.shape[1:] == fake.shape[1:]:
            scores = self.critic(torch.cat([real, fake.detach()]))
            real_scores, fake_scores = scores[: real.shape[0]], scores[real.shape[0]:]
        else:
            real_scores, fake_scores = self.critic(real), self.critic(fake.detach())
        wasserstein = critic_loss(real_scores, fake_scores)
        n = min(real.shape[0], fake.shape[0])
        gp = gradient_penalty(self.critic, real[:n], fake[:n], self.cfg.gp_lambda, generator)
        total = wasserstein + gp
        if self.cfg.drift > 0:
            total = total + self.cfg.drift * (real_scores**2).mean()
        return {"wasserstein": wasserstein, "gp": gp, "total": total, "w_distance": -wasserstein.detach()}

    def generator_objective(self, fake: Tensor) -> Tensor:
        return generator_loss(self.critic(fake))

    def make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.critic.parameters(), lr=self.cfg.lr, betas=tuple(self.cfg.betas))


class CriticModule(nn.Module):
    """The critic of the adversarial term with its optimizer (built once, when the term's weight is > 0)."""

    def __init__(self, cfg: AdversarialConfig):
        super().__init__()
        self.wgan = WGANGP(Critic(cfg.critic), cfg)
        self.optimizer = self.wgan.make_optimizer()
        self.critic_calls = 0  # critic_step calls so far: ``critic_every`` counts them (saved in checkpoints)

    def critic_step(self, real: Tensor, fake: Tensor, accelerator=None,
                    generator: Optional[torch.Generator] = None) -> dict[str, float]:
        """``critic_steps`` updates of the critic on real (N, 4, H, W) vs detached fake (M, 4, H, W) images,
        on every ``critic_every``-th call (the others return {} at no cost).

        A non-finite critic loss (on any process) skips the update. Returns scalars to log.
        """
        call, self.critic_calls = self.critic_calls, self.critic_calls + 1
        if call % self.wgan.cfg.critic_every:
            return {}
        stats: dict[str, float] = {}
        for _ in range(self.wgan.cfg.critic_steps):
            self.optimizer.zero_grad(set_to_none=True)
            out = self.wgan.critic_objective(real, fake, generator)
            total = out["total"]
            finite = torch.isfinite(total.detach()).float()
            if accelerator is not None and accelerator.num_processes > 1:
                finite = accelerator.gather(finite.reshape(1)).min()
            if not bool(finite):
                stats["critic_skipped"] = 1.0
                continue
            total.backward()
            if accelerator is not None and accelerator.num_processes > 1:
                for p in self.wgan.critic.parameters():
                    if p.grad is not None:
                        p.grad = accelerator.reduce(p.grad, "mean")
            self.optimizer.step()
            stats = {"critic": float(total.detach()), "w_distance": float(out["w_distance"]),
                     "gp": float(out["gp"].detach())}
        self.optimizer.zero_grad(set_to_none=True)
        return stats

    def checkpoint_state(self) -> dict:
        """The critic and its optimizer (checkpoint ``extra["novel_views"]``, the key of earlier versions)."""
        return {"critic": self.wgan.critic.state_dict(), "critic_optimizer": self.optimizer.state_dict(),
                "critic_calls": self.critic_calls}

    def load_checkpoint_state(self, state: dict) -> None:
        if state:
            self.wgan.critic.load_state_dict(state["critic"])
            self.optimizer.load_state_dict(state["critic_optimizer"])
            self.critic_calls = int(state.get("critic_calls", 0))


@register_loss("adversarial", AdversarialConfig, build=CriticModule)
def adversarial_term(ctx: LossContext, cfg: AdversarialConfig) -> Tensor:
    """WGAN-GP generator term ``-E[D(fake)]`` on ``ctx.novel.fake``, after the critic's update(s) when
    ``ctx.novel.train_critic`` (its scalars go to ``ctx.stats``)."""
    if ctx.novel is None:
        raise ValueError("losses.adversarial.weight > 0 needs LossContext.novel (renders from random azimuths)")
    module, novel = ctx.module("adversarial"), ctx.novel
    with torch.autocast(ctx.renders.device.type, enabled=False):  # the critic runs in float32
        if novel.train_critic:
            ctx.stats.update(module.critic_step(novel.real, novel.fake, novel.accelerator, novel.generator))
        return module.wgan.generator_objective(novel.fake)


__all__ = ["AdversarialConfig", "CriticModule", "critic_loss", "generator_loss", "gradient_penalty", "WGANGP"]
