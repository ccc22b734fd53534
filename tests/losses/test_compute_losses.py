"""compute_losses over the registry: terms present iff weighted, total = weighted sum, clear errors, gradients."""
from types import SimpleNamespace

import pytest
import torch

from shoerecon.geometry.topology import Template
from shoerecon.losses import (
    LOSS_NAMES,
    LossConfig,
    LossContext,
    build_loss_modules,
    build_lpips,
    compute_losses,
    flatten_loss,
    laplacian_loss,
)
from shoerecon.losses.image import ImageConfig
from shoerecon.losses.regularizers import FlattenConfig, LaplacianConfig

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


def context(out, renders, batch, faces, dtype=torch.float32, b: int = B, modules=None, cams=True) -> LossContext:
    from shoerecon.render.cameras import Cameras

    uvs = torch.tensor([[0.1, 0.1], [0.9, 0.1], [0.5, 0.9], [0.5, 0.5]], dtype=dtype)
    cameras = Cameras.from_tensor(torch.tensor([[20.0, 10.0, 2.2, 30.0]] * b, dtype=dtype)) if cams else None
    template = Template(out.verts[0].detach(), faces, uvs, faces, texture_size=out.flow.shape[1])
    return LossContext(out, renders, batch, template, input_cameras=cameras, modules=modules or {})


def all_on(**kw) -> LossConfig:
    weights = dict(silhouette=0.9, image=0.1, perceptual=0.01, flow=0.1, laplacian=0.1, flatten=0.001,
                   normal_consistency=0.2, edge_length=0.3, align=0.4, flow_smooth=0.5, sole_bend=0.6)
    weights.update(kw)
    cfg = LossConfig(**weights)
    cfg.perceptual.pretrained = False
    return cfg


def only(**kw) -> LossConfig:  # every weight 0 except kw
    return LossConfig(**{**{n: 0.0 for n in LOSS_NAMES}, **kw})


def test_every_term_and_weighted_total():
    out, renders, batch, faces = tetra_batch()
    cfg = all_on()
    terms = compute_losses(cfg, context(out, renders, batch, faces, modules=build_loss_modules(cfg)))
    assert set(terms) == set(LOSS_NAMES) | {"total"}
    assert terms["align"] > 0 and terms["flow_smooth"] > 0
    expected = sum(getattr(cfg, n).weight * terms[n] for n in LOSS_NAMES)
    torch.testing.assert_close(terms["total"], expected)
    terms["total"].backward()
    for t in (renders, out.offsets, out.flow):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_zero_weight_terms_are_not_computed(monkeypatch):
    out, renders, batch, faces = tetra_batch()
    from shoerecon.losses import flow, perceptual, regularizers

    def boom(*a, **k):
        raise AssertionError("computed a term with weight 0")

    for module, name in ((regularizers, "flatten_loss"), (perceptual, "perceptual_loss"),
                         (regularizers, "normal_consistency_loss"), (regularizers, "edge_length_loss"),
                         (flow, "flow_mask_loss")):
        monkeypatch.setattr(module, name, boom)
    cfg = LossConfig(perceptual=0, flatten=0, normal_consistency=0, edge_length=0, flow=0)
    assert build_loss_modules(cfg) is not None and len(build_loss_modules(cfg)) == 0  # no LPIPS built either
    terms = compute_losses(cfg, context(out, renders, batch, faces))
    assert set(terms) == {"silhouette", "image", "laplacian", "total"}


def test_options_switch_the_computation():
    out, renders, batch, faces = tetra_batch()
    ctx = context(out, renders, batch, faces)
    on_offsets = compute_losses(only(laplacian=LaplacianConfig(1, smooth="offsets")), ctx)
    on_verts = compute_losses(only(laplacian=LaplacianConfig(1, smooth="verts")), ctx)
    torch.testing.assert_close(on_offsets["laplacian"], laplacian_loss(out.offsets, faces))
    torch.testing.assert_close(on_verts["laplacian"], laplacian_loss(out.verts, faces))
    flat = compute_losses(only(flatten=FlattenConfig(1, reduction="mean")), ctx)
    torch.testing.assert_close(flat["flatten"], flatten_loss(out.verts, faces, "mean"))
    masked = compute_losses(only(image=ImageConfig(1, masked=True)), ctx)
    full = compute_losses(only(image=1), ctx)
    assert set(masked) == {"image", "total"}
    assert masked["image"].item() != pytest.approx(full["image"].item())


def test_perfect_prediction_has_zero_data_terms():
    out, renders, batch, faces = tetra_batch()
    renders = torch.cat([batch["targets"], batch["target_masks"]], dim=2)
    cfg = LossConfig(perceptual=0.01, flow=0, laplacian=0, flatten=0)
    terms = compute_losses(cfg, context(out, renders, batch, faces, modules={"perceptual": build_lpips(False)}))
    for name in ("silhouette", "image", "perceptual"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-6)


def test_errors_are_clear():
    out, renders, batch, faces = tetra_batch()
    with pytest.raises(ValueError, match="losses.perceptual.weight > 0 needs its module"):
        compute_losses(LossConfig(perceptual=0.01), context(out, renders, batch, faces))
    with pytest.raises(ValueError, match="do not match"):
        compute_losses(LossConfig(perceptual=0), context(out, renders[..., :16, :16], batch, faces))
    with pytest.raises(ValueError, match="LaplacianConfig.smooth='normals'; valid: offsets, verts"):
        LaplacianConfig(smooth="normals")
    with pytest.raises(ValueError, match="weight"):
        LossConfig(image=-1)
    with pytest.raises(ValueError, match="must be a ImageConfig or a weight"):
        LossConfig(image="strong")


def test_compute_losses_gradcheck_float64():
    out, renders, batch, faces = tetra_batch(torch.float64)
    cfg = all_on(perceptual=0)
    cfg.align.detach_target = False  # a detached target is, by design, not the numerical derivative
    template = out.verts.detach() - out.offsets.detach()
    uv_mask = out.uv_mask[:3, :3]

    def total(r, off, flow):
        o = SimpleNamespace(verts=template + off, offsets=off, flow=flow, uv_mask=uv_mask)
        return compute_losses(cfg, context(o, r, batch, faces, torch.float64, 1))["total"]

    small = lambda t: t.detach()[:1, :1, :, :4, :4] if t.ndim == 5 else t.detach()  # noqa: E731
    batch = {k: small(v) if v.ndim == 5 else v[:1] for k, v in batch.items()}
    args = (small(renders).requires_grad_(True), out.offsets.detach()[:1].requires_grad_(True),
            out.flow.detach()[:1, :3, :3].mul(0.9).requires_grad_(True))
    template = template[:1]
    assert torch.autograd.gradcheck(total, args)


def test_loss_modules_follow_the_config():
    assert "perceptual" not in build_loss_modules(LossConfig(perceptual=0))
    cfg = LossConfig(perceptual=0.5)
    cfg.perceptual.pretrained = False
    model = build_loss_modules(cfg)["perceptual"]
    assert model is not None and not model.training


def test_align_needs_input_cameras():
    out, renders, batch, faces = tetra_batch()
    with pytest.raises(ValueError, match="input_cameras"):
        compute_losses(LossConfig(perceptual=0, align=1.0), context(out, renders, batch, faces, cams=False))


def test_novel_view_terms_need_novel_views():
    out, renders, batch, faces = tetra_batch()
    with pytest.raises(ValueError, match="LossContext.novel"):
        compute_losses(only(fid=1.0), context(out, renders, batch, faces))
