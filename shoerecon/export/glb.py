"""Binary glTF 2.0 (.glb) export and import through trimesh.

What is written: positions, unit smooth normals, TEXCOORD_0 and a PBR material whose
baseColorTexture is the mesh texture (PNG, embedded), metallic 0, roughness 1, so viewers show
the texture unlit-ish. Faces stay counter-clockwise seen from outside (glTF's front faces).
UV: glTF's texture origin is the image's top-left, so v_gltf = 1 - v; trimesh applies that flip
on write and undoes it on read, and our texture row 0 (v = 1) is the image's top row.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

from shoerecon.export.common import check_readable, mesh_from_arrays, split_uv_seams, texture_to_image
from shoerecon.geometry.mesh import Mesh


def mesh_to_trimesh(mesh: Mesh, name: str = "shoe") -> trimesh.Trimesh:
    """Our ``Mesh`` -> a ``trimesh.Trimesh`` with one vertex per (position, uv) pair and a PBR material."""
    split = split_uv_seams(mesh)
    visual = None
    if split.uvs is not None:
        image = texture_to_image(mesh.texture) if mesh.texture is not None else None
        material = PBRMaterial(
            name=f"{name}_material", baseColorTexture=image, baseColorFactor=[255, 255, 255, 255],
            metallicFactor=0.0, roughnessFactor=1.0, doubleSided=False,
        )
        visual = TextureVisuals(uv=split.uvs, material=material)
    return trimesh.Trimesh(
        vertices=split.verts, faces=split.faces, vertex_normals=split.normals, visual=visual, process=False,
    )


def save_glb(mesh: Mesh, path: str | Path) -> Path:
    """Write ``mesh`` (with its UVs and texture when present) as a binary glTF file; returns the path.

    >>> import torch, tempfile, os
    >>> tri = Mesh(torch.tensor([[0., 0, 0], [1, 0, 0], [0, 1, 0]]), torch.tensor([[0, 1, 2]]))
    >>> p = save_glb(tri, os.path.join(tempfile.mkdtemp(), "tri.glb"))
    >>> load_glb(p).faces.tolist()
    [[0, 1, 2]]
    """
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise ValueError(f"{path}: save_glb writes .glb files")
    path.parent.mkdir(parents=True, exist_ok=True)
    scene = trimesh.Scene()
    scene.add_geometry(mesh_to_trimesh(mesh, path.stem), geom_name=path.stem or "shoe")
    data = trimesh.exchange.gltf.export_glb(scene, include_normals=True, unitize_normals=True)
    path.write_bytes(data)
    return path


def trimesh_texture_image(tm: trimesh.Trimesh):
    """The base colour image of a trimesh (PBR or simple material), or None."""
    material = getattr(tm.visual, "material", None)
    if material is None:
        return None
    image = getattr(material, "baseColorTexture", None)
    return image if image is not None else getattr(material, "image", None)


def load_glb(path: str | Path, weld: bool = True) -> Mesh:
    """Read a .glb/.gltf file into a ``Mesh`` (all primitives concatenated in world space).

    Args:
        weld: merge vertices with identical positions (undoes the split at UV seams).
    Returns:
        Mesh with uvs/uv_faces/texture when the file has them.
    """
    path = check_readable(path, (".glb", ".gltf"))
    try:
        loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as err:  # trimesh raises many types for broken files
        raise ValueError(f"{path}: could not read as glTF: {err}") from err
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ValueError(f"{path}: no triangles found")
    uv = getattr(loaded.visual, "uv", None)
    uv = np.asarray(uv)[:, :2] if uv is not None and len(uv) == len(loaded.vertices) else None
    return mesh_from_arrays(loaded.vertices, loaded.faces, uv, trimesh_texture_image(loaded), weld)
