"""Inference: photos -> framed input views -> network -> meshes -> files (behind `shoerecon predict`).

Any photo (any size and aspect, RGB or RGBA, JPEG or PNG, on white or with alpha) is framed
exactly as the training input view (``data.preprocess.prepare_input`` with the checkpoint's data
settings), run through the network in batches, and written per image as

    DIR/<name>/<name>.obj, .mtl, _texture.png  (OBJ with its texture)
    DIR/<name>/<name>.glb                 (binary glTF, texture embedded)
    DIR/<name>/<name>_turntable.png       (8 azimuths rendered with our Renderer, input view first)
    DIR/<name>/<name>_input.png           (what the network saw)
    DIR/<name>/<name>_fit.png             (with --refine N: photo | fitted render | photo-texel weights)

``--refine N`` fits each prediction to its photo for N steps (``shoerecon.fit``); ``--orientation``
auto | as-is | mirror handles toe-left photos (the mesh is a right shoe; ``--keep-handedness`` mirrors
it back to match the photo). ``--refine 0 --orientation as-is`` (the defaults) is the plain forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import torch
from torch import Tensor
from tqdm import tqdm

from shoerecon.data.layout import DataError, read_image
from shoerecon.data.preprocess import pad_to_square, prepare_input
from shoerecon.data.reading import cut_out
from shoerecon.export.turntable import TurntableConfig, save_turntable_strip, to_pil
from shoerecon.geometry.io import save_glb, save_obj
from shoerecon.geometry.mesh import Mesh

if TYPE_CHECKING:
    from shoerecon.fit import RefineConfig

FORMATS = ("obj", "glb")


@dataclass
class PredictConfig:
    """Outputs of ``predict``."""

    formats: tuple[str, ...] = FORMATS
    batch_size: int = 16
    turntable: bool = True
    turntable_cfg: TurntableConfig = field(default_factory=TurntableConfig)
    save_input: bool = True
    refine_steps: int = 0
    orientation: str = "as-is"
    keep_handedness: bool = False
    refine_cfg: Optional["RefineConfig"] = None  # None: RefineConfig() (the checkpoint's refine: section in run())

    @property
    def fitting(self) -> bool:
        """Whether images go through ``fit.fit_photo`` (refinement or an orientation other than as-is)."""
        return self.refine_steps > 0 or self.orientation != "as-is"


def load_input(path: str | Path, data_cfg) -> tuple[Tensor, Tensor]:
    """Read one photo and frame it like the training input view.

    Same steps as the dataset (``data.dataset.load_view`` then ``prepare_input``): composite alpha on
    the background, mask from alpha (else ``data.mask_method``: the product-photo cut-out by default), pad to square, crop to the
    mask, centre, scale to ``input_fill``, resize to ``image_size``. An alpha channel that is
    opaque everywhere carries no mask, so the photo is cut out instead.

    Returns:
        image (3, S, S), mask (1, S, S). Raises ``DataError`` naming the file on unreadable or empty images.
    """
    rgb, alpha = read_image(path, data_cfg.max_pixels)
    bg = rgb.new_tensor(data_cfg.background).view(3, 1, 1)
    if alpha is not None and float(alpha.min()) > 0.99:
        alpha = None
    if alpha is not None:
        rgb = rgb * alpha + bg * (1 - alpha)
        mask = alpha
    else:
        mask = cut_out(rgb, data_cfg, path)
    if float((mask > 0.5).float().mean()) < data_cfg.min_mask_fraction:
        raise DataError(f"{path}: no shoe found (foreground covers < {data_cfg.min_mask_fraction:.1%} of the image)")
    return prepare_input(pad_to_square(rgb, data_cfg.background), pad_to_square(mask, 0.0), data_cfg.image_size,
                         data_cfg.input_fill, data_cfg.background)


def model_device(model: torch.nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def predict_meshes(model: torch.nn.Module, images: Tensor, clamp_texture: bool = True) -> list[Mesh]:
    """Prepared inputs (B, 3, H, W) -> B textured meshes (template topology and UV layout, texture (3, Ht, Wt),
    clamped to [0, 1] unless ``clamp_texture`` is False)."""
    with torch.no_grad():
        out = model(images.to(model_device(model)))
    return [Mesh(out.verts[i], model.faces, model.uvs, model.uv_faces,
                 out.texture[i].clamp(0, 1) if clamp_texture else out.texture[i])
            for i in range(images.shape[0])]


def export_mesh(mesh: Mesh, out_dir: str | Path, name: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``mesh`` as ``out_dir/name.{obj,glb}`` for each format; returns the written mesh paths."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown export format(s) {bad}; valid: {', '.join(FORMATS)}")
    mesh = mesh.to(device="cpu")
    out = Path(out_dir)
    writers = {"obj": save_obj, "glb": save_glb}
    return [writers[f](mesh, out / f"{name}.{f}") for f in formats]


def safe_name(stem: str) -> str:
    """An output name that stays inside the output folder: characters other than letters, digits, ``-_.``
    become ``_``; no leading dots (``..`` is the parent); empty -> ``image``.

    >>> safe_name(".."), safe_name("my shoe/1"), safe_name("")
    ('image', 'my_shoe_1', 'image')
    """
    import re

    name = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".")
    return name or "image"


def unique_names(paths: Sequence[str | Path]) -> list[str]:
    """Safe file stems (``safe_name``), made unique with _1, _2... where two inputs share a stem.

    >>> unique_names(["a/x.jpg", "b/x.png", "y.png", "...png"])
    ['x', 'x_1', 'y', 'image']
    """
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        stem = safe_name(Path(p).stem)
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        names.append(stem if n == 0 else f"{stem}_{n}")
    return names


def predict_files(
    model: torch.nn.Module, data_cfg, paths: Sequence[str | Path], out_dir: str | Path,
    cfg: PredictConfig = PredictConfig(), progress: bool = True,
) -> tuple[list[dict], list[str]]:
    """Predict and export every image; unreadable images are reported and skipped.

    Returns:
        (one record per exported image: {"image", "name", "files"}, error messages).
    """
    out = Path(out_dir)
    errors: list[str] = []
    prepared: list[tuple[str, str, Tensor]] = []
    for path, name in zip(paths, unique_names(paths)):
        try:
            prepared.append((str(path), name, load_input(path, data_cfg)[0]))
        except (DataError, ValueError) as err:
            errors.append(str(err))
    records = []
    if cfg.fitting:
        return _fit_files(model, data_cfg, prepared, out, cfg, progress), errors
    bar = tqdm(total=len(prepared), desc="predict", unit="img", disable=not progress)
    for start in range(0, len(prepared), cfg.batch_size):
        chunk = prepared[start:start + cfg.batch_size]
        meshes = predict_meshes(model, torch.stack([c[2] for c in chunk]))
        for (path, name, image), mesh in zip(chunk, meshes):
            records.append(_write_outputs(mesh, image, path, name, out, cfg))
            bar.update()
    bar.close()
    return records, errors


def _write_outputs(mesh: Mesh, image: Tensor, path: str, name: str, out: Path, cfg: PredictConfig) -> dict:
    folder = out / name
    files = export_mesh(mesh, folder, name, cfg.formats)
    if cfg.turntable:
        files.append(save_turntable_strip(mesh, folder / f"{name}_turntable.png", cfg.turntable_cfg))
    if cfg.save_input:
        to_pil(image).save(folder / f"{name}_input.png")
        files.append(folder / f"{name}_input.png")
    return {"image": path, "name": name, "files": [str(f) for f in files]}


def _fit_files(model: torch.nn.Module, data_cfg, prepared: list[tuple[str, str, Tensor]], out: Path,
               cfg: PredictConfig, progress: bool) -> list[dict]:
    """One image at a time: forward pass, orientation, refinement (``fit.fit_photo``), export."""
    from dataclasses import replace

    from shoerecon.export.turntable import image_grid
    from shoerecon.fit import RefineConfig, fit_photo, mirror_mesh

    rcfg = cfg.refine_cfg or RefineConfig()
    device = model_device(model)
    records = []
    for path, name, image in tqdm(prepared, desc="predict", unit="img", disable=not progress or len(prepared) < 2):
        photo, mask = load_input(path, replace(data_cfg, image_size=rcfg.image_size))
        fit = fit_photo(model, image.to(device), photo.to(device), mask.to(device), rcfg, cfg.orientation,
                        steps=cfg.refine_steps, progress=progress)
        mesh = fit.mesh
        if fit.mirrored and cfg.keep_handedness:
            mesh = mirror_mesh(mesh)
        rec = _write_outputs(mesh, image.flip(-1) if fit.mirrored else image, path, name, out, cfg)
        if fit.result is not None:
            res = fit.result
            weight = res.bake.weight[None].expand(3, -1, -1) if res.bake is not None else torch.zeros_like(photo)
            weight = torch.nn.functional.interpolate(weight[None].float(), size=photo.shape[-2:], mode="area")[0]
            shown = photo.flip(-1) if fit.mirrored else photo
            fit_png = out / name / f"{name}_fit.png"
            to_pil(image_grid([[shown, res.render[:3].cpu(), weight.cpu()]])).save(fit_png)
            rec["files"].append(str(fit_png))
            rec["fit"] = {"silhouette_iou": _iou(res.render[3:], mask.flip(-1) if fit.mirrored else mask),
                          "seconds": round(res.seconds, 3), "steps": res.steps}
        rec["orientation"] = "mirror" if fit.mirrored else "as-is"
        rec["scores"] = fit.scores
        rec["handedness"] = "left (mirrored back)" if fit.mirrored and cfg.keep_handedness else "right"
        records.append(rec)
    return records


def _iou(alpha: Tensor, mask: Tensor) -> float:
    from shoerecon.fit import hard_iou

    return round(hard_iou(alpha.cpu(), mask.cpu()), 4)
