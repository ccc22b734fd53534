"""OBJ / GLB round trips, and the file conventions (v direction, winding, normals) read back without trimesh."""
from __future__ import annotations

import io
import json
import math
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from shoerecon.geometry.io.common import split_uv_seams, weld_positions
from shoerecon.geometry.io.glb import load_glb, save_glb
from shoerecon.geometry.io.obj import load_obj, save_obj
from shoerecon.export.validate import validate_gltf, validator_available
from shoerecon.geometry.mesh import Mesh


def lat_long_sphere(n_lat: int = 6, n_lon: int = 8, textured: bool = True) -> Mesh:
    """A UV sphere with a seam: positions shared at the seam, UVs split (u = 0 and u = 1). CCW from outside."""
    verts = [[0.0, 1.0, 0.0]]
    for i in range(1, n_lat):
        theta = math.pi * i / n_lat
        for j in range(n_lon):
            phi = 2 * math.pi * j / n_lon
            verts.append([math.sin(theta) * math.cos(phi), math.cos(theta), -math.sin(theta) * math.sin(phi)])
    verts.append([0.0, -1.0, 0.0])
    vid = lambda i, j: 0 if i == 0 else len(verts) - 1 if i == n_lat else 1 + (i - 1) * n_lon + j % n_lon  # noqa: E731
    uvs = [[j / n_lon, 1 - i / n_lat] for i in range(n_lat + 1) for j in range(n_lon + 1)]
    uid = lambda i, j: i * (n_lon + 1) + j  # noqa: E731
    faces, uv_faces = [], []
    for i in range(n_lat):
        for j in range(n_lon):
            quad = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)]
            for tri in ([quad[0], quad[1], quad[2]], [quad[0], quad[2], quad[3]]):
                f = [vid(*c) for c in tri]
                if len(set(f)) == 3:
                    faces.append(f)
                    uv_faces.append([uid(*c) for c in tri])
    texture = torch.rand(3, 16, 32) if textured else None
    return Mesh(torch.tensor(verts), torch.tensor(faces), torch.tensor(uvs), torch.tensor(uv_faces), texture)


def corner_uvs(mesh: Mesh) -> torch.Tensor:
    return mesh.uvs[mesh.uv_faces]


# ------------------------------------------------------------------ independent readers (no trimesh)
def read_glb_raw(path) -> tuple[dict, bytes]:
    data = open(path, "rb").read()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and length == len(data)
    json_len, json_type = struct.unpack_from("<I4s", data, 12)
    assert json_type == b"JSON"
    doc = json.loads(data[20:20 + json_len])
    bin_len, bin_type = struct.unpack_from("<I4s", data, 20 + json_len)
    assert bin_type == b"BIN\x00"
    return doc, data[28 + json_len:28 + json_len + bin_len]


def glb_accessor(doc: dict, blob: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = {5126: np.float32, 5125: np.uint32, 5123: np.uint16}[acc["componentType"]]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.frombuffer(blob, dtype=dtype, count=acc["count"] * width, offset=start).reshape(acc["count"], width)


def glb_primitive(path):
    doc, blob = read_glb_raw(path)
    prim = doc["meshes"][0]["primitives"][0]
    get = lambda name: glb_accessor(doc, blob, prim["attributes"][name])  # noqa: E731
    faces = glb_accessor(doc, blob, prim["indices"]).reshape(-1, 3).astype(np.int64)
    material = doc["materials"][prim["material"]]
    image = doc["images"][doc["textures"][material["pbrMetallicRoughness"]["baseColorTexture"]["index"]]["source"]]
    view = doc["bufferViews"][image["bufferView"]]
    png = blob[view.get("byteOffset", 0):view.get("byteOffset", 0) + view["byteLength"]]
    return get("POSITION"), get("NORMAL"), get("TEXCOORD_0"), faces, Image.open(io.BytesIO(png)).convert("RGB")


def read_obj_raw(path):
    v, vt, vn, f = [], [], [], []
    for line in open(path):
        parts = line.split()
        if not parts:
            continue
        if parts[0] in ("v", "vt", "vn"):
            {"v": v, "vt": vt, "vn": vn}[parts[0]].append([float(x) for x in parts[1:]])
        elif parts[0] == "f":
            f.append([[int(i) - 1 for i in c.split("/")] for c in parts[1:]])
    return np.array(v), np.array(vt), np.array(vn), np.array(f)


def two_tone_quad() -> Mesh:
    """A quad facing +Z whose texture is red in the top half (v > 0.5) and blue in the bottom half."""
    verts = torch.tensor([[-1.0, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uvs = torch.tensor([[0.0, 0.0], [1, 0], [1, 1], [0, 1]])
    texture = torch.zeros(3, 8, 8)
    texture[0, :4] = 1  # rows 0..3 = top = v in (0.5, 1]: red
    texture[2, 4:] = 1
    return Mesh(verts, faces, uvs, faces.clone(), texture)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("fmt", ["glb", "obj"])
@pytest.mark.parametrize("textured", [True, False])
def test_round_trip_keeps_geometry_uv_and_texture(tmp_path, fmt, textured):
    mesh = lat_long_sphere(textured=textured)
    save, load = (save_glb, load_glb) if fmt == "glb" else (save_obj, load_obj)
    back = load(save(mesh, tmp_path / f"m.{fmt}"))
    # Every vertex is used, so welding gives back the same vertices in the same order.
    torch.testing.assert_close(back.verts, mesh.verts, atol=1e-6, rtol=0)
    assert torch.equal(back.faces, mesh.faces)
    torch.testing.assert_close(corner_uvs(back), corner_uvs(mesh), atol=1e-6, rtol=0)
    if textured:
        assert back.texture.shape == mesh.texture.shape
        assert (back.texture - mesh.texture).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit quantisation only
    else:
        assert back.texture is None


@pytest.mark.parametrize("fmt", ["glb", "obj"])
def test_mesh_without_uv_round_trips(tmp_path, fmt):
    mesh = lat_long_sphere()
    bare = Mesh(mesh.verts, mesh.faces)
    back = (load_glb(save_glb(bare, tmp_path / "b.glb")) if fmt == "glb" else load_obj(save_obj(bare, tmp_path / "b.obj")))
    torch.testing.assert_close(back.verts, bare.verts, atol=1e-6, rtol=0)
    assert torch.equal(back.faces, bare.faces) and back.uvs is None and back.texture is None


def test_obj_writes_three_files(tmp_path):
    save_obj(lat_long_sphere(), tmp_path / "shoe.obj")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shoe.mtl", "shoe.obj", "shoe_texture.png"]
    assert "map_Kd shoe_texture.png" in (tmp_path / "shoe.mtl").read_text()


# ------------------------------------------------------------------ conventions, read without trimesh
def sample_image(image: Image.Image, u: float, row_fraction: float) -> np.ndarray:
    """Nearest texel at horizontal fraction u and row fraction from the top."""
    arr = np.asarray(image)
    h, w = arr.shape[:2]
    return arr[min(int(row_fraction * h), h - 1), min(int(u * w), w - 1)]


def test_glb_v_direction_winding_and_normals(tmp_path):
    quad = two_tone_quad()
    pos, nrm, uv, faces, image = glb_primitive(save_glb(quad, tmp_path / "q.glb"))
    # glTF: uv origin at the image's top-left. The vertex at y = +1 has v = 1 (ours) -> top half: red.
    for p, t in zip(pos, uv):
        expected = [255, 0, 0] if p[1] > 0 else [0, 0, 255]
        # sample just inside the quad so the nearest texel is not on the border between the halves
        t_in = np.clip(t, 0.05, 0.95)
        np.testing.assert_array_equal(sample_image(image, t_in[0], t_in[1]), expected)
    # Winding: CCW seen from +Z, normals +Z.
    for f in faces:
        a, b, c = pos[f]
        assert np.cross(b - a, c - a)[2] > 0
    np.testing.assert_allclose(nrm, np.tile([0, 0, 1], (len(nrm), 1)), atol=1e-6)


def test_obj_v_direction_winding_and_normals(tmp_path):
    quad = two_tone_quad()
    save_obj(quad, tmp_path / "q.obj")
    v, vt, vn, f = read_obj_raw(tmp_path / "q.obj")
    image = Image.open(tmp_path / "q_texture.png").convert("RGB")
    for corner in f.reshape(-1, 3):
        p, t = v[corner[0]], np.clip(vt[corner[1]], 0.05, 0.95)
        expected = [255, 0, 0] if p[1] > 0 else [0, 0, 255]
        # OBJ: v = 0 is the image's bottom row.
        np.testing.assert_array_equal(sample_image(image, t[0], 1 - t[1]), expected)
        np.testing.assert_allclose(vn[corner[2]], [0, 0, 1], atol=1e-6)
    for tri in f:
        a, b, c = v[tri[:, 0]]
        assert np.cross(b - a, c - a)[2] > 0


def test_glb_material_is_unlit_unless_asked(tmp_path):
    doc, _ = read_glb_raw(save_glb(lat_long_sphere(), tmp_path / "u.glb"))
    assert doc["materials"][0]["extensions"] == {"KHR_materials_unlit": {}}
    assert "KHR_materials_unlit" in doc["extensionsUsed"]
    doc, _ = read_glb_raw(save_glb(lat_long_sphere(), tmp_path / "l.glb", unlit=False))
    assert "extensions" not in doc["materials"][0] and "extensionsUsed" not in doc


def test_sphere_normals_point_outwards(tmp_path):
    pos, nrm, _, _, _ = glb_primitive(save_glb(lat_long_sphere(), tmp_path / "s.glb"))
    assert (np.sum(pos * nrm, axis=-1) > 0.9).all()
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=-1), 1, atol=1e-5)


# ------------------------------------------------------------------ helpers
def test_split_then_weld_is_identity():
    mesh = lat_long_sphere()
    split = split_uv_seams(mesh)
    assert len(split.verts) > mesh.num_verts  # the seam was split
    np.testing.assert_array_equal(split.verts[split.faces], mesh.verts.double().numpy()[mesh.faces.numpy()])
    np.testing.assert_array_equal(split.uvs[split.faces], corner_uvs(mesh).double().numpy())
    verts, faces = weld_positions(split.verts, split.faces)
    np.testing.assert_array_equal(verts, mesh.verts.double().numpy())
    np.testing.assert_array_equal(faces, mesh.faces.numpy())


def test_bad_paths_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.glb"):
        load_glb(tmp_path / "missing.glb")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="x.txt"):
        load_obj(tmp_path / "x.txt")
    (tmp_path / "broken.glb").write_bytes(b"not a glb")
    with pytest.raises(ValueError, match="broken.glb"):
        load_glb(tmp_path / "broken.glb")
    with pytest.raises(ValueError, match=".glb"):
        save_glb(lat_long_sphere(), tmp_path / "wrong.obj")


# ------------------------------------------------------------------ Khronos validator
_VALIDATOR_OK, _VALIDATOR_WHY = validator_available()


@pytest.mark.skipif(not _VALIDATOR_OK, reason=f"Khronos glTF validator unavailable: {_VALIDATOR_WHY}")
@pytest.mark.parametrize("textured", [True, False])
def test_glb_passes_khronos_validator(tmp_path, textured):
    mesh = lat_long_sphere(textured=textured)
    report = validate_gltf(save_glb(mesh, tmp_path / "v.glb"))
    errors = [m for m in report["issues"]["messages"] if m["severity"] == 0]
    assert report["issues"]["numErrors"] == 0, errors
    assert report["issues"]["numWarnings"] == 0
    if textured:  # untextured: UVs are kept for the round trip, which the validator notes as unused (info)
        assert report["issues"]["messages"] == []  # not even infos or hints
