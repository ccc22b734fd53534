"""Shape statistics of the synthetic shoe family next to real sneakers (issue 10):
`python benchmarks/shoe_stats.py [--shoes 300] [--seed 0]`.

For N generated shoes: side-view silhouette height / length (view 0, elevation 0, the mask's
bounding box through the turntable camera), width / length, heel sole thickness and collar height
(fractions of the length), as percentiles and a text histogram, beside the real values. With
``--hidden N``: how much of the first N ground-truth meshes no camera sees, and how far it lies
from the seen surface (the 3D metrics sample all of it).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

#: Side-view height / length of real product photos at about 0 degrees elevation (issue 10).
REAL_SIDE_ASPECT = {"Air Jordan 1 Low": 0.42, "Yeezy 700": 0.44, "Dunk Low": 0.45, "New Balance 990": 0.46,
                    "Superstar": 0.48, "Air Jordan 1 High": 0.59, "Air Jordan 4": 0.59, "Off-White AJ1 High": 0.59}
REAL_RANGES = {"heel sole / length": (0.08, 0.14), "width / length": (0.33, 0.45), "collar / length": (0.3, 0.7)}


def side_view_aspect(verts: np.ndarray, distance: float = 2.2) -> float:
    """Height / length of the bounding box of the perspective projection seen from +Z (view 0) at elevation 0."""
    depth = distance - verts[:, 2]
    u, v = verts[:, 0] / depth, verts[:, 1] / depth
    return float(np.ptp(v) / np.ptp(u))


def shoe_stats(p, edge_length: float = 0.03) -> dict[str, float]:
    """The statistics of one shoe (normalised frame: longest extent 1)."""
    from shoerecon.data.synth.shoe import shoe_geometry

    geo = shoe_geometry(p, edge_length)
    v = geo.verts.astype(np.float64)
    length = np.ptp(v[:, 0])
    return {"side height / length": side_view_aspect(v), "width / length": float(np.ptp(v[:, 2]) / length),
            "heel sole / length": p.heel_sole * geo.scale / length, "collar / length": p.collar_height * geo.scale / length}


def hidden_surface(p, edge_length: float = 0.035, image_size: int = 384) -> dict[str, float]:
    """How much ground-truth surface no camera sees (62 directions: 5 elevations x 12 azimuths, top,
    bottom) and how far it is from the seen surface: what the 3D metrics' GT samples contain that a
    single-surface prediction cannot match."""
    import torch
    from scipy.spatial import cKDTree

    from shoerecon.data.synthetic import SynthConfig, shoe_mesh
    from shoerecon.eval.metrics import sample_points
    from shoerecon.eval.seams import render_with_faces
    from shoerecon.render.cameras import Cameras
    from shoerecon.render.renderer import Renderer, RendererConfig

    renderer = Renderer(RendererConfig(image_size=image_size, faces_per_pixel=1, blend="hard", background=(1.0, 1.0, 1.0)))
    az, el = np.meshgrid(np.arange(0, 360, 30), [-60, -30, 0, 30, 60])
    cams = np.stack([az.ravel(), el.ravel(), np.full(az.size, 2.2), np.full(az.size, 30.0)], -1)
    cams = torch.tensor(np.concatenate([cams, [[0, 89, 2.2, 30], [0, -89, 2.2, 30]]]), dtype=torch.float32)
    m = shoe_mesh(p, SynthConfig(edge_length=edge_length), textured=False)
    seen = torch.zeros(m.num_faces, dtype=torch.bool)
    for k in range(0, len(cams), 8):
        _, pix_to_face = render_with_faces(m, Cameras.from_tensor(cams[k:k + 8]), renderer)
        seen[pix_to_face[pix_to_face >= 0].unique()] = True
    v = m.verts
    area = torch.linalg.cross(v[m.faces[:, 1]] - v[m.faces[:, 0]], v[m.faces[:, 2]] - v[m.faces[:, 0]]).norm(dim=-1) / 2
    hidden = float(area[~seen].sum() / area.sum())
    visible_pts = sample_points(v, m.faces[seen], 20000, torch.Generator().manual_seed(0))[0]
    hidden_pts = sample_points(v, m.faces[~seen], 5000, torch.Generator().manual_seed(1))[0]
    d, _ = cKDTree(visible_pts.numpy()).query(hidden_pts.numpy())
    return {"hidden area": hidden, "hidden dist p50": float(np.median(d)), "hidden dist p99": float(np.percentile(d, 99)),
            "area > 2% from seen": hidden * float(np.mean(d > 0.02))}


def histogram(values: np.ndarray, lo: float, hi: float, bins: int = 17, width: int = 40, marks=()) -> list[str]:
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    lines = []
    for k, c in enumerate(counts):
        real = [n for n, x in marks if edges[k] <= x < edges[k + 1]]
        bar = "#" * int(round(width * c / max(counts.max(), 1)))
        lines.append(f"  {edges[k]:.3f}-{edges[k + 1]:.3f} | {bar:<{width}} {c:4d}  {', '.join(real)}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shoes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--edge-length", type=float, default=0.03, help="mesh edge length (coarser = faster, same bbox)")
    ap.add_argument("--hidden", type=int, default=0, help="also measure the hidden GT surface of the first N shoes")
    args = ap.parse_args()
    from tqdm import tqdm

    from shoerecon.data.synth.shape import sample_shoe_params
    from shoerecon.data.synthetic import shoe_rng

    start = time.perf_counter()
    params = [sample_shoe_params(shoe_rng(args.seed, i)) for i in range(args.shoes)]
    rows = [shoe_stats(p, args.edge_length) for p in tqdm(params, desc="shoes")]
    print(f"{args.shoes} shoes (seed {args.seed}) in {time.perf_counter() - start:.1f} s, "
          f"load average {os.getloadavg()[0]:.2f}")
    styles = {k: sum(p.style == k for p in params) for k in ("low", "mid", "high")}
    soles = {k: sum(p.sole == k for p in params) for k in ("slim", "regular", "chunky")}
    print(f"styles {styles}, soles {soles}\n")
    print(f"| {'statistic':<22} | {'p5':>6} {'p25':>6} {'p50':>6} {'p75':>6} {'p95':>6} | {'min':>6} {'max':>6} | real |")
    print(f"|{'-' * 24}|{'-' * 36}|{'-' * 15}|------|")
    for key in rows[0]:
        x = np.array([r[key] for r in rows])
        pct = np.percentile(x, [5, 25, 50, 75, 95])
        real = ("0.42-0.59 (8 sneakers)" if key.startswith("side") else
                "{:.2f}-{:.2f}".format(*REAL_RANGES[key]) if key in REAL_RANGES else "")
        print(f"| {key:<22} | " + " ".join(f"{q:6.3f}" for q in pct) + f" | {x.min():6.3f} {x.max():6.3f} | {real} |")
    x = np.array([r["side height / length"] for r in rows])
    print("\nside-view height / length at elevation 0 (real sneakers marked):")
    print("\n".join(histogram(x, 0.34, 0.72, marks=list(REAL_SIDE_ASPECT.items()))))
    within = np.mean((x >= 0.36) & (x <= 0.70))
    print(f"\nin [0.36, 0.70]: {within:.0%}; real values' percentile ranks: " +
          ", ".join(f"{n} {np.mean(x < v):.0%}" for n, v in REAL_SIDE_ASPECT.items()))
    for key in ("width / length", "heel sole / length", "collar / length"):
        x = np.array([r[key] for r in rows])
        print(f"\n{key}:")
        print("\n".join(histogram(x, float(x.min()) - 1e-6, float(x.max()) + 1e-6, bins=10)))
    if args.hidden:
        print(f"\nhidden ground-truth surface (never seen from 62 directions) of the first {args.hidden} shoes:")
        hid = [hidden_surface(p) for p in tqdm(params[: args.hidden], desc="hidden")]
        print(f"| {'shoe':<16} | {'hidden area':>11} | {'dist p50':>8} | {'dist p99':>8} | {'area >2% away':>13} |")
        for p, h in zip(params, hid):
            print(f"| {p.style + ' ' + p.sole:<16} | {h['hidden area']:11.1%} | {h['hidden dist p50']:8.4f} | "
                  f"{h['hidden dist p99']:8.4f} | {h['area > 2% from seen']:13.2%} |")


if __name__ == "__main__":
    main()
