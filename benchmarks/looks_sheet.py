"""Contact sheet of lit synthetic shoes (issue 10, appearance): does it read as sneaker product photos on white?

    PYTHONPATH=$PWD python benchmarks/looks_sheet.py --out looks_sheet.png [--shoes 16] [--size 128] [--views 0]

Each cell is one shoe with its own material style, lighting and framing (``render_photo``), shown as
the photo a camera would take (contact shadow included). ``--unlit`` renders the old look (soft shading baked into the texture, no lights), and
``--views 0,9,18`` puts several views of each shoe side by side. Shapes come from the
multi-part generator (``synth/shoe.py``) when it is there, else from the one-piece ``data/synthetic.py``
through ``synth/legacy.py``; ``--generator module:function`` takes any ``(index, seed, texture_size)
-> (Mesh, TexelGBuffer)`` callable.
"""
from __future__ import annotations

import argparse
import importlib
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def default_shoe(index: int, seed: int, texture_size: int):
    """(Mesh without texture, TexelGBuffer) of shoe ``index``: the multi-part generator, else today's one-piece shoe."""
    from shoerecon.geometry.mesh import Mesh

    try:
        from shoerecon.data.synth.shape import sample_shoe_params
        from shoerecon.data.synth.shoe import shoe_geometry
    except ImportError:
        from shoerecon.data.synth.legacy import legacy_gbuffer
        from shoerecon.data.synthetic import sample_shoe_params as legacy_params
        from shoerecon.data.synthetic import shoe_mesh, shoe_rng

        p = legacy_params(shoe_rng(seed, index))
        return shoe_mesh(p, textured=False), legacy_gbuffer(p, texture_size)
    geo = shoe_geometry(sample_shoe_params(np.random.default_rng([seed, index])), 0.022, texture_size)
    mesh = Mesh(torch.from_numpy(geo.verts).float(), torch.from_numpy(geo.faces), torch.from_numpy(geo.uvs).float(),
                torch.from_numpy(geo.uv_faces), None)
    return mesh, geo.gbuffer(texture_size)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="looks_sheet.png", help="PNG to write")
    ap.add_argument("--shoes", type=int, default=16, help="number of shoes (a square-ish grid)")
    ap.add_argument("--size", type=int, default=128, help="image size per view")
    ap.add_argument("--supersample", type=int, default=2)
    ap.add_argument("--texture-size", type=int, default=256)
    ap.add_argument("--views", default="0", help="comma-separated view indices of a 36-view turntable")
    ap.add_argument("--elevation", type=float, default=5.0)
    ap.add_argument("--fov", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unlit", action="store_true", help="the old look: soft shading baked into the texture, unlit render")
    ap.add_argument("--generator", default=None, help="module:function giving (mesh, gbuffer) per (index, seed, texture_size)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from tqdm import tqdm

    from shoerecon.data.synth.lighting import bake_shading, framing_distance, sample_lighting
    from shoerecon.data.synth.materials import paint_texture, sample_style
    from shoerecon.data.synth.photo import composite, render_photo

    make = default_shoe
    if args.generator:
        mod, fn = args.generator.split(":")
        make = getattr(importlib.import_module(mod), fn)
    views = [int(v) for v in args.views.split(",")]
    cols = max(1, int(np.ceil(np.sqrt(args.shoes / len(views)))))
    rows = int(np.ceil(args.shoes / cols))
    cell = args.size
    sheet = Image.new("RGB", (cols * len(views) * cell, rows * (cell + 12)), "white")
    draw = ImageDraw.Draw(sheet)
    t0 = time.time()
    for i in tqdm(range(args.shoes), desc="looks", unit="shoe"):
        rng = np.random.default_rng([args.seed, i, 17])
        mesh, gbuf = make(i, args.seed, args.texture_size)
        style, light = sample_style(rng), sample_lighting(rng)
        albedo, gloss = paint_texture(gbuf, style, rng)
        if args.unlit:
            albedo = bake_shading(albedo, gbuf.normal)
        mesh.texture = torch.from_numpy(albedo).permute(2, 0, 1).contiguous()
        dist = framing_distance(mesh.verts, args.fov, args.elevation, light.fill)
        az = torch.tensor([v * 10.0 for v in views])
        cams = torch.stack([az, torch.full_like(az, args.elevation), torch.full_like(az, dist), torch.full_like(az, args.fov)], -1)
        out = render_photo(mesh, cams, args.size, args.supersample, None if args.unlit else light,
                           torch.from_numpy(gloss)[None], with_background=True)
        photo = composite(*out)
        r, c = divmod(i, cols)
        for k in range(len(views)):
            img = (photo[k].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            sheet.paste(Image.fromarray(img), ((c * len(views) + k) * cell, r * (cell + 12) + 12))
        draw.text((c * len(views) * cell + 2, r * (cell + 12)), f"{i} {style.scheme[:7]} {style.kind} {style.logo}", fill=(120, 120, 120))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"{args.out}: {args.shoes} shoes in {time.time() - t0:.1f} s (threads {args.threads}, loadavg {open('/proc/loadavg').read().split()[:3]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
