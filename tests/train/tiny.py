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
