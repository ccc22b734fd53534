import math

import torch

from shoerecon.render.cameras import Cameras, fov_after_padding, ndc_to_pixel, pixel_centers_ndc


def _cam(az, el=0.0, dist=3.0, fov=60.0):
    t = lambda v: torch.tensor([float(v)])  # noqa: E731
    return Cameras(t(az), t(el), t(dist), t(fov))


def test_azimuth_zero_looks_at_lateral_side_with_toe_right_and_up_top():
    cam = _cam(0.0)
    pts = torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]]])
    ndc = cam.transform_points_ndc(pts)[0]
    assert ndc[0, 0] > 0.1 and abs(ndc[0, 1]) < 1e-6  # +X (toe) -> image right
    assert ndc[1, 1] > 0.1 and abs(ndc[1, 0]) < 1e-6  # +Y -> image top
    assert ndc[2, 2] < 3.0 - 0.49  # +Z (lateral side) is nearer the camera
    assert torch.allclose(cam.position(), torch.tensor([[0.0, 0.0, 3.0]]), atol=1e-6)


def test_azimuth_ninety_sits_on_plus_x_and_elevation_lifts():
    assert torch.allclose(_cam(90.0).position(), torch.tensor([[3.0, 0.0, 0.0]]), atol=1e-5)
    p = _cam(0.0, el=30.0).position()[0]
    assert math.isclose(p[1].item(), 3.0 * math.sin(math.radians(30)), rel_tol=1e-5)


def test_rotation_is_orthonormal_and_depth_is_distance_for_origin():
    az = torch.linspace(0, 350, 36)
    cams = Cameras(az, torch.full_like(az, 20.0), torch.full_like(az, 2.5), torch.full_like(az, 30.0))
    R = cams.rotation()
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand(36, 3, 3), atol=1e-5)
    assert torch.allclose(torch.det(R), -torch.ones(36), atol=1e-5)  # left-handed view frame (documented)
    origin = torch.zeros(36, 1, 3)
    assert torch.allclose(cams.world_to_view(origin)[:, 0], torch.tensor([0.0, 0.0, 2.5]).expand(36, 3), atol=1e-5)


def test_projection_matches_pinhole_formula():
    cam = _cam(0.0, dist=2.0, fov=90.0)  # focal 1: x_ndc = x / z
    ndc = cam.transform_points_ndc(torch.tensor([[[0.3, -0.2, 1.0]]]))[0, 0]
    assert torch.allclose(ndc, torch.tensor([0.3, -0.2, 1.0]), atol=1e-6)


def test_pixel_centres_and_ndc_to_pixel_are_inverse():
    x, y = pixel_centers_ndc(4, 6)
    xx, yy = torch.meshgrid(x, y, indexing="xy")
    pix = ndc_to_pixel(torch.stack([xx, yy], -1), 4, 6)
    cols, rows = torch.meshgrid(torch.arange(6.0), torch.arange(4.0), indexing="xy")
    assert torch.allclose(pix[..., 0], cols) and torch.allclose(pix[..., 1], rows)


def test_batch_shapes_broadcast_and_round_trip():
    cams = Cameras.from_tensor(torch.rand(2, 5, 4) * 10 + 1)
    assert cams.shape == (2, 5)
    assert cams[1].shape == (5,)
    assert torch.equal(cams.reshape(10).to_tensor(), cams.to_tensor().reshape(10, 4))
    pts = torch.rand(2, 5, 7, 3)
    assert cams.transform_points_ndc(pts).shape == (2, 5, 7, 3)
    tt = Cameras.turntable(36)
    assert tt.shape == (36,) and torch.allclose(tt.azimuth[1], torch.tensor(10.0))


def test_fov_after_padding_keeps_focal_in_pixels():
    fov = fov_after_padding(40.0, 600, 800)
    f_before = 300 / math.tan(math.radians(40) / 2)  # half of the shorter side / tan
    f_after = 400 / math.tan(math.radians(fov) / 2)
    assert math.isclose(f_before, f_after, rel_tol=1e-9)
