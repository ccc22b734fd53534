"""The template shoe mesh every prediction deforms: read from an OBJ, normalised, with a UV layout.

templates/shoe.obj is the procedural generator's shoe at the mid-point of every parameter range, written by
`shoerecon template` (``shoerecon.data.template``, which also builds it when the file is absent), normalised
like the data (centred bounding box, longest extent 1, +Y up, toe +X, lateral +Z). The OBJ also stores the
generator's natural UV layout (``uv_mode="file"``).
"""
from __future__ import annotations

from pathlib import Path

from shoerecon.geometry.io.obj import read_obj
from shoerecon.geometry.mesh import Mesh, normalize_verts
from shoerecon.geometry.uv import compute_uv

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "shoe.obj"
UV_MODES = ("islands", "spherical", "file", "none")


def load_template(path: str | None = None, uv_mode: str = "islands", spherical=None) -> Mesh:
    """The template mesh, normalised (centred bbox, longest extent 1), with a UV layout.

    Args:
        path: an OBJ; None = templates/shoe.obj (``shoerecon.data.template.default_template`` builds it
            from the generator when that file is absent, e.g. in a non-editable install).
        uv_mode: "islands" / "spherical" (``geometry.uv.compute_uv``), "file" (the UV stored in the
            OBJ: the generator's natural layout) or "none".
        spherical: ``geometry.uv.SphericalUVConfig`` of the spherical mode (None: its defaults).
    Returns:
        Mesh with verts (N, 3), faces (F, 3) and, unless "none", uvs (T, 2) / uv_faces (F, 3).
    """
    return with_uv_layout(read_obj(path or DEFAULT_TEMPLATE), uv_mode, spherical, path or DEFAULT_TEMPLATE)


def with_uv_layout(mesh: Mesh, uv_mode: str = "islands", spherical=None, source: str | Path = "template") -> Mesh:
    """``mesh`` normalised (centred bbox, longest extent 1) with the UV layout of ``uv_mode`` (see load_template)."""
    if uv_mode not in UV_MODES:
        raise ValueError(f"load_template: uv_mode must be one of {UV_MODES}, got {uv_mode!r}")
    verts = normalize_verts(mesh.verts)
    if uv_mode == "none":
        return Mesh(verts, mesh.faces)
    if uv_mode == "file":
        if mesh.uvs is None:
            raise ValueError(f"load_template: {source} has no texture coordinates (vt) for uv_mode='file'")
        return Mesh(verts, mesh.faces, mesh.uvs, mesh.uv_faces)
    uvs, uv_faces = compute_uv(verts, mesh.faces, uv_mode, spherical)
    return Mesh(verts, mesh.faces, uvs, uv_faces)
