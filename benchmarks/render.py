"""Renderer speed and memory: soft silhouette + texture, B meshes x V views, K faces per pixel.

Prints one row per (device, image size, face count): forward and forward+backward wall time (median
of --repeats after a warm-up; "min": the fastest forward+backward), CPU time of forward+backward
(process time: less sensitive to other processes sharing the CPU), memory, and the number of occupied
fragment slots (<= N H W K). The scene is seeded: every run renders the same slots.

Memory:
- "saved MiB": bytes autograd keeps for backward (counted with saved_tensors_hooks);
- "peak MiB": on the CPU, the peak resident memory of one forward+backward above the resident memory
  just before it (VmHWM, reset just before, minus VmRSS, from /proc/self/status), each configuration in
  a fresh subprocess with the same scene, no warm-up (torch's CPU allocator has no peak counter, and
  tracemalloc does not see torch). It includes what glibc's malloc keeps of freed blocks, so it varies by
  ~10% from run to run. On CUDA: torch.cuda.max_memory_allocated. --no-memory skips it.

--compare-pytorch3d adds, when pytorch3d is importable, a parity table per scene: pix_to_face agreement
with pytorch3d's own rasteriser, the largest zbuf/barycentric/distance differences on agreeing slots,
vertex-gradient agreement of both against a float64 reference (ours in float64, which tests/render checks
against the naive rasteriser), and both timings; without pytorch3d it says so and the rest still runs.

    python benchmarks/render.py --threads 1                 # full grid, CPU (+ CUDA when present)
    python benchmarks/render.py --sizes 128 --faces 1280 --k 8 50 --threads 1
    python benchmarks/render.py --compare-pytorch3d --sizes 64 --faces 1280 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from shoerecon.geometry.primitives import ico_sphere, sphere_uv
from shoerecon.render import Cameras, Renderer, RendererConfig
from shoerecon.render.backends import pytorch3d_backend
from shoerecon.render.rasterize import RasterSettings, blur_radius_from_sigma, rasterize_packed

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


def make_scene(n_faces: int, batch: int, views: int, tex_size: int, device: str, dtype=torch.float32, seed: int = 0):
    """B shoe-proportioned ico-spheres (jittered) x V turntable views, random texture. Seeded."""
    if n_faces not in LEVEL_OF_FACES:
        raise SystemExit(f"--faces must be 20 * 4**level (ico-sphere), got {n_faces}")
    g = torch.Generator().manual_seed(seed)
    m = ico_sphere(LEVEL_OF_FACES[n_faces], dtype=dtype)
    scale = torch.tensor([0.5, 0.25, 0.2], dtype=dtype)  # shoe-like proportions, longest extent 1 (the data normalisation)
    verts = (m.verts * scale)[None].repeat(batch, 1, 1)
    verts = (verts + 0.01 * torch.randn(verts.shape, generator=g, dtype=dtype)).to(device)
    az = torch.arange(views, dtype=dtype) * (360.0 / views)
    params = torch.stack([az, torch.full_like(az, 10.0), torch.full_like(az, 2.2), torch.full_like(az, 30.0)], -1)
    cams = Cameras.from_tensor(params.expand(batch, -1, -1).to(device))
    texture = torch.rand(batch, 3, tex_size, tex_size, generator=g, dtype=dtype).to(device)
    uvs = sphere_uv(m.verts).to(device)
    return verts, m.faces.to(device), cams, texture, uvs


def renderer_for(args, size: int, k: int, backend: str = "torch") -> Renderer:
    return Renderer(RendererConfig(
        image_size=size, faces_per_pixel=k, sigma=args.sigma, gamma=args.gamma, cull_backfaces=args.cull, backend=backend,
    ))


def _loss(out: torch.Tensor) -> torch.Tensor:
    return out[:, :, 3].mean() + out[:, :, :3].mean()


def run_case(args, device: str, size: int, n_faces: int, k: int) -> dict:
    verts0, faces, cams, tex0, uvs = make_scene(n_faces, args.batch, args.views, args.texture, device)
    renderer = renderer_for(args, size, k)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fwd, both, cpu = [], [], []
    peak = float("nan")
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
        _loss(out).backward()
        sync()
        t2, c2 = time.perf_counter(), time.process_time()
        if it > 0:  # first run warms up allocators / kernels
            fwd.append(t1 - t0)
            both.append(t2 - t0)
            cpu.append(c2 - c0)
        if device.startswith("cuda"):
            peak = torch.cuda.max_memory_allocated() / 2**20
        del out
    if device == "cpu" and args.memory:
        peak = peak_in_subprocess(args, size, n_faces, k)
    with torch.no_grad():
        slots = renderer.rasterize_packed(verts0, faces, cams).pix.numel()
    return {
        "device": device, "size": size, "faces": n_faces, "k": k, "fwd_s": statistics.median(fwd),
        "fwd_bwd_s": statistics.median(both), "fwd_bwd_min_s": min(both), "cpu_s": statistics.median(cpu),
        "peak_mb": peak, "saved_mb": saved.total / 2**20, "slots": slots,
    }


# ------------------------------------------------------------------------------------------- memory
def _status_mib(field: str) -> float:
    """VmRSS / VmHWM (current / peak resident memory of this process) from /proc/self/status, in MiB."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024  # kB


def _peak_child(args) -> None:
    """In a fresh process: one forward+backward; prints the peak resident MiB above the resident size before.

    The peak is VmHWM, reset to the current size first (``/proc/self/clear_refs``) when the kernel allows;
    else the start-up high-water mark must be below the run's peak (ru_maxrss would even carry the
    launching process's peak over exec, which is why it is not used)."""
    size, n_faces, k = args.peak_child
    verts0, faces, cams, tex0, uvs = make_scene(n_faces, args.batch, args.views, args.texture, "cpu")
    renderer = renderer_for(args, size, k, args.backend)
    verts, tex = verts0.clone().requires_grad_(), tex0.clone().requires_grad_()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident size to the current one
    except OSError:
        pass
    before, high_before = _status_mib("VmRSS"), _status_mib("VmHWM")
    _loss(renderer(verts, faces, cams, tex, uvs, faces)).backward()
    peak = _status_mib("VmHWM")
    if peak <= high_before:  # the run never passed the start-up high-water mark: no measurement
        print(f"peak memory: the run stayed below the start-up high-water mark ({high_before:.0f} MiB)", file=sys.stderr)
        peak = float("nan")
    print(json.dumps({"peak_mib": peak - before}))


def peak_in_subprocess(args, size: int, n_faces: int, k: int, backend: str = "torch") -> float:
    cmd = [
        sys.executable, os.path.abspath(__file__), "--peak-child", str(size), str(n_faces), str(k),
        "--backend", backend, "--batch", str(args.batch), "--views", str(args.views), "--texture", str(args.texture),
        "--sigma", str(args.sigma), "--gamma", str(args.gamma), "--threads", str(args.threads or torch.get_num_threads()),
    ] + (["--cull"] if args.cull else [])
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if res.returncode != 0:
        print(f"peak-memory subprocess failed:\n{res.stderr[-2000:]}", file=sys.stderr)
        return float("nan")
    return json.loads(res.stdout.strip().splitlines()[-1])["peak_mib"]


# ---------------------------------------------------------------------------------- pytorch3d parity
def _fragment_loss(frags, sigma: float) -> torch.Tensor:
    """A loss through zbuf, barycentrics and distances (soft coverage, depth, barycentric spread)."""
    return torch.sigmoid(-frags.dists / sigma).sum() + 0.1 * frags.zbuf.sum() + (frags.bary**2).sum()


def _timed_grad(fn, verts0):
    verts = verts0.clone().requires_grad_()
    t0 = time.perf_counter()
    frags, loss = fn(verts)
    t1 = time.perf_counter()
    try:
        (grad,) = torch.autograd.grad(loss, verts)
    except FloatingPointError as err:  # the raw pytorch3d guard fired: report it, do not stop the table
        grad = torch.full_like(verts0, float("nan"))
        print(f"  note (gradient shown as nan): {err}", file=sys.stderr)
    return frags, grad, t1 - t0, time.perf_counter() - t0


def compare_pytorch3d(args) -> None:
    """Parity table against pytorch3d's own rasteriser (raw fragments and gradients), per scene."""
    if not pytorch3d_backend.available():
        print(
            "\n--compare-pytorch3d: pytorch3d is not importable here, so there is no parity table. Install it "
            "(https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md) and re-run this command."
        )
        return
    k = args.k[0]
    blur = blur_radius_from_sigma(args.sigma)
    kw = dict(faces_per_pixel=k, blur_radius=blur, cull_backfaces=args.cull, perspective_correct=True,
              clip_barycentrics=True, znear=0.01)
    print(f"\npytorch3d parity (K={k}, blur {blur:.4f}, perspective correct, clipped barycentrics; loss through zbuf, "
          "bary, dists; gradient error = max |g - g64| / max |g64|, g64 = ours in float64)")
    header = (f"{'image':>6s} {'faces':>6s} {'p2f agree':>9s} {'max dz':>9s} {'max dbary':>9s} {'max ddist':>9s} "
              f"{'ours grad':>9s} {'p3d grad':>9s} {'ours fwd':>8s} {'p3d fwd':>8s} {'ours f+b':>8s} {'p3d f+b':>8s}")
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        for n_faces in args.faces:
            verts, faces, cams, _, _ = make_scene(n_faces, args.batch, args.views, args.texture, "cpu")
            ndc64 = cams.to(dtype=torch.float64).transform_points_ndc(verts.double()[:, None]).reshape(-1, verts.shape[1], 3)
            ndc = ndc64.float()

            def ours(v):
                f = rasterize_packed(v, faces, RasterSettings(size, **kw))
                return f, _fragment_loss(f, args.sigma)

            def raw(v):
                f = pytorch3d_backend.raw_fragments(v, faces, RasterSettings(size, **kw), guard=True)
                return f, _fragment_loss(f, args.sigma)

            _, g64, _, _ = _timed_grad(ours, ndc64)
            fo, go, to_f, to_fb = _timed_grad(ours, ndc)
            fp, gp, tp_f, tp_fb = _timed_grad(raw, ndc)
            do, dp = fo.to_dense(), fp.to_dense()
            same = (do.pix_to_face == dp.pix_to_face) & (do.pix_to_face >= 0)
            either = (do.pix_to_face >= 0) | (dp.pix_to_face >= 0)
            agree = float(same.sum()) / max(int(either.sum()), 1)
            diff = lambda name: float((getattr(do, name)[same] - getattr(dp, name)[same]).abs().max().detach())  # noqa: E731
            scale = float(g64.abs().max())
            gerr = lambda g: float((g.double() - g64).abs().max()) / scale  # noqa: E731
            print(f"{size:>6d} {n_faces:>6d} {agree:>9.5f} {diff('zbuf'):>9.2e} {diff('bary_coords'):>9.2e} "
                  f"{diff('dists'):>9.2e} {gerr(go):>9.2e} {gerr(gp):>9.2e} {to_f:>8.3f} {tp_f:>8.3f} {to_fb:>8.3f} {tp_fb:>8.3f}",
                  flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--faces", type=int, nargs="+", default=[1280, 5120, 20480])
    p.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: cpu, and cuda if present)")
    p.add_argument("--batch", type=int, default=8, help="meshes")
    p.add_argument("--views", type=int, default=4, help="cameras per mesh")
    p.add_argument("--k", type=int, nargs="+", default=[8], help="faces per pixel (one row per value)")
    p.add_argument("--sigma", type=float, default=1e-4)
    p.add_argument("--gamma", type=float, default=1e-4)
    p.add_argument("--texture", type=int, default=256, help="texture side in texels")
    p.add_argument("--cull", action="store_true", help="cull back faces")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory subprocesses")
    p.add_argument("--compare-pytorch3d", action="store_true", help="parity table against pytorch3d (needs pytorch3d)")
    p.add_argument("--backend", default="torch", help=argparse.SUPPRESS)
    p.add_argument("--peak-child", type=int, nargs=3, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.peak_child:
        _peak_child(args)
        return
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(
        f"soft silhouette + texture, {args.batch} meshes x {args.views} views, sigma={args.sigma}, cull={args.cull}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {open('/proc/loadavg').read().split()[:3]}"
    )
    header = (f"{'device':8s} {'image':>6s} {'faces':>6s} {'K':>3s} {'fwd s':>8s} {'fwd+bwd s':>10s} {'min':>6s} "
              f"{'cpu s':>8s} {'saved MiB':>9s} {'peak MiB':>9s} {'slots':>9s}")
    print(header)
    print("-" * len(header))
    for device in devices:
        for size in args.sizes:
            for n_faces in args.faces:
                for k in args.k:
                    r = run_case(args, device, size, n_faces, k)
                    print(
                        f"{r['device']:8s} {r['size']:>6d} {r['faces']:>6d} {r['k']:>3d} {r['fwd_s']:>8.3f} {r['fwd_bwd_s']:>10.3f} "
                        f"{r['fwd_bwd_min_s']:>6.3f} {r['cpu_s']:>8.3f} {r['saved_mb']:>9.1f} {r['peak_mb']:>9.1f} {r['slots']:>9d}",
                        flush=True,
                    )
    if args.compare_pytorch3d:
        compare_pytorch3d(args)


if __name__ == "__main__":
    main()
