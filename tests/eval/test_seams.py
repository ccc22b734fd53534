"""Seam error: seam detection and the vectorised pixel-pair statistics against naive loops, a cube whose two
hand-made UV islands are painted red and blue (a known jump of 2/3), continuous layouts (no seam pairs), and
constant textures (no jump anywhere)."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shoerecon.eval.seams import render_with_faces, seam_edges, seam_error
from shoerecon.export.turntable import preview_renderer, render_mesh
from shoerecon.geometry.mesh import Mesh
from shoerecon.geometry.primitives import box
from shoerecon.geometry.template import load_template
from shoerecon.render import Cameras

SIZE = 24


def two_island_cube(texture: torch.Tensor | None = None) -> Mesh:
    """Unit cube; faces 0-5 (sides -x, +x, -y) use UV island 0 in the left half of the texture, faces 6-11
    (+y, -z, +z) island 1 in the right half. UV index = vertex + 8 * island, so edges inside an island share
    UV vertices and edges between islands are seams. Texture: red left half, blue right half."""
    cube = box()
    island = (torch.arange(12) >= 6).long()
    uv_faces = cube.faces + 8 * island[:, None]
    g = torch.linspace(0.1, 0.4, 8)
    uvs = torch.cat([torch.stack([g, g.flip(0)], -1), torch.stack([g + 0.5, g], -1)])  # u < 0.45 | u > 0.55
    if texture is None:
        texture = torch.zeros(3, 16, 16)
        texture[0, :, :8] = 1.0  # red where u < 0.5
        texture[2, :, 8:] = 1.0  # blue where u > 0.5
    return Mesh(cube.verts, cube.faces, uvs, uv_faces, texture)


def cameras(n: int = 4) -> Cameras:
    """n views from above (elevation 35) at azimuths 20 + 90 i: three cube sides visible in each."""
    return Cameras.from_tensor(torch.tensor([[20.0 + 90 * i, 35.0, 3.0, 30.0] for i in range(n)]))


# ----------------------------------------------------------------------------------------------- naive oracles
def naive_seam_edges(faces, uvs, uv_faces):
    """{(v0, v1): is_seam} over edges with exactly two faces, by dictionaries."""
    owners = {}
    for f, (tri, uvt) in enumerate(zip(faces.tolist(), uv_faces.tolist())):
        for k in range(3):
            e = tuple(sorted((tri[k], tri[(k + 1) % 3])))
            uv_of = {tri[k]: tuple(uvs[uvt[k]].tolist()), tri[(k + 1) % 3]: tuple(uvs[uvt[(k + 1) % 3]].tolist())}
            owners.setdefault(e, []).append((f, uv_of))
    out = {}
    for e, own in owners.items():
        if len(own) == 2:
            out[e] = any(max(abs(a - b) for a, b in zip(own[0][1][v], own[1][1][v])) > 1e-6 for v in e)
    return out


def naive_seam_error(mesh, rgb, p2f):
    """Loop over every pixel and its right / lower neighbour."""
    seams = naive_seam_edges(mesh.faces, mesh.uvs, mesh.uv_faces)
    faces = mesh.faces.tolist()
    acc = {True: [], False: []}
    n, _, h, w = rgb.shape
    for v in range(n):
        for i in range(h):
            for j in range(w):
                for i2, j2 in ((i, j + 1), (i + 1, j)):
                    if i2 >= h or j2 >= w:
                        continue
                    fa, fb = int(p2f[v, i, j]), int(p2f[v, i2, j2])
                    if fa < 0 or fb < 0 or fa == fb:
                        continue
                    shared = sorted(set(faces[fa]) & set(faces[fb]))
                    if len(shared) != 2:
                        continue
                    acc[seams[tuple(shared)]].append(float((rgb[v, :, i, j] - rgb[v, :, i2, j2]).abs().mean()))
    mean = lambda xs: sum(xs) / len(xs) if xs else math.nan  # noqa: E731
    return mean(acc[True]), mean(acc[False]), len(acc[True])


# ----------------------------------------------------------------------------------------------- tests
def test_seam_edges_match_naive_on_template():
    mesh = load_template(uv_mode="file")
    edges = seam_edges(mesh.faces, mesh.uv_faces, mesh.uvs)
    ref = naive_seam_edges(mesh.faces, mesh.uvs, mesh.uv_faces)
    got = {tuple(e): bool(s) for e, s in zip(edges.verts.tolist(), edges.is_seam.tolist())}
    assert got == ref and 0 < sum(ref.values()) < len(ref)
    for (a, b), (f0, f1) in zip(edges.verts.tolist(), edges.faces.tolist()):  # faces really share the edge
        assert f0 < f1 and {a, b} <= set(mesh.faces[f0].tolist()) and {a, b} <= set(mesh.faces[f1].tolist())


def test_seam_edges_indices_vs_coordinates():
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uv_faces = torch.tensor([[0, 1, 2], [4, 5, 3]])  # 0 and 2 duplicated in the second face
    uvs = torch.rand(6, 2)
    assert seam_edges(faces, uv_faces).is_seam.tolist() == [True]
    uvs[4], uvs[5] = uvs[0], uvs[2]  # same coordinates: no seam in the picture
    assert seam_edges(faces, uv_faces, uvs).is_seam.tolist() == [False]
    assert seam_edges(faces[:1], uv_faces[:1]).is_seam.numel() == 0  # boundary edges only


def test_cube_two_islands_red_blue_known_jump_and_naive_oracle():
    mesh = two_island_cube()
    rgba, p2f = render_with_faces(mesh, cameras(), preview_renderer(SIZE))
    res = seam_error(mesh, rgb=rgba[:, :3], pix_to_face=p2f)
    ref_err, ref_base, ref_pairs = naive_seam_error(mesh, rgba[:, :3], p2f)
    assert res["seam_pairs"] == ref_pairs > 10 and 0 < res["seam_fraction"] < 1
    assert res["seam_error"] == pytest.approx(ref_err, abs=1e-6) and res["seam_baseline"] == pytest.approx(ref_base, abs=1e-6)
    assert res["seam_error"] == pytest.approx(2 / 3, abs=1e-5)  # |red - blue| averaged over RGB
    assert res["seam_baseline"] == pytest.approx(0.0, abs=1e-6) and res["seam_excess"] == pytest.approx(2 / 3, abs=1e-5)


def test_random_texture_matches_naive_oracle():
    torch.manual_seed(0)
    mesh = two_island_cube(torch.rand(3, 8, 8))
    res = seam_error(mesh, cameras(3), preview_renderer(SIZE))
    rgba, p2f = render_with_faces(mesh, cameras(3), preview_renderer(SIZE))
    ref_err, ref_base, ref_pairs = naive_seam_error(mesh, rgba[:, :3], p2f)
    assert res["seam_pairs"] == ref_pairs
    assert res["seam_error"] == pytest.approx(ref_err, abs=1e-6) and res["seam_baseline"] == pytest.approx(ref_base, abs=1e-6)
    assert res["seam_baseline"] > 0


def test_continuous_layout_has_no_seam_pairs():
    cube = two_island_cube()
    continuous = Mesh(cube.verts, cube.faces, cube.uvs[:8], cube.faces.clone(), cube.texture)  # one UV per vertex
    res = seam_error(continuous, cameras(), preview_renderer(SIZE))
    assert res["seam_pairs"] == 0 and res["seam_fraction"] == 0 and math.isnan(res["seam_error"]) and math.isnan(res["seam_excess"])
    assert res["seam_baseline"] == res["seam_baseline"]  # ordinary edges are still seen


@settings(max_examples=8, deadline=None)
@given(st.tuples(*[st.floats(0, 1)] * 3), st.integers(0, 2**16))
def test_constant_texture_gives_zero_seam_error(colour, seed):
    g = torch.Generator().manual_seed(seed)
    cube = two_island_cube(torch.tensor(colour).view(3, 1, 1).expand(3, 8, 8).clone())
    cube.uvs = torch.rand(cube.uvs.shape, generator=g)  # any layout at all
    res = seam_error(cube, cameras(2), preview_renderer(16))
    assert res["seam_pairs"] > 0 and abs(res["seam_error"]) < 1e-6 and abs(res["seam_excess"]) < 1e-6


def test_render_with_faces_matches_render_mesh():
    mesh = two_island_cube(torch.rand(3, 8, 8))
    cams = cameras(2)
    rgba, p2f = render_with_faces(mesh, cams, preview_renderer(SIZE))
    assert torch.equal(rgba, render_mesh(mesh, cams, preview_renderer(SIZE)))
    assert ((p2f >= 0) == (rgba[:, 3] > 0)).all() and int(p2f.max()) < mesh.num_faces
    with pytest.raises(ValueError, match="hard"):
        from shoerecon.render import Renderer, RendererConfig

        render_with_faces(mesh, cams, Renderer(RendererConfig(image_size=8)))
