"""Reading and writing a turntable dataset folder (DESIGN "Data layout on disk").

```
<root>/rig.json                 cameras of every view + the input view index
<root>/<shoe_id>/views/NNN.png  RGB on white or RGBA (alpha = mask); JPEG works too
<root>/<shoe_id>/masks/NNN.png  optional
<root>/<shoe_id>/cameras.json   optional per-shoe override of rig.json (same schema)

rig.json / cameras.json: {"views": [{"azimuth", "elevation", "distance", "fov"[, "shift_x", "shift_y", "zoom"]}, ...],
"input_view", "num_views", "image_size", "background", "source"[, "object": {"translation": [x, y, z],
"start_azimuth": deg, "direction": 1 | -1}]}. The optional keys are the product-photo camera terms of
``render.cameras`` (a view's crop; the shoe's offset from the turntable axis): view i's azimuth is
``start_azimuth + direction * views[i].azimuth``. Files without them give plain look-at cameras (V, 4);
with them the cameras are (V, 10).
<root>/<shoe_id>/mesh.glb       optional ground truth
<root>/splits.json              optional {"train": [...], "val": [...], "test": [...]}
```

Every problem raises ``DataError`` naming the file and what is wrong.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from shoerecon.render.cameras import Cameras, product_params

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
RIG_KEYS = {"views", "input_view", "num_views", "image_size", "background", "source", "object"}
VIEW_KEYS = {"azimuth", "elevation", "distance", "fov"}
CROP_KEYS = {"shift_x", "shift_y", "zoom"}  # optional per view (all three or none)
OBJECT_KEYS = {"translation", "start_azimuth", "direction"}  # optional, per rig / shoe
SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """A dataset file is missing, unreadable or inconsistent; the message names the file."""


# ----------------------------------------------------------------------------------------- rig


@dataclass
class Rig:
    """Cameras of one turntable. cameras: (V, 4) of (azimuth, elevation, distance, fov) degrees/units, or
    (V, 10) product-photo cameras (``render.cameras.ALL_PARAMS``: + crop shift_x, shift_y, zoom and offset tx, ty, tz)."""

    cameras: Tensor
    input_view: int = 0

    @property
    def num_views(self) -> int:
        return self.cameras.shape[0]

    @property
    def is_product(self) -> bool:
        return self.cameras.shape[-1] > 4

    def as_product(self) -> "Rig":
        """The same rig with (V, 10) product cameras (plain ones get the identity crop and no offset), so that a
        dataset mixing plain and product shoes has one camera width."""
        return Rig(product_params(self.cameras), self.input_view)

    def to_json(self, **extra) -> dict:
        """The rig as JSON (azimuths as they are: start 0, direction 1; the offset under "object")."""
        keys = ("azimuth", "elevation", "distance", "fov") + (("shift_x", "shift_y", "zoom") if self.is_product else ())
        views = [dict(zip(keys, (round(float(x), 6) for x in c))) for c in self.cameras[:, : len(keys)].tolist()]
        out = {"num_views": self.num_views, "input_view": self.input_view, "views": views}
        if self.is_product:
            out["object"] = {"translation": [round(float(x), 6) for x in self.cameras[0, 7:10]]}
        return {**out, **extra}


def rig_from_turntable(num_views: int = 36, elevation: float = 10.0, distance: float = 2.2, fov: float = 30.0) -> Rig:
    """The default turntable (``Cameras.turntable`` defaults), input view 0."""
    return Rig(Cameras.turntable(num_views, elevation, distance, fov).to_tensor(), 0)


def parse_rig(data: dict, path: str | Path) -> Rig:
    """Validate a rig.json / cameras.json dict; unknown keys and bad values are errors naming ``path``."""
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    unknown = set(data) - RIG_KEYS
    if unknown:
        raise DataError(f"{path}: unknown keys {sorted(unknown)}; valid keys: {sorted(RIG_KEYS)}")
    views = data.get("views")
    obj = _parse_object(data.get("object", {}), path)
    if not isinstance(views, list) or not views:
        raise DataError(f"{path}: 'views' must be a non-empty list of {sorted(VIEW_KEYS)} objects")
    cams = []
    for i, view in enumerate(views):
        if not isinstance(view, dict):
            raise DataError(f"{path}: views[{i}] must be an object with keys {sorted(VIEW_KEYS)}")
        unknown, missing = set(view) - VIEW_KEYS - CROP_KEYS, VIEW_KEYS - set(view)
        if unknown:
            raise DataError(f"{path}: views[{i}] has unknown keys {sorted(unknown)}; valid keys: {sorted(VIEW_KEYS | CROP_KEYS)}")
        if missing:
            raise DataError(f"{path}: views[{i}] lacks keys {sorted(missing)}")
        crop_given = CROP_KEYS & set(view)
        if crop_given and crop_given != CROP_KEYS:
            raise DataError(f"{path}: views[{i}] gives {sorted(crop_given)} but a crop needs all of {sorted(CROP_KEYS)}")
        try:
            cam = [float(view[k]) for k in ("azimuth", "elevation", "distance", "fov")]
            crop = [float(view[k]) for k in ("shift_x", "shift_y", "zoom")] if crop_given else [0.0, 0.0, 1.0]
        except (TypeError, ValueError):
            raise DataError(f"{path}: views[{i}] values must be numbers, got {view}") from None
        if not (cam[2] > 0 and 0 < cam[3] < 180) or not all(np.isfinite(cam + crop)):
            raise DataError(f"{path}: views[{i}] needs distance > 0 and 0 < fov < 180, got {view}")
        if not crop[2] > 0:
            raise DataError(f"{path}: views[{i}] needs zoom > 0, got {view['zoom']}")
        cam[0] = obj["start_azimuth"] + obj["direction"] * cam[0]
        cams.append(cam + crop + obj["translation"] if (obj["given"] or crop_given) else cam)
    if "num_views" in data and data["num_views"] != len(views):
        raise DataError(f"{path}: num_views is {data['num_views']} but 'views' lists {len(views)} cameras")
    input_view = data.get("input_view", 0)
    if not isinstance(input_view, int) or not 0 <= input_view < len(views):
        raise DataError(f"{path}: input_view must be an integer in [0, {len(views)}), got {input_view!r}")
    if any(len(c) > 4 for c in cams):  # some views have a crop: every view becomes a product camera
        cams = [c if len(c) > 4 else c + [0.0, 0.0, 1.0] + obj["translation"] for c in cams]
    return Rig(torch.tensor(cams, dtype=torch.float32), input_view)


def _parse_object(obj, path) -> dict:
    """The optional "object" block: the shoe's offset from the axis, the start azimuth, the turn direction."""
    if not isinstance(obj, dict):
        raise DataError(f"{path}: 'object' must be an object with keys among {sorted(OBJECT_KEYS)}, got {obj!r}")
    unknown = set(obj) - OBJECT_KEYS
    if unknown:
        raise DataError(f"{path}: object has unknown keys {sorted(unknown)}; valid keys: {sorted(OBJECT_KEYS)}")
    trans = obj.get("translation", [0.0, 0.0, 0.0])
    if not (isinstance(trans, list) and len(trans) == 3 and all(isinstance(x, (int, float)) and np.isfinite(x) for x in trans)):
        raise DataError(f"{path}: object.translation must be a list of 3 finite numbers, got {trans!r}")
    start = obj.get("start_azimuth", 0.0)
    if not (isinstance(start, (int, float)) and np.isfinite(start)):
        raise DataError(f"{path}: object.start_azimuth must be a number (degrees), got {start!r}")
    direction = obj.get("direction", 1)
    if direction not in (1, -1):
        raise DataError(f"{path}: object.direction must be 1 or -1, got {direction!r}")
    return {"translation": [float(x) for x in trans], "start_azimuth": float(start), "direction": int(direction),
            "given": "translation" in obj}


def read_json(path: str | Path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def read_rig(path: str | Path) -> Rig:
    """Read and validate a rig.json (or a shoe's cameras.json)."""
    return parse_rig(read_json(path), path)


def write_json(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


# ----------------------------------------------------------------------------------------- shoes


def list_shoes(root: str | Path) -> list[str]:
    """Shoe ids: sub-folders of ``root`` that have a ``views/`` folder, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    return sorted(p.name for p in root.iterdir() if (p / "views").is_dir())


def _numbered(files: list[Path]) -> dict[int, Path]:
    """View index -> file: numeric stems give the index, otherwise sorted order does."""
    if files and all(re.fullmatch(r"\d+", f.stem) for f in files):
        return {int(f.stem): f for f in files}
    return dict(enumerate(sorted(files)))


def image_files(folder: Path) -> dict[int, Path]:
    files = [f for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")]
    return _numbered(files)


def view_files(shoe_dir: str | Path, num_views: int) -> list[Path]:
    """The view image of each of the rig's ``num_views`` views, in order; errors on gaps and extra views."""
    folder = Path(shoe_dir) / "views"
    found = image_files(folder)
    missing = [i for i in range(num_views) if i not in found]
    extra = sorted(set(found) - set(range(num_views)))
    if len(found) != num_views or missing or extra:
        detail = []
        if missing:
            detail.append("missing view(s) " + ", ".join(f"{i:03d}" for i in missing[:10]))
        if extra:
            detail.append("view(s) beyond the rig: " + ", ".join(found[i].name for i in extra[:10]))
        raise DataError(
            f"{folder}: {len(found)} view images but the rig has {num_views} views" + (f"; {'; '.join(detail)}" if detail else "")
        )
    return [found[i] for i in range(num_views)]


def mask_files(shoe_dir: str | Path, num_views: int) -> list[Path] | None:
    """Mask files per view when ``masks/`` exists (then every view needs one), else None."""
    folder = Path(shoe_dir) / "masks"
    if not folder.is_dir():
        return None
    found = image_files(folder)
    missing = [i for i in range(num_views) if i not in found]
    if missing:
        raise DataError(f"{folder}: no mask for view(s) " + ", ".join(f"{i:03d}" for i in missing[:10]))
    return [found[i] for i in range(num_views)]


def shoe_rig(root: str | Path, shoe_id: str, default: Rig) -> Rig:
    """The shoe's cameras.json when present, else the dataset rig."""
    path = Path(root) / shoe_id / "cameras.json"
    return read_rig(path) if path.exists() else default


# ----------------------------------------------------------------------------------------- splits


def hash_split(shoe_id: str, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """Deterministic split of a shoe id by the SHA-1 of the id (stable across machines and Python runs).

    >>> hash_split("shoe_00000") in ("train", "val", "test")
    True
    """
    x = int(hashlib.sha1(shoe_id.encode()).hexdigest()[:8], 16) / 2**32
    edges = np.cumsum(np.asarray(fractions, dtype=np.float64) / sum(fractions))
    return SPLITS[min(int(np.searchsorted(edges, x, side="right")), len(SPLITS) - 1)]


def read_splits(root: str | Path, shoes: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> dict[str, list[str]]:
    """splits.json when present (ids not in the folder are errors), else ``hash_split``."""
    path = Path(root) / "splits.json"
    if not path.exists():
        out = {k: [] for k in SPLITS}
        for s in shoes:
            out[hash_split(s, fractions)].append(s)
        return out
    data = read_json(path)
    if not isinstance(data, dict) or set(data) - set(SPLITS):
        raise DataError(f"{path}: expected an object with keys among {list(SPLITS)}, got {data if not isinstance(data, dict) else sorted(data)}")
    known = set(shoes)
    for split, ids in data.items():
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DataError(f"{path}: split {split!r} names shoes that have no views folder: {unknown[:5]}")
    return {k: list(data.get(k, [])) for k in SPLITS}


# ----------------------------------------------------------------------------------------- images


# Photos larger than this many pixels are refused before decoding (``data.max_pixels``): 64 MP covers 48 MP
# phone photos; decoding one as float RGBA takes ~1 GB, so a few never exhaust a 24 GB machine.
DEFAULT_MAX_PIXELS = 64_000_000


def _open(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    try:
        img = Image.open(path)  # reads the header only
        w, h = img.size
        if max_pixels is not None and w * h > max_pixels:
            raise DataError(f"{path}: image too large: {w}x{h} = {w * h / 1e6:.0f} MP exceeds the limit of "
                            f"{max_pixels / 1e6:.0f} MP (data.max_pixels; shoerecon import --max-pixels); downscale the photo "
                            "or raise the limit")
        img.load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Image.DecompressionBombError as e:  # PIL's own guard (also against huge frames inside the file)
        raise DataError(f"{path}: image too large (decompression bomb guard: {e})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (corrupt or unknown format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: corrupt or truncated image ({e})") from None
    return img


def _to_float(img: Image.Image, path: Path) -> np.ndarray:
    """PIL image -> (H, W, C) float in [0, 1], C = 3 (RGB) or 4 (RGBA). Handles 1/L/LA/P/PA/I;16/I/CMYK/YCbCr."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.repeat((np.asarray(img, dtype=np.float64) / 65535.0)[..., None], 3, axis=-1)
    if mode == "I":  # 32-bit integer gray: what Pillow gives 16-bit PNGs in some versions
        a = np.asarray(img, dtype=np.float64)
        if a.min() < 0 or a.max() > 65535:
            raise DataError(f"{path}: 32-bit integer image with values outside [0, 65535]; save it as 8- or 16-bit")
        return np.repeat((a / 65535.0)[..., None], 3, axis=-1)
    if mode == "F":
        raise DataError(f"{path}: floating-point images are not supported; save it as 8- or 16-bit PNG/JPEG")
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA" if ("transparency" in img.info or mode == "PA") else "RGB")
    elif mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode == "LA":
        img = img.convert("RGBA")
    elif mode not in ("RGB", "RGBA", "RGBa"):
        raise DataError(f"{path}: unsupported image mode {mode!r}")
    if img.mode == "RGBa":
        img = img.convert("RGBA")
    return np.asarray(img, dtype=np.float32) / 255.0


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[Tensor, Tensor | None]:
    """Read a view: (3, H, W) float RGB in [0, 1] and the alpha (1, H, W) when the file has one.

    RGB is straight (not premultiplied); EXIF orientation is applied (phone photos). Images of more
    than ``max_pixels`` pixels are a ``DataError`` before they are decoded.
    """
    path = Path(path)
    img = _open(path, max_pixels)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not hide a readable image
        pass
    arr = torch.from_numpy(np.ascontiguousarray(_to_float(img, path), dtype=np.float32)).permute(2, 0, 1)
    if arr.shape[0] == 4:
        return arr[:3].contiguous(), arr[3:].contiguous()
    return arr, None


def read_mask(path: str | Path, size: tuple[int, int], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Tensor:
    """Read a mask file as (1, H, W) in [0, 1] (any mode; RGB(A) uses its luminance); must be ``size`` = (H, W)."""
    path = Path(path)
    img = _open(path, max_pixels)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = _to_float(img, path)
        a = rgba[..., 3] if rgba.shape[-1] == 4 else np.ones(rgba.shape[:2])
        m = a * rgba[..., :3].mean(-1)
    else:
        m = _to_float(img, path)[..., :3].mean(-1)
    if m.shape != tuple(size):
        raise DataError(f"{path}: mask is {m.shape[1]}x{m.shape[0]} (WxH) but its view is {size[1]}x{size[0]}")
    return torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None]


def save_rgba(path: str | Path, rgb: Tensor, alpha: Tensor) -> None:
    """Write (3, H, W) straight RGB and (1, H, W) alpha in [0, 1] as an 8-bit RGBA PNG."""
    arr = torch.cat([rgb, alpha], 0).clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "RGBA").save(path, optimize=False, compress_level=1)
