"""Helpers shared by the OBJ and GLB writers/readers: UV-seam splitting, welding, texture <-> image.

Our ``Mesh`` indexes positions and UVs separately (``faces`` / ``uv_faces``), like OBJ. glTF and
trimesh want one index per corner, so a position on a UV seam becomes several output vertices
(:func:`split_uv_seams`); loading undoes that by merging vertices with identical positions
(:func:`weld_positions`), which gives back the original topology and vertex order.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from shoerecon.geometry.mesh import Mesh, vertex_normals


class SplitMesh(NamedTuple):
    """One index per corner: every output vertex has one position, normal and (optionally) UV.

    verts (M, 3), normals (M, 3) unit, uvs (M, 2) or None, faces (F, 3), source (M,) index into the original verts.
    """
    verts: np.ndarray
    normals: np.ndarray
    uvs: Optional[np.ndarray]
    faces: np.ndarray
    source: np.ndarray


def smooth_normals(mesh: Mesh) -> Tensor:
    """(N, 3) unit vertex normals on the welded topology; degenerate ones become +Y so that files stay valid."""
    n = vertex_normals(mesh.verts.detach().double(), mesh.faces)
    bad = n.norm(dim=-1) < 0.5
    n[bad] = n.new_tensor([0.0, 1.0, 0.0])
    return n


def split_uv_seams(mesh: Mesh) -> SplitMesh:
    """Give each distinct (position index, uv index) pair its own vertex.

    Output vertices are sorted by (position index, uv index), so the first copy of each position
    appears in the original order: welding the result restores the original vertex order (minus
    vertices that no face uses).
    """
    verts = mesh.verts.detach().cpu().double()
    normals = smooth_normals(mesh).cpu()
    faces = mesh.faces.detach().cpu().long()
    if mesh.uvs is None:
        used, inverse = torch.unique(faces.reshape(-1), return_inverse=True)
        return SplitMesh(verts[used].numpy(), normals[used].numpy(), None, inverse.reshape(-1, 3).numpy(), used.numpy())
    uv_faces = mesh.uv_faces.detach().cpu().long()
    pairs = torch.stack([faces.reshape(-1), uv_faces.reshape(-1)], dim=-1)
    unique, inverse = torch.unique(pairs, dim=0, return_inverse=True)  # lexicographic: by position index first
    src, uv_idx = unique[:, 0], unique[:, 1]
    uvs = mesh.uvs.detach().cpu().double()[uv_idx]
    return SplitMesh(verts[src].numpy(), normals[src].numpy(), uvs.numpy(), inverse.reshape(-1, 3).numpy(), src.numpy())


def weld_positions(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices with bit-identical positions, keeping first-occurrence order.

    Args:
        verts: (M, 3). faces: (F, 3) indices into verts.
    Returns:
        welded verts (N, 3) and faces (F, 3) into them.
    """
    _, first, inverse = np.unique(verts, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)  # unique rows in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return verts[first[order]], rank[inverse][faces]


def texture_to_image(texture: Tensor) -> Image.Image:
    """(3, H, W) float in [0, 1], row 0 = v 1 -> RGB PIL image (row 0 is the image's top row, as in files)."""
    if texture.ndim != 3 or texture.shape[0] != 3:
        raise ValueError(f"texture must be (3, H, W), got {tuple(texture.shape)}")
    arr = (texture.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def image_to_texture(image: Image.Image) -> Tensor:
    """PIL image -> (3, H, W) float32 in [0, 1] (alpha dropped)."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def mesh_from_arrays(
    verts: np.ndarray, faces: np.ndarray, uvs: Optional[np.ndarray], image: Optional[Image.Image], weld: bool
) -> Mesh:
    """Build a ``Mesh`` from per-corner arrays as readers return them.

    Args:
        verts (M, 3), faces (F, 3), uvs (M, 2) or None (v up), image: base colour texture or None.
        weld: merge equal positions so seams do not cut the surface (uv_faces keep the split indices).
    """
    verts = np.asarray(verts, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    uv_faces = faces if uvs is not None else None
    if weld:
        verts, faces = weld_positions(verts, faces)
    as_t = lambda a, dt: None if a is None else torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
    texture = image_to_texture(image) if image is not None and uvs is not None else None
    return Mesh(as_t(verts, torch.float32), as_t(faces, torch.long), as_t(uvs, torch.float32), as_t(uv_faces, torch.long), texture)


def check_readable(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    """A clear error for a missing file or a wrong extension."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{path}: expected a {' or '.join(suffixes)} file, got {path.suffix or 'no extension'!r}")
    return path
