"""Exported files from predictions: `export_mesh` (OBJ+MTL+PNG, GLB), turntable previews, glTF validation,
and the inference pipeline behind `shoerecon predict`. The mesh file formats themselves live in
``shoerecon.geometry.io``."""
from shoerecon.geometry.io import load_glb, load_obj, save_glb, save_obj

__all__ = ["save_glb", "load_glb", "save_obj", "load_obj"]
