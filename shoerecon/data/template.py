"""The template from the procedural generator, and `shoerecon template` to regenerate templates/shoe.obj.

The template is the generator's shoe at the mid-point of every parameter range (``ShoeParams.mean()``), meshed
coarser than the ground-truth shoes (``TEMPLATE_EDGE_LENGTH``); the OBJ stores its natural UV layout.
Reading it is geometry's (``shoerecon.geometry.template.load_template``); building it needs the generator,
so it lives here.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from shoerecon.data.synthetic import ShoeParams, SynthConfig, shoe_mesh
from shoerecon.geometry.io.obj import write_obj
from shoerecon.geometry.mesh import Mesh
from shoerecon.geometry.template import DEFAULT_TEMPLATE, load_template, with_uv_layout

TEMPLATE_EDGE_LENGTH = 0.035


def template_mesh(edge_length: float = TEMPLATE_EDGE_LENGTH) -> Mesh:
    """Build the template from the generator's mean parameters: normalised verts, faces and the natural UV."""
    return shoe_mesh(ShoeParams.mean(), SynthConfig(edge_length=edge_length), textured=False)


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
    header = (f"shoerecon template: procedural shoe at ShoeParams.mean(), edge length {args.edge_length}\n"
              f"regenerate: shoerecon template --edge-length {args.edge_length}\n"
              f"{mesh.num_verts} vertices, {mesh.num_faces} faces; vt = the generator's natural UV")
    path = write_obj(mesh, Path(args.out), header)
    print(f"wrote {path}: {mesh.num_verts} vertices, {mesh.num_faces} faces")
    return 0
