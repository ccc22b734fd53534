"""Mixed precision end to end: the renderer and align's visibility stay float32 under autocast; a bf16 step trains."""
import math

import pytest
import torch

from tiny import tiny_overrides
from shoerecon.geometry.primitives import ico_sphere, sphere_uv
from shoerecon.losses.align import project_face_centroids, visible_faces
from shoerecon.render import Cameras, Renderer, RendererConfig
from shoerecon.train.config import load_config
from shoerecon.train.trainer import Trainer

BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


def _scene():
    m = ico_sphere(2)
    verts = torch.stack([m.verts * torch.tensor([0.6, 0.3, 0.3]), m.verts * 0.4])
    cams = Cameras.from_tensor(torch.tensor([[[20.0, 10.0, 2.2, 30.0], [200.0, -5.0, 2.4, 35.0]]] * 2))
    tex = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return m, verts, cams, tex


@pytest.mark.parametrize("blend", ["soft", "hard"])
def test_renderer_ignores_autocast(blend):
    """float32 inputs render bit-identically with and without bf16 autocast (the camera einsum, depth sort,
    barycentrics and blend would otherwise run in bfloat16)."""
    m, verts, cams, tex = _scene()
    r = Renderer(RendererConfig(image_size=24, blend=blend, faces_per_pixel=4 if blend == "soft" else 1))
    ref = r(verts, m.faces, cams, tex, sphere_uv(m.verts), m.faces)
    with torch.autocast(**BF16):
        out = r(verts, m.faces, cams, tex, sphere_uv(m.verts), m.faces)
        frags = r.rasterize(verts, m.faces, cams)
    assert out.dtype == torch.float32 and torch.equal(out, ref)
    assert frags.bary_coords.dtype == torch.float32 and frags.zbuf.dtype == torch.float32
    assert torch.equal(frags.pix_to_face, r.rasterize(verts, m.faces, cams).pix_to_face)


def test_renderer_upcasts_low_precision_inputs_and_passes_gradients():
    m, verts, cams, tex = _scene()
    r = Renderer(RendererConfig(image_size=24))
    v16 = verts.bfloat16().requires_grad_(True)
    with torch.autocast(**BF16):
        out = r(v16, m.faces, cams, tex.bfloat16(), sphere_uv(m.verts), m.faces)
    assert out.dtype == torch.float32
    ref = r(v16.detach().float(), m.faces, cams, tex.bfloat16().float(), sphere_uv(m.verts), m.faces)
    assert torch.equal(out, ref)
    out[:, :, 3].sum().backward()
    assert v16.grad.dtype == torch.bfloat16 and torch.isfinite(v16.grad).all() and v16.grad.abs().sum() > 0


def test_align_projection_and_visibility_ignore_autocast():
    m, verts, cams, _ = _scene()
    cams = cams[:, 0]
    grid, front = project_face_centroids(verts, m.faces, cams, 32, 32)
    vis = visible_faces(verts, m.faces, cams, 32, 32)
    with torch.autocast(**BF16):
        grid_a, front_a = project_face_centroids(verts, m.faces, cams, 32, 32)
        vis_a = visible_faces(verts.bfloat16(), m.faces, cams, 32, 32)
    assert grid_a.dtype == torch.float32 and torch.equal(grid, grid_a) and torch.equal(front, front_a)
    # bf16 verts (8 mantissa bits) move a few faces by rounding, not by precision of the pass
    assert (vis ^ vis_a).float().mean() < 0.05 and vis_a.sum() > 0.2 * vis.numel()


def test_bf16_autocast_training_step_is_finite(tmp_path):
    """The whole v2 step (network, renders, align, flow smoothness, critic + GP, adversarial, FID, backward)
    under CPU bfloat16 autocast: finite losses and gradients, float32 renders."""
    root = str(tmp_path / "data")
    extra = ["uv.mode=spherical", "losses.flow_smooth=0.1", "losses.align=0.1", "variance.mode=gradient_only",
             "losses.adversarial=0.01", "losses.fid=0.001", "fid.pretrained=false", "fid.resize=75",
             "gan.critic.base_channels=4", "gan.critic.num_layers=3", "losses.novel_views=2", "train.batch_size=2",
             "train.final_eval_shoes=0", "train.export_shoes=0"]
    trainer = Trainer(load_config(None, tiny_overrides(root, str(tmp_path), "bf16", 1) + extra))
    batch = next(iter(trainer.loader))
    with torch.autocast(**BF16):
        result = trainer.train_step(batch)
    assert not result.skipped and math.isfinite(result.grad_norm) and result.grad_norm > 0
    for name in ("total", "silhouette", "align", "flow_smooth", "adversarial", "fid"):
        assert math.isfinite(result.losses[name]), (name, result.losses)
    assert math.isfinite(result.losses["critic/gp"])
    assert trainer.last_renders.dtype == torch.float32
    assert all(torch.isfinite(p).all() for p in trainer.net.parameters())
