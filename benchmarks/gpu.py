"""One GPU-readiness script (< 5 min on a CUDA device): renderer, training steps with and without bf16, inference.

    python benchmarks/gpu.py                          # on a CUDA device: the full table
    python benchmarks/gpu.py --device cpu --quick     # the same checks, small, on CPU (--threads 1); CPUs without
                                                      # native bfloat16 run the bf16 rows ~10x slower (emulated)

Prints, on the device:
1. the renderer forward and forward+backward (soft silhouette + texture, ``--images`` renders) at 64/128/256 px
   with 1280/5120/20480 faces (an ico-sphere scaled like a shoe), K = 8 and 50, peak memory; and, when pytorch3d
   is importable, the same work through ``render.backend: pytorch3d`` (pytorch3d's CUDA rasteriser picks the
   faces, our closed form gives barycentrics/depth) and pytorch3d's own ``rasterize_meshes`` alone;
2. a v1 (base.yaml) and a v2_full training step at 128 px (batch ``--batch`` x 2 target views, random LPIPS /
   Inception backbones: no weights needed) with bf16 autocast off and on (``train.mixed_precision: bf16`` on
   CUDA; ``torch.autocast('cpu', bfloat16)`` around the step on CPU), its losses' finiteness and peak memory;
3. inference latency (one photo -> mesh + texture, batch 1) in float32 and bf16.

Mixed precision: the renderer and align's visibility pass run in float32 with autocast off (camera transform,
depth sort, barycentrics, blending: see shoerecon/render/renderer.py); the losses upcast to float32; FID's
Frechet distance is float64. Times are wall-clock medians (CUDA synchronised); on CPU quote the load average.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RENDER_CASES = [(64, 1280), (128, 5120), (256, 20480)]
QUICK_RENDER_CASES = [(32, 320), (64, 1280)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_mib(device: torch.device) -> float:
    """CUDA: peak allocated since the last reset; CPU: the process's peak resident set so far (all rows)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, device: torch.device, repeats: int) -> list[float]:
    """Seconds of ``fn()`` per call, ``repeats`` calls after one warm-up."""
    out = []
    for i in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        if i:
            out.append(time.perf_counter() - start)
    return out


# ------------------------------------------------------------------------------------------ renderer
def renderer_rows(args, device: torch.device) -> None:
    sys.path.insert(0, str(HERE))
    from render import make_scene  # benchmarks/render.py: the same scene as the renderer benchmark

    from shoerecon.render import RasterSettings, Renderer, RendererConfig
    from shoerecon.render.backends import pytorch3d_backend

    have_p3d = pytorch3d_backend.available()
    print(f"\n1. renderer: {args.images} renders (soft silhouette + 256^2 texture), wall ms (median of {args.repeats})"
          + ("" if have_p3d else "; pytorch3d not importable: its rows are skipped"))
    print(f"{'what':<28} {'px':>5} {'faces':>6} {'K':>3} | {'fwd ms':>8} {'fwd+bwd ms':>11} {'peak MiB':>9}")
    for size, n_faces in (QUICK_RENDER_CASES if args.quick else RENDER_CASES):
        for k in args.k:
            verts0, faces, cams, tex0, uvs = make_scene(n_faces, args.images // 4, 4, 256, str(device))
            variants = [("shoerecon (torch backend)", "torch")] + ([("backend=pytorch3d", "pytorch3d")] if have_p3d else [])
            for label, backend in variants:
                r = Renderer(RendererConfig(image_size=size, faces_per_pixel=k, backend=backend))
                row(label, size, n_faces, k, device, args,
                    lambda: r(verts0, faces, cams, tex0, uvs, faces),
                    lambda: _fwd_bwd(lambda v, t: r(v, faces, cams, t, uvs, faces), verts0, tex0))
            if have_p3d:
                cfg = RendererConfig(image_size=size, faces_per_pixel=k)
                ndc = cams.transform_points_ndc(verts0[:, None]).reshape(-1, verts0.shape[1], 3)

                def raw(v):
                    settings = RasterSettings(size, k, cfg.resolved_blur_radius(), False, True, cfg.resolved_clip(),
                                              cfg.znear)
                    return pytorch3d_backend.raw_fragments(v, faces, settings, guard=False)

                row("pytorch3d rasterize_meshes", size, n_faces, k, device, args, lambda: raw(ndc),
                    lambda: _raw_bwd(raw, ndc))


def _fwd_bwd(render, verts0, tex0):
    verts, tex = verts0.clone().requires_grad_(), tex0.clone().requires_grad_()
    out = render(verts, tex)
    (out[:, :, 3].mean() + out[:, :, :3].mean()).backward()


def _raw_bwd(raw, ndc0):
    ndc = ndc0.clone().requires_grad_()
    f = raw(ndc)
    (f.bary.sum() + f.zbuf.sum() + f.dists.sum()).backward()


def row(label, size, n_faces, k, device, args, fwd, both) -> None:
    reset_peak(device)
    with torch.no_grad():
        t_fwd = statistics.median(timed(fwd, device, args.repeats))
    t_both = statistics.median(timed(both, device, args.repeats))
    print(f"{label:<28} {size:>5} {n_faces:>6} {k:>3} | {1e3 * t_fwd:8.1f} {1e3 * t_both:11.1f} {peak_mib(device):9.0f}",
          flush=True)


# ------------------------------------------------------------------------------------------ training
def training_rows(args, device: torch.device, tmp: Path) -> dict:
    sys.path.insert(0, str(HERE))
    import train_step as ts  # benchmarks/train_step.py: the real Trainer on a small synthetic dataset

    from shoerecon.train.trainer import to_device

    data = tmp / "data"
    ts.make_dataset(data, max(8, args.batch), 12, args.train_size)
    print(f"\n2. training step at {args.train_size} px, batch {args.batch} x 2 target views, wall ms "
          f"(median of {args.steps}), random backbones")
    print(f"{'config':<10} {'bf16':>5} | {'step ms':>8} {'peak MiB':>9} {'losses':>8}")
    targs = argparse.Namespace(size=args.train_size, batch=args.batch, views=2, threads=args.threads,
                               device=str(device), random_backbones=True, budget=None, overrides=[])
    steps = {}
    for config in ("base", "v2_full"):
        for amp in (False, True):
            # remeshing is amortised, not per step; --quick: FID at 75 px, the CPU budget's setting
            targs.overrides = ["remesh.every_epochs=0", *(["fid.resize=75"] if args.quick else []), *args.set]
            cfg, trainer = ts.build(f"experiments/configs/{config}.yaml", targs, data, tmp / f"runs_{config}_{amp}")
            batches = iter(trainer.loader)
            finite = [True]

            def step():
                nonlocal batches
                try:
                    batch = next(batches)
                except StopIteration:
                    batches = iter(trainer.loader)
                    batch = next(batches)
                batch = to_device(batch, trainer.device)
                # the whole step under autocast (one process cannot hold Accelerators of two precisions;
                # train.mixed_precision: bf16 autocasts the forward + losses, a subset of this)
                ctx = torch.autocast(device.type, dtype=torch.bfloat16) if amp else _null()
                with ctx:
                    res = trainer.train_step(batch)
                finite[0] &= not res.skipped and all(math.isfinite(v) for v in res.losses.values())

            reset_peak(device)
            t = statistics.median(timed(step, device, args.steps))
            steps[(config, amp)] = t
            print(f"{config:<10} {'on' if amp else 'off':>5} | {1e3 * t:8.1f} {peak_mib(device):9.0f} "
                  f"{'finite' if finite[0] else 'NON-FINITE':>8}", flush=True)
            if config == "base":
                inference_net = trainer.net
    print(f"v2_full / v1: {steps[('v2_full', False)] / steps[('base', False)]:.2f} (fp32), "
          f"{steps[('v2_full', True)] / steps[('base', True)]:.2f} (bf16)")
    return {"net": inference_net}


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def inference_rows(args, device: torch.device, net) -> None:
    print(f"\n3. inference (photo -> mesh + texture, batch 1, {args.train_size} px), wall ms (median of {args.repeats * 3})")
    net.eval()
    image = torch.rand(1, 3, args.train_size, args.train_size, device=device)
    for amp in (False, True):
        ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else _null
        reset_peak(device)

        def fwd():
            with torch.no_grad(), ctx():
                out = net(image)
            return out

        t = statistics.median(timed(fwd, device, args.repeats * 3))
        print(f"{'bf16' if amp else 'fp32':<6} | {1e3 * t:8.1f} ms {peak_mib(device):9.0f} MiB", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="small sizes (32/64 px renders, 64 px training): CPU checks")
    p.add_argument("--k", type=int, nargs="+", default=[8, 50], help="faces per pixel")
    p.add_argument("--images", type=int, default=32, help="renders per renderer call (meshes x 4 views)")
    p.add_argument("--train-size", type=int, default=None, help="training/inference image size (default 128; quick 64)")
    p.add_argument("--batch", type=int, default=8, help="training batch (shoes)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="timed training steps per row")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], help="override for the training configs")
    p.add_argument("--skip", nargs="*", default=[], choices=("render", "train", "inference"))
    args = p.parse_args()
    if args.train_size is None:
        args.train_size = 64 if args.quick else 128
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    start = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {device} ({name}), torch {torch.__version__}, threads {args.threads}"
          + (", quick sizes" if args.quick else ""))
    if "render" not in args.skip:
        renderer_rows(args, device)
    net = None
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as tmp:
        if "train" not in args.skip:
            net = training_rows(args, device, Path(tmp))["net"]
    if "inference" not in args.skip:
        if net is None:
            from shoerecon.geometry.template import load_template
            from shoerecon.model import ShoeReconNet
            from shoerecon.train.config import load_config

            cfg = load_config("experiments/configs/base.yaml")
            net = ShoeReconNet(cfg.model, load_template(), cfg.variance).to(device)
        inference_rows(args, device, net)
    if device.type == "cpu":
        print(f"load average: {open('/proc/loadavg').read().strip()}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
