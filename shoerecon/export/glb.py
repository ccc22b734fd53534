"""Moved to ``shoerecon.geometry.io.glb`` (mesh files live below the data layer); this alias keeps older imports
working. New code imports from ``shoerecon.geometry.io``."""
from shoerecon.geometry.io.glb import (  # noqa: F401
    glb_bytes, glb_chunks, load_glb, mesh_to_trimesh, polish_glb, save_glb, trimesh_texture_image,
)
