"""Fit a prediction to its photo at predict time (``shoerecon predict --refine N``): shape residual with a
symmetry prior, the photo's camera (elevation + image similarity), and a texture baked from the photo.

Layer: uses geometry, render, model and losses; used by export/predict and eval.
"""
from shoerecon.fit.camera import PhotoCamera
from shoerecon.fit.orientation import ORIENTATIONS, PhotoFit, fit_photo, predict_one, refine_meshes
from shoerecon.fit.refine import RefineConfig, RefineResult, hard_iou, mirror_mesh, refine
from shoerecon.fit.texture import BakeConfig, BakeResult, TexelPoints, bake_texture

__all__ = [
    "PhotoCamera", "RefineConfig", "RefineResult", "refine", "hard_iou", "mirror_mesh",
    "ORIENTATIONS", "PhotoFit", "fit_photo", "predict_one", "refine_meshes",
    "BakeConfig", "BakeResult", "TexelPoints", "bake_texture",
]
