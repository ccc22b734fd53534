"""Synthetic "unknown rig" product photos: what a shop's 360 viewer publishes, with the truth kept apart.

Each shoe gets its own hidden rig (elevation, fov, the distance that frames the shoe, start azimuth, the
shoe's offset from the turntable axis); every view is re-centred and re-zoomed on the shoe (a per-view
crop, ``render.cameras`` "Product photos"), composited on a white floor with a soft contact shadow and a
faint reflection, and saved as JPEG with shop-like names (``img01.jpg`` ...). The exact cameras, alpha and
mesh go to a separate truth folder, for scoring ``shoerecon import`` and ``shoerecon calibrate``.

Shoes come from the synthetic generator's public API (``sample_shoe_params``, ``shoe_mesh``), so a new
shoe family there is picked up here.

```
<out>/<sku>/img01.jpg ... imgNN.jpg          the photos (nothing else: the importer's input)
<truth>/rig.json                             {"shoes": {sku: hidden rig}} (elevation, fov, distance, ...)
<truth>/<sku>/cameras.json                   the exact (V, 10) cameras of the H x W photos (layout schema)
<truth>/<sku>/alpha/NNN.png                  exact shoe coverage per view (shadow and reflection excluded)
<truth>/<sku>/mesh.glb                       the shoe
```
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from shoerecon.geometry.io.glb import save_glb
from shoerecon.geometry.mesh import Mesh, Meshes
from shoerecon.render.cameras import Cameras


@dataclass
class ProductPhotoConfig:
    """Hidden-rig ranges and the photo look.

    Attributes:
        height, width: photo size in pixels (shops: 4:3 or 3:2). num_views: photos per shoe.
        elevation_range, fov_range: degrees, uniform per shoe.
        max_offset: the shoe's offset from the turntable axis, up to this fraction of its length (in the floor plane).
        start_range: start azimuth uniform in [-start_range, start_range] degrees. direction: 1 or -1, or 0: drawn
            per shoe (shops' turntables and photo orders go either way).
        fill_range: the shoe's bounding box fills this fraction of the photo's width (or height, whichever
            binds) after each view's re-centring and zoom, drawn per shoe; ``zoom_jitter`` varies it per view.
        framing: the uncropped camera's distance frames a length-1 shoe to this fraction of the shorter side
            (so the fov shows in the perspective, as with a real photographer).
        shadow, reflection: strength of the floor's contact shadow and mirror reflection (0 = none).
        supersample: antialiasing factor of the renders. jpeg_quality: of the saved photos.
        name_format: file name of view i (1-based), StockX-like.
    """

    height: int = 96
    width: int = 128
    num_views: int = 36
    elevation_range: tuple[float, float] = (0.0, 20.0)
    fov_range: tuple[float, float] = (15.0, 50.0)
    max_offset: float = 0.1
    start_range: float = 20.0
    direction: int = 1
    fill_range: tuple[float, float] = (0.75, 0.9)
    zoom_jitter: float = 0.03
    framing: float = 0.8
    shadow: float = 0.35
    reflection: float = 0.18
    supersample: int = 2
    jpeg_quality: int = 85
    name_format: str = "img{:02d}.jpg"


def sample_hidden_rig(rng: np.random.Generator, cfg: ProductPhotoConfig) -> dict:
    """A shoe's hidden rig: elevation, fov, distance, start_azimuth, direction, translation (3,), fill."""
    fov = float(rng.uniform(*cfg.fov_range))
    r, phi = cfg.max_offset * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
    return {
        "elevation": float(rng.uniform(*cfg.elevation_range)),
        "fov": fov,
        "distance": framing_distance(fov, cfg.framing),
        "start_azimuth": float(rng.uniform(-cfg.start_range, cfg.start_range)),
        # drawn only for 0: a seed's sets of a fixed direction stay what they were
        "direction": int(cfg.direction) if cfg.direction else int(rng.choice([-1, 1])),
        "translation": [r * math.cos(phi), float(rng.uniform(-0.03, 0.03)), r * math.sin(phi)],
        "fill": float(rng.uniform(*cfg.fill_range)),
    }


def framing_distance(fov: float | Tensor, framing: float) -> float | Tensor:
    """The distance at which a length-1 object spans ``framing`` of the shorter image side (fov in degrees; a
    tensor fov gives a differentiable tensor).

    A photographer frames the shoe, which ties distance to fov: with a free zoom per view they are otherwise one
    unknown, the perspective. The hidden rigs here and ``shoerecon calibrate`` use the same rule.
    """
    if isinstance(fov, Tensor):
        return 0.5 / (framing * torch.tan(torch.deg2rad(fov) / 2)) + 0.25
    return 0.5 / (framing * math.tan(math.radians(fov) / 2)) + 0.25


def recentre_crops(ndc: Tensor, height: int, width: int, fill: Tensor) -> Tensor:
    """Per-view crop (V, 3) that centres the bounding box of projected points and zooms it to ``fill``.

    Args:
        ndc: (V, N, 2) projected points of the plain (uncropped) cameras. fill: (V,) fraction of the
            image the box's binding side fills.
    Returns:
        (V, 3) (shift_x, shift_y, zoom) in the NDC of an H x W image (shorter side spans [-1, 1]).
    """
    s = min(height, width)
    lo, hi = ndc.amin(1), ndc.amax(1)
    centre, extent = (lo + hi) / 2, (hi - lo).clamp_min(1e-6)
    half = ndc.new_tensor([width / s, height / s])
    zoom = (fill * torch.minimum(2 * half[0] / extent[:, 0], 2 * half[1] / extent[:, 1]))
    return torch.cat([-zoom[:, None] * centre, zoom[:, None]], dim=1)


def product_cameras(mesh: Mesh, rig: dict, cfg: ProductPhotoConfig, rng: np.random.Generator) -> Tensor:
    """The exact (V, 10) cameras of a shoe's photos under its hidden ``rig`` (crop: re-centred, zoomed to fill)."""
    plain = Cameras.turntable(cfg.num_views, rig["elevation"], rig["distance"], rig["fov"], rig["start_azimuth"],
                              direction=rig["direction"], translation=rig["translation"])
    ndc = plain.transform_points_ndc(mesh.verts.expand(cfg.num_views, -1, -1))[..., :2]
    fill = torch.tensor(rig["fill"] * (1 + cfg.zoom_jitter * rng.uniform(-1, 1, cfg.num_views)), dtype=torch.float32)
    crops = recentre_crops(ndc, cfg.height, cfg.width, fill)
    return Cameras.turntable(cfg.num_views, rig["elevation"], rig["distance"], rig["fov"], rig["start_azimuth"],
                             direction=rig["direction"], translation=rig["translation"], crop=crops).to_tensor()


def _render(verts: Tensor, mesh: Mesh, cameras: Tensor, cfg: ProductPhotoConfig, textured: bool = True) -> Tensor:
    """Hard K=1 render of ``verts`` with the mesh's faces/UVs, box-filtered: (V, 4, H, W), RGB premultiplied on black."""
    from shoerecon.render.renderer import Renderer, RendererConfig

    k = cfg.supersample
    r = Renderer(RendererConfig(image_size=(cfg.height * k, cfg.width * k), faces_per_pixel=1, blend="hard",
                                background=(0.0, 0.0, 0.0)))
    out = []
    for start in range(0, cameras.shape[0], 12):
        cams = Cameras.from_tensor(cameras[start : start + 12][None])
        with torch.no_grad():
            out.append(r(Meshes.from_topology(mesh, verts[None], mesh.texture[None] if textured else None), cams)[0])
    return F.avg_pool2d(torch.cat(out), k) if k > 1 else torch.cat(out)


def _blur(x: Tensor, sigma: float) -> Tensor:
    import kornia

    k = 2 * int(math.ceil(2.5 * sigma)) + 1
    return kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="replicate")


def render_product_views(mesh: Mesh, cameras: Tensor, cfg: ProductPhotoConfig) -> tuple[Tensor, Tensor]:
    """Photos (V, 3, H, W) on a white floor with contact shadow and reflection, and the exact alpha (V, 1, H, W).

    The shadow is the shoe's footprint (its vertices dropped onto the floor plane) blurred; the reflection is
    the shoe mirrored in the floor, faded with height. Both only darken/tint the floor: alpha is the shoe's.
    """
    floor = float(mesh.verts[:, 1].min())
    shoe = _render(mesh.verts, mesh, cameras, cfg)
    alpha = shoe[:, 3:].clamp(0, 1)
    photo = shoe[:, :3] + (1 - alpha)  # shoe over white
    if cfg.shadow > 0:
        flat = mesh.verts * torch.tensor([1.08, 0.0, 1.15]) + torch.tensor([0.0, floor, 0.0])
        foot = _render(flat, mesh, cameras, cfg, textured=False)[:, 3:]
        sigma = max(1.0, 0.02 * cfg.height)
        shade = (0.6 * _blur(foot, sigma) + 0.4 * _blur(foot, 3 * sigma)).clamp(0, 1)
        photo = photo * (1 - cfg.shadow * shade * (1 - alpha))
    if cfg.reflection > 0:
        mirrored = mesh.verts * torch.tensor([1.0, -1.0, 1.0]) + torch.tensor([0.0, 2 * floor, 0.0])
        refl = _render(mirrored, Mesh(mirrored, mesh.faces.flip(-1), mesh.uvs, mesh.uv_faces.flip(-1), mesh.texture),
                       cameras, cfg)
        # Fade with distance below the contact line: strongest where the sole touches the floor.
        fade = _fade_rows(refl[:, 3:], cfg.height)
        a = cfg.reflection * refl[:, 3:] * fade * (1 - alpha)
        photo = photo * (1 - a) + a * refl[:, :3] / refl[:, 3:].clamp_min(1e-6)
    return photo.clamp(0, 1), alpha


def _fade_rows(refl_alpha: Tensor, height: int) -> Tensor:
    """(V, 1, H, W) weight that falls from 1 at the reflection's top row to 0 about 15% of the image lower."""
    rows = torch.arange(height, dtype=refl_alpha.dtype).view(1, 1, -1, 1)
    top = torch.where(refl_alpha.amax(-1, keepdim=True) > 0.01, rows, torch.full_like(rows, height)).amin(2, keepdim=True)
    return (1 - (rows - top) / (0.15 * height)).clamp(0, 1)


def save_jpeg(path: Path, rgb: Tensor, quality: int) -> None:
    arr = rgb.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "RGB").save(path, quality=quality)


def sku(index: int) -> str:
    return f"sku_{index:05d}"


def generate_product_shoe(out: str | Path, truth: str | Path, index: int, seed: int, cfg: ProductPhotoConfig) -> dict:
    """Make shoe ``index`` (depends on (seed, index) only), write its photos and truth; returns its hidden rig."""
    from shoerecon.data.layout import Rig, save_rgba, write_json
    from shoerecon.data.synthetic import sample_shoe_params, shoe_mesh, shoe_rng

    mesh = shoe_mesh(sample_shoe_params(shoe_rng(seed, index)))
    rng = np.random.default_rng([int(seed), int(index), 13])
    rig = sample_hidden_rig(rng, cfg)
    cams = product_cameras(mesh, rig, cfg, rng)
    photos, alpha = render_product_views(mesh, cams, cfg)
    name = sku(index)
    for v in range(cfg.num_views):
        save_jpeg(Path(out) / name / cfg.name_format.format(v + 1), photos[v], cfg.jpeg_quality)
        save_rgba(Path(truth) / name / "alpha" / f"{v:03d}.png", photos[v], alpha[v])
    write_json(Path(truth) / name / "cameras.json", Rig(cams, 0).to_json(image_size=[cfg.height, cfg.width]))
    save_glb(mesh, Path(truth) / name / "mesh.glb")
    return rig


def _job(args) -> tuple[str, dict]:
    torch.set_num_threads(1)
    out, truth, index, seed, cfg = args
    return sku(index), generate_product_shoe(out, truth, index, seed, cfg)


def generate_product_photos(out: str | Path, num_shoes: int, seed: int = 0, cfg: ProductPhotoConfig | None = None,
                            truth: str | Path | None = None, workers: int = 1, progress: bool = True) -> tuple[Path, Path]:
    """Write ``num_shoes`` product-photo turntables to ``out`` and their truth to ``truth`` (default ``<out>_truth``)."""
    from tqdm import tqdm

    from shoerecon.data.layout import write_json

    cfg = cfg or ProductPhotoConfig()
    out = Path(out)
    truth = Path(truth) if truth is not None else out.with_name(out.name + "_truth")
    for folder in (out, truth):
        if folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f"{folder}: folder is not empty; choose a new folder")
    jobs = [(str(out), str(truth), i, seed, cfg) for i in range(num_shoes)]
    rigs = {}
    bar = tqdm(total=num_shoes, desc="product photos", unit="shoe", disable=not progress)
    if workers <= 1:
        for job in jobs:
            name, rig = _job(job)
            rigs[name] = rig
            bar.update()
    else:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            for name, rig in pool.imap_unordered(_job, jobs):
                rigs[name] = rig
                bar.update()
    bar.close()
    write_json(truth / "rig.json", {"shoes": dict(sorted(rigs.items())), "config": asdict(cfg), "seed": seed})
    return out, truth


# ----------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ProductPhotoConfig()
    parser.add_argument("--out", required=True, help="folder of shoe folders of photos (the input of `shoerecon import`)")
    parser.add_argument("--truth", default=None, help="where the true cameras/alpha/meshes go (default <out>_truth)")
    parser.add_argument("--shoes", type=int, default=20, help="number of shoes (default 20)")
    parser.add_argument("--views", type=int, default=d.num_views, help=f"photos per shoe (default {d.num_views})")
    parser.add_argument("--height", type=int, default=d.height, help=f"photo height (default {d.height})")
    parser.add_argument("--width", type=int, default=d.width, help=f"photo width (default {d.width})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--no-shadow", action="store_true", help="no contact shadow or floor reflection")
    parser.add_argument("--direction", type=int, choices=(1, -1, 0), default=0,
                        help="turntable direction: 1, -1, or 0 to draw it per shoe (default 0: shops go either way)")


def run(args: argparse.Namespace) -> int:
    if args.shoes < 1 or args.views < 3 or min(args.height, args.width) < 16:
        raise SystemExit("synth-photos: need --shoes >= 1, --views >= 3 and photos of at least 16 x 16 pixels")
    cfg = ProductPhotoConfig(height=args.height, width=args.width, num_views=args.views, direction=args.direction,
                             **({"shadow": 0.0, "reflection": 0.0} if args.no_shadow else {}))
    start = time.perf_counter()
    out, truth = generate_product_photos(args.out, args.shoes, args.seed, cfg, args.truth, args.workers)
    print(f"wrote {args.shoes} shoes x {args.views} photos ({args.width}x{args.height}) to {out}, truth in {truth} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0
