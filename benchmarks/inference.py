"""Inference speed: forward latency (batch 1, p50/p95), throughput (batch 16), and export time.

    python benchmarks/inference.py [--checkpoint CKPT] [--size 64] [--threads 2] [--device cpu]
            [--repeat 50] [--batch 16]

Without a checkpoint the model is a randomly initialised default ``ShoeReconNet`` on the packaged
template (same cost as a trained one). Target on a 2-core CPU at the default 64 px: forward
<= 50 ms per image. Export rows time writing one prediction (GLB, OBJ+MTL+PNG) and rendering its
8-view turntable strip.

On a shared, oversubscribed CPU (load average above the core count) run with ``--threads 1``:
OpenMP threads then wait at every op's barrier for a descheduled sibling, and a 2-thread forward
took ~50x the CPU time of a 1-thread one in our measurements (the ``cpu ms`` column shows it).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


CPU_MS: dict[int, list[float]] = {}


def time_ms(fn, device: torch.device, repeat: int, warmup: int = 3) -> list[float]:
    """Wall-clock milliseconds of ``repeat`` calls after ``warmup`` untimed ones.

    Also records the process CPU time per call (all threads) in ``CPU_MS[id(result)]``: on a shared
    machine wall time includes waiting for a core, CPU time does not (with 1 thread it is the
    uncontended latency).
    """
    for _ in range(warmup):
        fn()
    sync(device)
    out, cpu = [], []
    for _ in range(repeat):
        start, cstart = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        out.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - cstart) * 1e3)
    CPU_MS[id(out)] = cpu
    return out


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def load_model(checkpoint: str | None, device: torch.device):
    if checkpoint:
        from shoerecon.train.checkpoint import load_for_inference

        model, cfg = load_for_inference(checkpoint, device)
        return model, cfg.data.image_size, f"checkpoint {checkpoint}"
    from shoerecon.data.dataset import DataConfig
    from shoerecon.geometry.template import load_template
    from shoerecon.model import ModelConfig, ShoeReconNet

    model = ShoeReconNet(ModelConfig(), load_template()).to(device).eval()
    return model, DataConfig().image_size, "random default ShoeReconNet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--size", type=int, default=None, help="input size (default: the checkpoint's / 64)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--export-repeat", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from shoerecon.export.predict import export_mesh, predict_meshes
    from shoerecon.export.turntable import TurntableConfig, save_turntable_strip

    model, size, source = load_model(args.checkpoint, device)
    size = args.size or size
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {source}, {params / 1e6:.2f} M parameters, template {model.template_verts.shape[0]} verts / "
          f"{model.faces.shape[0]} faces, texture {model.cfg.texture_size}^2")
    print(f"device {device}, torch threads {torch.get_num_threads()}, input {size}x{size}\n")

    x1 = torch.rand(1, 3, size, size, device=device)
    xb = torch.rand(args.batch, 3, size, size, device=device)
    with torch.inference_mode():
        lat = time_ms(lambda: model(x1), device, args.repeat)
        big = time_ms(lambda: model(xb), device, max(5, args.repeat // 5))
    mesh = predict_meshes(model, x1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        glb = time_ms(lambda: export_mesh(mesh, tmp, "m", ("glb",)), device, args.export_repeat, warmup=1)
        obj = time_ms(lambda: export_mesh(mesh, tmp, "m", ("obj",)), device, args.export_repeat, warmup=1)
        strip = time_ms(lambda: save_turntable_strip(mesh, Path(tmp) / "s.png", TurntableConfig()), device,
                        max(1, args.export_repeat // 2), warmup=1)

    med = statistics.median
    cpu = lambda t: f"{med(CPU_MS[id(t)]):.1f}"  # noqa: E731
    rows = [
        ("forward, batch 1", f"{med(lat):.1f}", f"{percentile(lat, 95):.1f}", cpu(lat), f"{1e3 / med(lat):.1f}"),
        (f"forward, batch {args.batch}", f"{med(big):.1f}", f"{percentile(big, 95):.1f}", cpu(big),
         f"{args.batch * 1e3 / med(big):.1f}"),
        (f"  per image in batch {args.batch}", f"{med(big) / args.batch:.1f}", "", "", ""),
        ("export GLB", f"{med(glb):.1f}", f"{max(glb):.1f}", cpu(glb), ""),
        ("export OBJ+MTL+PNG", f"{med(obj):.1f}", f"{max(obj):.1f}", cpu(obj), ""),
        ("turntable strip (8 x 128 px)", f"{med(strip):.1f}", f"{max(strip):.1f}", cpu(strip), ""),
    ]
    print(f"| {'what':<30} | {'p50 ms':>8} | {'p95/max ms':>10} | {'cpu ms':>8} | {'images/s':>8} |")
    print(f"| {'-' * 30} | {'-' * 8}: | {'-' * 10}: | {'-' * 8}: | {'-' * 8}: |")
    for r in rows:
        print(f"| {r[0]:<30} | {r[1]:>8} | {r[2]:>10} | {r[3]:>8} | {r[4]:>8} |")
    try:
        import os

        print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times include waiting for a core)")
    except OSError:
        pass
    target = statistics.median(lat)
    print(f"\nforward batch 1 p50 {target:.1f} ms: {'meets' if target <= 50 else 'MISSES'} the <= 50 ms target")


if __name__ == "__main__":
    main()
