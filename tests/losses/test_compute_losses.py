"""compute_losses: terms present iff weighted, total = weighted sum, clear errors, gradients reach the inputs."""
from types import SimpleNamespace

import pytest
import torch

from shoerecon.losses import (
    LOSS_NAMES,
    LossConfig,
    LossContext,
    build_lpips,
    compute_losses,
    flatten_loss,
    laplacian_loss,
    make_lpips,
)

B, V, H = 2, 2, 32


def tetra_batch(dtype=torch.float32):
    template = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=dtype) * 0.3
    faces = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    offsets = (0.05 * torch.randn(B, 4, 3, dtype=dtype)).requires_grad_(True)
    flow = (torch.rand(B, 8, 8, 2, dtype=dtype) * 2 - 1).requires_grad_(True)
    out = SimpleNamespace(verts=template + offsets, offsets=offsets, flow=flow, uv_mask=torch.ones(8, 8, dtype=dtype))
    renders = torch.rand(B, V, 4, H, H, dtype=dtype, requires_grad=True)
    batch = {
        "targets": torch.rand(B, V, 3, H, H, dtype=dtype),
        "target_masks": (torch.rand(B, V, 1, H, H) > 0.5).to(dtype),
        "input_mask": (torch.rand(B, 1, H, H) > 0.3).to(dtype),
        "input": torch.rand(B, 3, H, H, dtype=dtype),
    }
    return out, renders, batch, faces


def tetra_context(faces, dtype=torch.float32, b: int = B) -> LossContext:
    from shoerecon.render.cameras import Cameras

    uvs = torch.tensor([[0.1, 0.1], [0.9, 0.1], [0.5, 0.9], [0.5, 0.5]], dtype=dtype)
    cams = Cameras.from_tensor(torch.tensor([[20.0, 10.0, 2.2, 30.0]] * b, dtype=dtype))
    return LossContext(uvs, faces, input_cameras=cams)


def all_on(**kw) -> LossConfig:
    weights = dict(silhouette=0.9, image=0.1, perceptual=0.01, flow=0.1, laplacian=0.1, flatten=0.001,
                   normal_consistency=0.2, edge_length=0.3, align=0.4, flow_smooth=0.5, lpips_pretrained=False)
    weights.update(kw)
    return LossConfig(**weights)


def test_every_term_and_weighted_total():
    out, renders, batch, faces = tetra_batch()
    cfg = all_on()
    terms = compute_losses(out, renders, batch, faces, cfg, lpips=make_lpips(cfg), context=tetra_context(faces))
    assert set(terms) == set(LOSS_NAMES) | {"total"}
    assert terms["align"] > 0 and terms["flow_smooth"] > 0
    expected = sum(getattr(cfg, n) * terms[n] for n in LOSS_NAMES)
    torch.testing.assert_close(terms["total"], expected)
    terms["total"].backward()
    for t in (renders, out.offsets, out.flow):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_zero_weight_terms_are_not_computed(monkeypatch):
    out, renders, batch, faces = tetra_batch()
    import shoerecon.losses as losses

    def boom(*a, **k):
        raise AssertionError("computed a term with weight 0")

    for name in ("flatten_loss", "perceptual_loss", "normal_consistency_loss", "edge_length_loss", "flow_mask_loss"):
        monkeypatch.setattr(losses, name, boom)
    cfg = LossConfig(perceptual=0, flatten=0, normal_consistency=0, edge_length=0, flow=0)
    terms = compute_losses(out, renders, batch, faces, cfg)
    assert set(terms) == {"silhouette", "image", "laplacian", "total"}


def test_options_switch_the_computation():
    out, renders, batch, faces = tetra_batch()

    def only(**kw):  # every weight 0 except kw
        return LossConfig(**{**{n: 0.0 for n in LOSS_NAMES}, **kw})

    on_offsets = compute_losses(out, renders, batch, faces, only(laplacian=1, laplacian_on="offsets"))
    on_verts = compute_losses(out, renders, batch, faces, only(laplacian=1, laplacian_on="verts"))
    torch.testing.assert_close(on_offsets["laplacian"], laplacian_loss(out.offsets, faces))
    torch.testing.assert_close(on_verts["laplacian"], laplacian_loss(out.verts, faces))
    flat = compute_losses(out, renders, batch, faces, only(flatten=1, flatten_reduction="mean"))
    torch.testing.assert_close(flat["flatten"], flatten_loss(out.verts, faces, "mean"))
    masked = compute_losses(out, renders, batch, faces, only(image=1, image_masked=True))
    full = compute_losses(out, renders, batch, faces, only(image=1))
    assert set(masked) == {"image", "total"}
    assert masked["image"].item() != pytest.approx(full["image"].item())


def test_perfect_prediction_has_zero_data_terms():
    out, renders, batch, faces = tetra_batch()
    renders = torch.cat([batch["targets"], batch["target_masks"]], dim=2)
    cfg = LossConfig(perceptual=0.01, flow=0, laplacian=0, flatten=0, lpips_pretrained=False)
    terms = compute_losses(out, renders, batch, faces, cfg, lpips=build_lpips(False))
    for name in ("silhouette", "image", "perceptual"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-6)


def test_errors_are_clear():
    out, renders, batch, faces = tetra_batch()
    with pytest.raises(ValueError, match="LPIPS"):
        compute_losses(out, renders, batch, faces, LossConfig(perceptual=0.01))
    with pytest.raises(ValueError, match="do not match"):
        compute_losses(out, renders[..., :16, :16], batch, faces, LossConfig(perceptual=0))
    with pytest.raises(ValueError, match="laplacian_on"):
        LossConfig(laplacian_on="normals")
    with pytest.raises(ValueError, match="weight"):
        LossConfig(image=-1)


def test_compute_losses_gradcheck_float64():
    out, renders, batch, faces = tetra_batch(torch.float64)
    cfg = all_on(perceptual=0)
    template = out.verts.detach() - out.offsets.detach()
    uv_mask = out.uv_mask[:3, :3]

    context = tetra_context(faces, torch.float64, 1)
    context.align.detach_target = False  # a detached target is, by design, not the numerical derivative

    def total(r, off, flow):
        o = SimpleNamespace(verts=template + off, offsets=off, flow=flow, uv_mask=uv_mask)
        return compute_losses(o, r, batch, faces, cfg, context=context)["total"]

    small = lambda t: t.detach()[:1, :1, :, :4, :4] if t.ndim == 5 else t.detach()  # noqa: E731
    batch = {k: small(v) if v.ndim == 5 else v[:1] for k, v in batch.items()}
    args = (small(renders).requires_grad_(True), out.offsets.detach()[:1].requires_grad_(True),
            out.flow.detach()[:1, :3, :3].mul(0.9).requires_grad_(True))
    template = template[:1]
    assert torch.autograd.gradcheck(total, args)


def test_make_lpips_follows_the_config():
    assert make_lpips(LossConfig(perceptual=0)) is None
    model = make_lpips(LossConfig(perceptual=0.5, lpips_pretrained=False))
    assert model is not None and not model.training


def test_v2_flow_terms_need_a_context():
    out, renders, batch, faces = tetra_batch()
    with pytest.raises(ValueError, match="LossContext"):
        compute_losses(out, renders, batch, faces, LossConfig(perceptual=0, align=1.0))
    ctx = tetra_context(faces)
    ctx.input_cameras = None
    with pytest.raises(ValueError, match="input_cameras"):
        compute_losses(out, renders, batch, faces, LossConfig(perceptual=0, align=1.0), context=ctx)
