"""Export, reload, render with our Renderer: the reloaded mesh looks like the one in memory (both formats)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shoerecon.geometry.io.glb import load_glb, save_glb
from shoerecon.geometry.io.obj import load_obj, save_obj
from shoerecon.export.turntable import TurntableConfig, image_grid, render_mesh, preview_renderer, save_turntable_strip
from shoerecon.geometry.template import load_template
from shoerecon.render import Cameras


@pytest.fixture(scope="module")
def textured_shoe():
    torch.manual_seed(0)
    mesh = load_template(uv_mode="file")  # the generator's UV layout: seams, several charts
    ramp = torch.linspace(0, 1, 64)
    noise = F.interpolate(torch.rand(1, 1, 8, 8), size=(64, 64), mode="bilinear", align_corners=False)[0, 0]
    # red grows with v, green with u: a flip of either axis changes the colours a lot
    mesh.texture = torch.stack([ramp.flip(0)[:, None].expand(64, 64), ramp[None, :].expand(64, 64), noise])
    return mesh


def foreground_diff(a, b):
    """Mean absolute RGB difference over pixels covered in either render. (V, 4, H, W) x2 -> float."""
    fg = ((a[:, 3:] > 0.5) | (b[:, 3:] > 0.5)).expand(-1, 3, -1, -1)
    return (a[:, :3] - b[:, :3]).abs()[fg].mean().item()


def views():
    return Cameras.from_tensor(torch.tensor([[0.0, 10, 2.2, 30], [60, 20, 2.2, 30], [180, -10, 2.2, 30], [270, 30, 2.2, 30]]))


@pytest.mark.parametrize("fmt", ["glb", "obj"])
def test_reloaded_mesh_renders_like_the_original(tmp_path, textured_shoe, fmt):
    save, load = (save_glb, load_glb) if fmt == "glb" else (save_obj, load_obj)
    back = load(save(textured_shoe, tmp_path / f"shoe.{fmt}"))
    renderer = preview_renderer(48)
    ref = render_mesh(textured_shoe, views(), renderer)
    got = render_mesh(back, views(), renderer)
    assert ref[:, 3].mean() > 0.1  # the shoe is in view
    assert (got - ref).abs().mean().item() < 0.02
    assert foreground_diff(got, ref) < 0.02  # also on the shoe's pixels alone


def test_a_v_flip_would_be_seen(textured_shoe):
    # The check above can fail: the same mesh with v flipped renders clearly differently.
    flipped = load_template(uv_mode="file")
    flipped.texture = textured_shoe.texture.flip(-2)
    renderer = preview_renderer(48)
    diff = foreground_diff(render_mesh(flipped, views(), renderer), render_mesh(textured_shoe, views(), renderer))
    assert diff > 0.1


def test_turntable_strip_png(tmp_path, textured_shoe):
    from PIL import Image

    path = save_turntable_strip(textured_shoe, tmp_path / "strip.png", TurntableConfig(num_views=8, image_size=24))
    img = Image.open(path)
    assert img.size == (8 * 24 + 7 * 2, 24)
    assert image_grid([[torch.zeros(3, 4, 4)] * 2, [torch.ones(4, 4, 4)]], pad=1).shape == (3, 9, 9)


def test_textured_shoe_glb_passes_khronos_validator(tmp_path, textured_shoe):
    from shoerecon.export.validate import validate_gltf, validator_available

    ok, why = validator_available()
    if not ok:
        pytest.skip(f"Khronos glTF validator unavailable: {why}")
    report = validate_gltf(save_glb(textured_shoe, tmp_path / "shoe.glb"))
    assert report["issues"]["numErrors"] == 0, [m for m in report["issues"]["messages"] if m["severity"] == 0]
    assert report["issues"]["numWarnings"] == 0, report["issues"]["messages"]
