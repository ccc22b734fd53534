"""Binary glTF 2.0 (.glb) export and import through trimesh.

What is written: positions, unit smooth normals, TEXCOORD_0 and a PBR material whose
baseColorTexture is the mesh texture (PNG, embedded), metallic 0, roughness 1, marked
``KHR_materials_unlit`` by default: our textures already carry their shading (photos), so viewers
should show them as they are, like our own renderer does. Faces stay counter-clockwise seen from
outside (glTF's front faces).
UV: glTF's texture origin is the image's top-left, so v_gltf = 1 - v; trimesh applies that flip
on write and undoes it on read, and our texture row 0 (v = 1) is the image's top row.
"""
from __future__ import annotations

from pathlib import Path

import json
import struct

import numpy as np
import trimesh
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

from shoerecon.geometry.io.common import check_readable, mesh_from_arrays, split_uv_seams, texture_to_image
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


def glb_chunks(data: bytes) -> tuple[dict, bytes]:
    """Split a .glb into its JSON document and binary chunk."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2:
        raise ValueError("not a glTF 2.0 binary")
    json_len, _ = struct.unpack_from("<I4s", data, 12)
    doc = json.loads(data[20:20 + json_len])
    rest = data[20 + json_len:]
    binary = b""
    if rest:
        bin_len, _ = struct.unpack_from("<I4s", rest, 0)
        binary = rest[8:8 + bin_len]
    return doc, binary


def glb_bytes(doc: dict, binary: bytes) -> bytes:
    """Assemble a .glb from a JSON document and a binary chunk (both padded to 4 bytes)."""
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<I4s", len(text), b"JSON") + text
    if binary:
        body += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def polish_glb(data: bytes, unlit: bool = True) -> bytes:
    """Small fixes on trimesh's .glb: bufferView targets (vertex / index data, a validator hint) and,
    if ``unlit``, ``KHR_materials_unlit`` on every material (texture shown as is, no lighting)."""
    doc, binary = glb_chunks(data)
    for mesh in doc.get("meshes", []):
        for prim in mesh.get("primitives", []):
            views = [(doc["accessors"][a].get("bufferView"), 34962) for a in prim.get("attributes", {}).values()]
            if "indices" in prim:
                views.append((doc["accessors"][prim["indices"]].get("bufferView"), 34963))
            for view, target in views:
                if view is not None:
                    doc["bufferViews"][view]["target"] = target  # ARRAY_BUFFER / ELEMENT_ARRAY_BUFFER
    if unlit and doc.get("materials"):
        for material in doc["materials"]:
            material.setdefault("extensions", {})["KHR_materials_unlit"] = {}
        used = doc.setdefault("extensionsUsed", [])
        if "KHR_materials_unlit" not in used:
            used.append("KHR_materials_unlit")
    return glb_bytes(doc, binary)


def save_glb(mesh: Mesh, path: str | Path, unlit: bool = True) -> Path:
    """Write ``mesh`` (with its UVs and texture when present) as a binary glTF file; returns the path.

    Args:
        unlit: mark the material ``KHR_materials_unlit`` (viewers show the texture without lighting).

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
    path.write_bytes(polish_glb(data, unlit))
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
