"""Mesh export and inference: OBJ+MTL+PNG and GLB writers/readers, turntable previews, `shoerecon predict`."""
from shoerecon.export.glb import load_glb, save_glb
from shoerecon.export.obj import load_obj, save_obj

__all__ = ["save_glb", "load_glb", "save_obj", "load_obj"]
