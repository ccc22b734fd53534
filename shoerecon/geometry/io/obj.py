"""Wavefront OBJ + MTL + PNG texture export, and OBJ import through trimesh.

The writer is a few lines of text: OBJ indexes positions, UVs and normals separately, exactly
like our ``Mesh`` (faces / uv_faces), so nothing is split and vertex order is kept. OBJ's ``vt``
has v up with the image's bottom row at v = 0, which is our convention as is: no flip. Faces are
written counter-clockwise seen from outside (OBJ's front faces). The reader goes through trimesh
so that any OBJ a user brings (quads, several groups) loads too.

``read_obj`` / ``write_obj`` are the exact pair for meshes without material (the template): positions, ``vt``
and faces are read and written in the file's order (``vt`` order kept, polygons fan-triangulated).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh

from shoerecon.geometry.io.common import check_readable, mesh_from_arrays, smooth_normals, texture_to_image
from shoerecon.geometry.io.glb import trimesh_texture_image
from shoerecon.geometry.mesh import Mesh


def _rows(prefix: str, values: np.ndarray, fmt: str = "%.7g") -> str:
    """One text line per row: ``prefix a b c``."""
    if len(values) == 0:
        return ""
    line = prefix + " " + " ".join([fmt] * values.shape[1])
    return "\n".join(line % tuple(row) for row in values.tolist()) + "\n"


def mtl_text(material: str, texture_file: str | None) -> str:
    """A plain diffuse material (no specular), textured when ``texture_file`` is given."""
    lines = [f"newmtl {material}", "Ka 1 1 1", "Kd 1 1 1", "Ks 0 0 0", "Ns 1", "d 1", "illum 1"]
    if texture_file is not None:
        lines.append(f"map_Kd {texture_file}")
    return "\n".join(lines) + "\n"


def obj_text(mesh: Mesh, mtl_file: str | None, material: str) -> str:
    """OBJ text: v (N), vt (T), vn (N, smooth unit normals), f with 1-based v/vt/vn indices."""
    verts = mesh.verts.detach().cpu().double().numpy()
    normals = smooth_normals(mesh).cpu().numpy()
    faces = mesh.faces.detach().cpu().numpy() + 1
    parts = ["# shoerecon mesh\n"]
    if mtl_file is not None:
        parts.append(f"mtllib {mtl_file}\n")
    parts += ["o shoe\n", _rows("v", verts)]
    if mesh.uvs is not None:
        parts.append(_rows("vt", mesh.uvs.detach().cpu().double().numpy()))
    parts.append(_rows("vn", normals))
    if mtl_file is not None:
        parts.append(f"usemtl {material}\n")
    if mesh.uvs is not None:
        uv_faces = mesh.uv_faces.detach().cpu().numpy() + 1
        corners = np.stack([faces, uv_faces, faces], axis=-1).reshape(-1, 9)
        parts.append("".join("f %d/%d/%d %d/%d/%d %d/%d/%d\n" % tuple(c) for c in corners.tolist()))
    else:
        corners = np.stack([faces, faces], axis=-1).reshape(-1, 6)
        parts.append("".join("f %d//%d %d//%d %d//%d\n" % tuple(c) for c in corners.tolist()))
    return "".join(parts)


def save_obj(mesh: Mesh, path: str | Path) -> Path:
    """Write ``<stem>.obj``, ``<stem>.mtl`` and (if textured) ``<stem>_texture.png`` side by side; returns the .obj path.

    >>> import torch, tempfile, os
    >>> tri = Mesh(torch.tensor([[0., 0, 0], [1, 0, 0], [0, 1, 0]]), torch.tensor([[0, 1, 2]]))
    >>> p = save_obj(tri, os.path.join(tempfile.mkdtemp(), "tri.obj"))
    >>> load_obj(p).faces.tolist()
    [[0, 1, 2]]
    """
    path = Path(path)
    if path.suffix.lower() != ".obj":
        raise ValueError(f"{path}: save_obj writes .obj files")
    path.parent.mkdir(parents=True, exist_ok=True)
    material = "material0"
    texture_file = None
    if mesh.texture is not None and mesh.uvs is not None:
        texture_file = f"{path.stem}_texture.png"
        texture_to_image(mesh.texture).save(path.parent / texture_file)
    mtl_file = path.with_suffix(".mtl").name
    path.with_suffix(".mtl").write_text(mtl_text(material, texture_file))
    path.write_text(obj_text(mesh, mtl_file, material))
    return path


def load_obj(path: str | Path, weld: bool = True) -> Mesh:
    """Read an OBJ (with its MTL and texture when present) into a ``Mesh``.

    Args:
        weld: merge vertices with identical positions (trimesh splits them at UV seams).
    """
    path = check_readable(path, (".obj",))
    try:
        loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as err:
        raise ValueError(f"{path}: could not read as OBJ: {err}") from err
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ValueError(f"{path}: no triangles found")
    uv = getattr(loaded.visual, "uv", None)
    uv = np.asarray(uv)[:, :2] if uv is not None and len(uv) == len(loaded.vertices) else None
    return mesh_from_arrays(loaded.vertices, loaded.faces, uv, trimesh_texture_image(loaded), weld)


def write_obj(mesh: Mesh, path: str | Path, header: str = "") -> Path:
    """Minimal OBJ (v, vt, f v/vt), 1-based, faces counter-clockwise from outside, v up in vt."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {h}" for h in header.splitlines()]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.verts.tolist()]
    if mesh.uvs is not None:
        lines += [f"vt {u:.6f} {v:.6f}" for u, v in mesh.uvs.tolist()]
        lines += [f"f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}"
                  for (a, b, c), (ta, tb, tc) in zip(mesh.faces.tolist(), mesh.uv_faces.tolist())]
    else:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_obj(path: str | Path) -> Mesh:
    """Read positions, optional vt and triangle faces of an OBJ (polygons are fan-triangulated)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: template mesh not found (regenerate it with `shoerecon template`)")
    verts, uvs, faces, uv_faces = [], [], [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            if parts[0] == "v":
                verts.append([float(x) for x in parts[1:4]])
            elif parts[0] == "vt":
                uvs.append([float(x) for x in parts[1:3]])
            elif parts[0] == "f":
                idx = [p.split("/") for p in parts[1:]]
                vi = [int(p[0]) for p in idx]
                ti = [int(p[1]) if len(p) > 1 and p[1] else 0 for p in idx]
                vi = [i - 1 if i > 0 else len(verts) + i for i in vi]
                ti = [i - 1 if i > 0 else len(uvs) + i for i in ti]
                for k in range(1, len(vi) - 1):
                    faces.append([vi[0], vi[k], vi[k + 1]])
                    uv_faces.append([ti[0], ti[k], ti[k + 1]])
        except (ValueError, IndexError):
            raise ValueError(f"{path}:{n}: cannot parse {line!r}") from None
    if not verts or not faces:
        raise ValueError(f"{path}: no vertices or faces")
    faces_t = torch.tensor(faces, dtype=torch.long)
    if faces_t.min() < 0 or faces_t.max() >= len(verts):
        raise ValueError(f"{path}: face indices out of range (file has {len(verts)} vertices)")
    has_uv = bool(uvs) and all(min(f) >= 0 for f in uv_faces)
    return Mesh(
        torch.tensor(verts, dtype=torch.float32), faces_t,
        torch.tensor(uvs, dtype=torch.float32) if has_uv else None,
        torch.tensor(uv_faces, dtype=torch.long) if has_uv else None,
    )
