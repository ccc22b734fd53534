"""Tiny stand-ins for modules that other helpers had not landed yet when the trainer was written.

``install()`` only fills what is missing (real modules always win), following the contracts in
/tmp/shoerecon_contracts.md. Used by tests/train/conftest.py and the 2-process driver.
"""
from __future__ import annotations

import importlib
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

INSTALLED: list[str] = []


def _has(module: str, name: str) -> bool:
    try:
        return hasattr(importlib.import_module(module), name)
    except Exception:
        return False


def _module(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except Exception:
        mod = types.ModuleType(name)
        sys.modules[name] = mod
        return mod


# ------------------------------------------------------------------------------------------ data
@dataclass
class DataConfig:
    root: str = "data/synthetic"
    image_size: int = 32
    num_target_views: int = 2
    input_view: Optional[int] = None


@dataclass
class SynthConfig:
    jitter: float = 0.1


def generate_dataset(out_dir, num_shoes=4, num_views=8, image_size=32, seed=0, workers=1, cfg=None):
    out = Path(out_dir)
    out.mkdir(parents=True)
    ids = [f"shoe_{i:03d}" for i in range(num_shoes)]
    (out / "index.json").write_text(json.dumps({"ids": ids, "views": num_views, "size": image_size, "seed": seed}))


class TurntableDataset(torch.utils.data.Dataset):
    """Procedural ellipse 'shoes'; target views drawn from the global torch RNG (like a real dataset)."""

    def __init__(self, cfg: DataConfig, split: str = "train", seed: int = 0):
        self.cfg = cfg
        meta = json.loads((Path(cfg.root) / "index.json").read_text())
        n_val = max(1, len(meta["ids"]) // 4)
        self.shoe_ids = meta["ids"][n_val:] if split == "train" else meta["ids"][:n_val]
        self.num_views, self.size = meta["views"], cfg.image_size

    def __len__(self):
        return len(self.shoe_ids)

    def _views(self, shoe_id: str, views: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
        k = int(shoe_id.split("_")[1])
        s = self.size
        y, x = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
        imgs, masks, cams = [], [], []
        for v in views:
            width = 0.5 + 0.3 * abs(torch.cos(torch.tensor(v * 6.283 / self.num_views)))
            m = ((x / width) ** 2 + (y / (0.25 + 0.02 * k)) ** 2 < 1).float()[None]
            color = torch.tensor([0.2 + 0.1 * (k % 5), 0.3, 0.6])[:, None, None]
            imgs.append(m * color + (1 - m))
            masks.append(m)
            cams.append(torch.tensor([360.0 * v / self.num_views, 10.0, 2.2, 30.0]))
        return torch.stack(imgs), torch.stack(masks), torch.stack(cams)

    def __getitem__(self, i):
        sid = self.shoe_ids[i]
        views = torch.randint(0, self.num_views, (self.cfg.num_target_views,))
        img, mask, cam = self._views(sid, [0])
        t, tm, tc = self._views(sid, views.tolist())
        return {"shoe_id": sid, "input": img[0], "input_mask": mask[0], "input_camera": cam[0],
                "targets": t, "target_masks": tm, "target_cameras": tc, "target_views": views}

    def load_shoe(self, shoe_id, views=None):
        views = list(range(self.num_views)) if views is None else list(views)
        t, tm, tc = self._views(shoe_id, views)
        img, mask, cam = self._views(shoe_id, [0])
        return {"shoe_id": shoe_id, "images": t, "masks": tm, "cameras": tc, "views": torch.tensor(views),
                "input": img[0], "input_mask": mask[0], "input_camera": cam[0]}


# ------------------------------------------------------------------------------------------ template
def load_template(path=None, uv_mode="islands"):
    from shoerecon.geometry.mesh import Mesh

    v = torch.tensor([[x, y, z] for x in (-.5, .5) for y in (-.2, .2) for z in (-.15, .15)])
    f = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    uvs = (v[:, :2] - v[:, :2].min(0).values) / (v[:, :2].max(0).values - v[:, :2].min(0).values)
    return Mesh(v, f, uvs, f.clone())


# ------------------------------------------------------------------------------------------ model
@dataclass
class ModelConfig:
    width: int = 8
    texture_size: int = 8


@dataclass
class ReconOutput:
    verts: Tensor
    offsets: Tensor
    texture: Tensor
    flow: Tensor
    variance: Optional[Tensor] = None


class ShoeReconNet(nn.Module):
    def __init__(self, cfg: ModelConfig, template):
        super().__init__()
        self.cfg = cfg
        self.enc = nn.Sequential(nn.Conv2d(3, cfg.width, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.shape = nn.Linear(cfg.width + 3, 3)
        self.tex = nn.Linear(cfg.width, 3 * cfg.texture_size ** 2)
        self.set_template(template)

    def set_template(self, mesh):
        for name, t in (("template_verts", mesh.verts), ("faces", mesh.faces), ("uvs", mesh.uvs),
                        ("uv_faces", mesh.uv_faces)):
            self.register_buffer(name, t.clone())

    def forward(self, image):
        z = self.enc(image)
        b, n = z.shape[0], self.template_verts.shape[0]
        pts = self.template_verts[None].expand(b, n, 3)
        offsets = 0.1 * torch.tanh(self.shape(torch.cat([z[:, None].expand(b, n, -1), pts], -1)))
        s = self.cfg.texture_size
        texture = torch.sigmoid(self.tex(z)).view(b, 3, s, s)
        return ReconOutput(pts + offsets, offsets, texture, torch.zeros(b, s, s, 2, device=image.device))


# ------------------------------------------------------------------------------------------ losses
@dataclass
class LossConfig:
    silhouette: float = 1.0
    image: float = 0.1


def compute_losses(out, renders, batch, faces, cfg, lpips=None):
    sil = (renders[:, :, 3:] - batch["target_masks"]).pow(2).mean()
    img = (renders[:, :, :3] - batch["targets"]).pow(2).mean()
    return {"silhouette": sil, "image": img, "total": cfg.silhouette * sil + cfg.image * img}


# ------------------------------------------------------------------------------------------ renderer
@dataclass
class RendererConfig:
    image_size: int = 32
    sigma: float = 0.02


class Renderer(nn.Module):
    """Soft point splats of the vertices: differentiable, crude, fast."""

    def __init__(self, cfg: RendererConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, verts, faces, cameras, texture=None, uvs=None, uv_faces=None):
        from shoerecon.render.cameras import pixel_centers_ndc

        b, v = cameras.shape
        s = self.cfg.image_size
        ndc = cameras.transform_points_ndc(verts[:, None].expand(b, v, -1, 3))[..., :2]  # (B,V,N,2)
        x, y = pixel_centers_ndc(s, s, device=verts.device)
        d2 = (ndc[..., 0, None, None] - x) ** 2 + (ndc[..., 1, None, None] - y[:, None]) ** 2  # (B,V,N,S,S)
        alpha = 1 - torch.prod(1 - 0.9 * torch.exp(-d2 / self.cfg.sigma), dim=2)
        color = texture.mean((2, 3))[:, None, :, None, None] if texture is not None else torch.ones(b, 1, 3, 1, 1)
        rgb = alpha[:, :, None] * color + (1 - alpha[:, :, None])
        return torch.cat([rgb, alpha[:, :, None]], dim=2)


# ------------------------------------------------------------------------------------------ install
def install() -> list[str]:
    """Fill in whichever contract pieces are missing; returns their names."""
    g = globals()
    wanted = {
        "shoerecon.data": ["DataConfig", "TurntableDataset"],
        "shoerecon.data.synthetic": ["SynthConfig", "generate_dataset"],
        "shoerecon.geometry.template": ["load_template"],
        "shoerecon.model": ["ModelConfig", "ShoeReconNet", "ReconOutput"],
        "shoerecon.losses": ["LossConfig", "compute_losses"],
        "shoerecon.render": ["RendererConfig", "Renderer"],
    }
    # the dataset and its generator must agree on the folder layout: stand in for both or neither
    data_real = all(_has(m, n) for m in ("shoerecon.data", "shoerecon.data.synthetic") for n in wanted[m])
    for module, names in wanted.items():
        real = data_real if module.startswith("shoerecon.data") else all(_has(module, n) for n in names)
        if real:
            continue
        mod = _module(module)
        for n in names:
            setattr(mod, n, g[n])
        if "." in module:
            parent, child = module.rsplit(".", 1)
            setattr(importlib.import_module(parent), child, mod)
        INSTALLED.append(module)
    return INSTALLED


def tiny_overrides(root: str, out_dir: str, name: str = "tiny", steps: int = 3) -> list[str]:
    """Overrides for a seconds-long run on 32 px images, valid for the real modules and the stand-ins."""
    return [f"data.root={root}", "data.image_size=32", "render.image_size=32", f"train.out_dir={out_dir}",
            f"train.name={name}", f"train.max_steps={steps}", "train.batch_size=1", "train.log_every=1",
            "train.sample_every=2", "train.val_every=0", "train.checkpoint_every=0", "synthetic.enabled=true",
            "synthetic.shoes=4", "synthetic.views=6", "synthetic.image_size=32", "train.val_views=[0, 3]",
            *_real_only_overrides()]


def _real_only_overrides() -> list[str]:
    """Small network / no LPIPS for the real modules (the stand-ins are tiny already)."""
    out = []
    from shoerecon.losses import LossConfig as L
    from shoerecon.model import ModelConfig as M

    if hasattr(L, "perceptual"):
        out.append("losses.perceptual=0")
    if hasattr(M, "unet_depth"):
        out += ["model.unet_depth=2", "model.unet_width=4", "model.latent_dim=16", "model.shape_hidden=16",
                "model.texture_size=32", "model.flow_hidden=4"]
    return out
