"""The template from the procedural generator, and `shoerecon template` to regenerate templates/shoe.obj.

The template is one closed genus-0 surface around the shape family's mean shoe (``ShoeParams.mean()``: every
continuous parameter averaged over 2000 seeded draws): the outer envelope of its upper and sole
(``synth.shape.upper_surface(outer=True)``), meshed with near-equilateral triangles (``TEMPLATE_EDGE_LENGTH``);
the OBJ stores its natural UV layout (see templates/README.md).
Reading it is geometry's (``shoerecon.geometry.template.load_template``); building it needs the generator,
so it lives here.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from shoerecon.data.synth.mesher import mesh_surface
from shoerecon.data.synth.shape import ShoeParams, upper_surface
from shoerecon.geometry.io.obj import write_obj
from shoerecon.geometry.mesh import Mesh, normalize_verts
from shoerecon.geometry.template import DEFAULT_TEMPLATE, load_template, with_uv_layout

TEMPLATE_EDGE_LENGTH = 0.035


def template_mesh(edge_length: float = TEMPLATE_EDGE_LENGTH) -> Mesh:
    """Build the template from the family's mean shoe: normalised verts, faces and the natural UV."""
    p = ShoeParams.mean()
    verts, faces, uvs, uv_faces = mesh_surface(lambda s, t: upper_surface(p, s, t, outer=True), edge_length)
    return Mesh(normalize_verts(torch.from_numpy(verts)).float(), torch.from_numpy(faces),
                torch.from_numpy(uvs).float(), torch.from_numpy(uv_faces))


def default_template(path: str | None = None, uv_mode: str = "islands", spherical=None) -> Mesh:
    """``load_template(path, ...)``; with ``path`` None and templates/shoe.obj absent (a non-editable install),
    the template built from the generator instead."""
    if path is None and not DEFAULT_TEMPLATE.exists():
        return with_uv_layout(template_mesh(), uv_mode, spherical, "the generator's template")
    return load_template(path, uv_mode, spherical)


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
    path = write_obj(mesh, Path(args.out), header)
    print(f"wrote {path}: {mesh.num_verts} vertices, {mesh.num_faces} faces")
    return 0
