"""geometry.Template: derived data computed lazily and once, equal to the functional versions (oracles), dropped
when the template is replaced; the network, the losses and remeshing share the one object."""
import pytest
import torch

from shoerecon.geometry import topology
from shoerecon.geometry.laplacian import _laplacian_operands, edge_quads, mesh_edges, uniform_laplacian
from shoerecon.geometry.mesh import Mesh
from shoerecon.geometry.primitives import ico_sphere, sphere_uv
from shoerecon.geometry.texels import texel_chart_labels, uv_coverage_mask
from shoerecon.geometry.topology import CACHED, Template
from shoerecon.losses.regularizers import edge_length_loss, flatten_loss, laplacian_loss, normal_consistency_loss


def two_charts() -> Mesh:
    """Two triangles sharing an edge in 3D but laid out as two separate UV charts (left and right halves)."""
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.2]])
    faces = torch.tensor([[0, 1, 2], [2, 1, 3]])
    uvs = torch.tensor([[0.05, 0.05], [0.45, 0.05], [0.05, 0.95], [0.55, 0.95], [0.95, 0.05], [0.95, 0.95]])
    return Mesh(verts, faces, uvs, torch.tensor([[0, 1, 2], [3, 4, 5]]))


def sphere() -> Mesh:
    mesh = ico_sphere(1)
    return Mesh(mesh.verts, mesh.faces, sphere_uv(mesh.verts), mesh.faces.clone())


def dense_uniform_laplacian(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Obviously-correct oracle: an (N, N) adjacency matrix, L = D^-1 A - I."""
    n = verts.shape[0]
    adj = torch.zeros(n, n, dtype=verts.dtype)
    for a, b, c in faces.tolist():
        for i, j in ((a, b), (b, c), (c, a)):
            adj[i, j] = adj[j, i] = 1
    deg = adj.sum(1, keepdim=True)
    return adj @ verts / deg.clamp_min(1) - verts * (deg > 0)


def test_nothing_is_computed_until_asked_and_then_only_once(monkeypatch):
    t = Template.from_mesh(sphere(), texture_size=16)
    assert not any(t.is_cached(name) for name in CACHED)
    calls = []
    real = topology.uv_coverage_mask
    monkeypatch.setattr(topology, "uv_coverage_mask", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = t.uv_mask
    assert t.is_cached("uv_mask") and not t.is_cached("chart_labels") and not t.is_cached("edges")
    assert t.uv_mask is first and t.uv_mask is first
    assert len(calls) == 1


def test_every_cache_equals_its_functional_oracle():
    mesh = sphere()
    t = Template.from_mesh(mesh, texture_size=24, uv_mask_dilate=2)
    assert torch.equal(t.edges, mesh_edges(mesh.faces))
    assert torch.equal(t.edge_quads.verts, edge_quads(mesh.faces).verts)
    assert torch.equal(t.edge_quads.faces, edge_quads(mesh.faces).faces)
    for mine, theirs in zip(t.laplacian_operands, _laplacian_operands(mesh.faces)):
        assert torch.equal(mine, theirs)
    assert torch.equal(t.uv_mask, uv_coverage_mask(mesh.uvs, mesh.uv_faces, 24, 2))
    assert torch.equal(t.chart_labels, texel_chart_labels(mesh.uvs, mesh.uv_faces, 24)[0])
    verts = mesh.verts.double()
    torch.testing.assert_close(uniform_laplacian(verts, t.faces, t.laplacian_operands),
                               dense_uniform_laplacian(verts, mesh.faces))


def test_losses_give_the_same_value_from_a_template_as_from_faces():
    mesh = sphere()
    t = Template.from_mesh(mesh)
    verts = (mesh.verts + 0.05 * torch.randn(2, *mesh.verts.shape, generator=torch.Generator().manual_seed(0)))
    for loss in (laplacian_loss, flatten_loss, normal_consistency_loss, edge_length_loss):
        assert torch.equal(loss(verts, t), loss(verts, mesh.faces)), loss.__name__


def test_chart_labels_of_two_charts():
    labels = Template.from_mesh(two_charts(), texture_size=8).chart_labels
    assert set(labels[:, :3].unique().tolist()) <= {0, -1} and set(labels[:, 5:].unique().tolist()) <= {1, -1}
    assert (labels == 0).any() and (labels == 1).any()


def test_replace_gives_a_new_template_with_empty_caches_and_leaves_the_old_one():
    t = Template.from_mesh(two_charts(), texture_size=8).to(dtype=torch.float64)
    old_mask, old_edges = t.uv_mask, t.edges
    new = t.replace(sphere())
    assert new is not t and not any(new.is_cached(name) for name in CACHED)
    assert new.verts.dtype == torch.float64 and new.faces.dtype == torch.long and new.texture_size == 8
    assert t.uv_mask is old_mask and t.edges is old_edges  # the old object is untouched
    assert new.edges.shape[0] == sphere().edges().shape[0] != old_edges.shape[0]


def test_moves_keep_computed_caches_and_integer_dtypes():
    t = Template.from_mesh(sphere(), texture_size=8)
    t.edge_quads, t.laplacian_operands, t.uv_mask  # noqa: B018 (compute them)
    moved = t.to(dtype=torch.float64)
    assert moved.is_cached("edge_quads") and moved.is_cached("laplacian_operands") and moved.is_cached("uv_mask")
    assert type(moved.edge_quads).__name__ == "EdgeQuads" and isinstance(moved.laplacian_operands, tuple)
    assert moved.uv_mask.dtype == torch.float64 and moved.faces.dtype == torch.long
    assert moved.laplacian_operands[0].dtype == torch.long and not moved.is_cached("chart_labels")


def test_bad_input_is_refused_with_a_clear_error():
    mesh = sphere()
    with pytest.raises(ValueError, match="faces index outside"):
        Template(mesh.verts[:3], mesh.faces)
    with pytest.raises(ValueError, match="uvs and uv_faces"):
        Template(mesh.verts, mesh.faces, mesh.uvs)
    with pytest.raises(ValueError, match="unknown cache entries.*valid: edges"):
        Template(mesh.verts, mesh.faces, cache={"edgez": None})
    assert Template(mesh.verts, mesh.faces).uv_mask is None  # no UV layout: no texel caches


def test_network_losses_and_remeshing_share_one_template():
    from shoerecon.losses import LossContext
    from shoerecon.model import ModelConfig, ShoeReconNet

    cfg = ModelConfig(unet_depth=2, unet_width=4, latent_dim=8, shape_hidden=8, texture_size=8, flow_hidden=4)
    net = ShoeReconNet(cfg, two_charts())
    out = net(torch.rand(1, 3, 16, 16))
    ctx = LossContext(out, torch.zeros(1, 1, 4, 16, 16), {}, net.template)
    assert ctx.chart_labels is net.template.chart_labels and out.uv_mask is net.template.uv_mask
    before = net.template
    net.set_template(sphere())  # what the remesh hook does
    assert net.template is not before and not net.template.is_cached("chart_labels")
    ctx = LossContext(net(torch.rand(1, 3, 16, 16)), torch.zeros(1, 1, 4, 16, 16), {}, net.template)
    assert torch.equal(ctx.chart_labels, texel_chart_labels(sphere().uvs, sphere().uv_faces, 8)[0])
    assert ctx.faces.shape == sphere().faces.shape


def test_state_dict_keys_of_the_buffer_version_load_and_seed_the_mask():
    """Files written when the template was five buffers: same keys; a saved uv_mask is used as it is."""
    from shoerecon.model import ModelConfig, ShoeReconNet

    cfg = ModelConfig(unet_depth=2, unet_width=4, latent_dim=8, shape_hidden=8, texture_size=8, flow_hidden=4)
    state = ShoeReconNet(cfg, sphere()).state_dict()
    state["uv_mask"] = torch.ones(8, 8)  # what an older file might hold
    net = ShoeReconNet(cfg, two_charts())
    net.load_state_dict(state)
    assert net.template.num_verts == sphere().num_verts and torch.equal(net.uv_mask, torch.ones(8, 8))
    assert net.template.verts.dtype == torch.float32 and net.faces.dtype == torch.long
    del state["faces"]
    with pytest.raises(RuntimeError, match="Missing key.*faces"):
        ShoeReconNet(cfg, two_charts()).load_state_dict(state)
