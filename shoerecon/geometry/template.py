"""The template shoe mesh every prediction deforms, and `shoerecon template` to regenerate it.

templates/shoe.obj is one closed genus-0 surface around the shape family's mean shoe
(``ShoeParams.mean()``: every continuous parameter averaged over 2000 seeded draws): the outer
envelope of its upper and sole (``synth.shape.upper_surface(outer=True)``: the upper's rings with
the lower half as wide as the sole, down to the ground), meshed with near-equilateral triangles
(``TEMPLATE_EDGE_LENGTH``) and normalised like the data (centred bounding box, longest extent 1,
+Y up, toe +X, lateral +Z). The OBJ also stores that surface's natural UV layout (``uv_mode="file"``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from shoerecon.geometry.mesh import Mesh, normalize_verts

TEMPLATE_EDGE_LENGTH = 0.035
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "shoe.obj"
UV_MODES = ("islands", "spherical", "file", "none")


def template_mesh(edge_length: float = TEMPLATE_EDGE_LENGTH) -> Mesh:
    """Build the template from the family's mean shoe: normalised verts, faces and the natural UV."""
    from shoerecon.data.synth.mesher import mesh_surface
    from shoerecon.data.synth.shape import ShoeParams, upper_surface

    p = ShoeParams.mean()
    verts, faces, uvs, uv_faces = mesh_surface(lambda s, t: upper_surface(p, s, t, outer=True), edge_length)
    return Mesh(normalize_verts(torch.from_numpy(verts)).float(), torch.from_numpy(faces),
                torch.from_numpy(uvs).float(), torch.from_numpy(uv_faces))


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


def load_template(path: str | None = None, uv_mode: str = "islands", spherical=None) -> Mesh:
    """The template mesh, normalised (centred bbox, longest extent 1), with a UV layout.

    Args:
        path: an OBJ; None = templates/shoe.obj (built from the generator if that file is absent,
            e.g. in a non-editable install).
        uv_mode: "islands" / "spherical" (``geometry.uv.compute_uv``), "file" (the UV stored in the
            OBJ: the generator's natural layout) or "none".
        spherical: ``geometry.uv.SphericalUVConfig`` of the spherical mode (None: its defaults).
    Returns:
        Mesh with verts (N, 3), faces (F, 3) and, unless "none", uvs (T, 2) / uv_faces (F, 3).
    """
    if uv_mode not in UV_MODES:
        raise ValueError(f"load_template: uv_mode must be one of {UV_MODES}, got {uv_mode!r}")
    if path is None and not DEFAULT_TEMPLATE.exists():
        mesh = template_mesh()
    else:
        mesh = read_obj(path or DEFAULT_TEMPLATE)
    verts = normalize_verts(mesh.verts)
    if uv_mode == "none":
        return Mesh(verts, mesh.faces)
    if uv_mode == "file":
        if mesh.uvs is None:
            raise ValueError(f"load_template: {path or DEFAULT_TEMPLATE} has no texture coordinates (vt) for uv_mode='file'")
        return Mesh(verts, mesh.faces, mesh.uvs, mesh.uv_faces)
    from shoerecon.geometry.uv import compute_uv

    uvs, uv_faces = compute_uv(verts, mesh.faces, uv_mode, spherical)
    return Mesh(verts, mesh.faces, uvs, uv_faces)


# ----------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=str(DEFAULT_TEMPLATE), help="OBJ to write (default templates/shoe.obj)")
    parser.add_argument("--edge-length", type=float, default=TEMPLATE_EDGE_LENGTH,
                        help=f"target edge length, shoe length 1 (default {TEMPLATE_EDGE_LENGTH})")


def run(args: argparse.Namespace) -> int:
    mesh = template_mesh(args.edge_length)
    header = (f"shoerecon template: outer surface of the mean shoe (ShoeParams.mean()), edge length {args.edge_length}\n"
              f"regenerate: shoerecon template --edge-length {args.edge_length}\n"
              f"{mesh.num_verts} vertices, {mesh.num_faces} faces; vt = the surface's natural UV")
    path = write_obj(mesh, args.out, header)
    print(f"wrote {path}: {mesh.num_verts} vertices, {mesh.num_faces} faces")
    return 0
