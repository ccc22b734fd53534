"""Moved to ``shoerecon.geometry.io.obj`` (mesh files live below the data layer); this alias keeps older imports
working. New code imports from ``shoerecon.geometry.io``."""
from shoerecon.geometry.io.obj import load_obj, mtl_text, obj_text, read_obj, save_obj, write_obj  # noqa: F401
