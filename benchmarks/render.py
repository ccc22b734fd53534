"""Renderer speed and memory: soft silhouette + texture, B meshes x V views, K faces per pixel.

Prints one row per (device, image size, face count): forward and forward+backward wall time (median
of --repeats after a warm-up; "min": the fastest forward+backward), CPU time of forward+backward
(process time: less sensitive to other processes sharing the CPU), memory, and the number of occupied fragment slots (<= N H W K).
Memory: "saved MiB" = bytes autograd keeps for backward (counted with saved_tensors_hooks; this is
what grows with H W K); "peak MiB" = torch.cuda.max_memory_allocated on CUDA (not measured on CPU:
the process peak RSS mixes in earlier rows; stage-1 temporaries are bounded by its chunk size).

    python benchmarks/render.py                       # full grid, CPU (+ CUDA when present)
    python benchmarks/render.py --sizes 128 --faces 5120 --devices cpu
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from shoerecon.geometry.primitives import ico_sphere, sphere_uv
from shoerecon.render import Cameras, Renderer, RendererConfig

LEVEL_OF_FACES = {20 * 4**lvl: lvl for lvl in range(8)}


class SavedBytes:
    """Counts the bytes autograd saves for backward (each storage once)."""

    def __init__(self) -> None:
        self.seen: set = set()
        self.total = 0

    def pack(self, t: torch.Tensor):
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in self.seen:
            self.seen.add(key)
            self.total += t.untyped_storage().nbytes()
        return t


def make_scene(n_faces: int, batch: int, views: int, tex_size: int, device: str):
    if n_faces not in LEVEL_OF_FACES:
        raise SystemExit(f"--faces must be 20 * 4**level (ico-sphere), got {n_faces}")
    m = ico_sphere(LEVEL_OF_FACES[n_faces])
    scale = torch.tensor([0.5, 0.25, 0.2])  # shoe-like proportions, longest extent 1 (the data normalisation)
    verts = (m.verts * scale)[None].repeat(batch, 1, 1).to(device)
    verts = verts + 0.01 * torch.randn_like(verts)
    az = torch.arange(views, dtype=torch.float32) * (360.0 / views)
    params = torch.stack([az, torch.full_like(az, 10.0), torch.full_like(az, 2.2), torch.full_like(az, 30.0)], -1)
    cams = Cameras.from_tensor(params.expand(batch, -1, -1).to(device))
    texture = torch.rand(batch, 3, tex_size, tex_size, device=device)
    uvs = sphere_uv(m.verts).to(device)
    return verts, m.faces.to(device), cams, texture, uvs


def run_case(args, device: str, size: int, n_faces: int) -> dict:
    verts0, faces, cams, tex0, uvs = make_scene(n_faces, args.batch, args.views, args.texture, device)
    cfg = RendererConfig(
        image_size=size, faces_per_pixel=args.k, sigma=args.sigma, gamma=args.gamma, cull_backfaces=args.cull
    )
    renderer = Renderer(cfg)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fwd, both, cpu = [], [], []
    for it in range(args.repeats + 1):
        verts, tex = verts0.clone().requires_grad_(), tex0.clone().requires_grad_()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        saved = SavedBytes()
        sync()
        c0, t0 = time.process_time(), time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
            out = renderer(verts, faces, cams, tex, uvs, faces)
        sync()
        t1 = time.perf_counter()
        loss = out[:, :, 3].mean() + out[:, :, :3].mean()
        loss.backward()
        sync()
        t2, c2 = time.perf_counter(), time.process_time()
        if it > 0:  # first run warms up allocators / kernels
            fwd.append(t1 - t0)
            both.append(t2 - t0)
            cpu.append(c2 - c0)
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan")
        del out, loss
    with torch.no_grad():
        slots = renderer.rasterize_packed(verts0, faces, cams).pix.numel()
    return {
        "device": device, "size": size, "faces": n_faces, "fwd_s": statistics.median(fwd),
        "fwd_bwd_s": statistics.median(both), "fwd_bwd_min_s": min(both), "cpu_s": statistics.median(cpu), "peak_mb": peak, "saved_mb": saved.total / 2**20, "slots": slots,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--faces", type=int, nargs="+", default=[1280, 5120, 20480])
    p.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: cpu, and cuda if present)")
    p.add_argument("--batch", type=int, default=8, help="meshes")
    p.add_argument("--views", type=int, default=4, help="cameras per mesh")
    p.add_argument("--k", type=int, default=8, help="faces per pixel")
    p.add_argument("--sigma", type=float, default=1e-4)
    p.add_argument("--gamma", type=float, default=1e-4)
    p.add_argument("--texture", type=int, default=256, help="texture side in texels")
    p.add_argument("--cull", action="store_true", help="cull back faces")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(
        f"soft silhouette + texture, {args.batch} meshes x {args.views} views, K={args.k}, sigma={args.sigma}, "
        f"cull={args.cull}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    header = f"{'device':8s} {'image':>6s} {'faces':>6s} {'fwd s':>8s} {'fwd+bwd s':>10s} {'min':>6s} {'cpu s':>8s} {'saved MiB':>9s} {'peak MiB':>9s} {'slots':>9s}"
    print(header)
    print("-" * len(header))
    for device in devices:
        for size in args.sizes:
            for n_faces in args.faces:
                r = run_case(args, device, size, n_faces)
                print(
                    f"{r['device']:8s} {r['size']:>6d} {r['faces']:>6d} {r['fwd_s']:>8.3f} {r['fwd_bwd_s']:>10.3f} {r['fwd_bwd_min_s']:>6.3f} "
                    f"{r['cpu_s']:>8.3f} {r['saved_mb']:>9.1f} {r['peak_mb']:>9.1f} {r['slots']:>9d}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
