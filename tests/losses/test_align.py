import math

import pytest
import torch

from shoerecon.losses.align import (
    AlignConfig,
    align_loss,
    ndc_to_grid,
    project_face_centroids,
    visible_faces,
    visible_from_pix_to_face,
)
from shoerecon.render.cameras import Cameras

DIST, FOV = 2.0, 30.0
FOCAL = 1 / math.tan(math.radians(FOV / 2))


def grid_plane(n, z, u0, u1, v0, v1, half=0.4, dtype=torch.float64):
    """An n x n quad grid in the plane z, x,y in [-half, half], facing +Z (CCW seen from +Z), UV box [u0,u1]x[v0,v1]."""
    t = torch.linspace(0, 1, n + 1, dtype=dtype)
    gy, gx = torch.meshgrid(t, t, indexing="ij")
    verts = torch.stack([(gx - 0.5) * 2 * half, (gy - 0.5) * 2 * half, torch.full_like(gx, z)], -1).reshape(-1, 3)
    uvs = torch.stack([u0 + gx * (u1 - u0), v0 + gy * (v1 - v0)], -1).reshape(-1, 2)
    faces = []
    for i in range(n):
        for j in range(n):
            a, b, c, d = i * (n + 1) + j, i * (n + 1) + j + 1, (i + 1) * (n + 1) + j, (i + 1) * (n + 1) + j + 1
            faces += [[a, b, d], [a, d, c]]
    return verts, torch.tensor(faces), uvs


def scene(dtype=torch.float64):
    """A front plane (z = 0, UV on the left half) hiding a smaller back plane (z = -0.3, UV on the right half)."""
    fv, ff, fuv = grid_plane(4, 0.0, 0.05, 0.45, 0.05, 0.95, dtype=dtype)
    bv, bf, buv = grid_plane(2, -0.3, 0.55, 0.95, 0.05, 0.95, half=0.2, dtype=dtype)
    verts = torch.cat([fv, bv])[None]
    faces = torch.cat([ff, bf + fv.shape[0]])
    uvs = torch.cat([fuv, buv])
    front = torch.arange(faces.shape[0]) < ff.shape[0]
    cams = Cameras.from_tensor(torch.tensor([[0.0, 0.0, DIST, FOV]], dtype=dtype))
    return verts, faces, uvs, front, cams


def exact_flow(size=16, dtype=torch.float64):
    """The flow a perfect predictor gives for the front plane: linear in UV (the plane is parallel to the image)."""
    j = torch.arange(size, dtype=dtype)
    u = ((j + 0.5) / size).view(1, -1).expand(size, size)
    v = (1 - (j + 0.5) / size).view(-1, 1).expand(size, size)
    x = ((u - 0.05) / 0.4 - 0.5) * 0.8
    y = ((v - 0.05) / 0.9 - 0.5) * 0.8
    flow = torch.stack([FOCAL * x / DIST, -FOCAL * y / DIST], -1)[None]  # square image: grid = (x_ndc, -y_ndc)
    return flow.clone()


def test_exact_flow_gives_zero_and_offset_gives_its_square():
    verts, faces, uvs, front, cams = scene()
    flow = exact_flow()
    loss = align_loss(flow, verts, faces, uvs, faces, cams, front, (32, 32))
    assert loss.item() < 1e-20
    delta = torch.tensor([0.1, -0.05], dtype=torch.float64)
    shifted = flow + delta
    assert align_loss(shifted, verts, faces, uvs, faces, cams, front, (32, 32)).item() == pytest.approx(0.0125)
    l1 = align_loss(shifted, verts, faces, uvs, faces, cams, front, (32, 32), AlignConfig(penalty="l1"))
    assert l1.item() == pytest.approx(delta.norm().item())


def test_invisible_faces_are_ignored():
    verts, faces, uvs, front, cams = scene()
    flow = exact_flow()
    flow[:, :, 9:] = torch.rand(1, 16, 7, 2, dtype=torch.float64)  # garbage on the back plane's UV region (u > 0.55)
    assert align_loss(flow, verts, faces, uvs, faces, cams, front, (32, 32)).item() < 1e-20
    everything = torch.ones_like(front)
    assert align_loss(flow, verts, faces, uvs, faces, cams, everything, (32, 32)).item() > 1e-3


def test_visibility_from_the_renderer():
    verts, faces, uvs, front, _ = scene()
    # A camera in generic position: at azimuth 0 pixel centres lie exactly on the front plane's diagonals,
    # where a rasteriser without a tie-breaking rule can leave a one-pixel crack.
    cams = Cameras.from_tensor(torch.tensor([[3.0, 2.0, DIST, FOV]], dtype=torch.float64))
    visible = visible_faces(verts, faces, cams, 32, 32)
    assert visible.shape == (1, faces.shape[0])
    assert torch.equal(visible[0], front)


def test_visible_from_pix_to_face_packed_indices():
    num_faces = 5
    p2f = torch.full((2, 2, 2, 2), -1)
    p2f[0, 0, 0] = torch.tensor([3, 1])  # image 0: face 3 nearest, face 1 behind it
    p2f[1, 1, 1] = torch.tensor([5 + 2, 5 + 4])  # image 1: face 2 nearest
    assert visible_from_pix_to_face(p2f, num_faces).tolist() == [
        [False, False, False, True, False],
        [False, False, True, False, False],
    ]


def test_projection_matches_camera_pixels_non_square():
    g = torch.Generator().manual_seed(0)
    verts = torch.rand(2, 10, 3, dtype=torch.float64, generator=g) - 0.5
    faces = torch.randint(0, 10, (7, 3), generator=g)
    cams = Cameras.from_tensor(torch.tensor([[20.0, 10.0, 2.2, 30.0], [-70.0, 25.0, 2.5, 40.0]], dtype=torch.float64))
    h, w = 24, 32
    grid, in_front = project_face_centroids(verts, faces, cams, h, w)
    pix = cams.project_to_pixels(verts[:, faces].mean(-2), h, w)  # (col, row), pixel centres at integers
    expected = torch.stack([(2 * pix[..., 0] + 1) / w - 1, (2 * pix[..., 1] + 1) / h - 1], -1)
    assert torch.allclose(grid, expected, atol=1e-12)
    assert in_front.all()
    assert ndc_to_grid(torch.tensor([0.0, 0.5]), 10, 10)[1] < 0  # up in NDC is up (negative y) in the grid


def test_gradients():
    verts, faces, uvs, front, cams = scene()
    flow = (exact_flow() + 0.05).requires_grad_(True)
    verts = verts.clone().requires_grad_(True)
    align_loss(flow, verts, faces, uvs, faces, cams, front, (32, 32)).backward()
    assert flow.grad.abs().sum() > 0 and verts.grad is None  # the target is a pseudo-label
    verts2 = verts.detach().clone().requires_grad_(True)
    cfg = AlignConfig(detach_target=False, penalty="huber")
    align_loss(flow, verts2, faces, uvs, faces, cams, front, (32, 32), cfg).backward()
    assert verts2.grad.abs().sum() > 0


def test_no_visible_face_is_zero_and_bad_shapes_raise():
    verts, faces, uvs, front, cams = scene()
    flow = exact_flow() + 1
    assert align_loss(flow, verts, faces, uvs, faces, cams, torch.zeros_like(front), (32, 32)).item() == 0
    with pytest.raises(ValueError, match="visible"):
        align_loss(flow, verts, faces, uvs, faces, cams, front[:-1], (32, 32))
    with pytest.raises(ValueError, match="penalty"):
        align_loss(flow, verts, faces, uvs, faces, cams, front, (32, 32), AlignConfig(penalty="l3"))
