"""`shoerecon serve`: the reconstruction behind the page, the API with its limits, and the page itself in a real
headless browser (upload -> drawn 3D viewer -> the offered GLB passes the Khronos validator)."""
from __future__ import annotations

import io
import os
import urllib.request
import zipfile

import numpy as np
import torch
import pytest
from PIL import Image, ImageDraw
from tiny import tiny_checkpoint

from shoerecon.geometry.io.glb import load_glb
from shoerecon.serve import ServeConfig, reconstruct

MAX_PIXELS = 250_000


def shoe_photo(path, size=(160, 96), toe_right=True):
    """A shoe-like silhouette on white: a dark sole, a coloured upper that is taller at the heel."""
    w, h = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    heel, toe = (int(0.12 * w), int(0.88 * w)) if toe_right else (int(0.88 * w), int(0.12 * w))
    d.polygon([(heel, int(0.3 * h)), (heel, int(0.8 * h)), (toe, int(0.8 * h)), (toe, int(0.62 * h))],
              fill=(40, 60, 170))
    d.rectangle([min(heel, toe), int(0.8 * h), max(heel, toe), int(0.88 * h)], fill=(20, 20, 20))
    img.save(path)
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from shoerecon.train.checkpoint import load_checkpoint
    from shoerecon.train.model_file import save_model_file

    d = tmp_path_factory.mktemp("model")
    tiny_checkpoint(d / "last.pt")
    return save_model_file(load_checkpoint(d / "last.pt"), d / "model.safetensors")


def test_reconstruct_writes_the_offered_files(model_file, tmp_path):
    from shoerecon.train.checkpoint import load_for_inference

    model, cfg = load_for_inference(model_file)
    right = reconstruct(model, cfg.data, shoe_photo(tmp_path / "r.png"), tmp_path / "r", "right", strip_size=32)
    mesh = load_glb(right.glb)
    assert mesh.num_faces == model.faces.shape[0] and mesh.texture is not None
    with zipfile.ZipFile(right.obj_zip) as z:
        assert sorted(z.namelist()) == ["shoe.mtl", "shoe.obj", "shoe_texture.png"]
    strip = Image.open(right.turntable)
    assert strip.width > 4 * strip.height  # 8 views side by side
    # a photo with the toe to the left, switched to "left", is what the network sees for the toe-right photo
    left = reconstruct(model, cfg.data, shoe_photo(tmp_path / "l.png", toe_right=False), tmp_path / "l", "left",
                       strip_size=32)
    a, b = (np.asarray(Image.open(p.input)).astype(float) for p in (right, left))
    assert np.abs(a - b).mean() < 2.0  # same framing up to resampling; unflipped they differ a lot
    assert np.abs(a - a[:, ::-1]).mean() > 10.0


@pytest.fixture(scope="module")
def server(model_file, tmp_path_factory):
    pytest.importorskip("gradio", reason="gradio not installed (pip install 'shoerecon[demo]')")
    from serve_load import free_port

    from shoerecon.serve import launch

    # Each test server gets its own upload cache. Gradio stores uploads under <GRADIO_TEMP_DIR>/<content hash>/:
    # with the default shared /tmp/gradio, the server of the other pytest worker (same photo, same hash) deleted
    # this one's upload when it closed, and the browser test failed with FileNotFoundError inside gradio.
    temp_dir = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio"))
    cfg = ServeConfig(port=free_port(), max_pixels=MAX_PIXELS, max_upload_mb=0.05, strip_size=32, threads=1)
    pil_limit, threads = Image.MAX_IMAGE_PIXELS, __import__("torch").get_num_threads()
    app = launch(model_file, cfg, block=False)  # sets PIL's process-wide guard to the server's limit
    yield app, f"http://127.0.0.1:{cfg.port}/"
    app.close()
    Image.MAX_IMAGE_PIXELS = pil_limit  # other tests in this process keep PIL's default
    __import__("torch").set_num_threads(threads)
    if temp_dir is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = temp_dir


def test_api_round_trip_and_limits(server, tmp_path):
    from gradio_client import Client, handle_file

    app, url = server
    assert app.server_name == "127.0.0.1"  # localhost unless --host says otherwise
    client = Client(url, verbose=False)
    glb, strip, files, seen, note = client.predict(handle_file(str(shoe_photo(tmp_path / "p.png"))), "right (toe ->)",
                                                   api_name="/reconstruct")
    assert load_glb(glb).num_faces > 0 and Image.open(strip).width > Image.open(strip).height
    assert sorted(f.rsplit("/", 1)[-1] for f in files) == ["shoe.glb", "shoe_obj.zip"]
    # more pixels than the limit: refused with the reason, the server keeps serving
    with pytest.raises(Exception, match="image too large"):
        client.predict(handle_file(str(shoe_photo(tmp_path / "big.png", size=(700, 420)))), "right (toe ->)",
                       api_name="/reconstruct")
    # an upload over the size limit is refused by the server
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    assert (tmp_path / "noise.png").stat().st_size > 0.05 * 1024 * 1024
    with pytest.raises(Exception):
        client.predict(handle_file(str(tmp_path / "noise.png")), "right (toe ->)", api_name="/reconstruct")
    assert client.predict(handle_file(str(tmp_path / "p.png")), "left (<- toe)", api_name="/reconstruct")[0]


def test_page_in_a_real_browser(server, tmp_path):
    from serve_load import browser_available, browser_round_trip, canvas_foreground, make_browser

    ok, why = browser_available()
    if not ok:
        pytest.skip(f"no headless browser: {why}")
    _, url = server
    driver = make_browser()
    try:
        seconds, png, links = browser_round_trip(driver, url, shoe_photo(tmp_path / "p.png"), timeout=120)
        cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    finally:
        driver.quit()
    assert canvas_foreground(png) > 0.01, "the 3D viewer's canvas is blank"
    Image.open(io.BytesIO(png)).save(tmp_path / "canvas.png")
    glb_links = [h for h in links if h.endswith(".glb")]
    assert len(glb_links) == 1 and any(h.endswith("_obj.zip") for h in links), links
    request = urllib.request.Request(glb_links[0], headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    (tmp_path / "offered.glb").write_bytes(urllib.request.urlopen(request, timeout=30).read())
    assert load_glb(tmp_path / "offered.glb").num_faces > 0

    from shoerecon.export.validate import validate_gltf, validator_available

    ok, why = validator_available()
    if not ok:
        pytest.skip(f"page works; Khronos glTF validator unavailable: {why}")
    report = validate_gltf(tmp_path / "offered.glb")
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]


def test_refinement_and_auto_orientation(model_file, tmp_path):
    """The page's slider and "auto" switch go through fit.fit_photo: a toe-left photo comes out mirrored (what
    the network sees equals the toe-right framing), and refinement changes the mesh the plain pass gives."""
    from shoerecon.fit import RefineConfig
    from shoerecon.train.checkpoint import load_for_inference

    model, cfg = load_for_inference(model_file)
    rcfg = RefineConfig(image_size=32, orientation_steps=3)
    plain = reconstruct(model, cfg.data, shoe_photo(tmp_path / "r.png"), tmp_path / "p", "right", strip_size=32)
    refined = reconstruct(model, cfg.data, shoe_photo(tmp_path / "r.png"), tmp_path / "f", "right", strip_size=32,
                          refine_steps=5, refine_cfg=rcfg)
    before, after = load_glb(plain.glb), load_glb(refined.glb)
    # the refined shoe's visible texels are baked from the photo, so its texture is not the flow sample's
    small = torch.nn.functional.interpolate(after.texture[None], size=before.texture.shape[-2:], mode="area")[0]
    assert float((before.texture - small).abs().mean()) > 0.01
    auto = reconstruct(model, cfg.data, shoe_photo(tmp_path / "l.png", toe_right=False), tmp_path / "a", "auto",
                       strip_size=32, refine_cfg=rcfg)
    a, b = (np.asarray(Image.open(p.input)).astype(float) for p in (plain, auto))
    assert np.abs(a - b).mean() < 2.0  # auto mirrored the toe-left photo
