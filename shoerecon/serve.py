"""`shoerecon serve --model model.safetensors [--host 127.0.0.1] [--port 7860]`: the web demo (Gradio).

Upload a side-view photo of a shoe -> the textured 3D shoe in an interactive viewer (Gradio's Model3D
showing the GLB), the turntable strip, and downloads of the GLB and a zip of OBJ+MTL+PNG. The photo is
framed exactly like ``shoerecon predict`` does; a switch says which way the toe points (the network
expects toe right: a left-pointing photo is mirrored first; "auto" fits both ways briefly and keeps the
better silhouette, as ``shoerecon predict --orientation auto``), and a slider sets the test-time refinement
steps (``shoerecon predict --refine N``; 0 = the plain forward pass). The exported shoe is a right shoe.

Limits, so that one machine serves a few users safely: uploads over ``--max-upload-mb`` are refused by
the server, photos over ``--max-pixels`` are refused before decoding (and PIL's own guard is set to the
same limit); a queue runs ``--concurrency`` reconstructions at a time (default 1: on a small CPU two at
once are each slower than one after the other) and holds at most ``--queue-size`` waiting requests.
The server binds to 127.0.0.1 unless ``--host`` says otherwise. Outputs of a request live in a
temporary folder; folders older than ``--keep-minutes`` are removed.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

TOE = ("right", "left", "auto")
#: ``toe`` -> ``fit.fit_photo``'s orientation (the network expects toe right)
_ORIENTATION = {"right": "as-is", "left": "mirror", "auto": "auto"}


@dataclass
class ServeConfig:
    """Server settings (see the module doc)."""

    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: float = 10.0
    max_pixels: int = 25_000_000
    concurrency: int = 1
    queue_size: int = 16
    threads: int | None = None
    strip_size: int = 128
    keep_minutes: float = 60.0
    max_refine: int = 200


@dataclass
class Reconstruction:
    """Files of one request: the GLB (viewer + download), the OBJ+MTL+PNG zip, the turntable strip, the framed input."""

    glb: Path
    obj_zip: Path
    turntable: Path
    input: Path
    seconds: float


def reconstruct(model: torch.nn.Module, data_cfg, photo: str | Path, out_dir: str | Path, toe: str = "right",
                strip_size: int = 128, refine_steps: int = 0, refine_cfg=None) -> Reconstruction:
    """One photo -> ``out_dir/shoe.{glb,obj,mtl}``, ``shoe_texture.png``, ``shoe_obj.zip``, turntable and input PNGs.

    ``toe``: which way the shoe's toe points in the photo; "left" mirrors the framed input (3, S, S) so the
    network sees toe right, as in training; "auto" lets ``fit.fit_photo`` choose. ``refine_steps`` > 0 fits
    the prediction to the photo (``fit.fit_photo`` with ``refine_cfg``, default ``RefineConfig()``).
    Raises ``DataError`` (naming the file) for unusable photos.
    """
    from shoerecon.export.predict import export_mesh, load_input, predict_meshes
    from shoerecon.export.turntable import TurntableConfig, save_turntable_strip, to_pil

    if toe not in TOE:
        raise ValueError(f"toe must be one of {TOE}, got {toe!r}")
    t0 = time.perf_counter()
    out = Path(out_dir)
    image, _ = load_input(photo, data_cfg)
    if refine_steps > 0 or toe == "auto":
        mesh, mirrored = _fit(model, data_cfg, photo, image, _ORIENTATION[toe], refine_steps, refine_cfg)
    else:
        mesh, mirrored = None, toe == "left"
    if mirrored:
        image = image.flip(-1)
    if mesh is None:
        mesh = predict_meshes(model, image[None])[0]
    obj, glb = export_mesh(mesh, out, "shoe", ("obj", "glb"))
    obj_zip = out / "shoe_obj.zip"
    with zipfile.ZipFile(obj_zip, "w", zipfile.ZIP_DEFLATED) as z:
        for f in (obj, obj.with_suffix(".mtl"), out / "shoe_texture.png"):
            if f.exists():
                z.write(f, f.name)
    strip = save_turntable_strip(mesh, out / "shoe_turntable.png", TurntableConfig(image_size=strip_size))
    to_pil(image).save(out / "shoe_input.png")
    return Reconstruction(glb, obj_zip, strip, out / "shoe_input.png", time.perf_counter() - t0)


def _fit(model: torch.nn.Module, data_cfg, photo: str | Path, image: torch.Tensor, orientation: str, steps: int,
         refine_cfg=None):
    """``fit.fit_photo`` on one photo -> (the refined right-shoe mesh, whether the photo was mirrored)."""
    from dataclasses import replace

    from shoerecon.export.predict import load_input
    from shoerecon.fit import RefineConfig, fit_photo

    rcfg = refine_cfg or RefineConfig()
    big, mask = load_input(photo, replace(data_cfg, image_size=rcfg.image_size))
    fit = fit_photo(model, image, big, mask, rcfg, orientation, steps=steps, progress=False)
    return fit.mesh, fit.mirrored


def prune(root: Path, keep_minutes: float) -> None:
    """Remove request folders under ``root`` older than ``keep_minutes``."""
    limit = time.time() - 60 * keep_minutes
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.is_dir() and folder.stat().st_mtime < limit:
            shutil.rmtree(folder, ignore_errors=True)


def build_app(model: torch.nn.Module, model_cfg, cfg: ServeConfig = ServeConfig(), work_dir: str | Path | None = None):
    """The Gradio Blocks app around ``model`` (eval mode) and its ``ExperimentConfig``; queue configured."""
    import dataclasses

    import gradio as gr

    from shoerecon.data.layout import DataError

    data_cfg = dataclasses.replace(model_cfg.data, max_pixels=cfg.max_pixels)
    root = Path(work_dir or tempfile.mkdtemp(prefix="shoerecon-serve-"))
    root.mkdir(parents=True, exist_ok=True)

    def run(photo: str | None, toe: str, refine_steps: float = 0):
        if not photo:
            raise gr.Error("Upload a photo of a shoe first.")
        prune(root, cfg.keep_minutes)
        folder = root / uuid.uuid4().hex
        try:
            r = reconstruct(model, data_cfg, photo, folder, toe.split()[0], cfg.strip_size,
                            min(max(int(refine_steps or 0), 0), cfg.max_refine), model_cfg.refine)
        except (DataError, ValueError) as err:
            raise gr.Error(str(err).replace(str(photo), "the uploaded photo"))
        note = f"{r.seconds:.2f} s on the server"
        return str(r.glb), str(r.turntable), [str(r.glb), str(r.obj_zip)], str(r.input), note

    with gr.Blocks(title="shoerecon", delete_cache=(600, int(60 * cfg.keep_minutes))) as app:
        gr.Markdown("## shoerecon: one side-view photo of a shoe -> textured 3D shoe\n"
                    "Upload a photo of a shoe seen from the side (on a plain light background, or with transparency).")
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(type="filepath", label="photo", sources=["upload", "clipboard"], height=280,
                                 elem_id="photo")
                toe = gr.Radio(["right (toe ->)", "left (<- toe)", "auto (fit both)"], value="right (toe ->)",
                               label="toe points", elem_id="toe")
                refine = gr.Slider(0, cfg.max_refine, value=0, step=10, elem_id="refine",
                                   label="refinement steps (fit the shoe to the photo; 0 = one forward pass, "
                                         "100 takes seconds)")
                button = gr.Button("Reconstruct", variant="primary", elem_id="go")
                seen = gr.Image(label="what the network sees", height=160, interactive=False, elem_id="seen")
            with gr.Column(scale=2):
                viewer = gr.Model3D(label="3D shoe (drag to rotate)", clear_color=(1.0, 1.0, 1.0, 1.0), height=420,
                                    elem_id="viewer")
                strip = gr.Image(label="turntable", interactive=False, elem_id="strip")
                files = gr.File(label="downloads: GLB, OBJ+MTL+PNG (zip)", file_count="multiple",
                                interactive=False, elem_id="files")
                note = gr.Markdown(elem_id="note")
        button.click(run, [photo, toe, refine], [viewer, strip, files, seen, note], concurrency_limit=cfg.concurrency,
                     api_name="reconstruct")
    app.queue(max_size=cfg.queue_size, default_concurrency_limit=cfg.concurrency)
    return app


def launch(model_path: str | Path, cfg: ServeConfig = ServeConfig(), block: bool = True):
    """Load the model, set the limits, start the server; returns the app (``block=False``: in a background thread)."""
    from PIL import Image

    from shoerecon.train.checkpoint import load_for_inference

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    Image.MAX_IMAGE_PIXELS = cfg.max_pixels  # PIL's bomb guard (gradio decodes uploads too): same limit
    model, model_cfg = load_for_inference(model_path)
    app = build_app(model, model_cfg, cfg)
    app.launch(server_name=cfg.host, server_port=cfg.port, max_file_size=f"{max(1, round(cfg.max_upload_mb * 1024))}kb",
               prevent_thread_lock=not block, show_error=True, quiet=not block)
    return app


# ----------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServeConfig()
    parser.add_argument("--model", required=True, help="model.safetensors (shoerecon export-model) or a checkpoint .pt")
    parser.add_argument("--host", default=d.host, help="interface to bind (default 127.0.0.1: this machine only; "
                                                       "0.0.0.0 serves the network)")
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="largest upload accepted")
    parser.add_argument("--max-pixels", type=int, default=d.max_pixels, help="largest photo (pixels) accepted")
    parser.add_argument("--concurrency", type=int, default=d.concurrency,
                        help="reconstructions at a time (default 1; others wait in the queue)")
    parser.add_argument("--queue-size", type=int, default=d.queue_size, help="waiting requests beyond which new ones are refused")
    parser.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (default torch's choice)")
    parser.add_argument("--strip-size", type=int, default=d.strip_size, help="pixel size of each turntable view")
    parser.add_argument("--max-refine", type=int, default=d.max_refine,
                        help="largest refinement-step count the page's slider offers")


def run(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise SystemExit("shoerecon serve needs gradio: pip install 'shoerecon[demo]' (or pip install gradio)")
    if not Path(args.model).is_file():
        raise SystemExit(f"shoerecon serve: model file {args.model} not found")
    cfg = ServeConfig(host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels,
                      concurrency=args.concurrency, queue_size=args.queue_size, threads=args.threads,
                      strip_size=args.strip_size, max_refine=args.max_refine)
    try:
        launch(args.model, cfg)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"shoerecon serve: {err}") from None
    return 0
