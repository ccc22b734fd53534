"""Time one training step (network, render of V target views, losses, backward + Adam) and print a table.

    python benchmarks/train_step.py [--size 64] [--batch 4 8] [--views 1 2 4] [--threads 2] [--device cpu]
            [--set model.unet_width=8 ...]

Columns are milliseconds per step (median over ``--repeat`` steps after one warm-up) split into the
network forward, the render, the losses and backward+optimizer, and shoes per second. Synthetic
batch (random cameras of the default rig, an ellipse silhouette); the template is the packaged one.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, (time.perf_counter() - start) * 1e3


def fake_batch(b: int, v: int, size: int) -> dict:
    """A batch of B identical ellipse shoes seen from V random rig azimuths (CPU tensors)."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    mask = ((x / 0.8) ** 2 + (y / 0.35) ** 2 < 1).float()[None]
    image = mask * torch.tensor([0.8, 0.2, 0.2])[:, None, None] + (1 - mask)
    az = torch.randint(0, 36, (b, v)).float() * 10
    cams = torch.stack([az, torch.full_like(az, 10.0), torch.full_like(az, 2.2), torch.full_like(az, 30.0)], -1)
    return {"input": image.expand(b, 3, size, size).clone(), "input_mask": mask.expand(b, 1, size, size).clone(),
            "targets": image.expand(b, v, 3, size, size).clone(), "target_masks": mask.expand(b, v, 1, size, size).clone(),
            "target_cameras": cams}


def benchmark_template(cfg):
    """The packaged template; before it exists, a stretched level-3 ico-sphere with xatlas UVs (said so)."""
    try:
        from shoerecon.geometry.template import load_template
    except ImportError:
        from shoerecon.geometry.mesh import Mesh
        from shoerecon.geometry.primitives import ico_sphere
        from shoerecon.geometry.uv import compute_uv

        sphere = ico_sphere(3)
        verts = sphere.verts * torch.tensor([0.5, 0.2, 0.15])
        print("note: shoerecon.geometry.template missing; using a stretched ico-sphere(3) as template")
        return Mesh(verts, sphere.faces, *compute_uv(verts, sphere.faces, cfg.uv.mode))
    return load_template(cfg.train.template, uv_mode=cfg.uv.mode, spherical=cfg.uv.spherical)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="experiments/configs/quickstart.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, nargs="+", default=[4, 8])
    p.add_argument("--views", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from shoerecon.losses import LossContext, build_loss_modules, compute_losses
    from shoerecon.model import ShoeReconNet
    from shoerecon.render import Renderer
    from shoerecon.train.config import load_config
    from shoerecon.train.system import render_prediction

    cfg = load_config(args.config, [f"data.image_size={args.size}", f"render.image_size={args.size}",
                                    *args.overrides])
    device = torch.device(args.device)
    template = benchmark_template(cfg)
    net = ShoeReconNet(cfg.model, template, cfg.variance).to(device)
    renderer = Renderer(cfg.render).to(device)
    modules = build_loss_modules(cfg.losses).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    print(f"device {device}, threads {args.threads}, {args.size}px, template {template.num_verts} verts / "
          f"{template.num_faces} faces, {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M params")
    print(f"{'B':>3} {'V':>3} | {'net':>8} {'render':>8} {'losses':>8} {'bwd+opt':>8} | {'step ms':>8} {'shoes/s':>8}")
    for b in args.batch:
        for v in args.views:
            batch = {k: t.to(device) for k, t in fake_batch(b, v, args.size).items()}
            rows = []
            for _ in range(args.repeat + 1):
                out, t_net = timed(lambda: net(batch["input"]), device)
                renders, t_ren = timed(lambda: render_prediction(renderer, out.verts, net, out.texture,
                                                                 batch["target_cameras"]), device)
                ctx = LossContext(out, renders, batch, net.faces, net.uvs, net.uv_faces, modules=modules)
                losses, t_loss = timed(lambda: compute_losses(cfg.losses, ctx), device)

                def backward():
                    losses["total"].backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)

                _, t_bwd = timed(backward, device)
                rows.append((t_net, t_ren, t_loss, t_bwd))
            med = [statistics.median(c) for c in zip(*rows[1:])]
            total = sum(med)
            print(f"{b:>3} {v:>3} | {med[0]:8.1f} {med[1]:8.1f} {med[2]:8.1f} {med[3]:8.1f} | {total:8.1f} "
                  f"{1e3 * b / total:8.1f}")


if __name__ == "__main__":
    main()
