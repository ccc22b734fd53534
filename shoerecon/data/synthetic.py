"""Synthetic turntable datasets of procedural shoes (issue 10): the dataset writer and its config.

The shoe itself lives in ``shoerecon.data.synth`` (``shape``: the multi-part shape family,
``shoe``: meshing, UV atlas, texel G-buffer and texture). This module renders each shoe on the
turntable rig and writes the DESIGN layout: ``views/NNN.png`` (RGBA, alpha = exact pixel
coverage), ``mesh.glb`` (the multi-part ground truth, every part closed; hidden surfaces lie
within a part's wall thickness of visible ones), ``params.json`` (shape, material style, lighting)
and, with ``framing``, the shoe's own ``cameras.json``. Appearance: ``synth.materials`` paints the
texture from the shoe's texel G-buffer, ``synth.photo`` renders it (lit or unlit, ``look``).

Normalisation follows DESIGN: centred bounding box, longest extent 1, +Y up, toe at +X, the
lateral side of a right shoe at +Z.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from shoerecon.data.synth.shape import DEFAULT_SHAPE_RANGES, ShoeParams, sample_shoe_params as _sample
from shoerecon.data.synth.shoe import shoe_mesh as _shoe_mesh
from shoerecon.geometry.mesh import Mesh, Meshes

__all__ = ["DEFAULT_SHAPE_RANGES", "ShoeParams", "SynthConfig", "sample_shoe_params", "shoe_rng", "shoe_mesh",
           "render_turntable", "make_shoe", "generate_shoe", "generate_dataset", "split_ids", "shoe_id"]


LOOKS = ("photo", "photo-clipped", "unlit", "flat")
LIT_LOOKS = ("photo", "photo-clipped")


@dataclass
class SynthConfig:
    """Procedural shoe generator and turntable rig.

    Attributes:
        shape_ranges: uniform sampling range per continuous parameter of ``ShoeParams`` (styles and
            sole kinds sample sub-ranges, clipped to these).
        edge_length: target triangle edge length of the ground-truth meshes (shoe length 1).
        texture_size: side of the square texture atlas.
        num_views, elevation, distance, fov: the turntable (defaults = ``Cameras.turntable()``).
        image_size: rendered view side in pixels. supersample: render at this factor and box-filter
            down, so alpha is fractional pixel coverage (1 = hard 0/1 coverage).
        look: "photo" (materials painted per texel, lit like a product photo: ``synth.materials``,
            ``synth.lighting``, ``synth.photo``; exposed like product photography: the shoe stays below the
            white background by the lighting's ``headroom``), "photo-clipped" (the same, exposed like the first
            photo look: radiance clipped at the background's white, so white shoe parts vanish into it), "unlit"
            (the same materials, no lights) or "flat"
            (``synth.shoe.flat_paint``: one colour per part, soles never white, soft shading baked in:
            the old generator's look, for tests of threshold masks). Alpha is always the exact coverage.
        framing: False: every shoe on the rig's ``distance`` (shoes are normalised to length 1, so
            at the defaults view 0 is ~85 % filled); True: a per-shoe distance (``<shoe>/cameras.json``)
            at which view 0 is filled by the lighting's ``fill`` (70-90 %), like product photos.
        val_fraction, test_fraction: split sizes written to splits.json.
    """

    shape_ranges: dict = field(default_factory=lambda: dict(DEFAULT_SHAPE_RANGES))
    edge_length: float = 0.035
    texture_size: int = 256
    num_views: int = 36
    elevation: float = 10.0
    distance: float = 2.2
    fov: float = 30.0
    image_size: int = 128
    supersample: int = 2
    look: str = "photo"
    framing: bool = False
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        unknown = set(self.shape_ranges) - set(DEFAULT_SHAPE_RANGES)
        if unknown:
            raise ValueError(f"SynthConfig.shape_ranges: unknown parameters {sorted(unknown)}; "
                             f"valid: {sorted(DEFAULT_SHAPE_RANGES)}")
        for k, r in self.shape_ranges.items():
            if len(r) != 2 or not float(r[0]) <= float(r[1]):
                raise ValueError(f"SynthConfig.shape_ranges[{k!r}] must be (low, high) with low <= high, got {r}")
        if self.supersample < 1 or self.image_size < 1 or self.num_views < 1:
            raise ValueError("SynthConfig: supersample, image_size and num_views must be >= 1")
        if self.look not in LOOKS:
            raise ValueError(f"SynthConfig.look={self.look!r}; valid: {', '.join(LOOKS)}")


def shoe_rng(seed: int, index: int) -> np.random.Generator:
    """The per-shoe generator: shoe ``index`` of a dataset with ``seed`` is the same in every process."""
    return np.random.default_rng([int(seed), int(index)])


def sample_shoe_params(rng: np.random.Generator, cfg: SynthConfig | None = None) -> ShoeParams:
    """Draw one shoe of the family (``synth.shape.sample_shoe_params``) within ``cfg.shape_ranges``."""
    return _sample(rng, (cfg or SynthConfig()).shape_ranges)


def shoe_mesh(p: ShoeParams, cfg: SynthConfig | None = None, textured: bool = True) -> Mesh:
    """The normalised multi-part ``Mesh`` of shoe ``p`` (centred bbox, longest extent 1, toe +X, lateral +Z),
    textured by ``synth.materials`` with a style drawn from ``p.seed``."""
    cfg = cfg or SynthConfig()
    return _shoe_mesh(p, cfg.edge_length, cfg.texture_size, textured)


# ----------------------------------------------------------------------------------------- rendering


def render_turntable(mesh: Mesh, cameras: Tensor, image_size: int, supersample: int = 1, chunk: int = 12) -> Tensor:
    """Render a textured mesh from cameras (V, 4): (V, 4, S, S) straight RGB + alpha = pixel coverage.

    The mesh must be closed with outward faces (back faces are culled). Hard blending with one face
    per pixel gives exact 0/1 coverage per sample; with ``supersample``
    k the mesh is rendered at k*S and box-filtered, so alpha is the covered fraction of each pixel
    and RGB is un-premultiplied (white where nothing is covered).
    """
    from shoerecon.render.cameras import Cameras
    from shoerecon.render.renderer import Renderer, RendererConfig

    big = image_size * supersample
    # The mesh is closed, so culling back faces changes no pixel of a K=1 hard render and is ~4x faster.
    renderer = Renderer(RendererConfig(image_size=big, faces_per_pixel=1, blend="hard", background=(1.0, 1.0, 1.0),
                                       cull_backfaces=True))
    out = []
    for start in range(0, cameras.shape[0], chunk):
        cams = Cameras.from_tensor(cameras[start : start + chunk][None])
        with torch.no_grad():
            rgba = renderer(Meshes.from_mesh(mesh), cams)[0]
        out.append(rgba)
    rgba = torch.cat(out)
    if supersample > 1:
        rgba = torch.nn.functional.avg_pool2d(rgba, supersample)
    alpha = rgba[:, 3:].clamp(0, 1)
    premult = rgba[:, :3] - (1.0 - alpha)  # the renderer composites on white
    rgb = torch.where(alpha > 1e-6, premult / alpha.clamp_min(1e-6), torch.ones_like(premult))
    return torch.cat([rgb.clamp(0, 1), alpha], dim=1)


def _save_mesh(mesh: Mesh, path: Path) -> None:
    """Ground truth as GLB through the export module (textured, UVs kept)."""
    from shoerecon.geometry.io.glb import save_glb

    save_glb(mesh, path)


def shoe_id(index: int) -> str:
    return f"shoe_{index:05d}"


def make_shoe(index: int, seed: int, cfg: SynthConfig):
    """Shoe ``index`` of a dataset with ``seed``: (params, textured Mesh, gloss (T, T), lighting or None, style).

    The shape draws from ``shoe_rng(seed, index)``, the appearance (style, lighting) from its own
    stream, so a shape does not change when the appearance modules change.
    """
    from shoerecon.data.synth.lighting import sample_lighting
    from shoerecon.data.synth.materials import paint_texture, sample_style
    from shoerecon.data.synth.shoe import shoe_and_gbuffer

    params = sample_shoe_params(shoe_rng(seed, index), cfg)
    mesh, gbuffer = shoe_and_gbuffer(params, cfg.edge_length, cfg.texture_size)
    rng = np.random.default_rng([int(seed), int(index), 1])
    style = sample_style(rng)
    albedo, gloss = paint_texture(gbuffer, style, rng)
    lighting = sample_lighting(rng, headroom_rng=np.random.default_rng([int(seed), int(index), 2]))
    if cfg.look == "photo-clipped":
        lighting = replace(lighting, headroom=0.0, shoulder=0.0)
    if cfg.look == "flat":
        from shoerecon.data.synth.shoe import flat_paint

        albedo = flat_paint(gbuffer, rng)
    mesh.texture = torch.from_numpy(np.ascontiguousarray(albedo)).permute(2, 0, 1).contiguous().float()
    return params, mesh, torch.from_numpy(np.ascontiguousarray(gloss)).float(), lighting, style


def generate_shoe(out_dir: str | Path, index: int, seed: int, cfg: SynthConfig, cameras: Tensor) -> str:
    """Make, render and write shoe ``index`` (views/NNN.png, mesh.glb, params.json, with ``cfg.framing``
    cameras.json); returns its id."""
    from shoerecon.data.layout import rig_from_turntable, save_rgba, write_json
    from shoerecon.data.synth.lighting import framing_distance
    from shoerecon.data.synth.photo import render_photo

    params, mesh, gloss, lighting, style = make_shoe(index, seed, cfg)
    folder = Path(out_dir) / shoe_id(index)
    if cfg.framing:
        distance = framing_distance(mesh.verts, cfg.fov, cfg.elevation, lighting.fill)
        rig = rig_from_turntable(cfg.num_views, cfg.elevation, distance, cfg.fov)
        write_json(folder / "cameras.json", rig.to_json(image_size=cfg.image_size, background=[1.0, 1.0, 1.0]))
        cameras = rig.cameras
    views = render_photo(mesh, cameras, cfg.image_size, cfg.supersample, lighting if cfg.look in LIT_LOOKS else None, gloss)
    for v, rgba in enumerate(views):
        save_rgba(folder / "views" / f"{v:03d}.png", rgba[:3], rgba[3:])
    _save_mesh(mesh, folder / "mesh.glb")
    write_json(folder / "params.json", {"shape": asdict(params), "style": asdict(style), "lighting": asdict(lighting),
                                        "look": cfg.look})
    return shoe_id(index)


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _generate_one(job) -> str:
    return generate_shoe(*job)


def split_ids(ids: Sequence[str], seed: int, val_fraction: float, test_fraction: float) -> dict[str, list[str]]:
    """Shuffle ids with ``seed`` and cut them into train/val/test (at least one val/test shoe when there are 3+)."""
    ids = list(ids)
    order = np.random.default_rng([int(seed), 7]).permutation(len(ids))
    n_val = int(round(val_fraction * len(ids)))
    n_test = int(round(test_fraction * len(ids)))
    if len(ids) >= 3:
        n_val, n_test = max(n_val, 1 if val_fraction > 0 else 0), max(n_test, 1 if test_fraction > 0 else 0)
    shuffled = [ids[i] for i in order]
    return {
        "train": sorted(shuffled[n_val + n_test :]),
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
    }


def _remove_dataset(root: Path) -> None:
    """Delete what a previous ``generate_dataset`` wrote (rig, splits, shoe folders); refuse anything else."""
    import shutil

    ours = {"rig.json", "splits.json"}
    foreign = [p.name for p in root.iterdir() if p.name not in ours and not (p.is_dir() and (p / "views").is_dir())]
    if foreign:
        raise FileExistsError(f"{root}: not a dataset folder (contains {foreign[:5]}); refusing to overwrite it")
    for p in root.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def generate_dataset(
    out_dir: str | Path,
    num_shoes: int,
    num_views: int | None = None,
    image_size: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    cfg: SynthConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic turntable dataset in the DESIGN layout; the same (seed, config) gives the same files.

    Args:
        num_views / image_size: override ``cfg.num_views`` / ``cfg.image_size`` when given.
        workers: processes (None = all CPU cores, 0 or 1 = in this process), one torch thread each.
        overwrite: replace an existing dataset in ``out_dir`` (otherwise a non-empty folder is an error,
            so stale shoes of an earlier, larger run never mix in).
    Returns:
        the dataset root.
    """
    from tqdm import tqdm

    from shoerecon.data.layout import rig_from_turntable, write_json

    cfg = cfg or SynthConfig()
    cfg = SynthConfig(**{**asdict(cfg), **{k: v for k, v in (("num_views", num_views), ("image_size", image_size)) if v is not None}})
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out}: folder is not empty; choose a new folder or pass overwrite=True (--overwrite)")
        _remove_dataset(out)
    out.mkdir(parents=True, exist_ok=True)
    rig = rig_from_turntable(cfg.num_views, cfg.elevation, cfg.distance, cfg.fov)
    write_json(out / "rig.json", rig.to_json(image_size=cfg.image_size, background=[1.0, 1.0, 1.0],
                                             source={"generator": "shoerecon.data.synthetic", "seed": seed,
                                                     "config": asdict(cfg)}))
    jobs = [(str(out), i, seed, cfg, rig.cameras) for i in range(num_shoes)]
    workers = os.cpu_count() or 1 if workers is None else workers
    bar = tqdm(total=num_shoes, desc="synth", unit="shoe", disable=not progress)
    ids = []
    if workers <= 1:
        # One torch thread, like each worker: with the default (all cores) a busy machine made every shoe ~25x
        # slower (53 s instead of 2 s at 64 px while training held a core).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for job in jobs:
                ids.append(_generate_one(job))
                bar.update()
        finally:
            torch.set_num_threads(threads)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(1,)) as pool:
            for sid in pool.imap_unordered(_generate_one, jobs):
                ids.append(sid)
                bar.update()
    bar.close()
    write_json(out / "splits.json", split_ids(sorted(ids), seed, cfg.val_fraction, cfg.test_fraction))
    return out
