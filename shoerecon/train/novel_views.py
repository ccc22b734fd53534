"""v2 losses on renders from unseen viewpoints: a WGAN-GP critic and a differentiable FID against real views.

The image losses only see the dataset's views. Renders from random azimuths have no paired target, so they
are judged as a distribution: ``NovelViewLosses`` renders each predicted mesh from ``losses.novel_views``
random azimuths (elevation, distance and fov of the shoe's first target camera) and compares those renders
with the batch's real target views: the critic's score (``losses.adversarial``) and the Frechet distance of
Inception pool features (``losses.fid``). The critic has its own Adam and is updated before the generator
term is taken, ``gan.critic_steps`` times per training step; its gradients are averaged over processes by
hand (DistributedDataParallel and the gradient penalty's double backward do not mix).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from shoerecon.losses import LossConfig
from shoerecon.losses.adversarial import WGANGP, AdversarialConfig
from shoerecon.losses.fid import FIDConfig, FIDLoss
from shoerecon.model.discriminator import Critic


def random_azimuth_cameras(reference: Tensor, views: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Cameras (B, views, 4) at uniform random azimuths, other parameters from ``reference`` (B, 4) or (B, 10).

    Novel views are plain look-at cameras: a product camera's crop and shoe offset belong to its photo.

    >>> cams = random_azimuth_cameras(torch.tensor([[0.0, 10.0, 2.2, 30.0]]), 3, torch.Generator().manual_seed(0))
    >>> cams.shape, bool((cams[..., 1:] == torch.tensor([10.0, 2.2, 30.0])).all())
    (torch.Size([1, 3, 4]), True)
    """
    b = reference.shape[0]
    azimuth = torch.rand(b, views, generator=generator) * 360.0
    cams = reference[:, None, :4].expand(b, views, 4).clone()
    cams[..., 0] = azimuth.to(cams)
    return cams


def real_rgba(batch: dict) -> Tensor:
    """The batch's real target views as RGBA (B * V, 4, H, W): alpha = the target masks."""
    targets, masks = batch["targets"], batch["target_masks"]
    return torch.cat([targets, masks], dim=2).flatten(0, 1)


class NovelViewLosses(torch.nn.Module):
    """The critic (with its optimizer) and the FID feature network, built only for the terms that are on."""

    def __init__(self, losses: LossConfig, gan: AdversarialConfig, fid: FIDConfig):
        super().__init__()
        self.wgan = WGANGP(Critic(gan.critic), gan) if losses.adversarial > 0 else None
        self.fid = FIDLoss(fid) if losses.fid > 0 else None
        self.critic_optimizer = self.wgan.make_optimizer() if self.wgan is not None else None
        self.critic_calls = 0  # critic_step calls so far: ``gan.critic_every`` counts them (saved in checkpoints)

    def critic_step(self, real: Tensor, fake: Tensor, accelerator=None,
                    generator: Optional[torch.Generator] = None) -> dict[str, float]:
        """``gan.critic_steps`` updates of the critic on real (N, 4, H, W) vs detached fake (M, 4, H, W) images,
        on every ``gan.critic_every``-th call (the others return {} at no cost).

        A non-finite critic loss (on any process) skips the update.
        """
        if self.wgan is None:
            return {}
        call, self.critic_calls = self.critic_calls, self.critic_calls + 1
        if call % self.wgan.cfg.critic_every:
            return {}
        stats: dict[str, float] = {}
        for _ in range(self.wgan.cfg.critic_steps):
            self.critic_optimizer.zero_grad(set_to_none=True)
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
            self.critic_optimizer.step()
            stats = {"critic": float(total.detach()), "w_distance": float(out["w_distance"]),
                     "gp": float(out["gp"].detach())}
        self.critic_optimizer.zero_grad(set_to_none=True)
        return stats

    def generator_terms(self, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        """Unweighted generator-side terms ("adversarial", "fid") for fake (M, 4, H, W) renders."""
        terms: dict[str, Tensor] = {}
        if self.wgan is not None:
            terms["adversarial"] = self.wgan.generator_objective(fake)
        if self.fid is not None:
            terms["fid"] = self.fid(fake, real)
        return terms

    def state_dict_for_checkpoint(self) -> dict:
        """The critic and its optimizer (the Inception network is frozen and reloaded from its weights)."""
        if self.wgan is None:
            return {}
        return {"critic": self.wgan.critic.state_dict(), "critic_optimizer": self.critic_optimizer.state_dict(),
                "critic_calls": self.critic_calls}

    def load_checkpoint_state(self, state: dict) -> None:
        if self.wgan is None or not state:
            return
        self.wgan.critic.load_state_dict(state["critic"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.critic_calls = int(state.get("critic_calls", 0))


__all__ = ["NovelViewLosses", "random_azimuth_cameras", "real_rgba"]
