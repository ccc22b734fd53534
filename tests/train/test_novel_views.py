"""losses.adversarial.critic_every: the critic is updated on every k-th call only, and the count survives a
checkpoint."""
import torch

from shoerecon.losses.adversarial import AdversarialConfig, CriticModule
from shoerecon.model.discriminator import DiscriminatorConfig


def _novel(every):
    torch.manual_seed(0)
    gan = AdversarialConfig(weight=0.01, critic_every=every, critic=DiscriminatorConfig(base_channels=4, num_layers=2))
    return CriticModule(gan)


def _params(novel):
    return [p.detach().clone() for p in novel.wgan.critic.parameters()]


def test_critic_updates_every_kth_call_and_resumes():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(3, 4, 8, 8, generator=g), torch.rand(3, 4, 8, 8, generator=g)
    novel = _novel(3)
    updated = []
    for _ in range(5):
        before = _params(novel)
        stats = novel.critic_step(real, fake)
        changed = any(not torch.equal(a, b) for a, b in zip(before, _params(novel)))
        assert changed == bool(stats)
        updated.append(changed)
    assert updated == [True, False, False, True, False]
    resumed = _novel(3)
    resumed.load_checkpoint_state(novel.checkpoint_state())
    assert resumed.critic_calls == 5
    assert not resumed.critic_step(real, fake) and resumed.critic_step(real, fake)  # calls 5 (skip), 6 (update)


def test_critic_every_one_is_every_step():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.rand(2, 4, 8, 8, generator=g), torch.rand(2, 4, 8, 8, generator=g)
    novel = _novel(1)
    assert all(novel.critic_step(real, fake) for _ in range(3))


def test_novel_every_switches_the_novel_view_terms_by_step():
    """losses.novel_every = k: adversarial/fid off between multiples of k, k times their weight on them;
    other terms untouched; k = 1 is the config itself."""
    from shoerecon.train.config import load_config
    from shoerecon.train.system import ReconSystem

    cfg = load_config(None, ["losses.adversarial.weight=0.01", "losses.fid.weight=0.002", "losses.align.weight=0.1",
                             "losses.novel_every=4", "losses.fid.pretrained=false"])
    system = ReconSystem(cfg)
    on, off = system.step_losses(8), system.step_losses(9)
    assert (on.adversarial.weight, on.fid.weight) == (0.04, 0.008)
    assert (off.adversarial.weight, off.fid.weight) == (0.0, 0.0)
    for c in (on, off):
        assert c.align.weight == 0.1 and c.silhouette.weight == cfg.losses.silhouette.weight
    assert system.step_losses(None) is cfg.losses
    assert (on.fid.pretrained, on.adversarial.critic_every) == (False, cfg.losses.adversarial.critic_every)
    plain = ReconSystem(load_config(None, ["losses.adversarial.weight=0.01"]))
    assert plain.step_losses(3) is plain.cfg.losses
