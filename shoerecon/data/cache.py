"""A decoded, resized copy of a turntable dataset in memory-mappable arrays (``shoerecon cache``).

Decoding and resizing PNG/JPEG views every step does not scale to hundreds of thousands of photos: at 128 px a
decoded, resized view is ~20x cheaper to read than to decode. ``build_cache`` runs the dataset's own loading
code (``load_view`` + ``resize`` for every view, ``prepare_input`` for the input view) once per shoe and stores
the results, so a ``TurntableDataset`` reading the cache returns exactly the tensors the folder reader returns.

Layout of ``<root>/.shoerecon_cache/s<size>/`` (or ``data.cache_dir``)::

    manifest.json        settings the pixels depend on, dtype, per shoe: first row, view count, fingerprint
    images.npy           (total views, 3, S, S)   every view, resized, on the background colour
    masks.npy            (total views, 1, S, S)
    cameras.npy          (total views, C) float32 (fov or crop after padding non-square photos)
    inputs.npy           (shoes, 3, S, S)         the prepared (centred) input view of each shoe
    input_masks.npy      (shoes, 1, S, S)
    input_cameras.npy    (shoes, C) float32, input_transforms.npy (shoes, 2, 3) float32

C is 4 (azimuth, elevation, distance, fov), or 10 when any shoe has product-photo cameras (crop and object offset
from ``shoerecon calibrate``): then every shoe's cameras are widened as the dataset widens them (``Rig.as_product``).
A dataset reads a cache only if its own camera width matches (a split with no product shoe reads 4).

``dtype`` float32 is exact; uint8 is 4x smaller (7,500 shoes x 36 views at 128 px: 18 GB instead of 71 GB) and
rounds every pixel to 1/255 (at most 0.5/255 from the folder reader).

Staleness: a shoe's *fingerprint* is the SHA-1 of (name, size, mtime) of its view, mask and cameras.json files
(plus rig.json); ``--content-hash`` also stores a SHA-1 of the bytes, checked by ``shoerecon cache --verify``.
A shoe whose files changed, or a cache built with other settings (size, mask source, input framing, ...), is
stale and never read: ``data.cache: auto`` reads those shoes from the folder with a warning,
``require`` raises ``DataError`` naming the shoe and what changed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from shoerecon.data.layout import DataError, Rig, list_shoes, read_rig, shoe_rig
from shoerecon.data.reading import read_input, read_views

CACHE_VERSION = 1
CACHE_MODES = ("auto", "never", "require")
CACHE_DTYPES = ("float32", "uint8")
# DataConfig fields the cached pixels and cameras depend on (a change makes the whole cache stale).
PIXEL_SETTINGS = ("image_size", "center_input", "input_fill", "mask_source", "mask_method", "mask_threshold", "mask_kernel",
                  "background", "input_view")
ARRAYS = ("images", "masks", "cameras", "inputs", "input_masks", "input_cameras", "input_transforms")


def default_cache_dir(root: str | Path, size: int) -> Path:
    """Where ``shoerecon cache ROOT --size S`` writes and the dataset looks by default."""
    return Path(root) / ".shoerecon_cache" / f"s{size}"


def resolve_cache_dir(cfg) -> Path:
    """The cache folder of a DataConfig: ``cfg.cache_dir`` or the default one for its image size."""
    return Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir(cfg.root, cfg.image_size)


def pixel_settings(cfg) -> dict:
    """The DataConfig values the cached tensors depend on, JSON-ready."""
    out = {}
    for k in PIXEL_SETTINGS:
        v = getattr(cfg, k)
        out[k] = list(v) if isinstance(v, (tuple, list)) else v
    return out


def shoe_files(root: Path, shoe_id: str) -> list[Path]:
    """Every file a shoe's cached tensors depend on: views/*, masks/*, cameras.json (sorted)."""
    d = root / shoe_id
    files = [p for sub in ("views", "masks") if (d / sub).is_dir() for p in (d / sub).iterdir() if p.is_file()]
    if (d / "cameras.json").exists():
        files.append(d / "cameras.json")
    return sorted(files)


def stat_fingerprint(root: Path, files: Iterable[Path], extra: Sequence[Path] = ()) -> str:
    """SHA-1 of (relative path, size, mtime_ns) of ``files`` and ``extra`` (cheap: one stat per file)."""
    h = hashlib.sha1()
    for p in [*files, *extra]:
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def content_hash(files: Iterable[Path]) -> str:
    """SHA-1 of the bytes of ``files`` (in order)."""
    h = hashlib.sha1()
    for p in files:
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _global_files(root: Path) -> list[Path]:
    return [root / "rig.json"]


# ------------------------------------------------------------------------------------------ building
def _load_shoe(args: tuple) -> tuple[str, dict | str]:
    """Worker: every view and the prepared input of one shoe at the cache size, or the DataError message."""
    root, shoe_id, cfg, rig, content, product = args
    try:
        files = shoe_files(root, shoe_id)
        rig_s = shoe_rig(root, shoe_id, rig)
        rig_s = rig_s.as_product() if product else rig_s
        index = rig_s.input_view if cfg.input_view is None else cfg.input_view
        if not 0 <= index < rig_s.num_views:
            raise DataError(f"{root / shoe_id}: input_view {index} is outside the rig's {rig_s.num_views} views")
        imgs, masks, cams = read_views(root, shoe_id, rig_s, range(rig_s.num_views), cfg)
        inp, inp_mask, inp_cam, transform = read_input(root, shoe_id, rig_s, index, cfg)
    except DataError as e:
        return shoe_id, str(e)
    record = {"fingerprint": stat_fingerprint(root, files, _global_files(root)), "files": len(files)}
    if content:
        record["content"] = content_hash(files)
    arrays = {"images": imgs, "masks": masks, "cameras": cams, "inputs": inp, "input_masks": inp_mask,
              "input_cameras": inp_cam, "input_transforms": transform}
    return shoe_id, {"record": record, "arrays": {k: v.numpy() for k, v in arrays.items()}}


def _encode(x: np.ndarray, dtype: str) -> np.ndarray:
    return x if dtype == "float32" else np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def build_cache(cfg, out: str | Path | None = None, dtype: str = "float32", workers: int = 1,
                content: bool = False, skip_broken: bool = False, progress: bool = True) -> Path:
    """Write the cache of every shoe of ``cfg.root`` (all splits) at ``cfg.image_size``; returns its folder.

    Args:
        cfg: a DataConfig (its pixel settings are recorded; ``cache``/``cache_dir`` are ignored).
        out: cache folder; None: ``default_cache_dir(cfg.root, cfg.image_size)``. Replaced atomically.
        dtype: float32 (exact) | uint8 (4x smaller, 1/255 steps). workers: processes decoding shoes.
        content: also store a SHA-1 of every shoe's file bytes (for ``verify_cache``).
        skip_broken: leave shoes whose files are broken out of the cache (listed in the manifest) instead of
            raising; the dataset then reads them from the folder (and raises or skips them as configured).
    """
    from tqdm.auto import tqdm

    if dtype not in CACHE_DTYPES:
        raise ValueError(f"cache dtype must be one of {CACHE_DTYPES}, got {dtype!r}")
    root = Path(cfg.root)
    rig = read_rig(root / "rig.json")
    shoes = list_shoes(root)
    if not shoes:
        raise DataError(f"{root}: no shoe folders (expected <shoe_id>/views/*.png)")
    out = Path(out) if out is not None else default_cache_dir(root, cfg.image_size)
    tmp = out.with_name(out.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    s = cfg.image_size
    rigs = [shoe_rig(root, sid, rig) for sid in shoes]
    counts = [r.num_views for r in rigs]  # the rows every shoe takes
    product = rig.is_product or any(r.is_product for r in rigs)
    width = 10 if product else 4
    total, n = sum(counts), len(shoes)
    pixel_dtype = np.float32 if dtype == "float32" else np.uint8
    shapes = {"images": ((total, 3, s, s), pixel_dtype), "masks": ((total, 1, s, s), pixel_dtype),
              "cameras": ((total, width), np.float32), "inputs": ((n, 3, s, s), pixel_dtype),
              "input_masks": ((n, 1, s, s), pixel_dtype), "input_cameras": ((n, width), np.float32),
              "input_transforms": ((n, 2, 3), np.float32)}
    arrays = {k: np.lib.format.open_memmap(tmp / f"{k}.npy", mode="w+", dtype=dt, shape=shape)
              for k, (shape, dt) in shapes.items()}
    records: dict[str, dict] = {}
    broken: dict[str, str] = {}
    jobs = [(root, sid, cfg, rig, content, product) for sid in shoes]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        results = pool.map(_load_shoe, jobs, chunksize=4) if pool else map(_load_shoe, jobs)
        for i, (sid, res) in enumerate(tqdm(results, total=n, desc="cache", disable=not progress)):
            if isinstance(res, str):
                if not skip_broken:
                    raise DataError(f"{res} (shoerecon cache --skip-broken leaves such shoes out)")
                broken[sid] = res
                continue
            a, off, v = res["arrays"], offsets[i], counts[i]
            for k in ("images", "masks"):
                arrays[k][off:off + v] = _encode(a[k], dtype)
            arrays["cameras"][off:off + v] = a["cameras"]
            for k in ("inputs", "input_masks"):
                arrays[k][i] = _encode(a[k], dtype)
            arrays["input_cameras"][i], arrays["input_transforms"][i] = a["input_cameras"], a["input_transforms"]
            records[sid] = {"index": i, "offset": off, "views": v, **res["record"]}
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if pool:
            pool.shutdown()
    for a in arrays.values():
        a.flush()
    del arrays
    manifest = {"version": CACHE_VERSION, "root": str(root.resolve()), "dtype": dtype,
                "settings": pixel_settings(cfg), "camera_params": width, "content_hash": content, "shoes": records,
                "broken": broken}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=0))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


# ------------------------------------------------------------------------------------------ reading
class CacheStale(DataError):
    """The cache (or one shoe of it) no longer matches the dataset folder or the config."""


@dataclass
class ShoeViews:
    """Tensors of one shoe from the cache (same shapes as the folder reader's)."""

    images: Tensor
    masks: Tensor
    cameras: Tensor


class ViewCache:
    """Read side of a cache folder: memory-mapped arrays, opened lazily (per DataLoader worker, never pickled).

    ``check_settings`` refuses a cache built with other pixel settings; ``is_fresh(shoe)`` compares one
    shoe's file fingerprint with the manifest's.
    """

    def __init__(self, folder: str | Path, root: str | Path):
        self.folder, self.root = Path(folder), Path(root)
        path = self.folder / "manifest.json"
        try:
            self.manifest = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CacheStale(f"{path}: unreadable cache manifest ({e}); rebuild with `shoerecon cache`") from None
        if self.manifest.get("version") != CACHE_VERSION:
            raise CacheStale(f"{path}: cache version {self.manifest.get('version')} != {CACHE_VERSION}; rebuild it")
        self.shoes: dict[str, dict] = self.manifest["shoes"]
        self.scale = 1.0 if self.manifest["dtype"] == "float32" else 1.0 / 255.0
        self.camera_params = int(self.manifest.get("camera_params", 4))  # caches before product cameras: 4
        self._arrays: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = None  # workers re-open the memory maps instead of receiving copies
        return state

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            # plain ndarray views of the maps: np.memmap's own __getitem__ costs ~0.1 ms a call
            self._arrays = {k: np.load(self.folder / f"{k}.npy", mmap_mode="r").view(np.ndarray) for k in ARRAYS}
        return self._arrays

    def check_settings(self, cfg) -> None:
        """Raise ``CacheStale`` when the cache was built with pixel settings other than ``cfg``'s."""
        built, now = self.manifest["settings"], pixel_settings(cfg)
        diff = [f"{k}: cache {built.get(k)!r}, config {now[k]!r}" for k in now if built.get(k) != now[k]]
        if diff:
            raise CacheStale(f"{self.folder}: the cache was built with other data settings ({'; '.join(diff)}); "
                             f"rebuild it with `shoerecon cache {self.root} --size {cfg.image_size}` or set data.cache: never")

    def stale_reason(self, shoe_id: str) -> str | None:
        """None when the shoe's cached tensors match its files; else why not."""
        rec = self.shoes.get(shoe_id)
        if rec is None:
            why = self.manifest["broken"].get(shoe_id)
            return f"not in the cache ({'broken when it was built: ' + why if why else 'added after it was built'})"
        files = shoe_files(self.root, shoe_id)
        try:
            fp = stat_fingerprint(self.root, files, _global_files(self.root))
        except FileNotFoundError as e:
            return f"a file is missing ({e.filename})"
        if len(files) != rec["files"]:
            return f"{len(files)} files now, {rec['files']} when the cache was built"
        if fp != rec["fingerprint"]:
            return "its files (or rig.json) changed since the cache was built (size or modification time)"
        return None

    @staticmethod
    def _own(a: np.ndarray) -> Tensor:
        """A tensor owning its memory (slices of a read-only memory map are copied once)."""
        return torch.from_numpy(a if a.flags.writeable and a.flags.c_contiguous else np.array(a))

    def _pixels(self, a: np.ndarray) -> Tensor:
        t = self._own(a)
        return t if self.scale == 1.0 else t.float().mul_(self.scale)

    def views(self, shoe_id: str, indices: Sequence[int]) -> ShoeViews:
        """images (V,3,S,S), masks (V,1,S,S), cameras (V,C) of the given views (C: ``camera_params``)."""
        rec = self.shoes[shoe_id]
        if any(not 0 <= i < rec["views"] for i in indices):
            raise DataError(f"{self.root / shoe_id}: views {list(indices)} outside the cached {rec['views']} views")
        rows = [rec["offset"] + int(i) for i in indices]
        a = self.arrays
        return ShoeViews(self._pixels(a["images"][rows]), self._pixels(a["masks"][rows]),
                         self._own(a["cameras"][rows]))

    def input(self, shoe_id: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The prepared input view: image (3,S,S), mask (1,S,S), camera (C,), transform (2,3)."""
        i, a = self.shoes[shoe_id]["index"], self.arrays
        return (self._pixels(a["inputs"][i]), self._pixels(a["input_masks"][i]),
                self._own(a["input_cameras"][i]), self._own(a["input_transforms"][i]))


def open_cache(cfg, shoe_ids: Sequence[str], camera_params: int = 4) -> tuple[ViewCache | None, set[str]]:
    """The cache a dataset should read (None: none or refused) and the set of its fresh shoes among ``shoe_ids``.

    ``camera_params``: the dataset's camera width (4, or 10 with product cameras); a cache of the other width is
    refused like a stale one.

    ``cfg.cache``: never -> (None, {}); auto -> a missing cache is silently unused, a stale one (or stale shoes) is
    refused with a warning naming why; require -> missing or stale raises ``DataError``/``CacheStale``.
    """
    if cfg.cache == "never":
        return None, set()
    folder = resolve_cache_dir(cfg)
    if not (folder / "manifest.json").exists():
        if cfg.cache == "require":
            raise DataError(f"{folder}: no cache (data.cache: require); build it with "
                            f"`shoerecon cache {cfg.root} --size {cfg.image_size}`")
        return None, set()
    try:
        cache = ViewCache(folder, cfg.root)
        cache.check_settings(cfg)
        if cache.camera_params != camera_params:
            raise CacheStale(f"{folder}: the cache holds ({cache.camera_params},) cameras per view, this dataset's "
                             f"split reads ({camera_params},) (product-photo cameras in some shoes only?); "
                             "set data.cache: never, or give every shoe the same kind of cameras")
    except CacheStale as e:
        if cfg.cache == "require":
            raise
        warnings.warn(f"not using the data cache: {e}", stacklevel=3)
        return None, set()
    stale = {sid: why for sid in shoe_ids if (why := cache.stale_reason(sid)) is not None}
    if stale:
        first = next(iter(stale))
        msg = (f"{folder}: {len(stale)} of {len(shoe_ids)} shoes are stale in the data cache (e.g. {first!r}: "
               f"{stale[first]}); rebuild with `shoerecon cache {cfg.root} --size {cfg.image_size}`")
        if cfg.cache == "require":
            raise CacheStale(msg)
        warnings.warn(msg + "; reading those from the folder", stacklevel=3)
    return cache, {sid for sid in shoe_ids if sid not in stale}


def verify_cache(folder: str | Path, root: str | Path) -> dict[str, str]:
    """Re-hash every cached shoe's file bytes (needs ``--content-hash`` at build time). -> {shoe: problem}."""
    cache = ViewCache(folder, root)
    if not cache.manifest.get("content_hash"):
        raise DataError(f"{folder}: built without --content-hash; only stat fingerprints can be checked")
    bad = {}
    for sid, rec in cache.shoes.items():
        why = cache.stale_reason(sid)
        if why is None and content_hash(shoe_files(cache.root, sid)) != rec["content"]:
            why = "file contents changed (same sizes and modification times)"
        if why is not None:
            bad[sid] = why
    return bad


def cache_nbytes(num_views: int, num_shoes: int, size: int, dtype: str = "float32") -> int:
    """Bytes of a cache: 4 channels per view and per input. ``cache_nbytes(270000, 7500, 128, 'uint8')`` ~ 18 GB."""
    per = 4 * size * size * (4 if dtype == "float32" else 1)
    return (num_views + num_shoes) * per + num_views * 16 + num_shoes * 40
