"""ShoeReconNet: shapes, initial state, template swaps (remeshing), state-dict round trips, gradients."""
import math

import pytest
import torch

from shoerecon.geometry.mesh import Mesh
from shoerecon.model import ModelConfig, ReconOutput, ShapeDecoder, ShoeReconNet, UNet, positional_encoding

SMALL = dict(unet_depth=3, unet_width=8, unet_max_width=32, latent_dim=32, shape_hidden=32, texture_size=16,
             flow_hidden=8)


def icosphere(subdivisions: int = 0) -> Mesh:
    """Unit-radius icosphere; each subdivision keeps the earlier vertices first, at the same positions."""
    t = (1 + math.sqrt(5)) / 2
    verts = torch.tensor([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
                          [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], dtype=torch.float32)
    verts = torch.nn.functional.normalize(verts, dim=-1) * 0.5
    faces = torch.tensor([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                          [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                          [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    for _ in range(subdivisions):
        verts, faces = subdivide(verts, faces)
    uvs = torch.stack([0.5 + torch.atan2(verts[:, 2], verts[:, 0]) / (2 * math.pi),
                       0.5 + torch.asin((verts[:, 1] / 0.5).clamp(-1, 1)) / math.pi], dim=-1)
    return Mesh(verts, faces, uvs, faces.clone())


def subdivide(verts, faces):
    midpoint, new = {}, verts.tolist()
    def mid(a, b):  # noqa: E306
        key = (min(a, b), max(a, b))
        if key not in midpoint:
            p = torch.nn.functional.normalize((verts[a] + verts[b]) / 2, dim=0) * 0.5
            midpoint[key] = len(new)
            new.append(p.tolist())
        return midpoint[key]
    out = []
    for a, b, c in faces.tolist():
        ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
        out += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
    return torch.tensor(new), torch.tensor(out)


def randomize_offsets(net: ShoeReconNet) -> None:
    torch.nn.init.normal_(net.shape_decoder.out.weight, std=0.3)


def test_forward_shapes_and_initial_prediction_is_the_template():
    template = icosphere(1)
    net = ShoeReconNet(ModelConfig(**SMALL), template)
    out = net(torch.rand(2, 3, 32, 32))
    assert isinstance(out, ReconOutput)
    n = template.num_verts
    assert out.verts.shape == (2, n, 3) and out.offsets.shape == (2, n, 3)
    assert out.texture.shape == (2, 3, 16, 16) and out.flow.shape == (2, 16, 16, 2)
    assert out.variance is None and out.uv_mask.shape == (16, 16)
    assert out.offsets.abs().max() < 1e-3
    torch.testing.assert_close(out.verts, template.verts.expand(2, -1, -1) + out.offsets)
    assert out.flow.abs().max() <= 1 and 0 <= out.texture.min() and out.texture.max() <= 1
    state = net.state_dict()
    for name in ("faces", "uvs", "uv_faces", "template_verts", "uv_mask"):  # the keys of the buffer version
        assert torch.equal(state[name], getattr(net, name))
    assert list(state)[:5] == ["template_verts", "faces", "uvs", "uv_faces", "uv_mask"]


def test_set_template_other_vertex_count_keeps_offsets_at_shared_positions():
    coarse, fine = icosphere(0), icosphere(1)
    net = ShoeReconNet(ModelConfig(**SMALL), coarse)
    randomize_offsets(net)
    image = torch.rand(2, 3, 32, 32)
    before = net(image)
    old = net.template
    net.set_template(fine)
    assert net.template is not old and old.num_verts == coarse.num_verts  # a new Template; the old one unchanged
    assert torch.equal(net.template_verts, fine.verts) and torch.equal(net.uvs, fine.uvs)
    after = net(image)
    assert after.verts.shape == (2, fine.num_verts, 3) and net.faces.shape == fine.faces.shape
    assert before.offsets.abs().max() > 1e-2  # a real field, not all zeros
    torch.testing.assert_close(after.offsets[:, :coarse.num_verts], before.offsets, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(after.texture, before.texture)  # the flow does not depend on the template
    assert not torch.equal(net.uv_mask, ShoeReconNet(ModelConfig(**SMALL), coarse).uv_mask)  # rebuilt for the new UVs
    after.verts.sum().backward()  # still trainable


def test_state_dict_after_remesh_loads_into_a_fresh_net():
    net = ShoeReconNet(ModelConfig(**SMALL), icosphere(0))
    randomize_offsets(net)
    net.set_template(icosphere(1))
    fresh = ShoeReconNet(ModelConfig(**SMALL), icosphere(0))
    fresh.load_state_dict(net.state_dict())
    assert fresh.template_verts.shape == net.template_verts.shape
    image = torch.rand(1, 3, 32, 32)
    net.eval(), fresh.eval()
    torch.testing.assert_close(fresh(image).verts, net(image).verts)
    assert torch.equal(fresh.template_mesh().faces, net.faces)


def test_state_dict_with_another_texture_size_is_refused():
    net = ShoeReconNet(ModelConfig(**SMALL), icosphere(0))
    other = ShoeReconNet(ModelConfig(**{**SMALL, "texture_size": 8}), icosphere(0))
    with pytest.raises(RuntimeError, match="uv_mask"):
        other.load_state_dict(net.state_dict())


def test_template_mesh_is_a_snapshot():
    net = ShoeReconNet(ModelConfig(**SMALL), icosphere(0))
    snapshot = net.template_mesh()
    net.set_template(icosphere(1))
    assert snapshot.num_verts == 12 and net.template_mesh().num_verts == 42


def test_template_buffers_do_not_alias_the_callers_mesh():
    mesh = icosphere(0)
    faces = mesh.faces.clone()
    net = ShoeReconNet(ModelConfig(**SMALL), mesh)
    net.set_template(icosphere(1))
    assert torch.equal(mesh.faces, faces)


def test_gradients_reach_every_parameter():
    net = ShoeReconNet(ModelConfig(**SMALL), icosphere(1))
    randomize_offsets(net)
    torch.nn.init.normal_(net.flow_head.conv2.weight, std=0.1)
    out = net(torch.rand(2, 3, 32, 32))
    (out.verts.pow(2).sum() + out.texture.sum()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


@pytest.mark.parametrize("norm", ["group", "batch", "instance", "none"])
def test_norms_and_odd_input_sizes(norm):
    net = ShoeReconNet(ModelConfig(**{**SMALL, "norm": norm}), icosphere(0))
    out = net(torch.rand(2, 3, 40, 28))
    assert out.texture.shape == (2, 3, 16, 16) and torch.isfinite(out.verts).all()


def test_offset_scale_bounds_tanh_offsets():
    dec = ShapeDecoder(latent_dim=4, hidden=8, offset_scale=0.1, activation="tanh")
    torch.nn.init.normal_(dec.out.weight, std=100.0)
    off = dec(torch.randn(3, 4), torch.rand(50, 3))
    assert off.abs().max() <= 0.1 + 1e-6 and off.abs().max() > 0.09


def test_positional_encoding_oracle():
    x = torch.tensor([[0.25, -0.5, 0.1]])
    enc = positional_encoding(x, 2)
    expected = [0.25, -0.5, 0.1]
    for fn in (math.sin, math.cos):
        expected += [fn(math.pi * 2**k * v) for v in (0.25, -0.5, 0.1) for k in range(2)]
    torch.testing.assert_close(enc[0], torch.tensor(expected))


def test_unet_widths_and_sizes():
    unet = UNet(3, base_width=4, depth=2, max_width=6)
    bottleneck, features = unet(torch.rand(1, 3, 17, 9))
    assert bottleneck.shape == (1, 6, 5, 3) and features.shape == (1, 4, 17, 9)


def test_bad_config_and_template_are_clear_errors():
    with pytest.raises(ValueError, match="norm"):
        ModelConfig(norm="layer")
    with pytest.raises(ValueError, match="offset_activation"):
        ModelConfig(offset_activation="relu")
    mesh = icosphere(0)
    with pytest.raises(ValueError, match="UV layout"):
        ShoeReconNet(ModelConfig(**SMALL), Mesh(mesh.verts, mesh.faces))
    net = ShoeReconNet(ModelConfig(**SMALL), mesh)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(3, 32, 32))


def test_mixed_precision_and_float64():
    net = ShoeReconNet(ModelConfig(**SMALL), icosphere(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.rand(2, 3, 32, 32))
    assert out.verts.dtype == torch.float32 and torch.isfinite(out.verts).all()
    out.verts.float().sum().backward()
    net64 = ShoeReconNet(ModelConfig(**SMALL), icosphere(1)).double()
    assert net64(torch.rand(1, 3, 32, 32, dtype=torch.float64)).verts.dtype == torch.float64


@pytest.mark.parametrize("mode", ["multiply", "gradient_only"])
def test_variance_head_starts_at_v1_and_trains(mode):
    from shoerecon.model.variance import VarianceConfig

    torch.manual_seed(0)
    v1 = ShoeReconNet(ModelConfig(**SMALL), icosphere(1))
    v2 = ShoeReconNet(ModelConfig(**SMALL), icosphere(1), VarianceConfig(mode=mode))
    missing, unexpected = v2.load_state_dict(v1.state_dict(), strict=False)  # a v1 checkpoint into a v2 net
    assert not unexpected and missing and all(k.startswith("sampler.head.") for k in missing)
    image = torch.rand(2, 3, 32, 32)
    a, b = v1(image), v2(image)
    assert a.variance is None and b.variance.shape == (2, 1, 32, 32)
    assert torch.equal(b.variance, torch.ones_like(b.variance))  # I_var = 1 at initialisation
    torch.testing.assert_close(a.texture, b.texture)
    b.texture.square().sum().backward()
    head_grads = [p.grad for p in v2.sampler.head.parameters()]
    assert all(g is not None for g in head_grads) and sum(g.abs().sum() for g in head_grads) > 0


def test_v1_network_has_no_variance_parameters():
    net = ShoeReconNet(ModelConfig(**SMALL), icosphere(0))
    assert not any(k.startswith("sampler.") for k in net.state_dict())


def test_sole_plate_leaves_only_plate_motions_of_the_ground_face():
    from shoerecon.geometry.template import load_template
    from shoerecon.losses.sole_bend import sole_bend_loss
    shoe = load_template()
    torch.manual_seed(0)
    free = ShoeReconNet(ModelConfig(**SMALL), shoe)
    randomize_offsets(free)
    plate = ShoeReconNet(ModelConfig(**SMALL, sole_plate=True), shoe)
    plate.load_state_dict(free.state_dict())
    image = torch.rand(2, 3, 32, 32)
    a, b = free(image), plate(image)
    assert float(sole_bend_loss(a.verts, free.template)) > 1e-6     # random offsets bend the sole
    assert float(sole_bend_loss(b.verts, plate.template)) < 1e-12   # the plate network's never does
    index = plate.template.sole_operands[0]
    assert 50 < len(index) < shoe.num_verts // 2
    rest = torch.ones(shoe.num_verts, dtype=torch.bool)
    rest[index] = False
    torch.testing.assert_close(b.verts[:, rest], a.verts[:, rest], rtol=0, atol=0)
    torch.testing.assert_close(b.verts[..., [0, 2]], a.verts[..., [0, 2]], rtol=0, atol=0)
    torch.testing.assert_close(b.verts, plate.template_verts + b.offsets)
