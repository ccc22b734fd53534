import pytest
import torch

from shoerecon.geometry.mesh import unique_edges
from shoerecon.data.template import template_mesh
from shoerecon.geometry.io.obj import read_obj, write_obj
from shoerecon.geometry.template import DEFAULT_TEMPLATE, load_template


def test_template_file_exists_and_is_closed_genus_zero():
    assert DEFAULT_TEMPLATE.exists(), "templates/shoe.obj is missing: run `shoerecon template`"
    m = load_template(uv_mode="none")
    assert 1000 <= m.num_faces <= 3000 and m.uvs is None
    e = unique_edges(m.faces)
    assert m.num_verts - len(e) + m.num_faces == 2
    directed = {(f[i], f[(i + 1) % 3]) for f in m.faces.tolist() for i in range(3)}
    assert len(directed) == 3 * m.num_faces and all((b, a) in directed for a, b in directed), "closed, consistently oriented"
    v = m.verts.double()
    vol = sum(float(torch.dot(v[a], torch.linalg.cross(v[b], v[c]))) for a, b, c in m.faces.tolist()) / 6
    assert vol > 0, "outward faces"


def test_template_is_normalised_like_the_data():
    v = load_template(uv_mode="none").verts
    lo, hi = v.min(0).values, v.max(0).values
    assert torch.allclose((lo + hi) / 2, torch.zeros(3), atol=1e-5) and abs((hi - lo).max().item() - 1) < 1e-5
    assert (hi - lo).argmax().item() == 0
    assert v[v[:, 0] < -0.3, 1].max() > v[v[:, 0] > 0.3, 1].max(), "heel collar (-X) above toe box (+X)"


def test_template_file_is_what_the_command_regenerates():
    m, ref = read_obj(DEFAULT_TEMPLATE), template_mesh()
    assert torch.equal(m.faces, ref.faces) and torch.allclose(m.verts, ref.verts, atol=2e-6)
    assert torch.equal(m.uv_faces, ref.uv_faces) and torch.allclose(m.uvs, ref.uvs, atol=2e-6)


def test_file_uvs_and_obj_roundtrip(tmp_path):
    m = load_template(uv_mode="file")
    assert m.uvs.min() >= 0 and m.uvs.max() <= 1 and m.uv_faces.shape == m.faces.shape
    p = write_obj(m, tmp_path / "t.obj", "hello")
    back = read_obj(p)
    assert torch.equal(back.faces, m.faces) and torch.allclose(back.verts, m.verts, atol=1e-6)
    assert torch.equal(read_obj(write_obj(load_template(uv_mode="none"), tmp_path / "n.obj")).faces, m.faces)


@pytest.mark.parametrize("mode", ["islands", "spherical"])
def test_computed_uv_modes(mode):
    pytest.importorskip("shoerecon.geometry.uv")
    m = load_template(uv_mode=mode)
    assert m.uv_faces.shape == m.faces.shape and m.uvs.min() >= 0 and m.uvs.max() <= 1


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="uv_mode"):
        load_template(uv_mode="cube")
    with pytest.raises(FileNotFoundError, match="shoerecon template"):
        load_template(str(tmp_path / "nope.obj"))
    (tmp_path / "bad.obj").write_text("v 0 0 0\nf 1 2 x\n")
    with pytest.raises(ValueError, match=r"bad\.obj:2"):
        load_template(str(tmp_path / "bad.obj"), uv_mode="none")
