"""Mesh files: OBJ (+MTL+PNG) and binary glTF, written and read in one place (``Mesh`` <-> file).

``save_obj`` / ``load_obj`` and ``save_glb`` / ``load_glb`` carry textures (trimesh underneath);
``read_obj`` / ``write_obj`` are the exact, material-less pair that keeps the file's vertex and ``vt`` order.
"""
from shoerecon.geometry.io.glb import load_glb, save_glb
from shoerecon.geometry.io.obj import load_obj, read_obj, save_obj, write_obj

__all__ = ["save_glb", "load_glb", "save_obj", "load_obj", "read_obj", "write_obj"]
