"""Product-photo cameras: the crop similarity and the shoe's offset on the turntable (render.cameras docstring)."""
import math

import pytest
import torch

from shoerecon.geometry.primitives import box
from shoerecon.render.cameras import Cameras, params_after_padding, product_params, fov_after_padding, stack_cameras
from shoerecon.render.renderer import Renderer, RendererConfig


def _l_shape():
    """An asymmetric solid: a long box along X with a tall block on its toe (+X) end, nearer +Z."""
    a, b = box((1.0, 0.2, 0.3)), box((0.2, 0.4, 0.15))
    verts = torch.cat([a.verts, b.verts + torch.tensor([0.4, 0.3, 0.07])])
    faces = torch.cat([a.faces, b.faces + a.verts.shape[0]])
    return verts, faces


def _hard(size):
    return Renderer(RendererConfig(image_size=size, faces_per_pixel=1, blend="hard"))


def _rot_y(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def test_identity_terms_are_bit_identical_to_the_plain_camera():
    params = torch.tensor([[20.0, 10.0, 2.2, 30.0], [200.0, -5.0, 2.5, 41.0]])
    plain, product = Cameras.from_tensor(params), Cameras.from_tensor(product_params(params))
    assert not plain.is_product and product.is_product and plain.to_tensor().shape == (2, 4)
    assert product.to_tensor().shape == (2, 10)
    pts = torch.randn(2, 50, 3)
    assert torch.equal(plain.transform_points_ndc(pts), product.transform_points_ndc(pts))
    verts, faces = _l_shape()
    r = _hard(32)
    assert torch.equal(r(verts[None], faces, plain[None]), r(verts[None], faces, product[None]))


def test_zoom_and_shift_equal_cropping_a_bigger_plain_render():
    """Crop the window of N x N pixels at (row0, col0) from a 2N render: the camera with zoom 2, shift -2c (c = the
    window's NDC centre) renders exactly that window at N pixels."""
    verts, faces = _l_shape()
    n, row0, col0 = 16, 5, 11
    plain = Cameras.from_tensor(torch.tensor([[[30.0, 15.0, 2.2, 40.0]]]))
    big = _hard(2 * n)(verts[None], faces, plain)[0, 0, 3]
    c = ((2 * col0 - n) / (2 * n), -(2 * row0 - n) / (2 * n))  # NDC centre of the window (y up)
    crop = torch.tensor([-2 * c[0], -2 * c[1], 2.0])
    cropped = Cameras(plain.azimuth, plain.elevation, plain.distance, plain.fov, crop=crop)
    small = _hard(n)(verts[None], faces, cropped)[0, 0, 3]
    window = big[row0 : row0 + n, col0 : col0 + n]
    assert window.sum() > 20 and (window != small).sum() <= 2  # equal up to ties on edges through pixel centres


def test_positive_shift_moves_the_image_right_and_up():
    cam = Cameras.from_tensor(torch.tensor([[0.0, 0.0, 2.0, 90.0, 0.25, -0.5, 1.0, 0, 0, 0]]))
    ndc = cam.transform_points_ndc(torch.tensor([[[0.3, -0.2, 0.0]]]))[0, 0]
    assert torch.allclose(ndc, torch.tensor([0.15 + 0.25, -0.1 - 0.5, 2.0]))


def test_translation_is_a_shoe_off_the_axis_of_a_turning_table():
    """Oracle: a fixed camera at azimuth 0 and the shoe turned by the table (rotate by -azimuth about the axis, with
    the shoe sitting at offset t from the axis) sees what the product camera (azimuth, translation t) sees."""
    verts, faces = _l_shape()
    t = torch.tensor([0.08, -0.03, 0.05])
    azimuths = [0.0, 35.0, 130.0, 250.0]
    product = Cameras.turntable(4, elevation=12.0, fov=35.0, translation=t)
    product = Cameras.from_tensor(torch.stack([product.to_tensor()[0].clone() for _ in azimuths]))
    product.azimuth = torch.tensor(azimuths)
    fixed = Cameras.from_tensor(torch.tensor([[0.0, 12.0, 2.2, 35.0]]))
    r = _hard(40)
    got = r(verts[None], faces, product[None])[0, :, 3]
    for i, az in enumerate(azimuths):
        turned = (verts + t) @ _rot_y(-az).T
        want = r(turned[None], faces, fixed[None])[0, 0, 3]
        assert want.sum() > 30 and (want != got[i]).sum() <= 3, az


def test_turntable_start_azimuth_and_direction():
    cw = Cameras.turntable(4, start_azimuth=-15.0, direction=-1)
    assert cw.azimuth.tolist() == [-15.0, -105.0, -195.0, -285.0]
    with pytest.raises(ValueError, match="direction"):
        Cameras.turntable(4, direction=0)


def test_product_cameras_round_trip_reshape_stack_and_to():
    cams = Cameras.from_tensor(torch.rand(2, 3, 10) + 0.5)
    assert cams.reshape(6).to_tensor().shape == (6, 10) and cams[1].shape == (3,)
    assert torch.equal(cams.to(dtype=torch.float64).to_tensor().float(), cams.to_tensor())
    mixed = stack_cameras([Cameras.turntable(3), cams[0]])
    assert mixed.to_tensor().shape == (2, 3, 10) and torch.equal(mixed.to_tensor()[0, :, 4:7], torch.tensor([[0.0, 0, 1]] * 3))
    with pytest.raises(ValueError, match="last dimension of 4 or 10"):
        Cameras.from_tensor(torch.zeros(3, 5))


def test_padding_a_product_camera_matches_the_square_render():
    """A (36 x 48) product photo padded to 48 x 48 with ``params_after_padding`` equals the square render."""
    verts, faces = _l_shape()
    cam = torch.tensor([40.0, 10.0, 2.2, 30.0, 0.2, -0.1, 1.3, 0.05, 0.0, -0.04])
    wide = Renderer(RendererConfig(image_size=(36, 48), faces_per_pixel=1, blend="hard"))(
        verts[None], faces, Cameras.from_tensor(cam[None, None]))[0, 0, 3]
    square = _hard(48)(verts[None], faces, Cameras.from_tensor(params_after_padding(cam, 36, 48)[None, None]))[0, 0, 3]
    assert wide.sum() > 50 and (square[6:42] != wide).sum() <= 3
    plain = torch.tensor([40.0, 10.0, 2.2, 30.0])
    assert math.isclose(float(params_after_padding(plain, 36, 48)[3]), fov_after_padding(30.0, 36, 48), rel_tol=1e-6)
