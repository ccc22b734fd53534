"""Overrides for seconds-long training runs in tests."""
from __future__ import annotations


def tiny_overrides(root: str, out_dir: str, name: str = "tiny", steps: int = 3) -> list[str]:
    """A run on 32 px images with a tiny network and no LPIPS (its pretrained weights are not on test machines)."""
    return [f"data.root={root}", "data.image_size=32", "render.image_size=32", f"train.out_dir={out_dir}",
            f"train.name={name}", f"train.max_steps={steps}", "train.batch_size=1", "train.log_every=1",
            "train.sample_every=2", "train.val_every=0", "train.checkpoint_every=0", "synthetic.enabled=true",
            "synthetic.shoes=4", "synthetic.views=6", "synthetic.image_size=32", "train.val_views=[0, 3]",
            "losses.perceptual.weight=0", "model.unet_depth=2", "model.unet_width=4", "model.latent_dim=16",
            "model.shape_hidden=16", "model.texture_size=32", "model.flow_hidden=4"]


TINY_MODEL = {"unet_depth": 2, "unet_width": 4, "latent_dim": 16, "latent_pool": 2, "shape_hidden": 16,
              "shape_layers": 2, "texture_size": 16, "flow_hidden": 4}


def tiny_checkpoint(path, image_size: int = 32, adam_steps: int = 1, seed: int = 0, model: dict | None = None):
    """Write a real training checkpoint (tiny ShoeReconNet + Adam state after ``adam_steps`` steps) to ``path``;
    returns the network. Seconds to build; no data needed."""
    import torch

    from shoerecon.geometry.template import load_template
    from shoerecon.model import ShoeReconNet
    from shoerecon.train.checkpoint import build_checkpoint, save_checkpoint
    from shoerecon.train.config import config_from_dict, config_to_dict

    cfg = config_from_dict({"model": {**TINY_MODEL, **(model or {})}, "data": {"image_size": image_size},
                            "render": {"image_size": image_size}})
    torch.manual_seed(seed)
    net = ShoeReconNet(cfg.model, load_template(uv_mode=cfg.uv.mode, spherical=cfg.uv.spherical), cfg.variance)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(adam_steps):
        out = net(torch.rand(1, 3, image_size, image_size))
        (out.verts.square().mean() + out.texture.mean()).backward()
        opt.step()
        opt.zero_grad()
    save_checkpoint(path, build_checkpoint(net, config_to_dict(cfg), step=adam_steps, epoch=0, optimizer=opt))
    return net.eval()
